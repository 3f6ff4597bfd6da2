//! The shared parity corpus (`tests/vectors/*.json`), run through core. The
//! WASM module's Node tests (`wasm/tests/`) run the same files through the
//! compiled module; both must produce exactly `expected`.
//!
//! To record new expectations after a deliberate rule change:
//! `COURIER_BLESS_VECTORS=1 cargo test -p courier-core --test vectors`, then
//! review the diff of tests/vectors/ like code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::facade;
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

#[test]
fn validation_vectors() {
    let file = "validation.json";
    let mut doc = load(file);
    let mut mismatches = Vec::new();
    for suite in doc["suites"].as_array_mut().unwrap() {
        let validator = facade::compile(&suite["definition"]).expect("suite definitions compile");
        mismatches.extend(run_cases(file, &mut suite["cases"], |case| {
            facade::validate_parameters(&validator, &case["parameters"])
        }));
    }
    mismatches.extend(run_cases(
        file,
        &mut doc["definitionCases"],
        |case| match facade::compile(&case["definition"]) {
            Ok(_) => json!({ "valid": true, "errors": [] }),
            Err(report) => report,
        },
    ));
    finish(file, &doc, &mismatches);
}

#[test]
fn status_update_vectors() {
    let file = "status_updates.json";
    let mut doc = load(file);
    let mismatches = run_cases(file, &mut doc["cases"], |case| {
        facade::check_status_update(
            &case["execution"],
            &case["update"],
            case["actor"].as_str().unwrap(),
            case["now"].as_f64().unwrap(),
        )
    });
    finish(file, &doc, &mismatches);
}

#[test]
fn typed_value_vectors() {
    let file = "typed_values.json";
    let mut doc = load(file);
    let mismatches = run_cases(file, &mut doc["cases"], |case| {
        facade::parse_typed_value(&case["input"], case["type"].as_str())
    });
    finish(file, &doc, &mismatches);
}

#[test]
fn transition_matrix_vector_is_complete_and_matches_core() {
    let doc = load("transitions.json");
    let matrix = doc["matrix"].as_array().unwrap();
    assert_eq!(matrix.len(), 3 * 8 * 8);
    for entry in matrix {
        let actor = Actor::parse(entry["actor"].as_str().unwrap()).unwrap();
        let from = ExecutionStatus::parse(entry["from"].as_str().unwrap()).unwrap();
        let to = ExecutionStatus::parse(entry["to"].as_str().unwrap()).unwrap();
        assert_eq!(
            from.can_transition(to, actor),
            entry["allowed"].as_bool().unwrap(),
            "{entry}"
        );
    }
    let terminal: Vec<&str> = ExecutionStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    assert_eq!(json!(terminal), doc["terminal"]);
}
