//! courier-wasm: courier-core for browsers. A binding layer only: each export
//! converts JS values to JSON, calls `courier_core::facade` (or the status
//! table), and converts the result back. No rule lives here, so a dashboard
//! validates with exactly the server's rules and messages. No I/O.
//!
//! Errors cross the boundary as values (`{valid, errors}`, `{ok, code, ...}`)
//! or, for arguments of the wrong kind, as a thrown `{code, message, errors}`
//! object; never as a panic. A panic hook prints any bug readably.

use courier_core::facade;
use courier_core::{ExecutionStatus, ValidationErrors, Validator};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** An execution status; the last five are terminal. */
export type ExecutionStatus = "QUEUED" | "SENT" | "IN_PROGRESS" | "SUCCEEDED" | "FAILED" | "REJECTED" | "TIMED_OUT" | "CANCELED";
/** Who asks for a status change. */
export type Actor = "device" | "operator" | "system";
export type ValueType = "S" | "B" | "I" | "L" | "D" | "BIN" | "UL";
/** A typed value in the AWS IoT commands wire format. */
export type TypedValue =
  | { S: string } | { B: boolean } | { I: number } | { L: number } | { D: number }
  | { BIN: string } | { UL: string };
export type Parameters = Record<string, TypedValue>;
export interface ParameterSpec {
  name: string;
  type: ValueType;
  required?: boolean;
  default?: TypedValue;
  description?: string;
  min?: number; max?: number;
  minLength?: number; maxLength?: number; pattern?: string; enum?: string[];
  maxBytes?: number;
  /** Secret or personal: left out of listings and logs. */
  sensitive?: boolean;
}
export interface CommandDefinition {
  commandId: string;
  description?: string;
  parameters?: ParameterSpec[];
  executionTimeoutSeconds?: number;
  retentionSeconds?: number;
  createdAt?: number;
}
/** One problem: where, a stable machine code, and a sentence. */
export interface ValidationError { path: string; code: string; message: string; }
export interface ValidationResult { valid: boolean; errors: ValidationError[]; parameters?: Parameters; }
export interface StatusReason { reasonCode: string; reasonDescription?: string; }
export interface CommandExecution {
  executionId: string; commandId: string; target: string; status: ExecutionStatus;
  statusReason?: StatusReason; statusDetails?: Record<string, string>;
  parameters: Parameters; result?: Parameters;
  /** In listings: sensitive parameters whose values were left out. */
  redactedParameters?: string[];
  executionTimeoutSeconds: number; retentionSeconds: number;
  createdAt: number; lastUpdatedAt: number; startedAt?: number; completedAt?: number;
  timeToLive: number; version: number; clientToken?: string;
  /** Set on a job's executions. */
  jobId?: string; executionNumber?: number;
}
export interface StatusUpdate {
  status: ExecutionStatus; statusReason?: StatusReason; statusDetails?: Record<string, string>;
  result?: Parameters; expectedVersion?: number; clientToken?: string;
}
/** The record the server would store, or the server's error code and details. */
export type StatusUpdateCheck =
  | { ok: true; execution: CommandExecution }
  | { ok: false; code: string; message: string; errors?: ValidationError[]; [detail: string]: unknown };
export type TypedValueCheck =
  | { ok: true; type: ValueType; value: TypedValue; display: string }
  | { ok: false; error: ValidationError };
/** The body of POST /commands/{commandId}/executions. */
export interface StartExecutionBody {
  target: string; parameters?: Record<string, unknown>;
  executionTimeoutSeconds?: number; timeToLive?: number; clientToken?: string;
}
/** Thrown for arguments of the wrong kind. */
export interface CourierError { code: "ValidationException"; message: string; errors: ValidationError[]; }
"#;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "CommandDefinition")]
    pub type JsCommandDefinition;
    #[wasm_bindgen(typescript_type = "Record<string, unknown>")]
    pub type JsParameters;
    #[wasm_bindgen(typescript_type = "ValidationResult")]
    pub type JsValidationResult;
    #[wasm_bindgen(typescript_type = "CommandExecution")]
    pub type JsExecution;
    #[wasm_bindgen(typescript_type = "StatusUpdate")]
    pub type JsStatusUpdate;
    #[wasm_bindgen(typescript_type = "StatusUpdateCheck")]
    pub type JsStatusUpdateCheck;
    #[wasm_bindgen(typescript_type = "TypedValueCheck")]
    pub type JsTypedValueCheck;
    #[wasm_bindgen(typescript_type = "ExecutionStatus[]")]
    pub type JsStatuses;
    #[wasm_bindgen(typescript_type = "StartExecutionBody")]
    pub type JsStartBody;
    #[wasm_bindgen(typescript_type = "TypedValue")]
    pub type JsTypedValue;
    #[wasm_bindgen(typescript_type = "unknown")]
    pub type JsUnknown;
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// courier-core's version: the rules this module applies.
#[wasm_bindgen(js_name = coreVersion)]
pub fn core_version() -> String {
    courier_core::VERSION.to_owned()
}

/// A command definition, checked and compiled once; validates any number of
/// parameter sets.
#[wasm_bindgen]
#[derive(Debug)]
pub struct CommandValidator {
    validator: Validator,
}

#[wasm_bindgen]
impl CommandValidator {
    /// Compiles `definition`; throws a `CourierError` listing every problem
    /// if the definition itself is invalid.
    #[wasm_bindgen(constructor)]
    pub fn new(definition: &JsCommandDefinition) -> Result<CommandValidator, JsValue> {
        let json = to_json(definition, "definition")?;
        facade::compile(&json)
            .map(|validator| Self { validator })
            .map_err(|report| thrown("the command definition is invalid", &report["errors"]))
    }

