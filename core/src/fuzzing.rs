//! Entry points for the fuzz targets (`fuzz/`, `make fuzz`) and their
//! regression inputs (`core/tests/fuzz_regressions.rs`): each feeds arbitrary
//! bytes to the parsers and validators that take outside input, the way the
//! API and the device path do, and checks what must always hold. Any input
//! may be refused; none may panic. Pure, no I/O.

use crate::codec::ToJson;
use crate::json::Json;
use crate::protocol::{TopicRoot, DEFAULT_ROOT};
use crate::{
    facade, CommandDefinition, CreateJob, StartExecution, StatusUpdate, Timestamp, TypedValue,
    Validator,
};

const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

/// A definition with every kind of constraint, to validate inputs against.
fn validator() -> Validator {
    let definition = serde_json::json!({
        "commandId": "fuzz",
        "parameters": [
            {"name": "s", "type": "S", "minLength": 1, "maxLength": 16, "pattern": "[a-z0-9-]+"},
            {"name": "e", "type": "S", "enum": ["a", "b"], "sensitive": true},
            {"name": "i", "type": "I", "min": -5, "max": 500},
            {"name": "l", "type": "L", "default": {"L": 7}},
            {"name": "d", "type": "D", "min": 0.5},
            {"name": "u", "type": "UL", "max": 1000},
            {"name": "b", "type": "B"},
            {"name": "x", "type": "BIN", "maxBytes": 4}
        ]
    });
    let definition: Json = serde_json::from_value(definition).unwrap_or_default();
    match facade::compile(&definition) {
        Ok(v) => v,
        Err(e) => unreachable!("the fuzzing definition is valid: {e:?}"),
    }
}

/// The bytes as JSON, read as the API reads a request body.
fn json(bytes: &[u8]) -> Option<Json> {
    serde_json::from_slice(bytes).ok()
}

/// A command definition from the bytes: checked, then asked to validate a
/// parameter set built from the same bytes. A definition that checks out
/// must accept its own defaults and never panic on any parameters.
pub fn definition(bytes: &[u8]) {
    let Some(value) = json(bytes) else { return };
    let Ok(definition) = CommandDefinition::from_json(&value) else {
        return;
    };
    let Ok(validator) = definition.validator() else {
        return;
    };
    // Defaults alone (required parameters aside) are valid by construction.
    if validator
        .definition()
        .parameters
        .iter()
        .all(|p| !p.required)
    {
        let defaults = validator.validate(&crate::json::Object::new());
        assert!(defaults.is_ok(), "defaults refused: {defaults:?}");
    }
    if let Json::Object(map) = &value {
        let _ = validator.validate(map);
    }
    // A definition prints and reads back the same, through the codec and
    // through serde (the API's and the table's form).
    let printed = validator.definition().to_json();
    assert_eq!(
        CommandDefinition::from_json(&printed).ok().as_ref(),
        Some(validator.definition())
    );
    let through_serde = serde_json::to_value(validator.definition())
        .ok()
        .and_then(|p| serde_json::from_value::<CommandDefinition>(p).ok());
    assert_eq!(through_serde.as_ref(), Some(validator.definition()));
}

/// `POST /commands/{id}/executions` bodies. An accepted one holds only
/// valid, typed parameters and deadlines that follow each other.
pub fn start_execution(bytes: &[u8]) {
    let Some(body) = json(bytes) else { return };
    let validator = validator();
    if let Ok(start) = StartExecution::parse(&body, &validator, NOW) {
        let parameters = crate::codec::parameters_json(&start.parameters);
        let Json::Object(map) = parameters else {
            unreachable!("parameters print as an object")
        };
        assert!(
            validator.validate(&map).is_ok(),
            "accepted parameters re-validate"
        );
        let id = crate::ExecutionId::parse("00000000-0000-4000-8000-000000000000")
            .unwrap_or_else(|_| unreachable!());
        let execution = start.into_execution(id, &validator, "fuzz", NOW);
        assert!(execution.complete_by > execution.created_at);
        assert!(execution.time_to_live >= execution.complete_by);
        let _ = facade::validate_start(&validator, &body, 1_800_000_000.0);
    }
}

/// `POST /jobs` bodies.
pub fn create_job(bytes: &[u8]) {
    let Some(body) = json(bytes) else { return };
    if let Ok(job) = CreateJob::parse(&body, &validator(), NOW) {
        if let Some(end) = job.scheduling.end_time {
            assert!(end > NOW, "an accepted end time is in the future");
        }
    }
}

/// A device message: the first line is the MQTT topic, the rest the payload.
/// Topics are parsed under the default root; payloads as Jobs updates, then
/// applied to a sample execution by the device and by an operator.
pub fn device_message(bytes: &[u8]) {
    let (topic, payload) = match bytes.iter().position(|b| *b == b'\n') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    if let (Ok(root), Ok(topic)) = (TopicRoot::parse(DEFAULT_ROOT), std::str::from_utf8(topic)) {
        if let Ok(request) = root.parse_request(topic) {
            assert!(root.reply_topic(&request, true).starts_with(topic));
        }
    }
    let Some(update) = json(payload) else { return };
    let _ = StatusUpdate::parse(&update);
    let execution = serde_json::json!({
        "executionId": "00000000-0000-4000-8000-000000000000", "commandId": "fuzz",
        "target": "dev-1", "status": "IN_PROGRESS", "parameters": {},
        "executionTimeoutSeconds": 600, "completeBy": 1_800_000_600,
        "retentionSeconds": 3600, "createdAt": 1_800_000_000, "lastUpdatedAt": 1_800_000_000,
        "timeToLive": 1_800_004_200, "version": 3
    });
    let execution: Json = serde_json::from_value(execution).unwrap_or_default();
    for actor in ["device", "operator", "system"] {
        let out = facade::check_status_update(&execution, &update, actor, 1_800_000_100.0);
        if out["ok"] == Json::Bool(true) {
            assert!(
                out["execution"]["version"].as_u64() > Some(3),
                "a change moves the version"
            );
        }
    }
}

/// A commands device's CBOR response (`.../response/cbor`): read into the
/// JSON model and parsed as UpdateCommandExecution; whatever is read writes
/// back as CBOR that reads the same.
pub fn cbor_response(bytes: &[u8]) {
    let Ok(json) = crate::command_payload::json_from_cbor(bytes) else {
        return;
    };
    let _ = crate::commands::parse_update(&json);
    let again = crate::command_payload::cbor(&json);
    assert_eq!(
        crate::command_payload::json_from_cbor(&again).as_ref(),
        Ok(&json),
        "written CBOR reads back"
    );
}

/// Typed values (`{"I": 42}`), with and without an expected type: an
/// accepted value reads back the same after printing.
pub fn typed_value(bytes: &[u8]) {
    let Some(value) = json(bytes) else { return };
    for expected in [
        None,
        Some("S"),
        Some("I"),
        Some("L"),
        Some("D"),
        Some("UL"),
        Some("BIN"),
        Some("B"),
    ] {
        let out = facade::parse_typed_value(&value, expected);
        if out["ok"] == Json::Bool(true) {
            // Printing an accepted value and reading it back gives it again.
            let parsed = TypedValue::from_json_at(&value, "value").ok();
            let reprinted = parsed.as_ref().map(TypedValue::to_json);
            let reread = reprinted.and_then(|p| TypedValue::from_json_at(&p, "value").ok());
            assert!(parsed.is_some(), "{value:?}: accepted, then refused");
            assert_eq!(reread, parsed, "{value:?} round-trips");
        }
    }
}
