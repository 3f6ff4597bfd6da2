//! The deadline model: scheduling, delivery, completion and step deadlines,
//! retries as new attempts, forced cancels, and what readers see.

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

const T0: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(T0 + secs)
}

fn validator() -> Validator {
    CommandDefinition::from_json(&json!({
        "commandId": "reboot",
        "executionTimeoutSeconds": 600,
        "retentionSeconds": 3600
    }))
    .unwrap()
    .validator()
    .unwrap()
}

fn start(body: Value) -> CommandExecution {
    let v = validator();
    StartExecution::parse(&body, &v, at(0))
        .unwrap()
        .into_execution(ExecutionId::parse("e-1").unwrap(), &v, "tester", at(0))
}

fn device(
    exec: &CommandExecution,
    update: Value,
    now: Timestamp,
) -> Result<CommandExecution, TransitionError> {
    let update = StatusUpdate::parse(&update).unwrap();
    let to = update.status.unwrap();
    TransitionPlan::new(update, to, Actor::Device, now)?
        .for_target(exec.target.clone())
        .apply(exec)
}

fn expired(exec: &CommandExecution, now: Timestamp) -> CommandExecution {
    TransitionPlan::expire(exec, now)
        .expect("a deadline has passed")
        .apply(exec)
        .unwrap()
}

fn reason(exec: &CommandExecution) -> &str {
    &exec.status_reason.as_ref().unwrap().reason_code
}

#[test]
fn deadlines_count_from_not_before_and_the_execution_is_held_until_then() {
    // GIVEN an execution scheduled 100 s ahead with a 30 s delivery timeout
    let exec =
        start(json!({"target": "dev-1", "notBefore": T0 + 100, "deliveryTimeoutSeconds": 30}));
    // THEN its deadlines start at notBefore
    assert_eq!(exec.not_before, Some(at(100)));
    assert_eq!(exec.deliver_by, Some(at(130)));
    assert_eq!(exec.complete_by, at(700));
    assert_eq!(
        exec.wake_at(),
        Some(at(100)),
        "the sweeper releases it at notBefore"
    );
    assert!(exec.is_held(at(99)) && !exec.is_held(at(100)));
    // AND while held, neither the device nor a dispatch may touch it
    assert!(matches!(
        device(&exec, json!({"status": "IN_PROGRESS"}), at(50)),
        Err(TransitionError::Held { .. })
    ));
    assert!(matches!(
        TransitionPlan::dispatch(1, at(50)).apply(&exec),
        Err(TransitionError::Held { .. })
    ));
    // BUT an operator may cancel it, and once due it is dispatched
    let cancel = TransitionPlan::cancel(StatusUpdate::default(), "ops@example.com", false, at(50));
    assert_eq!(
        cancel.apply(&exec).unwrap().canceled_by.as_deref(),
        Some("ops@example.com")
    );
    let sent = TransitionPlan::dispatch(1, at(100)).apply(&exec).unwrap();
    assert_eq!(sent.status, ExecutionStatus::Sent);
}

#[test]
fn an_untaken_execution_times_out_at_deliver_by() {
    let exec = start(json!({"target": "dev-1", "deliveryTimeoutSeconds": 30}));
    assert_eq!(exec.expiry(), Some((at(30), Deadline::DeliveryTimeout)));
    assert!(
        TransitionPlan::expire(&exec, at(29)).is_none(),
        "nothing fires early"
    );
    let timed_out = expired(&exec, at(30));
    assert_eq!(timed_out.status, ExecutionStatus::TimedOut);
    assert_eq!(reason(&timed_out), "DELIVERY_TIMEOUT");
    assert_eq!(timed_out.version, exec.version + 1);
    // Once taken, deliverBy no longer applies: completeBy does.
    let taken = device(&exec, json!({"status": "IN_PROGRESS"}), at(10)).unwrap();
    assert_eq!(taken.expiry(), Some((at(600), Deadline::ExecutionTimeout)));
}

#[test]
fn retry_requeues_as_a_new_attempt_until_attempts_run_out() {
    // GIVEN up to 2 attempts, each to be taken within 30 s
    let exec = start(
        json!({"target": "dev-1", "deliveryTimeoutSeconds": 30, "onTimeout": "RETRY", "maxAttempts": 2}),
    );
    let sent = TransitionPlan::dispatch(1, at(1)).apply(&exec).unwrap();
    // WHEN attempt 1 is not taken in time
    let second = expired(&sent, at(31));
    // THEN it is re-queued as attempt 2 with a fresh deliverBy
    assert_eq!(second.status, ExecutionStatus::Queued);
    assert_eq!(second.execution_number, 2);
    assert_eq!(second.deliver_by, Some(at(61)));
    assert_eq!(reason(&second), "DELIVERY_TIMEOUT");
    // AND a device still on attempt 1 is told it is gone
    assert!(matches!(
        device(
            &second,
            json!({"status": "SUCCEEDED", "executionNumber": 1}),
            at(40)
        ),
        Err(TransitionError::AttemptMismatch {
            expected: 1,
            actual: 2
        })
    ));
    // WHEN attempt 2 is taken, then goes silent past its step timer
    let started = device(
        &second,
        json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1, "executionNumber": 2}),
        at(40),
    )
    .unwrap();
    assert_eq!(started.step_deadline, Some(at(100)));
    let last = expired(&started, at(100));
    // THEN no attempt is left: TIMED_OUT by the step timer
    assert_eq!(last.status, ExecutionStatus::TimedOut);
    assert_eq!(reason(&last), "STEP_TIMEOUT");
    assert_eq!(last.execution_number, 2);
}

