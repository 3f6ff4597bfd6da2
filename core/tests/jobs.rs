//! Jobs: the create request (targets, rollout, abort, retry, scheduling in
//! AWS IoT Jobs' field names), statistics that count devices and attempts
//! apart, the abort rule, and the exponential rollout rate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::job::*;
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

fn validator() -> Validator {
    CommandDefinition::from_json(&json!({
        "commandId": "set-config",
        "parameters": [{"name": "rate", "type": "I", "required": true, "min": 1, "max": 3600}]
    }))
    .unwrap()
    .validator()
    .unwrap()
}

fn parse(body: Value) -> Result<CreateJob, ValidationErrors> {
    CreateJob::parse(&body, &validator(), Timestamp::from_secs(T0))
}

fn paths(errors: &ValidationErrors) -> Vec<String> {
    errors.iter().map(|e| e.path.clone()).collect()
}

#[test]
fn a_full_job_request_parses_with_aws_field_names() {
    let job = parse(json!({
        "jobId": "rollout-42",
        "commandId": "set-config",
        "parameters": {"rate": {"I": 30}},
        "targets": {"things": ["dev-1", "dev-2", "dev-1"]},
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 100, "exponentialRate": {
            "baseRatePerMinute": 5, "incrementFactor": 2.0, "rateIncreaseCriteria": {"numberOfSucceededThings": 10}}},
        "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 20, "minNumberOfExecutedThings": 10}]},
        "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "TIMED_OUT", "numberOfRetries": 2}]},
        "schedulingConfig": {"startTime": T0 + 60, "endTime": T0 + 3600}
    }))
    .unwrap();
    assert_eq!(job.job_id.unwrap().as_str(), "rollout-42");
    let Targets::Things(things) = job.targets else {
        panic!("things")
    };
    assert_eq!(things.len(), 2, "duplicates removed");
    assert_eq!(
        job.rollout
            .unwrap()
            .exponential_rate
            .unwrap()
            .base_rate_per_minute,
        5
    );
    assert_eq!(job.abort[0].failure_type, FailureType::Failed);
    assert_eq!(job.retry[0].number_of_retries, 2);
    assert_eq!(
        job.scheduling.start_time,
        Some(Timestamp::from_secs(T0 + 60))
    );
}

#[test]
fn every_problem_in_a_job_request_is_reported_at_once() {
    let errors = parse(json!({
        "commandId": "set-config",
        "parameters": {"rate": {"I": 0}},
        "targets": {"things": ["ok", "bad/name"], "thingGroup": "g"},
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 0},
        "abortConfig": {"criteriaList": [{"failureType": "CANCELED", "thresholdPercentage": 150, "minNumberOfExecutedThings": 1}]},
        "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "REJECTED", "numberOfRetries": 11}]},
        "schedulingConfig": {"endTime": T0 - 1},
        "colour": "red"
    }))
    .unwrap_err();
    let got = paths(&errors);
    for expected in [
        "colour",
        "parameters.rate",
        "targets",
        "jobExecutionsRolloutConfig.maximumPerMinute",
        "abortConfig.criteriaList[0].failureType",
        "abortConfig.criteriaList[0].thresholdPercentage",
        "jobExecutionsRetryConfig.criteriaList[0].failureType",
        "jobExecutionsRetryConfig.criteriaList[0].numberOfRetries",
        "schedulingConfig.endTime",
    ] {
        assert!(
            got.iter().any(|p| p == expected),
            "{expected} missing from {got:?}"
        );
    }
    let group = parse(json!({"parameters": {"rate": {"I": 1}}, "targets": {"thingGroup": "floor-3", "recursive": true}})).unwrap();
    assert_eq!(
        group.targets,
        Targets::ThingGroup {
            name: "floor-3".into(),
            recursive: true
        }
    );
    assert_eq!(
        paths(&parse(json!({"parameters": {"rate": {"I": 1}}})).unwrap_err()),
        ["targets"]
    );
}

#[test]
fn statistics_count_each_device_once_and_every_attempt() {
    use ExecutionStatus::*;
    let mut stats = JobStatistics::default();
    for _ in 0..3 {
        stats.record(None, Queued, false);
    }
    // device A: fails, retried, succeeds; B: times out twice; C: still queued
    stats.record(Some(Queued), InProgress, false);
    stats.record(Some(InProgress), Failed, false);
    stats.record(Some(Failed), Queued, true);
    stats.record(Some(Queued), Succeeded, false);
    stats.record(Some(Queued), TimedOut, false);
    stats.record(Some(TimedOut), Queued, true);
    stats.record(Some(Queued), TimedOut, false);
    assert_eq!(
        (
            stats.count(Succeeded),
            stats.count(TimedOut),
            stats.count(Queued),
            stats.count(Failed)
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(stats.total(), 3, "three devices");
    assert_eq!(stats.attempts, 5, "three first attempts and two retries");
    assert_eq!(stats.ended(), 2);
}

#[test]
fn abort_fires_at_the_threshold_once_enough_executions_ended() {
    use ExecutionStatus::*;
    let rule = [AbortCriterion {
        failure_type: FailureType::All,
        threshold_percentage: 50.0,
        min_number_of_executed_things: 4,
    }];
    let mut stats = JobStatistics::default();
    for status in [Failed, Rejected, Succeeded] {
        stats.record(None, status, false);
    }
    assert!(
        stats.abort_criterion(&rule).is_none(),
        "2 of 3 failed, but fewer than 4 ended"
    );
    stats.record(None, Succeeded, false);
    assert!(stats.abort_criterion(&rule).is_some(), "2 of 4 = 50 %");
    let only_timeouts = [AbortCriterion {
        failure_type: FailureType::TimedOut,
        threshold_percentage: 10.0,
        min_number_of_executed_things: 1,
    }];
    assert!(stats.abort_criterion(&only_timeouts).is_none());
    assert!(stats.abort_criterion(&[]).is_none());
}

#[test]
fn exponential_rollout_multiplies_the_rate_up_to_the_maximum() {
    let config = RolloutConfig {
        maximum_per_minute: 50,
        exponential_rate: Some(ExponentialRate {
            base_rate_per_minute: 5,
            increment_factor: 2.0,
            rate_increase_criteria: RateIncreaseCriteria::NumberOfNotifiedThings(10),
        }),
    };
    assert_eq!(config.rate_per_minute(0, 0), 5);
    assert_eq!(config.rate_per_minute(9, 0), 5);
    assert_eq!(config.rate_per_minute(10, 0), 10);
    assert_eq!(config.rate_per_minute(35, 0), 40);
    assert_eq!(
        config.rate_per_minute(40, 0),
        50,
        "capped at maximumPerMinute"
    );
    assert_eq!(
        RolloutConfig {
            maximum_per_minute: 7,
            exponential_rate: None
        }
        .rate_per_minute(1000, 0),
        7
    );
}

#[test]
fn retry_criteria_map_to_a_policy_per_failure_type() {
    let rules = [RetryCriterion {
        failure_type: FailureType::TimedOut,
        number_of_retries: 2,
    }];
    let policy = retry_policy_of(&rules);
    let retries = |status, attempt| policy.retries(status, None, attempt);
    assert!(retries(ExecutionStatus::TimedOut, 1));
    assert!(retries(ExecutionStatus::TimedOut, 2));
    assert!(
        !retries(ExecutionStatus::TimedOut, 3),
        "two retries: three attempts in all"
    );
    assert!(!retries(ExecutionStatus::Failed, 1));
    assert!(!retries(ExecutionStatus::Succeeded, 1));
}
