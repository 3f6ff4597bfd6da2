//! The retry policy and deferrals: which outcomes are retried, how long
//! each retry waits (fixed, exponential, jittered; times passed in, never
//! slept), a device's "not now", and the older spellings mapped onto the
//! one policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::json::Json as Value;
use courier_core::retry::{Backoff, BackoffStrategy, RetryPolicy, DEFAULT_DEFER_SECONDS};
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

fn validator(definition: Value) -> Validator {
    CommandDefinition::from_json(&definition)
        .unwrap()
        .validator()
        .unwrap()
}

fn reboot() -> Validator {
    validator(json!({"commandId": "reboot", "executionTimeoutSeconds": 3600}))
}

fn start_with(v: &Validator, body: Value) -> CommandExecution {
    StartExecution::parse(&body, v, at(0))
        .unwrap()
        .into_execution(ExecutionId::parse("e-1").unwrap(), v, "alice", at(0))
}

fn start(body: Value) -> CommandExecution {
    start_with(&reboot(), body)
}

fn in_progress(mut e: CommandExecution) -> CommandExecution {
    e.status = ExecutionStatus::InProgress;
    e
}

fn report(body: Value) -> StatusUpdate {
    StatusUpdate::parse(&body).unwrap()
}

fn requeued(e: &CommandExecution, body: Value, now: Timestamp) -> Option<CommandExecution> {
    TransitionPlan::requeue(e, &report(body), now).map(|plan| plan.apply(e).unwrap())
}

fn start_errors(body: Value) -> Vec<(String, String)> {
    let err = StartExecution::parse(&body, &reboot(), at(0)).unwrap_err();
    err.0
        .iter()
        .map(|e| (e.path.clone(), e.code.as_str().to_owned()))
        .collect()
}

fn exponential(min: u32, max: u32, jitter: bool) -> Backoff {
    Backoff {
        strategy: BackoffStrategy::Exponential,
        min_seconds: min,
        max_seconds: max,
        jitter,
    }
}

fn id(raw: &str) -> ExecutionId {
    ExecutionId::parse(raw).unwrap()
}

// --- deferral ("not now") ---

#[test]
fn a_not_now_reason_requeues_the_same_attempt_and_counts_no_attempt() {
    let e = in_progress(start(json!({"target": "dev-1"})));
    let body = json!({"status": "REJECTED", "statusReason": {"reasonCode": "NOT_NOW"}});
    let next = requeued(&e, body, at(10)).expect("deferred");
    assert_eq!(next.status, ExecutionStatus::Queued);
    assert_eq!(next.execution_number, 1, "no attempt spent");
    assert_eq!(next.defer_count, 1);
    assert_eq!(next.last_deferred_at, Some(at(10)));
    assert_eq!(next.status_reason.unwrap().reason_code, "DEFERRED");
}

#[test]
fn a_deferred_execution_is_held_for_the_default_wait_without_a_backoff() {
    let e = in_progress(start(json!({"target": "dev-1"})));
    let body = json!({"status": "FAILED", "statusReason": {"reasonCode": "NOT_NOW"}});
    let next = requeued(&e, body, at(10)).unwrap();
    let until = at(10 + i64::from(DEFAULT_DEFER_SECONDS));
    assert_eq!(next.not_before, Some(until));
    assert!(
        next.is_held(at(69)),
        "skipped by start-next, get and notify-next"
    );
    assert!(!next.is_held(until), "offered again once the wait is over");
    assert_eq!(next.wake_at(), Some(until), "the sweeper releases it then");
}

#[test]
fn an_aws_sdk_device_defers_through_status_details() {
    let e = in_progress(start(json!({"target": "dev-1"})));
    let body = json!({"status": "REJECTED", "statusDetails": {"reasonCode": "NOT_NOW"}});
    let next = requeued(&e, body, at(10)).expect("deferred");
    assert_eq!(
        (next.status, next.defer_count),
        (ExecutionStatus::Queued, 1)
    );
    assert_eq!(
        next.status_details.get("reasonCode").map(String::as_str),
        Some("NOT_NOW"),
        "the device's details are kept"
    );
}

#[test]
fn the_older_busy_code_is_a_deferral_too() {
    let e = in_progress(start(json!({"target": "dev-1"})));
    let body = json!({"status": "REJECTED", "statusReason": {"reasonCode": "BUSY"}});
    assert_eq!(requeued(&e, body, at(1)).unwrap().defer_count, 1);
}

#[test]
fn a_not_now_on_success_is_not_a_deferral() {
    let e = in_progress(start(json!({"target": "dev-1"})));
    let body = json!({"status": "SUCCEEDED", "statusDetails": {"reasonCode": "NOT_NOW"}});
    assert!(requeued(&e, body, at(1)).is_none());
}

