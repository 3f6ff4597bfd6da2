//! The job runner's rules: which step a job takes next, given its record,
//! its statistics and the time (retries are in `retry.rs`).

#![allow(clippy::unwrap_used)]

use courier_core::job::JobStatistics;
use courier_core::job_run::{
    Claim, JobTargets, StatisticsDelta, CLAIM_LEASE_SECONDS, FAN_OUT_CHUNK, TARGET_PAGE,
};
use courier_core::json::Json as Value;
use courier_core::{
    CommandDefinition, CreateJob, ExecutionId, ExecutionStatus, Job, JobId, JobStatus, JobStep,
    ThingName, Timestamp,
};

/// A JSON value in core's model, written as `serde_json::json!` writes one.
macro_rules! json {
    ($($t:tt)+) => {
        serde_json::from_value::<courier_core::json::Json>(serde_json::json!($($t)+))
            .expect("valid JSON")
    };
}

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn job(body: Value) -> Job {
    let definition = CommandDefinition::from_json(&json!({"commandId": "reboot"})).unwrap();
    let validator = definition.validator().unwrap();
    let request = CreateJob::parse(&body, &validator, at(0)).unwrap();
    request
        .into_job(JobId::parse("j-1").unwrap(), &definition, None, at(0))
        .0
}

fn things(n: usize) -> Value {
    json!((0..n).map(|i| format!("t-{i}")).collect::<Vec<_>>())
}

fn stats(pairs: &[(ExecutionStatus, i64)]) -> JobStatistics {
    let mut delta = StatisticsDelta::default();
    for (status, n) in pairs {
        for _ in 0..*n {
            delta.record(None, *status, false);
        }
    }
    let mut s = JobStatistics::default();
    s.add(&delta.devices, u64::try_from(delta.attempts).unwrap());
    s
}

#[test]
fn a_new_job_fans_out_in_chunks_that_never_cross_a_target_page() {
    let j = job(json!({"targets": {"things": things(2500)}}));
    let JobStep::FanOut { claim, resume } = j.next_step(&JobStatistics::default(), at(1)) else {
        panic!("expected a fan-out");
    };
    assert!(!resume);
    assert_eq!((claim.from, claim.count), (0, FAN_OUT_CHUNK));
    let next = j.commit(&claim, claim.count, 0, None, at(2));
    assert_eq!(next.fan_out.created, 1000);
    assert!(!next.fan_out.done);
    let JobStep::FanOut { claim, .. } = next.next_step(&JobStatistics::default(), at(3)) else {
        panic!("expected a fan-out");
    };
    assert_eq!(
        claim.from % TARGET_PAGE + u64::from(claim.count),
        TARGET_PAGE
    );
}

#[test]
fn a_live_claim_waits_and_an_expired_one_is_resumed() {
    let mut j = job(json!({"targets": {"things": things(10)}}));
    j.fan_out.claim = Some(Claim {
        from: 0,
        count: 10,
        page_token: None,
        expires_at: at(CLAIM_LEASE_SECONDS),
    });
    assert_eq!(j.next_step(&JobStatistics::default(), at(5)), JobStep::Idle);
    assert_eq!(j.wake_at(at(5)), Some(at(CLAIM_LEASE_SECONDS)));
    let JobStep::FanOut { claim, resume } =
        j.next_step(&JobStatistics::default(), at(CLAIM_LEASE_SECONDS + 1))
    else {
        panic!("expected the chunk to be resumed");
    };
    assert!(resume);
    assert_eq!((claim.from, claim.count), (0, 10));
}

#[test]
fn the_rollout_allows_maximum_per_minute_then_waits_for_the_next_minute() {
    let j = job(
        json!({"targets": {"things": things(12)}, "jobExecutionsRolloutConfig": {"maximumPerMinute": 5}}),
    );
    let JobStep::FanOut { claim, .. } = j.next_step(&JobStatistics::default(), at(0)) else {
        panic!("expected a fan-out");
    };
    assert_eq!(claim.count, 5);
    let j = j.commit(&claim, 5, 0, None, at(0));
    assert_eq!(
        j.next_step(&JobStatistics::default(), at(30)),
        JobStep::Idle
    );
    assert_eq!(j.wake_at(at(30)), Some(at(60)));
    assert!(matches!(
        j.next_step(&JobStatistics::default(), at(60)),
        JobStep::FanOut {
            claim: Claim { count: 5, .. },
            ..
        }
    ));
}

