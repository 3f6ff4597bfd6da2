//! Every (from, to, actor) triple against the table as the README documents
//! it, written out here by hand so that a change to `status.rs` that is not
//! also a deliberate change to this table fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::transition::TransitionPlan;
use courier_core::*;

/// A JSON value in core's model, written as `serde_json::json!` writes one.
macro_rules! json {
    ($($t:tt)+) => {
        serde_json::from_value::<courier_core::json::Json>(serde_json::json!($($t)+))
            .expect("valid JSON")
    };
}

/// The README's table: the allowed (actor, from, to) triples of the shared
/// matrix in tests/vectors/transitions.json, which the WASM tests read too.
/// The table is the matrix with `force` (an operator's cancel of started
/// work needs it; core/tests/vectors.rs checks the entries without it).
fn documented_allowed() -> Vec<(String, String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/transitions.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["force"] == true && e["allowed"] == true)
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["from"].as_str().unwrap().to_owned(),
                e["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn execution(status: ExecutionStatus) -> CommandExecution {
    CommandExecution {
        execution_id: ExecutionId::parse("e-1").unwrap(),
        command_id: CommandId::parse("reboot").unwrap(),
        target: ThingName::parse("dev-1").unwrap(),
        status,
        status_reason: None,
        status_details: StatusDetails::new(),
        parameters: Parameters::new(),
        redacted_parameters: Vec::new(),
        result: Parameters::new(),
        execution_timeout_seconds: 4_000,
        retention_seconds: 3600,
        created_at: Timestamp::from_secs(1_000),
        last_updated_at: Timestamp::from_secs(1_000),
        started_at: None,
        completed_at: None,
        time_to_live: Timestamp::from_secs(10_000),
        version: 3,
        execution_number: 1,
        client_token: None,
        not_before: None,
        delivery_timeout_seconds: None,
        deliver_by: None,
        complete_by: Timestamp::from_secs(5_000),
        step_deadline: None,
        retry_policy: Default::default(),
        defer_count: 0,
        last_deferred_at: None,
        dedupe_key: None,
        supersedes: None,
        superseded_by: None,
        created_by: None,
        last_updated_by: None,
        changed_by: Default::default(),
        sent_at: None,
        acknowledged_at: None,
        job_id: None,
        run_id: None,
        run_operation: None,
        late_result: None,
        canceled_by: None,
        protocol: Default::default(),
        document_template: None,
    }
}