#[test]
fn deferrals_follow_the_policy_backoff_when_there_is_one() {
    let e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "backoff": {"strategy": "EXPONENTIAL", "minSeconds": 10, "maxSeconds": 100}}})));
    let body = json!({"status": "REJECTED", "statusReason": {"reasonCode": "NOT_NOW"}});
    let mut waiting = e;
    let mut now = 0;
    for expected in [10, 20, 40, 80, 100] {
        waiting = in_progress(requeued(&waiting, body.clone(), at(now)).unwrap());
        assert_eq!(waiting.not_before, Some(at(now + expected)));
        now += expected;
    }
    assert_eq!((waiting.defer_count, waiting.execution_number), (5, 1));
}

#[test]
fn a_deferring_device_is_bounded_by_the_completion_deadline() {
    let e = in_progress(start(json!({"target": "dev-1"})));
    let body = json!({"status": "REJECTED", "statusReason": {"reasonCode": "NOT_NOW"}});
    let waiting = requeued(&e, body, at(3590)).unwrap();
    let plan = TransitionPlan::expire(&waiting, at(3600)).expect("completeBy passed");
    let ended = plan.apply(&waiting).unwrap();
    assert_eq!(ended.status, ExecutionStatus::TimedOut);
    assert_eq!(
        ended.status_reason.unwrap().reason_code,
        "EXECUTION_TIMEOUT"
    );
}

#[test]
fn a_deferral_keeps_the_delivery_deadline_of_its_attempt() {
    let e = in_progress(start(
        json!({"target": "dev-1", "deliveryTimeoutSeconds": 120}),
    ));
    let body = json!({"status": "REJECTED", "statusReason": {"reasonCode": "NOT_NOW"}});
    let waiting = requeued(&e, body, at(100)).unwrap();
    assert_eq!(waiting.deliver_by, Some(at(120)));
    let ended = TransitionPlan::expire(&waiting, at(120))
        .unwrap()
        .apply(&waiting)
        .unwrap();
    assert_eq!(ended.status_reason.unwrap().reason_code, "DELIVERY_TIMEOUT");
}

// --- retries after failures ---

#[test]
fn a_failure_the_policy_names_is_retried_as_a_new_attempt() {
    let e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 3, "retryOn": [{"status": "FAILED"}]}})));
    let next = requeued(&e, json!({"status": "FAILED"}), at(5)).expect("retried");
    assert_eq!(
        (next.status, next.execution_number),
        (ExecutionStatus::Queued, 2)
    );
    assert_eq!(
        next.status_reason.unwrap().reason_code,
        "RETRY_AFTER_FAILURE"
    );
    assert_eq!(next.not_before, None, "no backoff: offered at once");
}

#[test]
fn retries_stop_at_max_attempts() {
    let mut e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 2, "retryOn": [{"status": "FAILED"}]}})));
    e.execution_number = 2;
    assert!(requeued(&e, json!({"status": "FAILED"}), at(5)).is_none());
}

#[test]
fn only_the_listed_reason_codes_are_retried() {
    let e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 3, "retryOn": [{"status": "FAILED", "reasonCodes": ["E_NETWORK"]}]}})));
    let network = json!({"status": "FAILED", "statusReason": {"reasonCode": "E_NETWORK"}});
    let disk = json!({"status": "FAILED", "statusReason": {"reasonCode": "DISK_FULL"}});
    assert!(requeued(&e, network, at(1)).is_some());
    assert!(
        requeued(&e, disk, at(1)).is_none(),
        "DISK_FULL is not listed"
    );
    assert!(
        requeued(&e, json!({"status": "FAILED"}), at(1)).is_none(),
        "no reason code: not listed"
    );
}

#[test]
fn a_reason_code_in_status_details_counts_for_the_filter() {
    let e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 3, "retryOn": [{"status": "FAILED", "reasonCodes": ["E_NETWORK"]}]}})));
    let body = json!({"status": "FAILED", "statusDetails": {"reasonCode": "E_NETWORK"}});
    assert!(requeued(&e, body, at(1)).is_some());
}

#[test]
fn only_the_listed_statuses_are_retried() {
    let e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 3, "retryOn": [{"status": "FAILED"}]}})));
    assert!(requeued(&e, json!({"status": "REJECTED"}), at(1)).is_none());
}

#[test]
fn a_retry_waits_for_the_exponential_backoff() {
    let mut e = in_progress(start(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 5, "retryOn": [{"status": "FAILED"}],
        "backoff": {"strategy": "EXPONENTIAL", "minSeconds": 30, "maxSeconds": 100}}})));
    let mut now = 0;
    for (attempt, wait) in [(1, 30), (2, 60), (3, 100), (4, 100)] {
        assert_eq!(e.execution_number, attempt);
        e = in_progress(requeued(&e, json!({"status": "FAILED"}), at(now)).unwrap());
        assert_eq!(
            e.not_before,
            Some(at(now + wait)),
            "after attempt {attempt}"
        );
        now += wait;
    }
}

