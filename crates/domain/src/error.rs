use crate::actor::{Action, Role};

/// Why a command was refused. Each variant maps to exactly one gRPC status code
/// (see the variant docs); services do that mapping, the domain only says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A field of the request is malformed or out of limits. → `INVALID_ARGUMENT`
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The offending field's path in the request, e.g. `customer.email`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The aggregate does not exist. → `NOT_FOUND`
    #[error("{kind} {id} not found")]
    NotFound {
        /// "ticket" or "customer".
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The command is not allowed in the aggregate's current state. → `FAILED_PRECONDITION`
    #[error("cannot {action}: {reason}")]
    Precondition {
        /// What was attempted.
        action: &'static str,
        /// Why the current state forbids it.
        reason: String,
    },
    /// The actor's role may not do this. → `PERMISSION_DENIED`
    #[error("role {role} may not {action}")]
    Forbidden {
        /// The action attempted.
        action: Action,
        /// The actor's role.
        role: Role,
    },
    /// This actor, though its role may do the action, may not do it here (a
    /// proposer approving their own decline). → `PERMISSION_DENIED`
    #[error("cannot {action}: {reason}")]
    NotPermitted {
        /// What was attempted.
        action: &'static str,
        /// Why this actor may not.
        reason: String,
    },
    /// The caller named a tenant its token does not cover. → `PERMISSION_DENIED`
    #[error("the token does not cover tenant {tenant:?}")]
    OtherTenant {
        /// The tenant named.
        tenant: String,
    },
    /// The request's idempotency key already created something different. → `ALREADY_EXISTS`
    #[error("{0}")]
    AlreadyExists(String),
    /// The caller decided on a version the aggregate has moved past. → `ABORTED`
    #[error("expected version {expected}, but it is at {actual}")]
    StaleVersion {
        /// The version the caller expected.
        expected: u64,
        /// The aggregate's current version.
        actual: u64,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidField`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DomainError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
