//! JSON in, JSON out: the operations a dashboard needs, with the exact result
//! shapes the WASM module returns and the shared test vectors
//! (`tests/vectors/`) expect. The WASM layer only converts JS values to JSON
//! and calls these, so browser and server apply one set of rules. Pure, no I/O.

use crate::error::{ValidationCode, ValidationError, ValidationErrors};
use crate::execution::CommandExecution;
use crate::schema::{CommandDefinition, Validator};
use crate::status::{Actor, ExecutionStatus};
use crate::text::quote;
use crate::time::Timestamp;
use crate::transition::transition;
use crate::update::StatusUpdate;
use crate::value::{TypedValue, ValueType};
use serde_json::{json, Value};

/// A definition compiled into a validator, or `{valid: false, errors}`.
pub fn compile(definition: &Value) -> Result<Validator, Value> {
    let parsed: CommandDefinition = serde_json::from_value(definition.clone()).map_err(|e| {
        invalid(
            ValidationError::new(
                "",
                ValidationCode::InvalidDefinition,
                format!("not a command definition: {e}"),
            )
            .into(),
        )
    })?;
    parsed.validator().map_err(invalid)
}

/// `{valid: true, errors: [], parameters}` with defaults filled in, or
/// `{valid: false, errors}` listing every problem.
pub fn validate_parameters(validator: &Validator, parameters: &Value) -> Value {
    let mut errors = ValidationErrors::new();
    let result = validator
        .validate_field(Some(parameters), &mut errors)
        .ok_or(errors);
    match result {
        Ok(typed) => json!({ "valid": true, "errors": [], "parameters": typed }),
        Err(errors) => invalid(errors),
    }
}

/// Checks a whole start-execution body (`target`, `parameters`,
/// `executionTimeoutSeconds`, `timeToLive`, `clientToken`) at `now` (epoch
/// seconds) exactly as `POST /commands/{id}/executions` will.
pub fn validate_start(validator: &Validator, body: &Value, now_secs: f64) -> Value {
    let Some(now) = Timestamp::from_secs_f64(now_secs) else {
        return invalid(
            ValidationError::new(
                "now",
                ValidationCode::OutOfRange,
                "now must be epoch seconds",
            )
            .into(),
        );
    };
    match crate::execution::StartExecution::parse(body, validator, now) {
        Ok(start) => json!({ "valid": true, "errors": [], "parameters": start.parameters }),
        Err(errors) => invalid(errors),
    }
}

/// Applies a status update by `actor` at `now` (epoch seconds) to an
/// execution: `{ok: true, execution}` with the record as the server would
/// store it, or `{ok: false, code, message, ...}` with the server's error.
pub fn check_status_update(execution: &Value, update: &Value, actor: &str, now_secs: f64) -> Value {
    let mut errors = ValidationErrors::new();
    let current = match serde_json::from_value::<CommandExecution>(execution.clone()) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.add(
                "execution",
                ValidationCode::InvalidValue,
                format!("not an execution record: {e}"),
            );
            None
        }
    };
    let actor = errors.collect(parse_actor(actor, "actor"));
    let now = Timestamp::from_secs_f64(now_secs);
    if now.is_none() {
        errors.add(
            "now",
            ValidationCode::OutOfRange,
            "now must be epoch seconds",
        );
    }
    let update = match StatusUpdate::parse(update) {
        Ok(u) => Some(u),
        Err(e) => {
            errors.0.extend(e.0);
            None
        }
    };
    let (Some(current), Some(actor), Some(now), Some(update)) = (current, actor, now, update)
    else {
        return failure(
            "ValidationException",
            "the update is not valid",
            json!({ "errors": errors }),
        );
    };
    match transition(&current, update, actor, now) {
        Ok(next) => json!({ "ok": true, "execution": next }),
        Err(error) => {
            let mut details = serde_json::to_value(&error).unwrap_or_else(|_| json!({}));
            if let Value::Object(map) = &mut details {
                map.remove("code");
            }
            failure(error.code().as_str(), &error.to_string(), details)
        }
    }
}

/// Parses one typed value (`{"I": 42}`), optionally requiring a type:
/// `{ok: true, type, value, display}` or `{ok: false, error}`.
pub fn parse_typed_value(json: &Value, expected: Option<&str>) -> Value {
    let parsed = match expected {
        None => TypedValue::from_json_at(json, "value"),
        Some(tag) => match ValueType::from_tag(tag) {
            None => Err(ValidationError::new(
                "type",
                ValidationCode::InvalidValue,
                format!("unknown type {}; use S, B, I, L, D, BIN or UL", quote(tag)),
            )),
            Some(t) => TypedValue::from_json_at(json, "value").and_then(|v| {
                if v.value_type() == t {
                    Ok(v)
                } else {
                    Err(ValidationError::new(
                        "value",
                        ValidationCode::WrongType,
                        format!("expected {}, got type {}", t.describe(), v.value_type()),
                    ))
                }
            }),
        },
    };
    match parsed {
        Ok(value) => {
            json!({ "ok": true, "type": value.value_type(), "value": value, "display": display(&value) })
        }
        Err(error) => json!({ "ok": false, "error": error }),
    }
}

/// A typed value as a person reads it (BIN as base64, UL as digits).
pub fn display(value: &TypedValue) -> String {
    match value {
        TypedValue::S(s) => s.clone(),
        TypedValue::B(b) => b.to_string(),
        TypedValue::I(i) => i.to_string(),
        TypedValue::L(l) => l.to_string(),
        TypedValue::D(d) => d.to_string(),
        TypedValue::Ul(u) => u.to_string(),
        TypedValue::Bin(_) => value
            .to_json()
            .get("BIN")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Parses a status name as the API spells it.
pub fn parse_status(raw: &str, path: &str) -> Result<ExecutionStatus, ValidationError> {
    ExecutionStatus::parse(raw).ok_or_else(|| {
        let all: Vec<&str> = ExecutionStatus::ALL.iter().map(|s| s.as_str()).collect();
        ValidationError::new(
            path,
            ValidationCode::InvalidValue,
            format!(
                "{} is not a status; use one of {}",
                quote(raw),
                all.join(", ")
            ),
        )
    })
}

/// Parses an actor name: device, operator or system.
pub fn parse_actor(raw: &str, path: &str) -> Result<Actor, ValidationError> {
    Actor::parse(raw).ok_or_else(|| {
        ValidationError::new(
            path,
            ValidationCode::InvalidValue,
            format!(
                "{} is not an actor; use device, operator or system",
                quote(raw)
            ),
        )
    })
}

fn invalid(errors: ValidationErrors) -> Value {
    json!({ "valid": false, "errors": errors })
}

fn failure(code: &str, message: &str, details: Value) -> Value {
    let mut out = json!({ "ok": false, "code": code, "message": message });
    if let (Value::Object(out_map), Value::Object(details)) = (&mut out, details) {
        out_map.extend(details);
    }
    out
}
