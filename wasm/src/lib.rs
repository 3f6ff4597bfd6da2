//! courier-wasm: courier-core for browsers. A binding layer only: each
//! export converts JavaScript values to core's JSON model by walking them
//! (no JSON text, no serde), calls `courier_core::facade`, and converts the
//! result back. No rule lives here, so a dashboard applies exactly the
//! server's rules and messages. No I/O.
//!
//! Arguments are read as the API would read `JSON.stringify` of them
//! (`courier_core::json::Number::from_js` classifies numbers the way the
//! server's JSON reader does). Errors cross the boundary as values
//! (`{valid, errors}`, `{ok, code, ...}`) or, for arguments of the wrong
//! kind, as the thrown `CourierError` core builds; a panic aborts (the
//! release build has no unwinding), and there is none on any input.

use courier_core::facade;
use courier_core::json::{Json, Number, Object};
use courier_core::Validator;
use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = include_str!("courier.d.ts");

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(typescript_type = "CommandDefinition")]
    pub type JsCommandDefinition;
    #[wasm_bindgen(typescript_type = "Record<string, unknown>")]
    pub type JsParameters;
    #[wasm_bindgen(typescript_type = "ValidationResult")]
    pub type JsValidationResult;
    #[wasm_bindgen(typescript_type = "TypedValueCheck")]
    pub type JsTypedValueCheck;
    #[wasm_bindgen(typescript_type = "ExecutionStatus[]")]
    pub type JsStatuses;
    #[wasm_bindgen(typescript_type = "StartExecutionBody")]
    pub type JsStartBody;
    #[wasm_bindgen(typescript_type = "CreateJobBody")]
    pub type JsJobBody;
    #[wasm_bindgen(typescript_type = "TypedValue")]
    pub type JsTypedValue;
    #[wasm_bindgen(typescript_type = "CancelOptions")]
    pub type JsCancelOptions;
    #[wasm_bindgen(typescript_type = "JobCancelOptions")]
    pub type JsJobCancelOptions;
    #[wasm_bindgen(typescript_type = "JobTargetsCheck")]
    pub type JsJobTargetsCheck;
    #[wasm_bindgen(typescript_type = "unknown")]
    pub type JsUnknown;
    #[wasm_bindgen(typescript_type = "CreatePipelineBody")]
    pub type JsPipelineBody;
    #[wasm_bindgen(typescript_type = "CommandDefinition[]")]
    pub type JsCommands;
    #[wasm_bindgen(typescript_type = "StartRunBody")]
    pub type JsRunBody;
    #[wasm_bindgen(typescript_type = "PipelineRef")]
    pub type JsPipeline;
    #[wasm_bindgen(typescript_type = "RunOptions")]
    pub type JsRunOptions;
    #[wasm_bindgen(typescript_type = "CheckResult")]
    pub type JsCheckResult;
}

#[wasm_bindgen]
extern "C" {
    /// JavaScript's `String(x)`: how a browser writes a number.
    #[wasm_bindgen(js_name = String)]
    fn js_string(x: f64) -> String;
    /// JavaScript's `Number(text)`: how a browser reads one.
    #[wasm_bindgen(js_name = Number)]
    fn js_number(text: &str) -> f64;
}

/// Runs when the module is instantiated, before any export: core writes
/// and reads doubles as the browser does (see
/// `courier_core::json::number_text`).
#[wasm_bindgen(start, js_name = __courierStart, skip_typescript)]
fn start() {
    #[cfg(target_arch = "wasm32")]
    courier_core::json::use_host_doubles(courier_core::json::HostDoubles {
        write: js_string,
        read: js_number,
    });
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
        facade::compile(&read(definition)?)
            .map(|validator| Self { validator })
            .map_err(|thrown| to_js(&thrown))
    }

    /// Every problem with `parameters` (path, code, message), or the typed
    /// parameters with defaults filled in.
    pub fn validate(&self, parameters: &JsParameters) -> Result<JsValidationResult, JsValue> {
        answer(facade::validate_parameters(
            &self.validator,
            &read(parameters)?,
        ))
    }

    /// Checks a whole `POST /commands/{id}/executions` body at `now` (epoch
    /// seconds), exactly as the API will.
    #[wasm_bindgen(js_name = validateStart)]
    pub fn validate_start(
        &self,
        body: &JsStartBody,
        now: f64,
    ) -> Result<JsValidationResult, JsValue> {
        answer(facade::validate_start(&self.validator, &read(body)?, now))
    }

    /// Checks a whole `POST /jobs` body for this command at `now` (epoch
    /// seconds), exactly as the API will.
    #[wasm_bindgen(js_name = validateJob)]
    pub fn validate_job(&self, body: &JsJobBody, now: f64) -> Result<JsValidationResult, JsValue> {
        answer(facade::validate_job(&self.validator, &read(body)?, now))
    }

    /// The JavaScript core generates for this definition: the body of
    /// `function (env)` returning a `validate` that gives exactly what
    /// [`Self::validate`] gives (`courier_core::codegen`). The package's
    /// entry evaluates it where the page allows `new Function`.
    #[wasm_bindgen(getter)]
    pub fn javascript(&self) -> String {
        courier_core::codegen::javascript(&self.validator)
    }

    /// Whether `value` matches parameter `index`'s pattern (what generated
    /// validators call for patterns too large to become an automaton).
    #[wasm_bindgen(js_name = matchPattern)]
    pub fn match_pattern(&self, index: usize, value: &str) -> bool {
        self.validator
            .pattern(index)
            .is_some_and(|p| p.is_match(value))
    }

    /// What is wrong with an artifact placeholder in `value`, or nothing
    /// (what generated validators call for strings holding one).
    #[wasm_bindgen(js_name = artifactProblem)]
    pub fn artifact_problem(&self, value: &str) -> Option<String> {
        courier_core::artifact::check(value)
            .err()
            .map(str::to_owned)
    }

    /// The definition as compiled.
    #[wasm_bindgen(getter)]
    pub fn definition(&self) -> JsCommandDefinition {
        to_js(&facade::definition(&self.validator)).unchecked_into()
    }
}

