//! STATUS CHANGE REQUESTS, parsed: what a device sends (AWS IoT Jobs'
//! UpdateJobExecution and StartNextPendingJobExecution bodies) and what an
//! operator sends to cancel an execution or a job. Every problem is
//! reported at once. Pure, no I/O; `transition` plans and applies them.

use crate::deadline::LateResult;
use crate::error::{ValidationCode, ValidationErrors};
use crate::execution::optional_u32;
use crate::ids::{optional_client_token, ClientToken};
use crate::json::{Json, Object};
use crate::map::StatusDetails;
use crate::reason::StatusReason;
use crate::schema::{parse_typed_map, Parameters};
use crate::status::ExecutionStatus;
use crate::text::{json_kind, quote, shown};
use crate::time::Timestamp;

pub const MAX_STATUS_DETAILS: usize = 64;

/// A requested status change (a device's UpdateJobExecution, an operator's
/// cancel, the system's timeout).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatusUpdate {
    pub status: Option<ExecutionStatus>,
    pub status_reason: Option<StatusReason>,
    /// `None` keeps the current details; `Some` replaces them.
    pub status_details: Option<StatusDetails>,
    /// `None` keeps the current result; `Some` replaces it.
    pub result: Option<Parameters>,
    pub expected_version: Option<u64>,
    pub client_token: Option<ClientToken>,
    /// The device's step timer for this IN_PROGRESS update.
    pub step_timeout_in_minutes: Option<u32>,
    /// The attempt the device believes it is updating.
    pub execution_number: Option<u32>,
}

/// AWS IoT Jobs' range for `stepTimeoutInMinutes`.
pub const STEP_TIMEOUT_MINUTES_RANGE: (u32, u32) = (1, 10_080);

impl StatusUpdate {
    pub fn to(status: ExecutionStatus) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// The late result this update carries, received at `now`, if it
    /// reports an outcome (kept when the execution has already timed out).
    pub fn late_result(&self, now: Timestamp) -> Option<LateResult> {
        let status = self.status.filter(|s| s.is_terminal())?;
        Some(LateResult {
            status,
            status_reason: self.status_reason.clone(),
            status_details: self.status_details.clone().unwrap_or_default(),
            result: self.result.clone().unwrap_or_default(),
            received_at: now,
        })
    }

    /// Parses an update as a device sends it (field names of AWS IoT Jobs'
    /// UpdateJobExecution where they overlap). Fields that only shape the
    /// reply (`includeJobDocument`, ...) are ignored here, as an IoT rule's
    /// `SELECT *` passes everything through.
    pub fn parse(body: &Json) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Json::Object(map) = body else {
            errors.add(
                "",
                ValidationCode::InvalidJson,
                crate::text::msg!["an update must be a JSON object, got ", json_kind(body)],
            );
            return Err(errors);
        };
        let status = required_status(
            map.get("status"),
            ExecutionStatus::parse,
            "IN_PROGRESS, SUCCEEDED, FAILED, REJECTED",
            &mut errors,
        );
        let status_reason =
            StatusReason::optional(map.get("statusReason"), "statusReason", &mut errors);
        let status_details = match map.get("statusDetails") {
            None | Some(Json::Null) => None,
            Some(json) => parse_status_details(json, &mut errors),
        };
        let result = match map.get("result") {
            None | Some(Json::Null) => None,
            Some(json) => match parse_typed_map(json, "result") {
                Ok(r) => Some(r),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        let expected_version = match map.get("expectedVersion") {
            None | Some(Json::Null) => None,
            Some(v) => match version_number(v) {
                Some(n) => Some(n),
                None => {
                    errors.add(
                        "expectedVersion",
                        ValidationCode::WrongType,
                        crate::text::msg!["expected a whole number, got ", shown(v)],
                    );
                    None
                }
            },
        };
        let client_token = optional_client_token(map, &mut errors);
        let step_timeout_in_minutes = optional_u32(
            map,
            "stepTimeoutInMinutes",
            STEP_TIMEOUT_MINUTES_RANGE,
            &mut errors,
        );
        let execution_number = optional_u32(map, "executionNumber", (1, u32::MAX), &mut errors);
        errors.into_result(Self {
            status,
            status_reason,
            status_details,
            result,
            expected_version,
            client_token,
            step_timeout_in_minutes,
            execution_number,
        })
    }
}

/// An `expectedVersion`: a whole number, or its decimal digits as a string.
/// AWS's embedded C Jobs library (`Jobs_UpdateMsg`, the FreeRTOS Jobs
/// library) writes `"expectedVersion":"3"`, and AWS IoT Jobs accepts it, so
/// Courier does too.
fn version_number(value: &Json) -> Option<u64> {
    match value {
        Json::String(digits)
            if !digits.is_empty()
                && digits.len() <= 20
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            digits.parse().ok()
        }
        other => other.as_u64(),
    }
}

