//! Jobs against DynamoDB Local and moto (the IoT control plane): fan-out
//! through the table stream (records read back from DynamoDB Local's stream
//! and fed to the `dispatcher` handler, as Lambda would), devices answering
//! through the `device-events` handler, statistics, cancel, resume of an
//! interrupted fan-out, rollout rate, abort. Time is passed in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::job_run::{Claim, CLAIM_LEASE_SECONDS};
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, JobId, JobStatus, Timestamp};
use courier_functions::entry::device_events;
use courier_functions::ops::job_runner::StepReport;
use courier_functions::ops::jobs::JobView;
use courier_functions::ops::Courier;
use courier_functions::platform::ids;
use courier_functions::platform::thing_groups::IotThingGroups;
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::store::JobStore;
use courier_local::stream::{replay as read_stream, StartAt, StreamPoller};
use courier_tests::lambda_event;
use courier_tests::{
    all_job_executions, context, fresh_courier, iot_rule_event, moto_thing_group,
    send_to_dispatcher, thing_groups, RecordingPublisher,
};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).unwrap()
}

/// The service, the publisher the dispatcher uses, moto's thing groups, and
/// the stream records already delivered.
struct Harness {
    courier: Courier<DynamoStore>,
    publisher: RecordingPublisher,
    groups: IotThingGroups,
    stream: StreamPoller,
}

impl Harness {
    async fn new() -> Self {
        let courier = fresh_courier().await;
        courier
            .create_command(
                &json!({"commandId": "reboot", "executionTimeoutSeconds": 3600, "retentionSeconds": 3600}).into(),
                at(0),
            )
            .await
            .unwrap();
        let stream = StreamPoller::new(courier.store().table(), StartAt::Beginning)
            .await
            .unwrap();
        Self {
            courier,
            publisher: RecordingPublisher::default(),
            groups: thing_groups().await,
            stream,
        }
    }

    async fn create_job(&self, body: Value, now: Timestamp) -> JobView {
        let (job, created) = self
            .courier
            .create_job(
                &self.groups,
                &courier_core::json::Json::from(body.clone()),
                now,
            )
            .await
            .unwrap();
        assert!(created);
        job
    }

    async fn job(&self, id: &JobId) -> JobView {
        self.courier.get_job(id.as_str(), at(0)).await.unwrap()
    }

    /// Feeds the stream's new records to the dispatcher, 100 per invocation
    /// (Lambda's default batch), until no new record appears.
    async fn pump(&mut self, now: Timestamp) -> usize {
        let mut total = 0;
        loop {
            let fresh = self.stream.poll().await.unwrap();
            if fresh.is_empty() {
                return total;
            }
            for batch in fresh.chunks(100) {
                let out = self.deliver(batch.to_vec(), now).await;
                assert_eq!(out["batchItemFailures"], json!([]), "{out}");
                total += batch.len();
            }
        }
    }

    async fn deliver(&self, records: Vec<Value>, now: Timestamp) -> Value {
        send_to_dispatcher(&self.courier, &self.publisher, &self.groups, records, now).await
    }

    /// A device reports on its execution through the IoT rule's event.
    async fn device_says(&self, thing: &str, execution_id: &str, update: Value, now: Timestamp) {
        let topic = format!("courier/things/{thing}/jobs/{execution_id}/update");
        let out = device_events::handle(
            &self.courier,
            &root(),
            &RecordingPublisher::default(),
            lambda_event(
                iot_rule_event(&topic, &update),
                context(&format!("{thing}-{now:?}")),
            ),
            now,
        )
        .await
        .unwrap();
        let accepted = out
            .published
            .iter()
            .any(|m| m.topic.ends_with("/update/accepted"));
        assert!(accepted, "{thing}: {out:?}");
    }

    async fn executions(&self, id: &JobId, now: Timestamp) -> Vec<courier_core::CommandExecution> {
        all_job_executions(&self.courier, id, now).await
    }
}

fn count(view: &JobView, status: ExecutionStatus) -> u64 {
    view.statistics.count(status)
}

