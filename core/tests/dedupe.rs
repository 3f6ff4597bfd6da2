//! Dedupe and supersede rules: what a keyed start request does given the
//! execution pending under its key, and how such a request is parsed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::dedupe::{decide, Dedupe, SUPERSEDED};
use courier_core::json::Json as Value;
use courier_core::*;

macro_rules! json {
    ($($t:tt)+) => {
        serde_json::from_value::<courier_core::json::Json>(serde_json::json!($($t)+))
            .expect("valid JSON")
    };
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + secs)
}

fn validator(extra: Value) -> Validator {
    let mut definition = json!({"commandId": "lock", "parameters": [
        {"name": "pin", "type": "S", "default": {"S": "0000"}}]});
    if let (Value::Object(d), Value::Object(e)) = (&mut definition, extra) {
        d.extend(e);
    }
    CommandDefinition::from_json(&definition)
        .unwrap()
        .validator()
        .unwrap()
}

fn parse(v: &Validator, body: Value) -> Result<StartExecution, ValidationErrors> {
    StartExecution::parse(&body, v, at(0))
}

fn execution(v: &Validator, id: &str, body: Value) -> CommandExecution {
    parse(v, body)
        .unwrap()
        .into_execution(ExecutionId::parse(id).unwrap(), v, "alice", at(0))
}

fn codes(err: ValidationErrors) -> Vec<(String, &'static str)> {
    err.0
        .iter()
        .map(|e| (e.path.clone(), e.code.as_str()))
        .collect()
}

#[test]
fn the_same_parameters_return_the_pending_execution() {
    let v = validator(json!({}));
    let pending = execution(&v, "e-1", json!({"target": "t", "dedupeKey": "lock"}));
    let again = execution(&v, "e-2", json!({"target": "t", "dedupeKey": "lock"}));
    assert_eq!(
        decide(&pending, &again, false, false),
        Dedupe::ReturnPending
    );
}

#[test]
fn other_parameters_conflict_unless_superseding() {
    let v = validator(json!({}));
    let pending = execution(&v, "e-1", json!({"target": "t", "dedupeKey": "lock"}));
    let other = execution(
        &v,
        "e-2",
        json!({"target": "t", "dedupeKey": "lock", "parameters": {"pin": {"S": "1"}}}),
    );
    assert!(
        matches!(decide(&pending, &other, false, false), Dedupe::Conflict(why) if why.contains("e-1"))
    );
    assert_eq!(decide(&pending, &other, true, false), Dedupe::Supersede);
}

#[test]
fn started_work_is_superseded_only_with_force() {
    let v = validator(json!({}));
    let mut pending = execution(&v, "e-1", json!({"target": "t", "dedupeKey": "lock"}));
    pending.status = ExecutionStatus::InProgress;
    let other = execution(
        &v,
        "e-2",
        json!({"target": "t", "dedupeKey": "lock", "parameters": {"pin": {"S": "1"}}}),
    );
    assert!(matches!(
        decide(&pending, &other, true, false),
        Dedupe::Conflict(_)
    ));
    assert_eq!(decide(&pending, &other, true, true), Dedupe::Supersede);
}

#[test]
fn a_superseded_execution_is_canceled_naming_its_successor() {
    let v = validator(json!({}));
    let pending = execution(&v, "e-1", json!({"target": "t", "dedupeKey": "lock"}));
    let successor = ExecutionId::parse("e-2").unwrap();
    let plan = TransitionPlan::supersede(&pending, &successor, "bob", false, at(5));
    let canceled = plan.apply(&pending).unwrap();
    assert_eq!(canceled.status, ExecutionStatus::Canceled);
    assert_eq!(canceled.status_reason.unwrap().reason_code, SUPERSEDED);
    assert_eq!(canceled.superseded_by, Some(successor));
    assert_eq!(canceled.canceled_by.as_deref(), Some("bob"));
}

#[test]
fn a_command_can_make_its_keyed_requests_supersede() {
    let v = validator(json!({"supersede": true}));
    let start = parse(&v, json!({"target": "t", "dedupeKey": "lock"})).unwrap();
    assert!(start.supersede);
    let start = parse(
        &v,
        json!({"target": "t", "dedupeKey": "lock", "supersede": false}),
    )
    .unwrap();
    assert!(!start.supersede, "the request's own word wins");
}

#[test]
fn supersede_without_a_key_is_refused() {
    let err = parse(
        &validator(json!({})),
        json!({"target": "t", "supersede": true}),
    )
    .unwrap_err();
    assert_eq!(codes(err), [("supersede".to_owned(), "InvalidValue")]);
}

#[test]
fn force_without_supersede_is_refused() {
    let err = parse(
        &validator(json!({})),
        json!({"target": "t", "dedupeKey": "k", "force": true}),
    )
    .unwrap_err();
    assert_eq!(codes(err), [("force".to_owned(), "InvalidValue")]);
}

#[test]
fn a_malformed_dedupe_key_is_refused() {
    let err = parse(
        &validator(json!({})),
        json!({"target": "t", "dedupeKey": "a b"}),
    )
    .unwrap_err();
    assert_eq!(codes(err), [("dedupeKey".to_owned(), "InvalidId")]);
}
