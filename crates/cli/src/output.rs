//! Printing answers: readable lines for people, protobuf canonical JSON (`--json`)
//! for scripts, and the small formatters both use.

use std::{io::Write as _, sync::OnceLock};

use anyhow::Context as _;
use frontline_proto::v1;
use prost_reflect::{DescriptorPool, DynamicMessage};

/// Every Frontline message's descriptor, decoded once.
fn pool() -> anyhow::Result<&'static DescriptorPool> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(frontline_proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("the built-in descriptor set: {e}"))
}

/// `message` as protobuf canonical JSON (lowerCamelCase names, enums by name, 64-bit
/// integers as strings, timestamps in RFC 3339, default values left out).
pub fn to_json<M: prost::Message + prost::Name>(message: &M) -> anyhow::Result<serde_json::Value> {
    let name = M::full_name();
    let descriptor = pool()?
        .get_message_by_name(&name)
        .with_context(|| format!("{name} is not in the descriptor set"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .with_context(|| format!("re-read {name}"))?;
    serde_json::to_value(&dynamic).with_context(|| format!("{name} as JSON"))
}

/// Prints `value` as indented JSON.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    line(text)
}

/// Prints `message` as indented canonical JSON.
pub fn message<M: prost::Message + prost::Name>(message: &M) -> anyhow::Result<()> {
    json(&to_json(message)?)
}

/// Prints `message` as canonical JSON on one line (a stream's updates).
pub fn message_line<M: prost::Message + prost::Name>(message: &M) -> anyhow::Result<()> {
    line(serde_json::to_string(&to_json(message)?)?)
}

/// Prints one line to stdout (an error when stdout is gone).
pub fn line(text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(stdout_error)?;
    out.flush().map_err(stdout_error)?;
    Ok(())
}

/// Stdout was closed by its reader (`frontline show … | head`): not a failure.
/// Its own type, because a network connection broken mid-handshake is a broken
/// pipe too — and that one is a failure.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// A failed write to stdout: [`StdoutClosed`] when its reader went away.
pub fn stdout_error(error: std::io::Error) -> anyhow::Error {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        error.into()
    }
}

/// A timestamp as `2025-06-01 12:00:03Z` (UTC); `-` when unset.
pub fn time(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

/// How long ago `at` was, roughly (`3m`, `2h05m`, `4d03h`); `-` when unset.
pub fn age(at: Option<&prost_types::Timestamp>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let now = jiff::Timestamp::now().as_second();
    let secs = (now - at.seconds).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A proto enum's value name without its prefix, lower-case (`TICKET_STATUS_OPEN` → `open`).
fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .to_ascii_lowercase()
}

macro_rules! enum_text {
    ($(#[$doc:meta])* $fn:ident, $ty:ty, $prefix:literal) => {
        $(#[$doc])*
        pub fn $fn(value: i32) -> String {
            <$ty>::try_from(value)
                .map(|v| short(v.as_str_name(), $prefix))
                .unwrap_or_else(|_| value.to_string())
        }
    };
}

enum_text!(
    /// A ticket status, e.g. `open`.
    status, v1::TicketStatus, "TICKET_STATUS_"
);
enum_text!(
    /// A channel, e.g. `email`.
    channel, v1::Channel, "CHANNEL_"
);
enum_text!(
    /// A priority, e.g. `urgent`.
    priority, v1::Priority, "PRIORITY_"
);
enum_text!(
    /// A tier, e.g. `extended`.
    tier, v1::Tier, "TIER_"
);
enum_text!(
    /// A role, e.g. `agent`.
    role, v1::Role, "ROLE_"
);
enum_text!(
    /// An agent's status, e.g. `available`.
    agent_status, v1::AgentStatus, "AGENT_STATUS_"
);

/// Who did something: `ana (agent)`.
pub fn actor(actor: Option<&v1::Actor>) -> String {
    actor
        .map(|a| format!("{} ({})", a.id, role(a.role)))
        .unwrap_or_else(|| "-".into())
}

/// The first line of `text`, at most `max` characters (with `…` when cut).
pub fn excerpt(text: &str, max: usize) -> String {
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let cut: String = first.chars().take(max).collect();
    if cut.len() < first.len() || text.trim().lines().nth(1).is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// The event type without its package (`frontline.v1.AgentReplied` → `AgentReplied`).
pub fn event_type(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}

/// A command's result on a ticket: `ticket <id>: replied (open, version 3)`.
pub fn change(what: &str, change: Option<&v1::TicketChange>) -> String {
    match change {
        Some(c) if c.recorded => format!(
            "ticket {}: {what} ({}, version {})",
            c.ticket_id,
            status(c.status),
            c.version
        ),
        Some(c) => format!(
            "ticket {}: already {what}, nothing new recorded ({}, version {})",
            c.ticket_id,
            status(c.status),
            c.version
        ),
        None => format!("{what} (the service named no ticket)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_names_enums_and_times() {
        let change = v1::TicketChange {
            ticket_id: "t".into(),
            version: 3,
            status: v1::TicketStatus::Pending.into(),
            recorded: true,
        };
        let json = to_json(&v1::ReplyResponse {
            change: Some(change),
        })
        .unwrap_or_default();
        assert_eq!(json["change"]["ticketId"], "t");
        assert_eq!(json["change"]["version"], "3");
        assert_eq!(json["change"]["status"], "TICKET_STATUS_PENDING");
        let entry = v1::HistoryEntry {
            occurred_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Default::default()
        };
        let json = to_json(&entry).unwrap_or_default();
        assert_eq!(json["occurredAt"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn readable_bits() {
        assert_eq!(
            status(v1::TicketStatus::DeclineProposed as i32),
            "decline_proposed"
        );
        assert_eq!(status(99), "99");
        assert_eq!(excerpt("Hello\nthere", 20), "Hello…");
        assert_eq!(excerpt("Hello there", 5), "Hello…");
        assert_eq!(excerpt("Hi", 5), "Hi");
        assert_eq!(event_type("frontline.v1.AgentReplied"), "AgentReplied");
        let at = prost_types::Timestamp {
            seconds: 90,
            nanos: 0,
        };
        assert_eq!(time(Some(&at)), "1970-01-01 00:01:30Z");
        assert_eq!(time(None), "-");
    }
}
