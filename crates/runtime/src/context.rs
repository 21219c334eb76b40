//! Per-request metadata recorded on every event: correlation id (from
//! `x-correlation-id`, else new), causation id (from `x-request-id`, else new) and
//! W3C `traceparent` (the call's span when traces are exported; else continued
//! from the caller's, or a new trace).

use frontline_domain::Actor;
use frontline_eventlog::EventMeta;
use tonic::Request;
use uuid::Uuid;

const MAX_ID_LEN: usize = 128;

fn header<'a, T>(request: &'a Request<T>, name: &str) -> Option<&'a str> {
    request
        .metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_ID_LEN && v.chars().all(|c| c.is_ascii_graphic())
        })
}

/// The event metadata for a request by `actor`.
pub fn event_meta<T>(request: &Request<T>, actor: Actor) -> EventMeta {
    let new_id = || Uuid::now_v7().to_string();
    EventMeta {
        actor,
        correlation_id: header(request, "x-correlation-id").map_or_else(new_id, str::to_string),
        causation_id: header(request, "x-request-id").map_or_else(new_id, str::to_string),
        traceparent: Some(traceparent(header(request, "traceparent"))),
    }
}

/// The call's span when traces are exported (it already continues the caller's
/// trace: `call_span`); otherwise a child `traceparent` of the caller's,
/// or the root of a new trace.
fn traceparent(parent: Option<&str>) -> String {
    frontline_eventlog::trace::current_traceparent().unwrap_or_else(|| made_up(parent))
}

/// A child `traceparent` of `parent` with a random span id, or a new trace's.
fn made_up(parent: Option<&str>) -> String {
    let span = format!("{:016x}", random_u64().max(1));
    if let Some(p) = parent {
        let parts: Vec<&str> = p.split('-').collect();
        if let [version, trace, _, flags] = parts[..] {
            let hex = |s: &str, n| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
            if version == "00" && hex(trace, 32) && trace != "0".repeat(32) && hex(flags, 2) {
                return format!("00-{trace}-{span}-{flags}");
            }
        }
    }
    format!("00-{}-{span}-01", Uuid::new_v4().simple())
}

fn random_u64() -> u64 {
    let (hi, _) = Uuid::new_v4().as_u64_pair();
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_continues_a_valid_parent_and_starts_otherwise() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let child = traceparent(Some(parent));
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert_ne!(child, parent);
        let fresh = traceparent(Some("garbage"));
        assert_eq!(fresh.len(), 55);
        assert!(fresh.starts_with("00-") && fresh.ends_with("-01"));
    }
}