#[test]
fn a_retried_timeout_waits_for_the_backoff_and_gets_a_fresh_delivery_deadline() {
    let e = start(
        json!({"target": "dev-1", "deliveryTimeoutSeconds": 60, "retryPolicy": {
        "maxAttempts": 2, "retryOn": [{"status": "TIMED_OUT"}],
        "backoff": {"strategy": "FIXED", "minSeconds": 30}}}),
    );
    let next = TransitionPlan::expire(&e, at(60))
        .unwrap()
        .apply(&e)
        .unwrap();
    assert_eq!(
        (next.status, next.execution_number),
        (ExecutionStatus::Queued, 2)
    );
    assert_eq!(next.not_before, Some(at(90)));
    assert_eq!(
        next.deliver_by,
        Some(at(150)),
        "60 s from the end of the wait"
    );
}

#[test]
fn a_timeout_filter_can_name_the_deadline() {
    let e = in_progress(start(
        json!({"target": "dev-1", "deliveryTimeoutSeconds": 60, "retryPolicy": {
        "maxAttempts": 2, "retryOn": [{"status": "TIMED_OUT", "reasonCodes": ["DELIVERY_TIMEOUT"]}]}}),
    ));
    let mut stepped = e.clone();
    stepped.step_deadline = Some(at(30));
    let ended = TransitionPlan::expire(&stepped, at(30))
        .unwrap()
        .apply(&stepped)
        .unwrap();
    assert_eq!(
        ended.status,
        ExecutionStatus::TimedOut,
        "a step timeout is not listed"
    );
}

// --- backoff arithmetic ---

#[test]
fn exponential_backoff_doubles_from_the_minimum_to_the_maximum() {
    let b = exponential(5, 60, false);
    let waits: Vec<u32> = (1..=6).map(|n| b.delay_seconds(&id("e-1"), n)).collect();
    assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
}

#[test]
fn jitter_is_the_same_for_the_same_execution_and_attempt() {
    let b = exponential(10, 1000, true);
    for n in 1..=8 {
        assert_eq!(
            b.delay_seconds(&id("e-42"), n),
            b.delay_seconds(&id("e-42"), n)
        );
    }
}

#[test]
fn jitter_stays_in_the_upper_half_and_above_the_minimum() {
    let b = exponential(10, 1000, true);
    for i in 0..200 {
        let execution = id(&format!("exec-{i}"));
        for n in 1..=8u32 {
            let base = (10u32 << (n - 1)).min(1000);
            let wait = b.delay_seconds(&execution, n);
            assert!(
                wait >= (base / 2).max(10) && wait <= base,
                "{wait} for attempt {n}"
            );
        }
    }
}

#[test]
fn jitter_spreads_executions_apart() {
    let b = exponential(100, 100_000, true);
    let waits: std::collections::BTreeSet<u32> = (0..50)
        .map(|i| b.delay_seconds(&id(&format!("exec-{i}")), 4))
        .collect();
    assert!(waits.len() > 25, "only {} distinct waits", waits.len());
}

// --- where the policy comes from, and its spellings ---

#[test]
fn a_start_request_gets_its_command_policy() {
    let v = validator(json!({"commandId": "flash", "retryPolicy": {
        "maxAttempts": 4, "retryOn": [{"status": "FAILED"}]}}));
    let e = start_with(&v, json!({"target": "dev-1"}));
    assert_eq!(e.retry_policy.max_attempts, 4);
}

#[test]
fn a_start_request_overrides_its_command_policy() {
    let v = validator(json!({"commandId": "flash", "retryPolicy": {
        "maxAttempts": 4, "retryOn": [{"status": "FAILED"}]}}));
    let e = start_with(
        &v,
        json!({"target": "dev-1", "retryPolicy": {"maxAttempts": 1}}),
    );
    assert_eq!(e.retry_policy, RetryPolicy::default());
}

#[test]
fn on_timeout_retry_is_a_policy_that_retries_timeouts() {
    let e = start(json!({"target": "dev-1", "onTimeout": "RETRY", "maxAttempts": 4}));
    assert_eq!(e.retry_policy, RetryPolicy::on_timeout(4));
    assert!(e.retry_policy.retries_timeouts());
}

#[test]
fn a_policy_and_its_older_spelling_together_are_refused() {
    let errors = start_errors(json!({"target": "dev-1", "onTimeout": "RETRY",
        "retryPolicy": {"maxAttempts": 2, "retryOn": [{"status": "TIMED_OUT"}]}}));
    assert_eq!(errors, [("retryPolicy".into(), "InvalidValue".into())]);
}