/// Whether `actor` may move an execution from `from` to `to`; an
/// operator's cancel of started work only with `force`.
#[wasm_bindgen(js_name = canTransition)]
pub fn can_transition(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] from: &str,
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] to: &str,
    #[wasm_bindgen(unchecked_param_type = "Actor")] actor: &str,
    force: Option<bool>,
) -> Result<bool, JsValue> {
    let allowed = facade::can_transition(from, to, actor, force.unwrap_or(false));
    Ok(allowed.map_err(|thrown| to_js(&thrown))?.as_bool() == Some(true))
}

/// The statuses `actor` may move an execution to from `status` (with
/// `force` for an operator's cancel of started work).
#[wasm_bindgen(js_name = allowedTransitions)]
pub fn allowed_transitions(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] status: &str,
    #[wasm_bindgen(unchecked_param_type = "Actor")] actor: &str,
    force: Option<bool>,
) -> Result<JsStatuses, JsValue> {
    answered(facade::allowed_transitions(
        status,
        actor,
        force.unwrap_or(false),
    ))
}

/// Whether an operator may cancel an execution in `status`, and whether
/// the cancel must send `"force": true`.
#[wasm_bindgen(js_name = cancelOptions)]
pub fn cancel_options(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] status: &str,
) -> Result<JsCancelOptions, JsValue> {
    answered(facade::cancel_options(status))
}

/// What canceling a job in `status` does: allowed, or already canceled.
#[wasm_bindgen(js_name = jobCancelOptions)]
pub fn job_cancel_options(
    #[wasm_bindgen(unchecked_param_type = "JobStatus")] status: &str,
) -> Result<JsJobCancelOptions, JsValue> {
    answered(facade::job_cancel_options(status))
}

/// A job's `targets` from what a person types: `dev-1, dev-2` or
/// `group:fleet`.
#[wasm_bindgen(js_name = jobTargets)]
pub fn job_targets(text: &str) -> Result<JsJobTargetsCheck, JsValue> {
    answer(facade::job_targets(text))
}

/// Checks a `POST /pipelines` body against the command definitions you
/// have (as `GET /commands` lists them), exactly as the API will.
#[wasm_bindgen(js_name = validatePipeline)]
pub fn validate_pipeline(
    body: &JsPipelineBody,
    commands: &JsCommands,
) -> Result<JsCheckResult, JsValue> {
    answer(facade::validate_pipeline(&read(body)?, &read(commands)?))
}

/// Checks a `POST /pipelines/{id}/runs` body for `pipeline` at `now`
/// (epoch seconds), exactly as the API will.
#[wasm_bindgen(js_name = validateRun)]
pub fn validate_run(
    body: &JsRunBody,
    pipeline: &JsPipeline,
    now: f64,
) -> Result<JsCheckResult, JsValue> {
    answered(facade::validate_run(&read(body)?, &read(pipeline)?, now))
}

/// What an operator may do with a run in `status` (cancel, resume).
#[wasm_bindgen(js_name = runOptions)]
pub fn run_options(
    #[wasm_bindgen(unchecked_param_type = "RunStatus")] status: &str,
) -> Result<JsRunOptions, JsValue> {
    answered(facade::run_options(status))
}