/// A device update's required `status`, read with `parse` (each protocol
/// accepts its own statuses; `choices` lists them in the message).
pub(crate) fn required_status(
    json: Option<&Json>,
    parse: impl Fn(&str) -> Option<ExecutionStatus>,
    choices: &str,
    errors: &mut ValidationErrors,
) -> Option<ExecutionStatus> {
    match json {
        Some(Json::String(s)) => {
            let status = parse(s);
            if status.is_none() {
                errors.add(
                    "status",
                    ValidationCode::InvalidValue,
                    crate::text::msg![quote(s), " is not a status; use one of ", choices],
                );
            }
            status
        }
        Some(other) => {
            errors.add(
                "status",
                ValidationCode::WrongType,
                crate::text::msg!["expected a string, got ", json_kind(other)],
            );
            None
        }
        None => {
            errors.add(
                "status",
                ValidationCode::MissingRequired,
                "status is required",
            );
            None
        }
    }
}

/// A control character a `statusDetails` value may not hold. AWS documents
/// the values as `[^\p{C}]+`, but the AWS IoT Device Client reports a job's
/// output in them (`stdout`, `stderr`: the last 1,024 characters, lines and
/// all) and AWS IoT Jobs takes it, so tabs and line breaks are allowed.
fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

fn parse_status_details(json: &Json, errors: &mut ValidationErrors) -> Option<StatusDetails> {
    let Json::Object(map) = json else {
        errors.add(
            "statusDetails",
            ValidationCode::WrongType,
            crate::text::msg!["expected an object of strings, got ", json_kind(json)],
        );
        return None;
    };
    if map.len() > MAX_STATUS_DETAILS {
        errors.add(
            "statusDetails",
            ValidationCode::TooLong,
            crate::text::msg!["at most ", MAX_STATUS_DETAILS, " entries, got ", map.len()],
        );
    }
    let mut details = StatusDetails::new();
    for (key, value) in map {
        let path = crate::text::msg!["statusDetails.", key];
        let key_ok = !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
        if !key_ok {
            errors.add(
                &path,
                ValidationCode::InvalidValue,
                "keys are 1 to 128 of letters, digits, ':', '_' and '-'",
            );
        }
        match value {
            Json::String(s)
                if !s.is_empty()
                    && s.chars().count() <= 1024
                    && !s.chars().any(is_refused_control) =>
            {
                details.insert(key.clone(), s.clone());
            }
            Json::String(_) => errors.add(
                &path,
                ValidationCode::InvalidValue,
                "values are 1 to 1024 characters, no control characters but tabs and line breaks",
            ),
            other => errors.add(
                &path,
                ValidationCode::WrongType,
                crate::text::msg!["expected a string, got ", json_kind(other)],
            ),
        }
    }
    Some(details)
}

