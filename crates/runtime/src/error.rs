//! The one API error type. Every handler returns it with `?`; each variant maps to
//! exactly one gRPC status code, here and nowhere else:
//!
//! | variant | code |
//! |---|---|
//! | [`ApiError::InvalidArgument`] | `INVALID_ARGUMENT`, with a `BadRequest` field violation |
//! | [`ApiError::NotFound`] | `NOT_FOUND` |
//! | [`ApiError::FailedPrecondition`] | `FAILED_PRECONDITION` (illegal transition) |
//! | [`ApiError::AlreadyExists`] | `ALREADY_EXISTS` (idempotency key reused for something else) |
//! | [`ApiError::Aborted`] | `ABORTED` (stale expected version, lost race after retries) |
//! | [`ApiError::PermissionDenied`] | `PERMISSION_DENIED` (the role may not) |
//! | [`ApiError::Unauthenticated`] | `UNAUTHENTICATED` |
//! | [`ApiError::ResourceExhausted`] | `RESOURCE_EXHAUSTED` (request over a limit) |
//! | [`ApiError::Unavailable`] | `UNAVAILABLE` (event log or database unreachable; retry with the same key) |
//! | [`ApiError::Internal`] | `INTERNAL` (corrupt log, setup failure) |

use frontline_domain::DomainError;
use frontline_eventlog::{CommandError, LogError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Largest request a Frontline call accepts, counted in bytes as sent (unknown and
/// repeated fields included); bigger ones are RESOURCE_EXHAUSTED before they are
/// decoded. Every gRPC server sets it as its decoding limit
/// ([`crate::service::Context::limit`]). (Bodies are limited to 32 KiB; this leaves
/// room for facts and metadata.)
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// Why a call was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input in `field`.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The offending field's path in the request, e.g. `customer.email`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Unknown ticket, customer, ….
    #[error("{0}")]
    NotFound(String),
    /// Not allowed in the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The idempotency key already created something different.
    #[error("{0}")]
    AlreadyExists(String),
    /// A stale expected version, or a lost race after every retry.
    #[error("{0}")]
    Aborted(String),
    /// The caller's role may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// No valid token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The request is over a size limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (event log, database) could not be reached; the outcome is unknown.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of ours.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// Bad input in `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument { .. } => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::Aborted(_) => Code::Aborted,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }
}

/// The longest message a status carries, in bytes. A message travels in an HTTP/2
/// header (`grpc-message`), and one that quotes a caller's 30 KiB input would
/// exceed the client's header limit: the caller would see a protocol error
/// (INTERNAL) instead of the refusal (found by `make soak`'s fuzzer).
pub const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// `message` cut at a character boundary to [`MAX_STATUS_MESSAGE_BYTES`].
fn bounded(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE_BYTES {
        let mut end = MAX_STATUS_MESSAGE_BYTES - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::InvalidArgument { field, reason } => {
                let (field, reason) = (bounded(field), bounded(reason));
                Status::with_error_details(
                    Code::InvalidArgument,
                    bounded(format!("invalid {field}: {reason}")),
                    ErrorDetails::with_bad_request_violation(field, reason),
                )
            }
            ApiError::Internal(message) => {
                // Handled here, where it becomes the caller's answer: logged once.
                tracing::error!(error = %message, "internal error");
                Status::internal(bounded(message))
            }
            other => Status::new(other.code(), bounded(other.to_string())),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        match e {
            DomainError::InvalidField { field, reason } => {
                ApiError::InvalidArgument { field, reason }
            }
            DomainError::NotFound { .. } => ApiError::NotFound(message),
            DomainError::Precondition { .. } => ApiError::FailedPrecondition(message),
            DomainError::Forbidden { .. }
            | DomainError::NotPermitted { .. }
            | DomainError::OtherTenant { .. } => ApiError::PermissionDenied(message),
            DomainError::StaleVersion { .. } => ApiError::Aborted(message),
            DomainError::AlreadyExists(_) => ApiError::AlreadyExists(message),
        }
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Conflict { .. } => ApiError::Aborted(e.to_string()),
            LogError::Unavailable(_) => ApiError::Unavailable(format!(
                "{e}; retry with the same idempotency key, nothing is doubled"
            )),
            LogError::Corrupt { .. }
            | LogError::Setup(_)
            | LogError::Refused(_)
            | LogError::InvalidBatch(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::Log(l) => l.into(),
            CommandError::Exhausted { .. } => ApiError::Aborted(format!("{e}; retry the call")),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // Connection, resource, operator and read-only errors (SQLSTATE 08, 53,
        // 57, 25006) mean "not now"; the rest is a fault of ours.
        let unavailable = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                ["08", "53", "57"].iter().any(|class| c.starts_with(class)) || c == "25006"
            }),
            _ => false,
        };
        if unavailable {
            ApiError::Unavailable(format!("database unavailable: {e}"))
        } else {
            ApiError::Internal(format!("database: {e}"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_to_fit_a_header() {
        let long = "é".repeat(20_000);
        let status = Status::from(ApiError::NotFound(format!("no macro named {long}")));
        assert!(status.message().len() <= MAX_STATUS_MESSAGE_BYTES);
        assert!(status.message().starts_with("no macro named é"));
        assert!(status.message().ends_with("..."));
        let status = Status::from(ApiError::InvalidArgument {
            field: "name".into(),
            reason: long,
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().len() <= MAX_STATUS_MESSAGE_BYTES);
    }

    #[test]
    fn each_error_has_its_code() {
        let invalid: Status =
            ApiError::from(DomainError::invalid("subject", "must not be empty")).into();
        assert_eq!(invalid.code(), Code::InvalidArgument);
        let details = invalid.get_error_details();
        let bad = details.bad_request().expect("field violations");
        assert_eq!(bad.field_violations[0].field, "subject");

        let cases: [(ApiError, Code); 5] = [
            (
                DomainError::NotFound {
                    kind: "ticket",
                    id: "x".into(),
                }
                .into(),
                Code::NotFound,
            ),
            (
                DomainError::StaleVersion {
                    expected: 1,
                    actual: 2,
                }
                .into(),
                Code::Aborted,
            ),
            (
                LogError::Unavailable("down".into()).into(),
                Code::Unavailable,
            ),
            (
                CommandError::Exhausted { attempts: 3 }.into(),
                Code::Aborted,
            ),
            (
                ApiError::ResourceExhausted("big".into()),
                Code::ResourceExhausted,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(Status::from(error).code(), code);
        }
    }
}