#[test]
fn every_pair_for_every_actor_matches_the_documented_table() {
    let allowed = documented_allowed();
    assert_eq!(allowed.len(), 22, "the table has 22 allowed moves");
    let mut checked = 0;
    for actor in Actor::ALL {
        for from in ExecutionStatus::ALL {
            for to in ExecutionStatus::ALL {
                let documented = allowed.contains(&(
                    actor.as_str().to_owned(),
                    from.as_str().to_owned(),
                    to.as_str().to_owned(),
                ));
                assert_eq!(
                    from.can_transition(to, actor),
                    documented,
                    "table says {actor} {from} -> {to} is {}",
                    if documented { "allowed" } else { "refused" }
                );
                // transition() agrees with the table, and explains refusals.
                let now = Timestamp::from_secs(2_000);
                let outcome = transition(&execution(from), StatusUpdate::to(to), actor, now);
                match (documented, outcome) {
                    (true, Ok(next)) => {
                        assert_eq!(next.status, to);
                        assert_eq!(next.version, 4);
                        assert_eq!(next.last_updated_at, now);
                    }
                    (false, Err(TransitionError::TerminalStateReached { status })) => {
                        assert!(from.is_terminal());
                        assert_eq!(status, from);
                    }
                    (
                        false,
                        Err(TransitionError::InvalidStateTransition {
                            from: got_from,
                            to: got_to,
                            actor: got_actor,
                            allowed,
                        }),
                    ) => {
                        // None: the actor may reach `to` from nowhere at all, which
                        // is known before the record is looked at.
                        assert!(
                            got_from.is_none() || (got_from == Some(from) && !from.is_terminal())
                        );
                        assert_eq!(
                            got_from.is_none(),
                            ExecutionStatus::allowed_sources(to, actor).is_empty()
                        );
                        assert_eq!((got_to, got_actor), (to, actor));
                        if got_from.is_some() {
                            assert_eq!(allowed, from.allowed_targets(actor));
                        }
                    }
                    (documented, outcome) => {
                        panic!("{actor} {from} -> {to}: documented {documented}, got {outcome:?}")
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 3 * 8 * 8);
}

#[test]
fn terminal_statuses_are_exactly_the_five() {
    let terminal: Vec<_> = ExecutionStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(ExecutionStatus::as_str)
        .collect();
    assert_eq!(
        terminal,
        ["SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"]
    );
    for status in ExecutionStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
        for actor in Actor::ALL {
            assert!(status.allowed_targets(actor).is_empty());
        }
    }
}

#[test]
fn starting_sets_started_at_once_and_ending_moves_ttl_to_completion_plus_retention() {
    // GIVEN a queued execution
    let queued = execution(ExecutionStatus::Queued);
    // WHEN the device starts it, reports progress, then succeeds
    let t1 = Timestamp::from_secs(2_000);
    let started = transition(
        &queued,
        StatusUpdate::to(ExecutionStatus::InProgress),
        Actor::Device,
        t1,
    )
    .unwrap();
    let t2 = Timestamp::from_secs(2_500);
    let progressed = transition(
        &started,
        StatusUpdate::to(ExecutionStatus::InProgress),
        Actor::Device,
        t2,
    )
    .unwrap();
    let t3 = Timestamp::from_secs(3_000);
    let done = transition(
        &progressed,
        StatusUpdate::to(ExecutionStatus::Succeeded),
        Actor::Device,
        t3,
    )
    .unwrap();
    // THEN startedAt is the first start, completedAt the end, TTL end + retention
    assert_eq!(progressed.started_at, Some(t1));
    assert_eq!(done.started_at, Some(t1));
    assert_eq!(done.completed_at, Some(t3));
    assert_eq!(done.time_to_live, t3.plus_secs(3600));
    assert_eq!(queued.time_to_live, progressed.time_to_live);
    assert_eq!(
        (started.version, progressed.version, done.version),
        (4, 5, 6)
    );
}

#[test]
fn stale_expected_version_is_a_version_mismatch() {
    let current = execution(ExecutionStatus::InProgress);
    let update = StatusUpdate {
        expected_version: Some(2),
        ..StatusUpdate::to(ExecutionStatus::Succeeded)
    };
    let err = transition(&current, update, Actor::Device, Timestamp::from_secs(5)).unwrap_err();
    assert_eq!(
        err,
        TransitionError::VersionMismatch {
            expected: 2,
            actual: 3
        }
    );
    assert_eq!(err.code().as_str(), "VersionMismatch");
}

#[test]
fn a_plan_for_another_device_is_refused_as_not_found() {
    let plan = TransitionPlan::new(
        StatusUpdate::default(),
        ExecutionStatus::Succeeded,
        Actor::Device,
        Timestamp::from_secs(5),
    )
    .unwrap()
    .for_target(ThingName::parse("someone-else").unwrap());
    assert_eq!(
        plan.apply(&execution(ExecutionStatus::Queued)),
        Err(TransitionError::TargetMismatch)
    );
}

#[test]
fn result_and_details_replace_reason_describes_latest_change() {
    let current = execution(ExecutionStatus::InProgress);
    let update = StatusUpdate::parse(&json!({
        "status": "FAILED",
        "statusReason": {"reasonCode": "DISK_FULL", "reasonDescription": "no space left"},
        "statusDetails": {"step": "write"},
        "result": {"freeBytes": {"L": 0}},
        "executionNumber": 1
    }))
    .unwrap();
    let next = transition(&current, update, Actor::Device, Timestamp::from_secs(9)).unwrap();
    assert_eq!(
        next.status_reason.as_ref().unwrap().reason_code,
        "DISK_FULL"
    );
    assert_eq!(next.status_details["step"], "write");
    assert_eq!(next.result["freeBytes"], TypedValue::L(0));
}

#[test]
fn device_update_parse_reports_every_problem() {
    let errors = StatusUpdate::parse(&json!({
        "status": "DONE",
        "statusReason": {"reasonCode": "lower case"},
        "statusDetails": {"k": 5},
        "result": {"x": {"UL": "-3"}},
        "expectedVersion": "seven",
        "clientToken": "has space"
    }))
    .unwrap_err();
    let codes: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.code())).collect();
    assert_eq!(
        codes,
        [
            ("status", "InvalidValue"),
            ("statusReason.reasonCode", "PatternMismatch"),
            ("statusDetails.k", "WrongType"),
            ("result.x", "InvalidUnsignedLong"),
            ("expectedVersion", "WrongType"),
            ("clientToken", "InvalidId"),
        ]
    );
}