#[tokio::test]
async fn a_job_over_a_thing_group_of_50_completes_with_exact_statistics() {
    // GIVEN a thing group of 50 things in the IoT control plane
    let (group, things) = moto_thing_group(50).await;
    let mut h = Harness::new().await;

    // WHEN a job targets the group
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"thingGroup": group}}),
            at(0),
        )
        .await;
    let id = job.job.job_id.clone();
    assert_eq!(job.job.status, JobStatus::InProgress);
    h.pump(at(1)).await;

    // THEN every thing has one execution, sent to it, and the statistics say so
    let view = h.job(&id).await;
    assert!(view.job.fan_out.done);
    assert_eq!(view.job.fan_out.created, 50);
    assert_eq!(
        count(&view, ExecutionStatus::Sent),
        50,
        "{:?}",
        view.statistics
    );
    assert_eq!(view.statistics.attempts, 50);
    let executions = h.executions(&id, at(1)).await;
    let targets: BTreeSet<String> = executions.iter().map(|e| e.target.to_string()).collect();
    assert_eq!(targets, things.iter().cloned().collect());

    // WHEN the devices answer: 45 succeed, 5 fail
    for (i, e) in executions.iter().enumerate() {
        let status = if i < 5 { "FAILED" } else { "SUCCEEDED" };
        let id = e.execution_id.as_str();
        h.device_says(
            e.target.as_str(),
            id,
            json!({"status": "IN_PROGRESS"}),
            at(2),
        )
        .await;
        h.device_says(e.target.as_str(), id, json!({"status": status}), at(3))
            .await;
    }
    h.pump(at(4)).await;

    // THEN the job is COMPLETED with devices counted once per final status
    let view = h.job(&id).await;
    assert_eq!(
        view.job.status,
        JobStatus::Completed,
        "{:?}",
        view.statistics
    );
    assert_eq!(count(&view, ExecutionStatus::Succeeded), 45);
    assert_eq!(count(&view, ExecutionStatus::Failed), 5);
    assert_eq!(view.statistics.total(), 50);
    assert_eq!(view.statistics.attempts, 50);

    // WHEN the whole stream is delivered again (at-least-once delivery)
    let all = read_stream(h.courier.store().table()).await.unwrap();
    for batch in all.chunks(100) {
        h.deliver(batch.to_vec(), at(5)).await;
    }
    // THEN nothing is counted twice
    assert_eq!(h.job(&id).await.statistics, view.statistics);
}

#[tokio::test]
async fn an_interrupted_fan_out_resumes_and_creates_each_execution_exactly_once() {
    let mut h = Harness::new().await;
    let things: Vec<String> = (0..1200).map(|i| format!("dev-{i:05}")).collect();
    // Scheduled an hour ahead: executions are written now, held until then
    // (so this test is about the fan-out, not about delivering 1200).
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": things},
                   "schedulingConfig": {"startTime": NOW + 3600}}),
            at(0),
        )
        .await;
    let id = job.job.job_id.clone();
    assert_eq!(job.job.status, JobStatus::Scheduled);
    let store = h.courier.store();

    // GIVEN a worker that claimed the first chunk, wrote 400 of its 1000
    // executions and died; one of those was canceled meanwhile
    let mut claimed = job.job.clone();
    claimed.fan_out.claim = Some(Claim {
        from: 0,
        count: 1000,
        page_token: None,
        expires_at: at(CLAIM_LEASE_SECONDS),
    });
    claimed.touch(at(0));
    store.put_job(&claimed, job.job.version).await.unwrap();
    let first: Vec<_> = store
        .job_targets(&claimed, 0, 400)
        .await
        .unwrap()
        .into_iter()
        .map(|t| claimed.execution_for(ids::job_execution_id(&id, &t), t, at(0)))
        .collect();
    assert_eq!(store.write_executions(&first, false).await.unwrap(), 400);
    let touched = first[7].execution_id.to_string();
    h.courier
        .cancel_execution(
            &touched,
            &courier_core::json::Json::Null,
            "ops",
            at(1),
            "req-1",
        )
        .await
        .unwrap();

    // WHEN steps run while the lease holds THEN nobody touches the chunk
    assert_eq!(
        h.courier.run_job(&h.groups, &id, at(10)).await.unwrap(),
        StepReport::Idle
    );

    // WHEN the lease has expired (the sweeper's wake-up) and the job runs on
    let report = h
        .courier
        .run_job(&h.groups, &id, at(CLAIM_LEASE_SECONDS + 1))
        .await
        .unwrap();
    assert_eq!(
        report,
        StepReport::FannedOut {
            written: 600,
            resumed: true
        }
    );
    h.pump(at(CLAIM_LEASE_SECONDS + 2)).await;

    // THEN each target has exactly one execution, the early ones untouched
    let view = h.job(&id).await;
    assert!(view.job.fan_out.done, "{:?}", view.job.fan_out);
    assert_eq!(view.job.fan_out.created, 1200);
    let executions = h.executions(&id, at(CLAIM_LEASE_SECONDS + 2)).await;
    assert_eq!(executions.len(), 1200);
    let distinct: BTreeSet<&str> = executions.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(distinct.len(), 1200);
    let kept = executions
        .iter()
        .find(|e| e.execution_id.as_str() == touched)
        .unwrap();
    assert_eq!(kept.status, ExecutionStatus::Canceled, "not written again");
    assert_eq!(view.statistics.total(), 1200);
    assert_eq!(view.statistics.count(ExecutionStatus::Queued), 1199);
    assert_eq!(view.statistics.attempts, 1200);
}