#[test]
fn a_job_completes_when_every_created_execution_ended() {
    let mut j = job(json!({"targets": {"things": things(3)}}));
    j.fan_out.created = 3;
    j.fan_out.done = true;
    let running = stats(&[
        (ExecutionStatus::Succeeded, 2),
        (ExecutionStatus::InProgress, 1),
    ]);
    assert_eq!(j.next_step(&running, at(1)), JobStep::Idle);
    let ended = stats(&[
        (ExecutionStatus::Succeeded, 2),
        (ExecutionStatus::Failed, 1),
    ]);
    assert!(matches!(
        j.next_step(&ended, at(1)),
        JobStep::Finish {
            status: JobStatus::Completed,
            ..
        }
    ));
}

#[test]
fn targets_owned_by_another_tenant_are_skipped_and_the_job_still_completes() {
    // GIVEN a job of 1,200 targets whose first chunk had 3 things of another tenant
    let j = job(json!({"targets": {"things": things(1200)}}));
    let JobStep::FanOut { claim, .. } = j.next_step(&JobStatistics::default(), at(1)) else {
        panic!("expected a fan-out");
    };
    let j = j.commit(&claim, claim.count - 3, 3, None, at(2));
    // THEN the next chunk starts after every target dealt with
    assert_eq!((j.fan_out.created, j.fan_out.skipped), (997, 3));
    let JobStep::FanOut { claim, .. } = j.next_step(&JobStatistics::default(), at(3)) else {
        panic!("expected a fan-out");
    };
    assert_eq!((claim.from, claim.count), (1000, 200));
    let j = j.commit(&claim, 200, 0, None, at(4));
    assert!(j.fan_out.done);
    assert_eq!((j.fan_out.created, j.fan_out.position()), (1197, 1200));
    // AND it completes when the 1,197 executions it has ended
    let ended = stats(&[(ExecutionStatus::Succeeded, 1197)]);
    assert!(matches!(
        j.next_step(&ended, at(5)),
        JobStep::Finish {
            status: JobStatus::Completed,
            ..
        }
    ));
}

#[test]
fn the_end_time_cancels_the_rest_and_the_abort_rule_aborts() {
    let j =
        job(json!({"targets": {"things": things(3)}, "schedulingConfig": {"endTime": NOW + 100}}));
    assert!(matches!(
        j.next_step(&JobStatistics::default(), at(100)),
        JobStep::Finish {
            status: JobStatus::Canceled,
            cancel_rest: Some(_),
            ..
        }
    ));
    let j = job(
        json!({"targets": {"things": things(10)}, "abortConfig": {"criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 4}]}}),
    );
    let below = stats(&[
        (ExecutionStatus::Failed, 1),
        (ExecutionStatus::Succeeded, 3),
    ]);
    assert!(!matches!(
        j.next_step(&below, at(1)),
        JobStep::Finish { .. }
    ));
    let above = stats(&[
        (ExecutionStatus::Failed, 2),
        (ExecutionStatus::Succeeded, 2),
    ]);
    assert!(matches!(
        j.next_step(&above, at(1)),
        JobStep::Finish {
            status: JobStatus::Aborted,
            ..
        }
    ));
}

#[test]
fn a_scheduled_job_writes_held_executions_and_starts_at_its_start_time() {
    let j = job(
        json!({"targets": {"things": things(2)}, "schedulingConfig": {"startTime": NOW + 600}}),
    );
    assert_eq!(j.status, JobStatus::Scheduled);
    assert!(matches!(
        j.next_step(&JobStatistics::default(), at(1)),
        JobStep::FanOut { .. }
    ));
    let e = j.execution_for(
        ExecutionId::parse("e-1").unwrap(),
        ThingName::parse("t-0").unwrap(),
        at(1),
    );
    assert_eq!(e.not_before, Some(at(600)));
    assert!(e.is_held(at(599)));
    assert_eq!(
        j.next_step(&JobStatistics::default(), at(600)),
        JobStep::Start
    );
}

/// Query targets are written in camelCase like every other field, and read
/// under the first release's snake_case too (jobs stored before the fix).
#[test]
fn query_targets_are_written_camel_case_and_read_either_way() {
    let stored: JobTargets =
        serde_json::from_value(serde_json::json!({"query": {"query_string": "model:X"}})).unwrap();
    assert_eq!(
        serde_json::to_value(&stored).unwrap(),
        serde_json::json!({"query": {"queryString": "model:X"}})
    );
    let again: JobTargets =
        serde_json::from_value(serde_json::json!({"query": {"queryString": "model:X"}})).unwrap();
    assert_eq!(again, stored);
}