#[test]
fn the_step_timer_is_reset_by_updates_that_name_one_and_kept_by_others() {
    let exec = start(json!({"target": "dev-1"}));
    let a = device(
        &exec,
        json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 2}),
        at(10),
    )
    .unwrap();
    assert_eq!(a.step_deadline, Some(at(130)));
    let b = device(
        &a,
        json!({"status": "IN_PROGRESS", "statusDetails": {"p": "50"}}),
        at(60),
    )
    .unwrap();
    assert_eq!(b.step_deadline, Some(at(130)), "kept");
    let c = device(
        &b,
        json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1}),
        at(120),
    )
    .unwrap();
    assert_eq!(c.step_deadline, Some(at(180)), "reset");
    let done = device(&c, json!({"status": "SUCCEEDED"}), at(150)).unwrap();
    assert_eq!(done.step_deadline, None);
    assert_eq!(done.expiry(), None, "a terminal execution has no deadline");
    assert_eq!(done.wake_at(), None);
}

#[test]
fn complete_by_is_never_retried_and_wins_a_tie() {
    let exec = start(
        json!({"target": "dev-1", "executionTimeoutSeconds": 60, "deliveryTimeoutSeconds": 59, "onTimeout": "RETRY", "maxAttempts": 5}),
    );
    let taken = device(
        &exec,
        json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1}),
        at(0),
    )
    .unwrap();
    assert_eq!(taken.expiry(), Some((at(60), Deadline::ExecutionTimeout)));
    let out = expired(&taken, at(60));
    assert_eq!(out.status, ExecutionStatus::TimedOut);
    assert_eq!(reason(&out), "EXECUTION_TIMEOUT");
}

#[test]
fn past_a_deadline_a_device_update_is_refused_and_readers_see_the_timeout() {
    let exec = start(json!({"target": "dev-1", "executionTimeoutSeconds": 60}));
    assert!(matches!(
        device(&exec, json!({"status": "SUCCEEDED"}), at(61)),
        Err(TransitionError::DeadlinePassed {
            deadline: Deadline::ExecutionTimeout
        })
    ));
    let seen = exec.observed(at(61));
    assert_eq!(seen.status, ExecutionStatus::TimedOut);
    assert_eq!(
        seen.version, exec.version,
        "the view does not invent a version"
    );
    assert_eq!(exec.observed(at(59)), exec);
    // The late result is kept beside the timeout.
    let late = StatusUpdate::parse(&json!({"status": "SUCCEEDED", "result": {"ok": {"B": true}}}))
        .unwrap()
        .late_result(at(61))
        .unwrap();
    assert_eq!(late.status, ExecutionStatus::Succeeded);
    assert!(StatusUpdate::parse(&json!({"status": "IN_PROGRESS"}))
        .unwrap()
        .late_result(at(61))
        .is_none());
}

#[test]
fn cancelling_started_work_needs_force_and_records_who() {
    let exec = start(json!({"target": "dev-1"}));
    let started = device(&exec, json!({"status": "IN_PROGRESS"}), at(1)).unwrap();
    let plain = TransitionPlan::cancel(StatusUpdate::default(), "alice", false, at(2));
    let err = plain.apply(&started).unwrap_err();
    assert_eq!(err, TransitionError::ForceRequired);
    assert_eq!(err.code().as_str(), "InvalidStateTransition");
    let forced = TransitionPlan::cancel(StatusUpdate::default(), "alice", true, at(2))
        .apply(&started)
        .unwrap();
    assert_eq!(forced.status, ExecutionStatus::Canceled);
    assert_eq!(forced.canceled_by.as_deref(), Some("alice"));
    // Not started yet: no force needed.
    assert_eq!(
        plain.apply(&exec).unwrap().status,
        ExecutionStatus::Canceled
    );
}

#[test]
fn a_failed_publish_puts_the_execution_back_on_hold() {
    let exec = start(json!({"target": "dev-1"}));
    let sent = TransitionPlan::dispatch(1, at(1)).apply(&exec).unwrap();
    let back = TransitionPlan::undispatch(2, at(31), at(1))
        .apply(&sent)
        .unwrap();
    assert_eq!(back.status, ExecutionStatus::Queued);
    assert_eq!(back.not_before, Some(at(31)));
    assert_eq!(back.wake_at(), Some(at(31)));
    assert_eq!(reason(&back), "PUBLISH_FAILED");
}

#[test]
fn deadline_fields_are_validated_together() {
    let v = validator();
    let errors = StartExecution::parse(
        &json!({"target": "dev-1", "notBefore": T0 + 40 * 86_400, "deliveryTimeoutSeconds": 600, "maxAttempts": 3, "onTimeout": "LATER"}),
        &v,
        at(0),
    )
    .unwrap_err();
    let paths: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "notBefore",
            "deliveryTimeoutSeconds",
            "onTimeout",
            "maxAttempts"
        ]
    );
    let bad_step =
        StatusUpdate::parse(&json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 0}))
            .unwrap_err();
    assert_eq!(bad_step.0[0].path, "stepTimeoutInMinutes");
}