#[tokio::test]
async fn canceling_a_job_cancels_what_has_not_started_and_force_stops_the_rest() {
    let mut h = Harness::new().await;
    let things: Vec<String> = (0..10).map(|i| format!("c-{i}")).collect();
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": things}}),
            at(0),
        )
        .await;
    let id = job.job.job_id.clone();
    h.pump(at(1)).await;
    let executions = h.executions(&id, at(1)).await;
    for e in &executions[..3] {
        h.device_says(
            e.target.as_str(),
            e.execution_id.as_str(),
            json!({"status": "IN_PROGRESS"}),
            at(2),
        )
        .await;
    }

    // WHEN the job is canceled without force
    let canceled = h
        .courier
        .cancel_job(
            id.as_str(),
            &json!({"comment": "wrong firmware"}).into(),
            "ops@example.com",
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(canceled.job.status, JobStatus::Canceled);
    h.pump(at(4)).await;

    // THEN the 7 not started are CANCELED, the 3 started keep running
    let view = h.job(&id).await;
    assert_eq!(
        count(&view, ExecutionStatus::Canceled),
        7,
        "{:?}",
        view.statistics
    );
    assert_eq!(count(&view, ExecutionStatus::InProgress), 3);
    let one = h
        .executions(&id, at(4))
        .await
        .into_iter()
        .find(|e| e.status == ExecutionStatus::Canceled)
        .unwrap();
    assert_eq!(one.canceled_by.as_deref(), Some("ops@example.com"));

    // WHEN canceled again THEN it is the same job (safe to retry)
    let again = h
        .courier
        .cancel_job(
            id.as_str(),
            &json!({"force": true}).into(),
            "ops@example.com",
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(again.job.version, view.job.version);

    // AND a new job canceled with force stops IN_PROGRESS work too
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": ["f-1", "f-2"]}}),
            at(10),
        )
        .await;
    let id = job.job.job_id.clone();
    h.pump(at(11)).await;
    let started = &h.executions(&id, at(11)).await[0];
    h.device_says(
        started.target.as_str(),
        started.execution_id.as_str(),
        json!({"status": "IN_PROGRESS"}),
        at(12),
    )
    .await;
    h.courier
        .cancel_job(id.as_str(), &json!({"force": true}).into(), "ops", at(13))
        .await
        .unwrap();
    h.pump(at(14)).await;
    let view = h.job(&id).await;
    assert_eq!(
        count(&view, ExecutionStatus::Canceled),
        2,
        "{:?}",
        view.statistics
    );
}