/// Whether `status` is terminal (nothing leaves it).
#[wasm_bindgen(js_name = isTerminal)]
pub fn is_terminal(
    #[wasm_bindgen(unchecked_param_type = "ExecutionStatus")] status: &str,
) -> Result<bool, JsValue> {
    let terminal = facade::is_terminal(status).map_err(|thrown| to_js(&thrown))?;
    Ok(terminal.as_bool() == Some(true))
}

/// Every execution status, in the table's order.
#[wasm_bindgen(js_name = executionStatuses)]
pub fn execution_statuses() -> JsStatuses {
    to_js(&facade::execution_statuses()).unchecked_into()
}

/// Parses a typed value (`{"I": 42}`), optionally requiring its type.
#[wasm_bindgen(js_name = parseTypedValue)]
pub fn parse_typed_value(
    value: &JsUnknown,
    #[wasm_bindgen(js_name = expectedType, unchecked_optional_param_type = "ValueType")]
    expected_type: Option<String>,
) -> Result<JsTypedValueCheck, JsValue> {
    answer(facade::parse_typed_value(
        &read(value)?,
        expected_type.as_deref(),
    ))
}

/// A typed value of type `type` from what a person typed into a form.
#[wasm_bindgen(js_name = typedValueFromText)]
pub fn typed_value_from_text(
    #[wasm_bindgen(js_name = type, unchecked_param_type = "ValueType")] value_type: &str,
    text: &str,
) -> Result<JsTypedValueCheck, JsValue> {
    answer(facade::typed_value_from_text(value_type, text))
}

/// A typed value as a person reads it ("42", "true", base64 for BIN); throws
/// a `CourierError` if it is not a typed value.
#[wasm_bindgen(js_name = formatTypedValue)]
pub fn format_typed_value(value: &JsTypedValue) -> Result<String, JsValue> {
    let display = facade::format_typed_value(&read(value)?).map_err(|thrown| to_js(&thrown))?;
    Ok(display.as_str().unwrap_or_default().to_owned())
}

/// A JavaScript value as the API reads `JSON.stringify` of it, or the
/// `CourierError` for one JSON cannot represent (see [`to_json`]).
fn read(value: &JsValue) -> Result<Json, JsValue> {
    to_json(value, 0).ok_or_else(|| to_js(&facade::unreadable("")))
}

/// `undefined` and functions are absent (`null` at the top or in an
/// array), numbers are classified as the server's JSON reader classifies
/// their text, NaN and infinities are `null`. `None` past
/// `facade::MAX_DEPTH` levels (where `JSON.stringify` of a value that
/// refers to itself would throw).
fn to_json(value: &JsValue, depth: usize) -> Option<Json> {
    if depth > facade::MAX_DEPTH {
        return None;
    }
    if let Some(b) = value.as_bool() {
        return Some(Json::Bool(b));
    }
    if let Some(x) = value.as_f64() {
        return Some(Number::from_js(x).map_or(Json::Null, Json::Number));
    }
    if let Some(s) = value.as_string() {
        return Some(Json::String(s));
    }
    if Array::is_array(value) {
        let items: &Array = value.unchecked_ref();
        let mut list = Vec::with_capacity(items.length() as usize);
        for item in items.iter() {
            list.push(to_json(&item, depth + 1)?);
        }
        return Some(Json::Array(list));
    }
    if value.is_object() {
        let mut map = Object::new();
        let object: &js_sys::Object = value.unchecked_ref();
        for key in js_sys::Object::keys(object).iter() {
            let item = Reflect::get(value, &key).unwrap_or(JsValue::UNDEFINED);
            if item.is_undefined() || item.is_function() {
                continue;
            }
            if let Some(key) = key.as_string() {
                map.insert(key, to_json(&item, depth + 1)?);
            }
        }
        return Some(Json::Object(map));
    }
    Some(Json::Null)
}

fn to_js(json: &Json) -> JsValue {
    match json {
        Json::Null => JsValue::NULL,
        Json::Bool(b) => JsValue::from_bool(*b),
        Json::Number(n) => JsValue::from_f64(n.as_f64()),
        Json::String(s) => JsValue::from_str(s),
        Json::Array(items) => items.iter().map(to_js).collect::<Array>().into(),
        Json::Object(map) => {
            let out = js_sys::Object::new();
            for (k, v) in map {
                let _ = Reflect::set(&out, &JsValue::from_str(k), &to_js(v));
            }
            out.into()
        }
    }
}

/// Core's answer as the declared TypeScript type.
fn answer<T: JsCast>(json: Json) -> Result<T, JsValue> {
    Ok(to_js(&json).unchecked_into())
}

/// Core's answer, or the `CourierError` it built, thrown.
fn answered<T: JsCast>(result: Result<Json, Json>) -> Result<T, JsValue> {
    result
        .map(|json| to_js(&json).unchecked_into())
        .map_err(|thrown| to_js(&thrown))
}