#[test]
fn more_attempts_without_outcomes_are_refused() {
    let errors = start_errors(json!({"target": "dev-1", "retryPolicy": {"maxAttempts": 3}}));
    assert_eq!(
        errors,
        [("retryPolicy.retryOn".into(), "MissingRequired".into())]
    );
}

#[test]
fn a_succeeded_outcome_cannot_be_retried() {
    let errors = start_errors(json!({"target": "dev-1", "retryPolicy": {
        "maxAttempts": 2, "retryOn": [{"status": "SUCCEEDED"}]}}));
    assert_eq!(
        errors,
        [(
            "retryPolicy.retryOn[0].status".into(),
            "InvalidValue".into()
        )]
    );
}

#[test]
fn an_unknown_backoff_strategy_is_refused() {
    let errors = start_errors(json!({"target": "dev-1", "retryPolicy": {
        "backoff": {"strategy": "FIBONACCI", "minSeconds": 1}}}));
    assert_eq!(
        errors,
        [("retryPolicy.backoff.strategy".into(), "InvalidValue".into())]
    );
}

#[test]
fn a_maximum_below_the_minimum_is_refused() {
    let errors = start_errors(json!({"target": "dev-1", "retryPolicy": {
        "backoff": {"minSeconds": 60, "maxSeconds": 10}}}));
    assert_eq!(
        errors,
        [("retryPolicy.backoff.maxSeconds".into(), "OutOfRange".into())]
    );
}

#[test]
fn an_unknown_policy_field_is_refused() {
    let errors = start_errors(json!({"target": "dev-1", "retryPolicy": {"attempts": 2}}));
    assert_eq!(
        errors,
        [("retryPolicy.attempts".into(), "UnknownField".into())]
    );
}

#[test]
fn a_policy_survives_its_json_form() {
    let policy_json = json!({"maxAttempts": 3,
        "backoff": {"strategy": "EXPONENTIAL", "minSeconds": 5, "maxSeconds": 50, "jitter": true},
        "retryOn": [{"status": "FAILED", "reasonCodes": ["E1"], "maxRetries": 1}, {"status": "TIMED_OUT"}]});
    let policy = RetryPolicy::read(&policy_json).unwrap();
    assert_eq!(policy.to_json(), policy_json);
    assert_eq!(
        serde_json::to_value(&policy).unwrap(),
        serde_json::to_value(&policy_json).unwrap(),
        "serde writes what the codec writes"
    );
}

#[test]
fn records_from_before_policies_read_as_their_policy() {
    let policy = RetryPolicy::from_legacy(true, 3, 1);
    assert!(policy.retries(ExecutionStatus::TimedOut, None, 2));
    assert!(!policy.retries(ExecutionStatus::TimedOut, None, 3));
    assert!(policy.retries(ExecutionStatus::Failed, None, 1));
    assert!(
        !policy.retries(ExecutionStatus::Failed, None, 2),
        "one FAILED retry"
    );
}

#[test]
fn a_job_policy_and_its_aws_spelling_together_are_refused() {
    let v = reboot();
    let err = CreateJob::parse(
        &json!({"targets": {"things": ["a"]}, "retryPolicy": {"maxAttempts": 1},
            "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 1}]}}),
        &v,
        at(0),
    )
    .unwrap_err();
    assert_eq!(err.0[0].path, "retryPolicy");
}

// --- audit ---

#[test]
fn a_started_execution_records_who_started_it() {
    let e = start(json!({"target": "dev-1"}));
    assert_eq!(e.created_by.as_deref(), Some("alice"));
    assert_eq!(
        e.last_updated_by, None,
        "no change yet: the creation is createdBy"
    );
    assert!(e.changed_by.is_empty());
}

#[test]
fn delivery_and_the_first_answer_are_timestamped_with_who_changed_it() {
    let e = start(json!({"target": "dev-1"}));
    let sent = TransitionPlan::dispatch(e.version, at(5))
        .apply(&e)
        .unwrap();
    assert_eq!(sent.sent_at, Some(at(5)));
    assert_eq!(sent.last_updated_by.as_deref(), Some("courier"));
    let update = report(json!({"status": "IN_PROGRESS"}));
    let taken = TransitionPlan::new(update, ExecutionStatus::InProgress, Actor::Device, at(9))
        .unwrap()
        .for_target(e.target.clone())
        .apply(&sent)
        .unwrap();
    assert_eq!(taken.acknowledged_at, Some(at(9)));
    assert_eq!(taken.last_updated_by.as_deref(), Some("thing/dev-1"));
    let update = report(json!({"status": "SUCCEEDED"}));
    let done = TransitionPlan::new(update, ExecutionStatus::Succeeded, Actor::Device, at(20))
        .unwrap()
        .for_target(e.target.clone())
        .apply(&taken)
        .unwrap();
    assert_eq!(done.acknowledged_at, Some(at(9)), "the first answer");
    assert_eq!(done.sent_at, Some(at(5)));
}