#[tokio::test]
async fn the_rollout_starts_at_most_maximum_per_minute() {
    let mut h = Harness::new().await;
    let things: Vec<String> = (0..12).map(|i| format!("r-{i}")).collect();
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": things},
                   "jobExecutionsRolloutConfig": {"maximumPerMinute": 5}}),
            at(0),
        )
        .await;
    let id = job.job.job_id.clone();

    // WHEN the stream and the sweeper run through the first minute
    h.pump(at(1)).await;
    h.courier.sweep_jobs(&h.groups, at(30)).await.unwrap();
    h.pump(at(31)).await;
    // THEN 5 executions exist
    assert_eq!(h.executions(&id, at(31)).await.len(), 5);

    // WHEN the next minutes come
    h.courier.sweep_jobs(&h.groups, at(62)).await.unwrap();
    h.pump(at(62)).await;
    assert_eq!(h.executions(&id, at(62)).await.len(), 10);
    h.courier.sweep_jobs(&h.groups, at(123)).await.unwrap();
    h.pump(at(123)).await;
    // THEN 5 more each minute, then the last 2
    let view = h.job(&id).await;
    assert_eq!(h.executions(&id, at(123)).await.len(), 12);
    assert!(view.job.fan_out.done);
}

#[tokio::test]
async fn the_job_aborts_at_its_failure_threshold_and_cancels_the_rest() {
    let mut h = Harness::new().await;
    let things: Vec<String> = (0..20).map(|i| format!("a-{i}")).collect();
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": things},
                   "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                       "thresholdPercentage": 30, "minNumberOfExecutedThings": 5}]}}),
            at(0),
        )
        .await;
    let id = job.job.job_id.clone();
    h.pump(at(1)).await;
    let executions = h.executions(&id, at(1)).await;

    // WHEN 4 devices end (2 failed: 50%, but fewer than 5 ended)
    for (i, e) in executions[..4].iter().enumerate() {
        let status = if i < 2 { "FAILED" } else { "SUCCEEDED" };
        h.device_says(
            e.target.as_str(),
            e.execution_id.as_str(),
            json!({"status": status}),
            at(2),
        )
        .await;
    }
    h.pump(at(3)).await;
    // THEN the job goes on
    assert_eq!(h.job(&id).await.job.status, JobStatus::InProgress);

    // WHEN a fifth ends (2 of 5 failed: 40% >= 30%)
    let e = &executions[4];
    h.device_says(
        e.target.as_str(),
        e.execution_id.as_str(),
        json!({"status": "SUCCEEDED"}),
        at(4),
    )
    .await;
    h.pump(at(5)).await;

    // THEN the job is ABORTED and the other 15 are canceled
    let view = h.job(&id).await;
    assert_eq!(view.job.status, JobStatus::Aborted);
    assert_eq!(
        view.job.status_reason.as_ref().unwrap().reason_code,
        "ABORT_CRITERIA_MET"
    );
    assert_eq!(
        count(&view, ExecutionStatus::Canceled),
        15,
        "{:?}",
        view.statistics
    );
    assert_eq!(count(&view, ExecutionStatus::Failed), 2);
    assert_eq!(count(&view, ExecutionStatus::Succeeded), 3);
}

#[tokio::test]
async fn failed_attempts_are_retried_up_to_the_limit_and_counted_apart_from_devices() {
    let mut h = Harness::new().await;
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": ["flaky", "steady"]},
                   "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]}}),
            at(0),
        )
        .await;
    let id = job.job.job_id.clone();
    h.pump(at(1)).await;
    let executions = h.executions(&id, at(1)).await;
    let flaky = executions
        .iter()
        .find(|e| e.target.as_str() == "flaky")
        .unwrap();
    let steady = executions
        .iter()
        .find(|e| e.target.as_str() == "steady")
        .unwrap();
    let (flaky_id, steady_id) = (
        flaky.execution_id.to_string(),
        steady.execution_id.to_string(),
    );
    let failed = json!({"status": "FAILED", "statusReason": {"reasonCode": "DISK_FULL"}});

    // WHEN the flaky device fails twice THEN each failure is a new attempt, sent again
    for attempt in 2..=3u32 {
        let now = at(i64::from(attempt) * 10);
        h.device_says("flaky", &flaky_id, failed.clone(), now).await;
        let e = h.courier.get_execution(&flaky_id, now).await.unwrap();
        assert_eq!(
            (e.status, e.execution_number),
            (ExecutionStatus::Queued, attempt)
        );
        assert_eq!(e.status_reason.unwrap().reason_code, "RETRY_AFTER_FAILURE");
        h.pump(at(i64::from(attempt) * 10 + 1)).await;
        let e = h.courier.get_execution(&flaky_id, at(40)).await.unwrap();
        assert_eq!(
            e.status,
            ExecutionStatus::Sent,
            "attempt {attempt} delivered"
        );
    }
    // WHEN it fails a third time THEN the retries are spent: FAILED stands
    h.device_says("flaky", &flaky_id, failed, at(40)).await;
    let e = h.courier.get_execution(&flaky_id, at(41)).await.unwrap();
    assert_eq!((e.status, e.execution_number), (ExecutionStatus::Failed, 3));

    // WHEN the steady device rejects the command THEN REJECTED stands (the
    // policy retries FAILED only)
    let rejected = json!({"status": "REJECTED", "statusReason": {"reasonCode": "UNSUPPORTED"}});
    h.device_says("steady", &steady_id, rejected, at(50)).await;

    // THEN the job counts each device once and every attempt
    h.pump(at(701)).await;
    let view = h.job(&id).await;
    assert_eq!(
        view.job.status,
        JobStatus::Completed,
        "{:?}",
        view.statistics
    );
    assert_eq!(count(&view, ExecutionStatus::Failed), 1);
    assert_eq!(count(&view, ExecutionStatus::Rejected), 1);
    assert_eq!(
        view.statistics.attempts, 4,
        "3 attempts of flaky, 1 of steady"
    );
}

