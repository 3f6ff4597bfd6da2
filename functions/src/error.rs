//! THE ERROR of every operation, and its one mapping to an AWS-style
//! [`ErrorCode`] (whose HTTP status is core's table) and a JSON body
//! `{code, message, details}`; event handlers use `is_retryable()`. No I/O.

use crate::store::StoreError;
use courier_core::text::quote;
use courier_core::{
    CommandExecution, ErrorCode, TransitionError, ValidationCode, ValidationErrors,
};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("{what} {} does not exist", quote(.id))]
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
        "job {id} has ended ({}); only a scheduled or in-progress job can be canceled",
        .status.as_str()
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
    /// The caller's token lacks the scope the route needs (403): its name,
    /// e.g. `courier/cancel`.
    #[error("this operation needs the {0} scope")]
    MissingScope(&'static str),
    /// The caller's token is not usable here (403), e.g. it names no tenant.
    #[error("{0}")]
    AccessDenied(String),
    /// A per-tenant limit was reached (400 LimitExceededException).
    #[error("{0}")]
    LimitExceeded(String),
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

    /// The AWS-style error code clients switch on; its HTTP status is
    /// `code().http_status()` (core's one table).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) if self.too_large() => ErrorCode::PayloadTooLargeException,
            Self::Validation(_) => ErrorCode::ValidationException,
            Self::NotFound { .. } | Self::NoRoute { .. } => ErrorCode::ResourceNotFoundException,
            Self::Conflict(_) => ErrorCode::ConflictException,
            Self::Transition { error, .. } => error.code(),
            Self::JobEnded { .. } => ErrorCode::InvalidStateTransition,
            Self::Throttled(_) => ErrorCode::ThrottlingException,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailableException,
            Self::Internal(_) => ErrorCode::InternalServerException,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowedException,
            Self::Unauthenticated(_) => ErrorCode::UnauthorizedException,
            Self::MissingScope(_) | Self::AccessDenied(_) => ErrorCode::AccessDeniedException,
            Self::LimitExceeded(_) => ErrorCode::LimitExceededException,
        }
    }

    /// The HTTP status of [`Self::code`].
    pub fn status(&self) -> u16 {
        self.code().http_status()
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
            | Self::AccessDenied(_)
            | Self::LimitExceeded(_) => None,
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
            | Self::AccessDenied(_)
            | Self::LimitExceeded(_) => false,
        }
    }

    /// `{code, message, details}`. Internal details are logged, never sent.
    pub fn body(&self) -> Value {
        let details = match self {
            Self::Validation(errors) => json!({ "errors": errors }),
            Self::Transition { error, current } => {
                let mut details =
                    serde_json::to_value(error.details()).unwrap_or_else(|_| json!({}));
                if let (Some(current), Value::Object(map)) = (current, &mut details) {
                    if !matches!(error, TransitionError::TargetMismatch) {
                        map.insert("currentStatus".into(), json!(current.status));
                        map.insert("currentVersion".into(), json!(current.version));
                    }
                }
                details
            }
            Self::NotFound { what, id } => json!({ "resource": what, "id": id }),
            Self::MethodNotAllowed { allow, .. } => json!({ "allow": allow }),
            Self::JobEnded { id, status } => json!({ "jobId": id, "currentStatus": status }),
            Self::MissingScope(scope) => json!({ "requiredScope": scope }),
            Self::Conflict(_)
            | Self::Throttled(_)
            | Self::Unavailable(_)
            | Self::Internal(_)
            | Self::NoRoute { .. }
            | Self::Unauthenticated(_)
            | Self::AccessDenied(_)
            | Self::LimitExceeded(_) => json!({}),
        };
        let message = match self {
            Self::Transition {
                error: TransitionError::TargetMismatch,
                ..
            } => "execution does not exist".to_string(),
            other => other.to_string(),
        };
        json!({ "code": self.code().as_str(), "message": message, "details": details })
    }
}

/// How a retryable failure is reported to Lambda (which then retries the
/// invocation): the AWS-style code as the error type.
impl From<ServiceError> for lambda_runtime::Diagnostic {
    fn from(err: ServiceError) -> Self {
        Self {
            error_type: err.code().as_str().to_owned(),
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
            (internal.status(), internal.code().as_str()),
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
            (invalid.status(), invalid.code().as_str()),
            (409, "InvalidStateTransition")
        );
        let too_big =
            ServiceError::validation("parameters", ValidationCode::PayloadTooLarge, "big");
        assert_eq!(
            (too_big.status(), too_big.code().as_str()),
            (413, "PayloadTooLargeException")
        );
        assert!(!too_big.is_retryable());
        assert!(ServiceError::Throttled(String::new()).is_retryable());
    }
}
