//! Errors → gRPC status codes. Each error kind has exactly one code:
//!
//! | error | code |
//! |---|---|
//! | bad input | `INVALID_ARGUMENT`, with a `BadRequest` field violation |
//! | unknown aggregate | `NOT_FOUND` |
//! | illegal transition | `FAILED_PRECONDITION` |
//! | role may not | `PERMISSION_DENIED` |
//! | idempotency key reused for something else | `ALREADY_EXISTS` |
//! | stale expected version, lost race after retries | `ABORTED` |
//! | event log unreachable | `UNAVAILABLE` |
//! | request over 256 KiB | `RESOURCE_EXHAUSTED` |
//! | corrupt log, setup failure | `INTERNAL` |

use frontline_domain::DomainError;
use frontline_eventlog::{CommandError, LogError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Largest request a Frontline call accepts; bigger ones are RESOURCE_EXHAUSTED.
/// (Bodies are limited to 32 KiB; this leaves room for facts and metadata.)
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Refuses a request larger than [`MAX_REQUEST_BYTES`] with RESOURCE_EXHAUSTED.
/// (tonic's own decode limit, 4 MiB, answers OUT_OF_RANGE; this check comes first
/// for everything below it.)
pub fn check_size<M: prost::Message>(message: &M) -> Result<(), Status> {
    let size = message.encoded_len();
    if size > MAX_REQUEST_BYTES {
        return Err(counted(Status::resource_exhausted(format!(
            "request is {size} bytes; the limit is {MAX_REQUEST_BYTES}"
        ))));
    }
    Ok(())
}

/// A bad-input status naming the offending field.
pub fn invalid_field(field: &str, reason: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid {field}: {reason}"),
        ErrorDetails::with_bad_request_violation(field, reason),
    )
}

/// Counts a refused call by status code (`frontline_grpc_errors_total{code}`).
/// Every refusal Frontline makes passes through here exactly once.
pub(crate) fn counted(status: Status) -> Status {
    metrics::counter!("frontline_grpc_errors_total", "code" => format!("{:?}", status.code()))
        .increment(1);
    status
}

/// The status for a domain refusal.
pub fn from_domain(e: &DomainError) -> Status {
    counted(match e {
        DomainError::InvalidField { field, reason } => invalid_field(field, reason),
        DomainError::NotFound { .. } => Status::not_found(e.to_string()),
        DomainError::Precondition { .. } => Status::failed_precondition(e.to_string()),
        DomainError::Forbidden { .. } => Status::permission_denied(e.to_string()),
        DomainError::StaleVersion { .. } => Status::aborted(e.to_string()),
        DomainError::AlreadyExists(_) => Status::already_exists(e.to_string()),
    })
}

/// The status for an event log failure.
pub fn from_log(e: &LogError) -> Status {
    counted(match e {
        LogError::Conflict { .. } => Status::aborted(e.to_string()),
        LogError::Unavailable(_) => Status::unavailable(format!(
            "{e}; retry with the same idempotency key, nothing is doubled"
        )),
        LogError::Corrupt { .. } | LogError::Setup(_) => {
            tracing::error!(error = %e, "event log failure");
            Status::internal(e.to_string())
        }
    })
}

/// The status for a failed command.
pub fn from_command(e: &CommandError) -> Status {
    match e {
        CommandError::Domain(d) => from_domain(d),
        CommandError::Log(l) => from_log(l),
        CommandError::Exhausted { .. } => counted(Status::aborted(format!("{e}; retry the call"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_code() {
        let invalid = from_domain(&DomainError::invalid("subject", "must not be empty"));
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let details = invalid.get_error_details();
        let bad = details.bad_request().expect("field violations");
        assert_eq!(bad.field_violations[0].field, "subject");

        let cases = [
            (
                from_domain(&DomainError::NotFound {
                    kind: "ticket",
                    id: "x".into(),
                }),
                Code::NotFound,
            ),
            (
                from_domain(&DomainError::StaleVersion {
                    expected: 1,
                    actual: 2,
                }),
                Code::Aborted,
            ),
            (
                from_log(&LogError::Unavailable("down".into())),
                Code::Unavailable,
            ),
            (
                from_command(&CommandError::Exhausted { attempts: 3 }),
                Code::Aborted,
            ),
        ];
        for (status, code) in cases {
            assert_eq!(status.code(), code, "{status:?}");
        }
    }
}