/// A StartNextPendingJobExecution body: optional `statusDetails`,
/// `stepTimeoutInMinutes` and `clientToken`; as an update to IN_PROGRESS.
/// Other fields are ignored, as AWS ignores them.
pub fn parse_start_next(body: &Json) -> Result<StatusUpdate, ValidationErrors> {
    let mut map = match body {
        Json::Null => Object::new(),
        Json::Object(map) => map.clone(),
        other => {
            return Err(crate::error::ValidationError::new(
                "",
                ValidationCode::InvalidJson,
                crate::text::msg!["the body must be a JSON object, got ", json_kind(other)],
            )
            .into())
        }
    };
    map.retain(|key, _| {
        matches!(
            key.as_str(),
            "statusDetails" | "clientToken" | "stepTimeoutInMinutes"
        )
    });
    map.insert(
        "status".into(),
        Json::from(ExecutionStatus::InProgress.as_str()),
    );
    StatusUpdate::parse(&Json::Object(map))
}

/// The part every cancel body shares (an execution's, a job's): a JSON
/// object (or nothing) with only `allowed` fields and an optional boolean
/// `force`. Returns the fields and `force`; problems go to `errors`.
fn cancel_fields(
    body: &Json,
    allowed: &[&str],
    errors: &mut ValidationErrors,
) -> Option<(Object, bool)> {
    let map = match body {
        Json::Null => Object::new(),
        Json::Object(map) => map.clone(),
        other => {
            errors.add(
                "",
                ValidationCode::InvalidJson,
                crate::text::msg!["the body must be a JSON object, got ", json_kind(other)],
            );
            return None;
        }
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.add(
                key.as_str(),
                ValidationCode::UnknownField,
                crate::text::msg!["cancel takes ", allowed.join(", ")],
            );
        }
    }
    let force = match map.get("force") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            errors.add(
                "force",
                ValidationCode::WrongType,
                crate::text::msg!["expected true or false, got ", json_kind(other)],
            );
            false
        }
    };
    Some((map, force))
}

/// An operator's cancel of an execution, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelExecution {
    /// To CANCELED, with the operator's `statusReason` (default
    /// `CANCELED_BY_OPERATOR`), `expectedVersion` and `clientToken`.
    pub update: StatusUpdate,
    /// Stop work the device has started (IN_PROGRESS).
    pub force: bool,
}

impl CancelExecution {
    /// `POST /executions/{id}/cancel` `{expectedVersion?, statusReason?,
    /// clientToken?, force?}` (or no body).
    pub fn parse(body: &Json) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let fields = cancel_fields(
            body,
            &["expectedVersion", "statusReason", "clientToken", "force"],
            &mut errors,
        );
        let Some((mut map, force)) = fields else {
            return Err(errors);
        };
        map.remove("force");
        map.insert(
            "status".into(),
            Json::from(ExecutionStatus::Canceled.as_str()),
        );
        let mut update = match StatusUpdate::parse(&Json::Object(map)) {
            Ok(update) => update,
            Err(e) => {
                errors.0.extend(e.0);
                return Err(errors);
            }
        };
        if update.status_reason.is_none() {
            update.status_reason = Some(StatusReason {
                reason_code: "CANCELED_BY_OPERATOR".into(),
                reason_description: None,
            });
        }
        errors.into_result(Self { update, force })
    }
}

/// An operator's cancel of a job, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelJob {
    /// Also cancel executions the devices have started.
    pub force: bool,
    /// `reasonCode` (default `CANCELED_BY_OPERATOR`) and `comment`.
    pub reason: StatusReason,
}

impl CancelJob {
    /// `POST /jobs/{id}/cancel` `{force?, reasonCode?, comment?}` (or no body).
    pub fn parse(body: &Json) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Some((map, force)) =
            cancel_fields(body, &["force", "reasonCode", "comment"], &mut errors)
        else {
            return Err(errors);
        };
        let mut reason = Object::new();
        let code = map.get("reasonCode").cloned();
        reason.insert(
            "reasonCode".into(),
            code.unwrap_or_else(|| Json::from("CANCELED_BY_OPERATOR")),
        );
        if let Some(comment) = map.get("comment") {
            reason.insert("reasonDescription".into(), comment.clone());
        }
        let reason = Json::Object(reason);
        match StatusReason::parse_at(&reason, "reasonCode") {
            Ok(reason) => errors.into_result(Self { force, reason }),
            Err(e) => {
                errors.0.extend(e.0);
                Err(errors)
            }
        }
    }
}
