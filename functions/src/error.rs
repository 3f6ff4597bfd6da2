//! The service's one error type and its one mapping to HTTP status, AWS-style
//! error code and JSON body `{code, message, details}`; event handlers use
//! `is_retryable()` instead. No I/O.

use crate::store::StoreError;
use courier_core::{CommandExecution, TransitionError, ValidationCode, ValidationErrors};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    /// A status change the rules refused; `current` is the record as it is.
    #[error("{error}")]
    Transition {
        error: TransitionError,
        current: Option<Box<CommandExecution>>,
    },
    /// A job that has ended cannot change.
    #[error(
        "job {id} has ended ({status:?}); only a scheduled or in-progress job can be canceled"
    )]
    JobEnded {
        id: String,
        status: courier_core::JobStatus,
    },
    #[error("request rate exceeded; retry with backoff")]
    Throttled(String),
    #[error("storage is unavailable; retry with backoff")]
    Unavailable(String),
    #[error("internal error; the request id identifies it in the logs")]
    Internal(String),
    /// No verified caller (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's token lacks the scope the route needs (403).
    #[error("this operation needs the {} scope", .0.as_str())]
    MissingScope(crate::auth::Scope),
    /// The caller's token is not usable here (403), e.g. it names no tenant.
    #[error("{0}")]
    AccessDenied(String),
    #[error("no route {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("{method} is not allowed on {path}; allowed: {allow}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: &'static str,
    },
}

impl ServiceError {
    pub fn validation(path: &str, code: ValidationCode, message: impl Into<String>) -> Self {
        Self::Validation(courier_core::ValidationError::new(path, code, message).into())
    }

    /// A store failure on the execution `id`: not found names it.
    pub fn for_execution(err: StoreError, id: &courier_core::ExecutionId) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound {
                what: "execution",
                id: id.to_string(),
            },
            other => other.into(),
        }
    }

    fn too_large(&self) -> bool {
        matches!(self, Self::Validation(errors) if errors.iter().any(|e| e.code == ValidationCode::PayloadTooLarge))
    }

    /// The AWS-style error code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) if self.too_large() => "PayloadTooLargeException",
            Self::Validation(_) => "ValidationException",
            Self::NotFound { .. } | Self::NoRoute { .. } => "ResourceNotFoundException",
            Self::Conflict(_) => "ConflictException",
            Self::Transition { error, .. } => match error {
                TransitionError::TargetMismatch
                | TransitionError::AttemptMismatch { .. }
                | TransitionError::Held { .. } => "ResourceNotFoundException",
                TransitionError::TerminalStateReached { .. }
                | TransitionError::VersionMismatch { .. }
                | TransitionError::InvalidStateTransition { .. }
                | TransitionError::DeadlinePassed { .. }
                | TransitionError::ForceRequired => error.code(),
            },
            Self::JobEnded { .. } => "InvalidStateTransition",
            Self::Throttled(_) => "ThrottlingException",
            Self::Unavailable(_) => "ServiceUnavailableException",
            Self::Internal(_) => "InternalServerException",
            Self::MethodNotAllowed { .. } => "MethodNotAllowedException",
            Self::Unauthenticated(_) => "UnauthorizedException",
            Self::MissingScope(_) | Self::AccessDenied(_) => "AccessDeniedException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Validation(_) if self.too_large() => 413,
            Self::Validation(_) => 400,
            Self::NotFound { .. } | Self::NoRoute { .. } => 404,
            Self::Conflict(_) => 409,
            Self::Transition { error, .. } => match error {
                TransitionError::TargetMismatch
                | TransitionError::AttemptMismatch { .. }
                | TransitionError::Held { .. } => 404,
                TransitionError::TerminalStateReached { .. }
                | TransitionError::VersionMismatch { .. }
                | TransitionError::InvalidStateTransition { .. }
                | TransitionError::DeadlinePassed { .. }
                | TransitionError::ForceRequired => 409,
            },
            Self::JobEnded { .. } => 409,
            Self::Throttled(_) => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
            Self::MethodNotAllowed { .. } => 405,
            Self::Unauthenticated(_) => 401,
            Self::MissingScope(_) | Self::AccessDenied(_) => 403,
        }
    }

    /// Seconds a caller should wait before retrying (`Retry-After`): set on
    /// throttling and unavailability only.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Self::Throttled(_) => Some(1),
            Self::Unavailable(_) => Some(2),
            Self::Validation(_)
            | Self::NotFound { .. }
            | Self::Conflict(_)
            | Self::Transition { .. }
            | Self::JobEnded { .. }
            | Self::Internal(_)
            | Self::NoRoute { .. }
            | Self::MethodNotAllowed { .. }
            | Self::Unauthenticated(_)
            | Self::MissingScope(_)
            | Self::AccessDenied(_) => None,
        }
    }

    /// Whether the same request may succeed later (event handlers return
    /// these as errors so the invocation is retried; the rest are final).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Throttled(_) | Self::Unavailable(_) | Self::Internal(_) => true,
            Self::Validation(_)
            | Self::NotFound { .. }
            | Self::Conflict(_)
            | Self::Transition { .. }
            | Self::JobEnded { .. }
            | Self::NoRoute { .. }
            | Self::MethodNotAllowed { .. }
            | Self::Unauthenticated(_)
            | Self::MissingScope(_)
            | Self::AccessDenied(_) => false,
        }
    }

    /// `{code, message, details}`. Internal details are logged, never sent.
    pub fn body(&self) -> Value {
        let details = match self {
            Self::Validation(errors) => json!({ "errors": errors }),
            Self::Transition { error, current } => {
                let mut details = serde_json::to_value(error).unwrap_or_else(|_| json!({}));
                if let (Some(current), Value::Object(map)) = (current, &mut details) {
                    if !matches!(error, TransitionError::TargetMismatch) {
                        map.insert("currentStatus".into(), json!(current.status));
                        map.insert("currentVersion".into(), json!(current.version));
                    }
                }
                if let Value::Object(map) = &mut details {
                    map.remove("code");
                }
                details
            }
            Self::NotFound { what, id } => json!({ "resource": what, "id": id }),
            Self::MethodNotAllowed { allow, .. } => json!({ "allow": allow }),
            Self::JobEnded { id, status } => json!({ "jobId": id, "currentStatus": status }),
            Self::MissingScope(scope) => json!({ "requiredScope": scope.as_str() }),
            Self::Conflict(_)
            | Self::Throttled(_)
            | Self::Unavailable(_)
            | Self::Internal(_)
            | Self::NoRoute { .. }
            | Self::Unauthenticated(_)
            | Self::AccessDenied(_) => json!({}),
        };
        let message = match self {
            Self::Transition {
                error: TransitionError::TargetMismatch,
                ..
            } => "execution does not exist".to_string(),
            other => other.to_string(),
        };
        json!({ "code": self.code(), "message": message, "details": details })
    }
}

