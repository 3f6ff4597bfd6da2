//! The shared parity corpus (`tests/vectors/*.json`), run through core. The
//! WASM module's Node tests (`wasm/tests/`) run the same files through the
//! compiled module; both must produce exactly `expected`.
//!
//! To record new expectations after a deliberate rule change:
//! `COURIER_BLESS_VECTORS=1 cargo test -p courier-core --test vectors`, then
//! review the diff of tests/vectors/ like code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::facade;
use courier_core::json::Json;
use courier_core::{Actor, ExecutionStatus};
use serde_json::{json, Value};
use std::path::PathBuf;

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(name)
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path(name)).unwrap()).unwrap()
}

fn blessing() -> bool {
    std::env::var_os("COURIER_BLESS_VECTORS").is_some()
}

/// Runs every case of `cases` and compares `actual` to its `expected` (or,
/// when blessing, records it). Returns the mismatches.
fn run_cases(file: &str, cases: &mut Value, run: impl Fn(&Value) -> Value) -> Vec<String> {
    let cases = cases
        .as_array_mut()
        .unwrap_or_else(|| panic!("{file}: cases must be an array"));
    assert!(!cases.is_empty(), "{file} has no cases");
    let mut mismatches = Vec::new();
    for case in cases.iter_mut() {
        let actual = run(case);
        if blessing() {
            case["expected"] = actual;
        } else if case["expected"] != actual {
            let label = case.get("name").unwrap_or(&case["input"]).to_string();
            mismatches.push(format!(
                "{file} {label}:\n  expected {}\n  actual   {actual}",
                case["expected"]
            ));
        }
    }
    mismatches
}