/// DELETE /executions/{id} refuses a job's execution even once it has
/// ended: the job's statistics and history depend on it.
#[tokio::test]
async fn an_ended_job_execution_cannot_be_deleted() {
    let mut h = Harness::new().await;
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"things": ["d-1"]}}),
            at(0),
        )
        .await;
    h.pump(at(1)).await;
    let execution = h.executions(&job.job.job_id, at(1)).await.remove(0);
    h.device_says(
        "d-1",
        execution.execution_id.as_str(),
        json!({"status": "SUCCEEDED"}),
        at(2),
    )
    .await;
    let refused = h
        .courier
        .delete_execution(execution.execution_id.as_str(), at(3))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 409);
    assert!(refused.to_string().contains("belongs to job"), "{refused}");
    let still = h
        .courier
        .get_execution(execution.execution_id.as_str(), at(4))
        .await
        .unwrap();
    assert_eq!(still.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn a_job_for_an_unknown_thing_group_is_refused_and_nothing_is_written() {
    let h = Harness::new().await;
    let err = h
        .courier
        .create_job(
            &h.groups,
            &json!({"commandId": "reboot", "targets": {"thingGroup": "no-such-group"}}).into(),
            at(0),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code().as_str()),
        (404, "ResourceNotFoundException")
    );
    assert_eq!(err.body()["details"]["resource"], "thing group");
    let listed = h.courier.list_jobs(None, None, at(0)).await.unwrap();
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn a_job_over_a_fleet_index_query_fans_out_to_what_the_index_finds() {
    // GIVEN three things in a group, found by the fleet index (moto's)
    let (group, things) = moto_thing_group(3).await;
    let mut h = Harness::new().await;
    let job = h
        .create_job(
            json!({"commandId": "reboot", "targets": {"query": format!("thingGroupNames:{group}")}}),
            at(0),
        )
        .await;
    h.pump(at(1)).await;
    let executions = h.executions(&job.job.job_id, at(1)).await;
    let mut targets: Vec<String> = executions.iter().map(|e| e.target.to_string()).collect();
    targets.sort();
    assert_eq!(targets, things);
}

#[tokio::test]
async fn a_query_the_fleet_index_refuses_is_a_400_naming_targets_query() {
    let h = Harness::new().await;
    let err = h
        .courier
        .create_job(
            &h.groups,
            &courier_core::json::Json::from(
                json!({"commandId": "reboot", "targets": {"query": "attributes.model:(X100"}}),
            ),
            at(0),
        )
        .await
        .unwrap_err();
    let courier_functions::error::ServiceError::Validation(errors) = err else {
        panic!("a validation error, got {err:?}")
    };
    assert_eq!(errors.0[0].path, "targets.query");
    // The fleet index's own sentence, not the SDK's debug output.
    let message = &errors.0[0].message;
    assert!(
        message.starts_with("the fleet index refused the query: ")
            && !message.contains("ErrorMetadata")
            && !message.contains("request_id"),
        "{message}"
    );
}
