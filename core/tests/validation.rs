//! Command definitions and parameter validation, black-box.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::json::Json as Value;
use courier_core::*;

/// A JSON value in core's model, written as `serde_json::json!` writes one.
macro_rules! json {
    ($($t:tt)+) => {
        serde_json::from_value::<courier_core::json::Json>(serde_json::json!($($t)+))
            .expect("valid JSON")
    };
}

fn definition(json: Value) -> CommandDefinition {
    CommandDefinition::from_json(&json).expect("definition parses")
}

fn set_config() -> Validator {
    definition(json!({
        "commandId": "set-config",
        "description": "Set the reporting configuration",
        "parameters": [
            {"name": "mode", "type": "S", "required": true, "enum": ["eco", "normal", "turbo"]},
            {"name": "label", "type": "S", "minLength": 2, "maxLength": 8, "pattern": "[a-z]+"},
            {"name": "rate", "type": "I", "min": 1, "max": 100, "default": {"I": 10}},
            {"name": "offset", "type": "L", "min": -9007199254740993i64},
            {"name": "gain", "type": "D", "min": 0.5, "max": 2},
            {"name": "blob", "type": "BIN", "maxBytes": 4},
            {"name": "serial", "type": "UL", "max": 18446744073709551615u64},
            {"name": "verbose", "type": "B"}
        ]
    }))
    .validator()
    .expect("definition is valid")
}

fn validate(params: Value) -> Result<Parameters, Vec<(String, &'static str)>> {
    let Value::Object(map) = params else {
        panic!("object expected")
    };
    set_config()
        .validate(&map)
        .map_err(|e| e.iter().map(|e| (e.path.clone(), e.code())).collect())
}

#[test]
fn valid_parameters_are_typed_and_defaults_filled() {
    let typed = validate(json!({
        "mode": {"S": "eco"},
        "label": {"S": "abc"},
        "gain": {"D": 1.5},
        "blob": {"BIN": "AAEC"},
        "serial": {"UL": "18446744073709551615"},
        "verbose": {"B": true}
    }))
    .unwrap();
    assert_eq!(typed["rate"], TypedValue::I(10));
    assert_eq!(typed["serial"], TypedValue::Ul(u64::MAX));
    assert_eq!(typed["blob"], TypedValue::Bin(vec![0, 1, 2]));
    assert!(!typed.contains_key("offset"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = validate(json!({
        "label": {"S": "ABCDEFGHIJ"},
        "rate": {"I": 101},
        "offset": {"L": -9007199254740994i64},
        "gain": {"S": "high"},
        "blob": {"BIN": "%%%"},
        "serial": {"UL": "-1"},
        "colour": {"S": "red"}
    }))
    .unwrap_err();
    let expected: Vec<(String, &str)> = vec![
        ("parameters.colour".into(), "UnknownParameter"),
        ("parameters.mode".into(), "MissingRequired"),
        ("parameters.label".into(), "TooLong"),
        ("parameters.label".into(), "PatternMismatch"),
        ("parameters.rate".into(), "OutOfRange"),
        ("parameters.offset".into(), "OutOfRange"),
        ("parameters.gain".into(), "WrongType"),
        ("parameters.blob".into(), "InvalidBase64"),
        ("parameters.serial".into(), "InvalidUnsignedLong"),
    ];
    let mut sorted_errors = errors.clone();
    sorted_errors.sort();
    let mut sorted_expected = expected.clone();
    sorted_expected.sort();
    assert_eq!(sorted_errors, sorted_expected, "got {errors:?}");
}

#[test]
fn enum_and_binary_size_and_short_strings() {
    let errors = validate(json!({
        "mode": {"S": "warp"},
        "label": {"S": "a"},
        "blob": {"BIN": "AAECAwQ="}
    }))
    .unwrap_err();
    assert_eq!(
        errors,
        vec![
            ("parameters.mode".to_string(), "NotInEnum"),
            ("parameters.label".to_string(), "TooShort"),
            ("parameters.blob".to_string(), "TooLong"),
        ]
    );
}

#[test]
fn payload_over_128_kib_is_refused() {
    let big = "x".repeat(128 * 1024);
    let errors = validate(json!({"mode": {"S": "eco"}, "label": {"S": big}})).unwrap_err();
    assert_eq!(errors, vec![("parameters".to_string(), "PayloadTooLarge")]);
}

#[test]
fn bad_definitions_report_every_problem() {
    let errors = definition(json!({
        "commandId": "bad",
        "executionTimeoutSeconds": 0,
        "parameters": [
            {"name": "a", "type": "S", "min": 1, "pattern": "("},
            {"name": "a", "type": "I", "min": 5, "max": 1, "maxBytes": 3},
            {"name": "b", "type": "I", "max": 3, "default": {"I": 4}},
            {"name": "c", "type": "B", "default": {"S": "yes"}}
        ]
    }))
    .validator()
    .unwrap_err();
    let got: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.code())).collect();
    assert_eq!(
        got,
        [
            ("executionTimeoutSeconds", "OutOfRange"),
            ("parameters[0].min", "InvalidDefinition"),
            ("parameters[0].pattern", "InvalidDefinition"),
            ("parameters[1].name", "InvalidDefinition"),
            ("parameters[1].maxBytes", "InvalidDefinition"),
            ("parameters[1].min", "InvalidDefinition"),
            ("parameters[2].default", "OutOfRange"),
            ("parameters[3].default", "WrongType"),
        ]
    );
}