    /// Every problem with `parameters` (path, code, message), or the typed
    /// parameters with defaults filled in.
    pub fn validate(&self, parameters: &JsParameters) -> Result<JsValidationResult, JsValue> {
        let json = to_json(parameters, "parameters")?;
        Ok(to_js(&facade::validate_parameters(&self.validator, &json))?.unchecked_into())
    }

    /// Checks a whole `POST /commands/{id}/executions` body (target,
    /// parameters, executionTimeoutSeconds, timeToLive, clientToken) at `now`
    /// (epoch seconds), exactly as the API will.
    #[wasm_bindgen(js_name = validateStart)]
    pub fn validate_start(
        &self,
        body: &JsStartBody,
        now: f64,
    ) -> Result<JsValidationResult, JsValue> {
        let json = to_json(body, "body")?;
        Ok(to_js(&facade::validate_start(&self.validator, &json, now))?.unchecked_into())
    }

    /// The definition as compiled.
    #[wasm_bindgen(getter)]
    pub fn definition(&self) -> Result<JsCommandDefinition, JsValue> {
        Ok(to_js(&json!(self.validator.definition()))?.unchecked_into())
    }
}

/// Whether `actor` may move an execution from `from` to `to`.
#[wasm_bindgen(js_name = canTransition)]
pub fn can_transition(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] from: &str,
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] to: &str,
    #[wasm_bindgen(unchecked_param_type = "Actor")] actor: &str,
) -> Result<bool, JsValue> {
    let mut errors = ValidationErrors::new();
    let from = errors.collect(facade::parse_status(from, "from"));
    let to = errors.collect(facade::parse_status(to, "to"));
    let actor = errors.collect(facade::parse_actor(actor, "actor"));
    match (from, to, actor) {
        (Some(from), Some(to), Some(actor)) => Ok(from.can_transition(to, actor)),
        _ => Err(thrown("invalid arguments", &json!(errors))),
    }
}

/// The statuses `actor` may move an execution to from `status`.
#[wasm_bindgen(js_name = allowedTransitions)]
pub fn allowed_transitions(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] status: &str,
    #[wasm_bindgen(unchecked_param_type = "Actor")] actor: &str,
) -> Result<JsStatuses, JsValue> {
    let mut errors = ValidationErrors::new();
    let status = errors.collect(facade::parse_status(status, "status"));
    let actor = errors.collect(facade::parse_actor(actor, "actor"));
    match (status, actor) {
        (Some(status), Some(actor)) => {
            Ok(to_js(&json!(status.allowed_targets(actor)))?.unchecked_into())
        }
        _ => Err(thrown("invalid arguments", &json!(errors))),
    }
}

/// Whether `status` is terminal (nothing leaves it).
#[wasm_bindgen(js_name = isTerminal)]
pub fn is_terminal(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] status: &str,
) -> Result<bool, JsValue> {
    facade::parse_status(status, "status")
        .map(ExecutionStatus::is_terminal)
        .map_err(|e| thrown("invalid arguments", &json!([e])))
}

/// Applies `update` by `actor` at `now` (epoch seconds) to `execution`, as
/// the server would: the new record, or the server's error.
#[wasm_bindgen(js_name = checkStatusUpdate)]
pub fn check_status_update(
    execution: &JsExecution,
    update: &JsStatusUpdate,
    #[wasm_bindgen(unchecked_param_type = "Actor")] actor: &str,
    now: f64,
) -> Result<JsStatusUpdateCheck, JsValue> {
    let execution = to_json(execution, "execution")?;
    let update = to_json(update, "update")?;
    Ok(to_js(&facade::check_status_update(
        &execution, &update, actor, now,
    ))?
    .unchecked_into())
}

/// Parses a typed value (`{"I": 42}`), optionally requiring its type.
#[wasm_bindgen(js_name = parseTypedValue)]
pub fn parse_typed_value(
    value: &JsUnknown,
    #[wasm_bindgen(js_name = expectedType)] expected_type: Option<String>,
) -> Result<JsTypedValueCheck, JsValue> {
    let json = to_json(value, "value")?;
    Ok(to_js(&facade::parse_typed_value(&json, expected_type.as_deref()))?.unchecked_into())
}

/// A typed value as a person reads it ("42", "true", base64 for BIN); throws
/// a `CourierError` if it is not a typed value.
#[wasm_bindgen(js_name = formatTypedValue)]
pub fn format_typed_value(value: &JsTypedValue) -> Result<String, JsValue> {
    let report = facade::parse_typed_value(&to_json(value, "value")?, None);
    match report["display"].as_str() {
        Some(display) => Ok(display.to_owned()),
        None => Err(thrown("not a typed value", &json!([report["error"]]))),
    }
}

/// JS value -> JSON through the engine's JSON.stringify, so numbers and
/// strings reach core exactly as they would reach the HTTP API.
fn to_json(value: &JsValue, path: &str) -> Result<Value, JsValue> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| thrown("not serializable as JSON", &json!([{"path": path, "code": "InvalidJson", "message": format!("{path} cannot be written as JSON")}])))?;
    serde_json::from_str(&text).map_err(|e| {
        thrown(
            "not valid JSON",
            &json!([{"path": path, "code": "InvalidJson", "message": e.to_string()}]),
        )
    })
}

fn to_js(value: &Value) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(&value.to_string())
}

/// The value thrown for arguments of the wrong kind: `CourierError`.
fn thrown(message: &str, errors: &Value) -> JsValue {
    let body = json!({ "code": "ValidationException", "message": message, "errors": errors });
    js_sys::JSON::parse(&body.to_string()).unwrap_or_else(|_| JsValue::from_str(message))
}