/// How a retryable failure is reported to Lambda (which then retries the
/// invocation): the AWS-style code as the error type.
impl From<ServiceError> for lambda_runtime::Diagnostic {
    fn from(err: ServiceError) -> Self {
        Self {
            error_type: err.code().to_owned(),
            error_message: err.to_string(),
        }
    }
}

impl From<ValidationErrors> for ServiceError {
    fn from(errors: ValidationErrors) -> Self {
        Self::Validation(errors)
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound {
                what: "execution",
                id: String::new(),
            },
            StoreError::Rejected { error, current } => Self::Transition {
                error,
                current: Some(current),
            },
            StoreError::Throttled(detail) => Self::Throttled(detail),
            StoreError::Conflict(detail) | StoreError::Unavailable(detail) => {
                Self::Unavailable(detail)
            }
            StoreError::Internal(detail) => Self::Internal(detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_core::{Actor, ExecutionStatus};

    #[test]
    fn every_error_has_one_status_and_code_and_hides_internals() {
        let internal = ServiceError::Internal("secret table name".into());
        assert_eq!(
            (internal.status(), internal.code()),
            (500, "InternalServerException")
        );
        assert!(!internal.body().to_string().contains("secret"));
        let invalid = ServiceError::Transition {
            error: TransitionError::InvalidStateTransition {
                from: Some(ExecutionStatus::Queued),
                to: ExecutionStatus::Sent,
                actor: Actor::Device,
                allowed: vec![],
            },
            current: None,
        };
        assert_eq!(
            (invalid.status(), invalid.code()),
            (409, "InvalidStateTransition")
        );
        let too_big =
            ServiceError::validation("parameters", ValidationCode::PayloadTooLarge, "big");
        assert_eq!(
            (too_big.status(), too_big.code()),
            (413, "PayloadTooLargeException")
        );
        assert!(!too_big.is_retryable());
        assert!(ServiceError::Throttled(String::new()).is_retryable());
    }
}