#[test]
fn bad_ids_are_refused_when_a_definition_is_read() {
    let result: Result<CommandDefinition, _> =
        serde_json::from_value(serde_json::json!({"commandId": "no spaces"}));
    assert!(result.is_err());
    let errors = CommandDefinition::from_json(&json!({"commandId": "no spaces"})).unwrap_err();
    assert_eq!(errors.0[0].code(), "InvalidId");
}

#[test]
fn start_execution_reports_target_and_parameter_problems_together() {
    let validator = set_config();
    let now = Timestamp::from_secs(1_700_000_000);
    let errors = StartExecution::parse(
        &json!({"target": "bad/thing", "parameters": {"rate": {"I": 0}}, "executionTimeoutSeconds": 0, "extra": 1}),
        &validator,
        now,
    )
    .unwrap_err();
    let got: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.code())).collect();
    assert_eq!(
        got,
        [
            ("extra", "UnknownField"),
            ("target", "InvalidId"),
            ("parameters.mode", "MissingRequired"),
            ("parameters.rate", "OutOfRange"),
            ("executionTimeoutSeconds", "OutOfRange"),
        ]
    );
}

#[test]
fn a_new_execution_is_queued_at_version_one_with_ttl_after_its_deadline() {
    let validator = set_config();
    let now = Timestamp::from_secs(1_700_000_000);
    let start = StartExecution::parse(
        &json!({"target": "dev-1", "parameters": {"mode": {"S": "eco"}}}),
        &validator,
        now,
    )
    .unwrap();
    let exec = start.into_execution(ExecutionId::parse("e1").unwrap(), &validator, "tester", now);
    assert_eq!(exec.status, ExecutionStatus::Queued);
    assert_eq!(exec.version, 1);
    assert_eq!(exec.time_to_live, now.plus_secs(600 + 30 * 86_400));
    let json = serde_json::to_value(&exec).unwrap();
    for field in [
        "executionId",
        "commandId",
        "target",
        "status",
        "parameters",
        "executionTimeoutSeconds",
        "createdAt",
        "lastUpdatedAt",
        "timeToLive",
        "version",
    ] {
        assert!(json.get(field).is_some(), "{field} missing from {json}");
    }
}

#[test]
fn sensitive_parameters_are_validated_like_any_other_and_redacted_on_request() {
    // GIVEN a definition with a sensitive parameter
    let validator = definition(json!({
        "commandId": "join-wifi",
        "parameters": [
            {"name": "ssid", "type": "S", "required": true},
            {"name": "password", "type": "S", "required": true, "minLength": 8, "sensitive": true}
        ]
    }))
    .validator()
    .unwrap();
    // THEN it round-trips with the flag, and only where it is set
    let printed = serde_json::to_value(validator.definition()).unwrap();
    assert_eq!(
        printed["parameters"][1]["sensitive"],
        serde_json::json!(true)
    );
    assert!(printed["parameters"][0].get("sensitive").is_none());
    // AND its value is validated as usual
    let Value::Object(short) = json!({"ssid": {"S": "home"}, "password": {"S": "short"}}) else {
        unreachable!()
    };
    assert!(validator.validate(&short).is_err());
    // ... and no refusal repeats it
    let pin = definition(json!({"commandId": "unlock", "parameters": [
        {"name": "pin", "type": "I", "min": 1000, "max": 9999, "sensitive": true},
        {"name": "code", "type": "S", "pattern": "[0-9]{6}", "sensitive": true},
        {"name": "serial", "type": "UL", "sensitive": true}
    ]}))
    .validator()
    .unwrap();
    let Value::Object(bad) = json!({"pin": {"I": 31337}, "code": {"S": "s3cr3t-code"}, "serial": {"UL": "s3cr3t-serial"}})
    else {
        unreachable!()
    };
    let errors = pin.validate(&bad).unwrap_err();
    assert_eq!(errors.len(), 3);
    for e in errors.iter() {
        for secret in ["31337", "s3cr3t"] {
            assert!(!e.message.contains(secret), "{}: {}", e.path, e.message);
        }
    }
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    assert!(messages[0].contains("from 1000 to 9999"), "{messages:?}");
    // WHEN a listing redacts a valid set THEN the secret is gone and named
    let Value::Object(ok) = json!({"ssid": {"S": "home"}, "password": {"S": "hunter2hunter2"}})
    else {
        unreachable!()
    };
    let mut parameters = validator.validate(&ok).unwrap();
    let redacted = validator.redact(&mut parameters);
    assert_eq!(redacted, vec![ParameterName::parse("password").unwrap()]);
    assert_eq!(parameters.keys().collect::<Vec<_>>(), vec!["ssid"]);
}
