//! Exit codes and error messages: `error: <CODE>: <message>` on stderr.
//!
//! | exit | meaning |
//! |------|---------|
//! | 0 | done |
//! | 1 | any other failure (a file that cannot be read, a bad answer, ...) |
//! | 2 | usage: bad arguments (clap), no token, a malformed address |
//! | 10 + n | the service answered with gRPC status code n (13 INVALID_ARGUMENT, 15 NOT_FOUND, 16 ALREADY_EXISTS, 17 PERMISSION_DENIED, 19 FAILED_PRECONDITION, 20 ABORTED, 24 UNAVAILABLE, 26 UNAUTHENTICATED, ...) |
//!
//! A service that cannot be reached at all counts as UNAVAILABLE (24).

use std::{fmt, io::Write as _};

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// Exit code for usage errors (clap's too).
pub const USAGE: u8 = 2;

/// Exit code for failures that are neither usage nor a gRPC status.
pub const OTHER: u8 = 1;

/// A usage error: exit code 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The exit code for gRPC status `code`: 10 + its number (0 for OK).
pub fn code_for(code: Code) -> u8 {
    match code {
        Code::Ok => 0,
        other => 10 + other as u8,
    }
}

/// The gRPC name of `code`, e.g. `NOT_FOUND`.
pub fn name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Prints `err` to stderr and returns the exit code it stands for.
pub fn report(err: &anyhow::Error) -> u8 {
    let mut stderr = std::io::stderr().lock();
    for cause in err.chain() {
        if let Some(status) = cause.downcast_ref::<Status>() {
            let _ = writeln!(
                stderr,
                "error: {}: {}",
                name(status.code()),
                status.message()
            );
            if let Some(bad) = status.get_details_bad_request() {
                for v in bad.field_violations {
                    let _ = writeln!(stderr, "  {}: {}", v.field, v.description);
                }
            }
            return code_for(status.code());
        }
        if cause.downcast_ref::<tonic::transport::Error>().is_some() {
            let _ = writeln!(stderr, "error: UNAVAILABLE: {err:#}");
            return code_for(Code::Unavailable);
        }
        if let Some(usage) = cause.downcast_ref::<Usage>() {
            let _ = writeln!(stderr, "error: {usage}");
            return USAGE;
        }
    }
    let _ = writeln!(stderr, "error: {err:#}");
    OTHER
}

/// True when `err` is stdout closing early (`frontline show ... | head`) — not
/// any broken pipe: a TLS handshake the server refused can end as one.
pub fn broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.is::<crate::output::StdoutClosed>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stdout_closing_is_a_quiet_exit() {
        let network = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(!broken_pipe(&network.context("connect to intake")));
        let stdout = crate::output::stdout_error(std::io::ErrorKind::BrokenPipe.into());
        assert!(broken_pipe(&stdout));
    }

    #[test]
    fn exit_codes_are_ten_plus_the_grpc_code() {
        assert_eq!(code_for(Code::Ok), 0);
        assert_eq!(code_for(Code::InvalidArgument), 13);
        assert_eq!(code_for(Code::NotFound), 15);
        assert_eq!(code_for(Code::AlreadyExists), 16);
        assert_eq!(code_for(Code::PermissionDenied), 17);
        assert_eq!(code_for(Code::Unavailable), 24);
        assert_eq!(code_for(Code::Unauthenticated), 26);
    }

    #[test]
    fn statuses_and_transport_errors_report_their_codes() {
        let err = anyhow::Error::new(Status::not_found("no ticket x")).context("GetTicket");
        assert_eq!(report(&err), 15);
        assert_eq!(report(&anyhow::Error::new(Usage("no token".into()))), USAGE);
        assert_eq!(report(&anyhow::anyhow!("something else")), OTHER);
    }
}
