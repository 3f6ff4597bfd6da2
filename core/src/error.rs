//! Errors, and their stable codes: the one validation error type (one
//! problem per field, with a [`ValidationCode`]) that the HTTP API, the
//! device protocols and the dashboard all show identically, and the
//! AWS-style [`ErrorCode`] of a refused request with its HTTP status, in one
//! table. Pure, no I/O; imports nothing of the crate.

use serde::Serialize;
use std::fmt;

/// Machine-readable reason a value was refused. The string form (`as_str`) is
/// part of Courier's public contract: never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ValidationCode {
    MissingRequired,
    UnknownParameter,
    UnknownField,
    WrongType,
    OutOfRange,
    TooShort,
    TooLong,
    PatternMismatch,
    NotInEnum,
    InvalidBase64,
    InvalidUnsignedLong,
    PayloadTooLarge,
    InvalidId,
    InvalidValue,
    InvalidJson,
    InvalidDefinition,
}

impl ValidationCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingRequired => "MissingRequired",
            Self::UnknownParameter => "UnknownParameter",
            Self::UnknownField => "UnknownField",
            Self::WrongType => "WrongType",
            Self::OutOfRange => "OutOfRange",
            Self::TooShort => "TooShort",
            Self::TooLong => "TooLong",
            Self::PatternMismatch => "PatternMismatch",
            Self::NotInEnum => "NotInEnum",
            Self::InvalidBase64 => "InvalidBase64",
            Self::InvalidUnsignedLong => "InvalidUnsignedLong",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::InvalidId => "InvalidId",
            Self::InvalidValue => "InvalidValue",
            Self::InvalidJson => "InvalidJson",
            Self::InvalidDefinition => "InvalidDefinition",
        }
    }
}

impl fmt::Display for ValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The AWS-style code of a refused request, as the HTTP API's `code` field
/// and the WASM module's `code` show it. The string forms are part of the
/// public contract: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ValidationException,
    PayloadTooLargeException,
    ResourceNotFoundException,
    ConflictException,
    InvalidStateTransition,
    TerminalStateReached,
    VersionMismatch,
    ThrottlingException,
    ServiceUnavailableException,
    InternalServerException,
    MethodNotAllowedException,
    UnauthorizedException,
    AccessDeniedException,
    /// A per-tenant limit (active pipeline runs, targets per run).
    LimitExceededException,
}

impl ErrorCode {
    /// THE TABLE: every code, its string and its HTTP status.
    const fn spec(self) -> (&'static str, u16) {
        match self {
            Self::ValidationException => ("ValidationException", 400),
            Self::PayloadTooLargeException => ("PayloadTooLargeException", 413),
            Self::ResourceNotFoundException => ("ResourceNotFoundException", 404),
            Self::ConflictException => ("ConflictException", 409),
            Self::InvalidStateTransition => ("InvalidStateTransition", 409),
            Self::TerminalStateReached => ("TerminalStateReached", 409),
            Self::VersionMismatch => ("VersionMismatch", 409),
            Self::ThrottlingException => ("ThrottlingException", 429),
            Self::ServiceUnavailableException => ("ServiceUnavailableException", 503),
            Self::InternalServerException => ("InternalServerException", 500),
            Self::MethodNotAllowedException => ("MethodNotAllowedException", 405),
            Self::UnauthorizedException => ("UnauthorizedException", 401),
            Self::AccessDeniedException => ("AccessDeniedException", 403),
            Self::LimitExceededException => ("LimitExceededException", 400),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.spec().0
    }

    pub const fn http_status(self) -> u16 {
        self.spec().1
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one input value: where (`path`, e.g. `parameters.rate`),
/// what (`code`) and a sentence for people (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub path: String,
    pub code: ValidationCode,
    pub message: String,
}

/// `path: message`, or the message alone for the whole input (an empty
/// path: a body that is not JSON, or too large).
impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            f.write_str(&self.path)?;
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

impl ValidationError {
    pub fn new(path: impl AsRef<str>, code: ValidationCode, message: impl Into<String>) -> Self {
        Self::build(path.as_ref(), code, message.into())
    }

    /// One copy of the construction, not one per argument type: the
    /// browser build has a hundred call sites.
    #[inline(never)]
    fn build(path: &str, code: ValidationCode, message: String) -> Self {
        Self {
            path: path.to_owned(),
            code,
            message,
        }
    }

    pub const fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

/// Every problem found in one input, in the order found. Validation never
/// stops at the first problem.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn push(&mut self, error: ValidationError) {
        self.0.push(error);
    }

    pub fn add(&mut self, path: impl AsRef<str>, code: ValidationCode, message: impl Into<String>) {
        self.push_new(path.as_ref(), code, message.into());
    }

    #[inline(never)]
    fn push_new(&mut self, path: &str, code: ValidationCode, message: String) {
        self.0.push(ValidationError::build(path, code, message));
    }

    /// Collects the error of `result`, if any, and hands back its value.
    pub fn collect<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.push(error);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &ValidationError> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was collected, else every collected error.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<ValidationError> for ValidationErrors {
    fn from(error: ValidationError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no validation errors"),
            [one] => write!(f, "{one}"),
            [first, rest @ ..] => write!(f, "{first} (and {} more)", rest.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_with_the_whole_input_is_its_message_alone() {
        let whole = ValidationError::new("", ValidationCode::InvalidJson, "the body is not JSON");
        assert_eq!(whole.to_string(), "the body is not JSON");
    }

    #[test]
    fn a_problem_with_one_field_is_prefixed_with_its_path() {
        let one = ValidationError::new("target", ValidationCode::InvalidId, "bad name");
        assert_eq!(one.to_string(), "target: bad name");
    }
}