/// Writes the blessed file, or fails listing every mismatch.
fn finish(file: &str, doc: &Value, mismatches: &[String]) {
    if blessing() {
        std::fs::write(
            path(file),
            serde_json::to_string_pretty(doc).unwrap() + "\n",
        )
        .unwrap();
    }
    assert!(
        mismatches.is_empty(),
        "{} vectors differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// A vector's JSON in core's model.
fn core(value: &Value) -> Json {
    serde_json::from_value(value.clone()).expect("vector JSON")
}

/// Core's answer in the vector's model.
fn vector(value: Json) -> Value {
    serde_json::to_value(value).expect("answers serialize")
}

#[test]
fn validation_vectors() {
    let file = "validation.json";
    let mut doc = load(file);
    let mut mismatches = Vec::new();
    for suite in doc["suites"].as_array_mut().unwrap() {
        let validator =
            facade::compile(&core(&suite["definition"])).expect("suite definitions compile");
        mismatches.extend(run_cases(file, &mut suite["cases"], |case| {
            vector(facade::validate_parameters(
                &validator,
                &core(&case["parameters"]),
            ))
        }));
    }
    mismatches.extend(run_cases(
        file,
        &mut doc["definitionCases"],
        |case| match facade::compile(&core(&case["definition"])) {
            Ok(_) => json!({ "valid": true, "errors": [] }),
            Err(thrown) => json!({ "valid": false, "errors": vector(thrown)["errors"] }),
        },
    ));
    finish(file, &doc, &mismatches);
}

#[test]
fn status_update_vectors() {
    let file = "status_updates.json";
    let mut doc = load(file);
    let mismatches = run_cases(file, &mut doc["cases"], |case| {
        vector(facade::check_status_update(
            &core(&case["execution"]),
            &core(&case["update"]),
            case["actor"].as_str().unwrap(),
            case["now"].as_f64().unwrap(),
        ))
    });
    finish(file, &doc, &mismatches);
}

#[test]
fn typed_value_vectors() {
    let file = "typed_values.json";
    let mut doc = load(file);
    let mismatches = run_cases(file, &mut doc["cases"], |case| {
        vector(facade::parse_typed_value(
            &core(&case["input"]),
            case["type"].as_str(),
        ))
    });
    finish(file, &doc, &mismatches);
}

/// THE transition table as the API applies it: every (actor, from, to,
/// force) with whether the change is allowed. `force` is an operator's
/// cancel flag: without it, work a device has started cannot be canceled.
#[test]
fn transition_matrix() {
    let file = "transitions.json";
    let mut doc = load(file);
    let mut actual = Vec::new();
    for actor in Actor::ALL {
        for from in ExecutionStatus::ALL {
            for to in ExecutionStatus::ALL {
                for force in [false, true] {
                    let allowed =
                        facade::can_transition(from.as_str(), to.as_str(), actor.as_str(), force)
                            .expect("known names");
                    actual.push(json!({
                        "actor": actor.as_str(), "from": from.as_str(), "to": to.as_str(),
                        "force": force, "allowed": vector(allowed),
                    }));
                }
            }
        }
    }
    let terminal: Vec<&str> = ExecutionStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    let mismatches: Vec<String> = if blessing() {
        doc["matrix"] = json!(actual);
        doc["terminal"] = json!(terminal);
        Vec::new()
    } else {
        let mut m: Vec<String> = actual
            .iter()
            .zip(doc["matrix"].as_array().unwrap())
            .filter(|(a, e)| a != e)
            .map(|(a, e)| format!("expected {e}\n  actual   {a}"))
            .collect();
        if doc["matrix"].as_array().unwrap().len() != actual.len() {
            m.push(format!(
                "{} entries, not {}",
                doc["matrix"].as_array().unwrap().len(),
                actual.len()
            ));
        }
        if doc["terminal"] != json!(terminal) {
            m.push(format!("terminal: {} vs {terminal:?}", doc["terminal"]));
        }
        m
    };
    finish(file, &doc, &mismatches);
}

/// A value as the module returns it, or the error it throws.
fn outcome(result: Result<Json, Json>) -> Value {
    match result {
        Ok(value) => json!({ "returned": vector(value) }),
        Err(thrown) => json!({ "thrown": vector(thrown) }),
    }
}

fn text(case: &Value, i: usize) -> &str {
    case["args"][i].as_str().expect("a string argument")
}

/// Calls the facade function the module exports as `call`, with the
/// case's arguments: what `wasm/tests/vectors.test.mjs` does through the
/// module.
fn call(case: &Value) -> Value {
    let name = case["call"].as_str().unwrap();
    let arg = |i: usize| core(&case["args"][i]);
    let flag = |i: usize| case["args"][i].as_bool().unwrap_or(false);
    if let Some(method) = name.strip_prefix("CommandValidator.") {
        let validator = match facade::compile(&core(&case["definition"])) {
            Ok(v) => v,
            Err(thrown) => return json!({ "thrown": vector(thrown) }),
        };
        let now = || case["args"][1].as_f64().unwrap();
        return outcome(Ok(match method {
            "validate" => facade::validate_parameters(&validator, &arg(0)),
            "validateStart" => facade::validate_start(&validator, &arg(0), now()),
            "validateJob" => facade::validate_job(&validator, &arg(0), now()),
            "definition" => facade::definition(&validator),
            other => panic!("no method CommandValidator.{other}"),
        }));
    }
    outcome(match name {
        "cancelOptions" => facade::cancel_options(text(case, 0)),
        "jobCancelOptions" => facade::job_cancel_options(text(case, 0)),
        "isTerminal" => facade::is_terminal(text(case, 0)),
        "executionStatuses" => Ok(facade::execution_statuses()),
        "canTransition" => {
            facade::can_transition(text(case, 0), text(case, 1), text(case, 2), flag(3))
        }
        "allowedTransitions" => facade::allowed_transitions(text(case, 0), text(case, 1), flag(2)),
        "jobTargets" => Ok(facade::job_targets(text(case, 0))),
        "validatePipeline" => Ok(facade::validate_pipeline(&arg(0), &arg(1))),
        "validateRun" => facade::validate_run(&arg(0), &arg(1), case["args"][2].as_f64().unwrap()),
        "runOptions" => facade::run_options(text(case, 0)),
        "typedValueFromText" => Ok(facade::typed_value_from_text(text(case, 0), text(case, 1))),
        "formatTypedValue" => facade::format_typed_value(&arg(0)),
        "parseTypedValue" => Ok(facade::parse_typed_value(&arg(0), case["args"][1].as_str())),
        other => panic!("no exported function {other}"),
    })
}

/// Every exported function, by name (tests/vectors/calls.json).
#[test]
fn call_vectors() {
    let file = "calls.json";
    let mut doc = load(file);
    let mismatches = run_cases(file, &mut doc["cases"], call);
    finish(file, &doc, &mismatches);
}

/// Doubles as text (tests/vectors/numbers.json): Rust's formatting and
/// parsing against the text the browser's String(x) gives (the Node tests
/// check that side).
#[test]
fn number_vectors() {
    let file = "numbers.json";
    let mut doc = load(file);
    let mut mismatches = Vec::new();
    for case in doc["cases"].as_array_mut().unwrap() {
        let bits = u64::from_str_radix(case["bits"].as_str().unwrap(), 16).unwrap();
        let x = f64::from_bits(bits);
        let text = courier_core::json::number_text(x);
        if blessing() {
            case["text"] = json!(text);
            continue;
        }
        if case["text"] != json!(text) {
            mismatches.push(format!("{bits:016x}: expected {} got {text}", case["text"]));
        }
        let read = courier_core::json::parse_double(&text).map(f64::to_bits);
        if x != 0.0 && read != Some(bits) {
            mismatches.push(format!("{bits:016x}: {text} reads back as {read:x?}"));
        }
    }
    finish(file, &doc, &mismatches);
}
