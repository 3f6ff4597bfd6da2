//! The `dispatcher` and `sweeper` handlers, driven by real DynamoDB stream
//! records (read back from DynamoDB Local's stream of a fresh table) and
//! scheduled events, with a recording publisher. Time is passed in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, Timestamp};
use courier_functions::entry::sweeper;
use courier_functions::ops::{Courier, OptionalMessages};
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::store::Store;
use courier_local::stream::replay as read_stream;
use courier_tests::lambda_event;
use courier_tests::{context, fresh_courier, send_to_dispatcher, thing_groups, RecordingPublisher};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).unwrap()
}

async fn setup() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    courier
        .create_command(
            &json!({"commandId": "reboot", "executionTimeoutSeconds": 600, "retentionSeconds": 3600}).into(),
            at(0),
        )
        .await
        .unwrap();
    courier
}

async fn start(courier: &Courier<DynamoStore>, body: Value) -> String {
    let (e, _) = courier
        .start_execution(
            "reboot",
            &courier_core::json::Json::from(body.clone()),
            "tester",
            at(0),
        )
        .await
        .unwrap();
    e.execution_id.to_string()
}

/// The table's stream records about execution `id`, as Lambda delivers them.
async fn records_of(courier: &Courier<DynamoStore>, id: &str) -> Vec<Value> {
    read_stream(courier.store().table())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r["dynamodb"]["Keys"]["pk"]["S"]
                == json!(courier
                    .store()
                    .execution_pk(&courier_core::ExecutionId::parse(id).unwrap()))
        })
        .collect()
}

async fn dispatch(
    courier: &Courier<DynamoStore>,
    publisher: &RecordingPublisher,
    records: Vec<Value>,
    now: Timestamp,
) -> Value {
    send_to_dispatcher(courier, publisher, &thing_groups().await, records, now).await
}

async fn status_of(
    courier: &Courier<DynamoStore>,
    id: &str,
    now: Timestamp,
) -> (ExecutionStatus, u64) {
    let e = courier.get_execution(id, now).await.unwrap();
    (e.status, e.version)
}

#[tokio::test]
async fn a_new_execution_is_sent_once_even_when_its_record_is_replayed() {
    let courier = setup().await;
    let publisher = RecordingPublisher::default();
    let id = start(&courier, json!({"target": "dev-1"})).await;
    let insert = records_of(&courier, &id).await;
    assert_eq!(insert.len(), 1);
    assert_eq!(insert[0]["eventName"], "INSERT");

    // WHEN the INSERT record arrives
    let out = dispatch(&courier, &publisher, insert.clone(), at(1)).await;
    assert_eq!(out["handled"][0]["did"], "sent", "{out}");
    // THEN the device is told (notify, then notify-next naming it) and it is SENT
    let sent = publisher.take();
    let topics: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "courier/things/dev-1/jobs/notify",
            "courier/things/dev-1/jobs/notify-next"
        ]
    );
    assert_eq!(sent[1].1["execution"]["jobId"], json!(id));
    assert_eq!(
        status_of(&courier, &id, at(1)).await,
        (ExecutionStatus::Sent, 2)
    );

    // WHEN the same record is delivered again THEN nothing is sent or written
    let again = dispatch(&courier, &publisher, insert, at(2)).await;
    assert_eq!(again["batchItemFailures"], json!([]));
    assert!(publisher.take().is_empty());
    assert_eq!(
        status_of(&courier, &id, at(2)).await,
        (ExecutionStatus::Sent, 2)
    );
}

/// A deployment without list notifications (`LIST_NOTIFICATIONS=off`).
async fn setup_without_list_notifications() -> Courier<DynamoStore> {
    setup().await.with_optional_messages(OptionalMessages {
        list_notifications: false,
        ..OptionalMessages::default()
    })
}

#[tokio::test]
async fn without_list_notifications_a_new_execution_is_announced_by_notify_next_alone() {
    let courier = setup_without_list_notifications().await;
    let publisher = RecordingPublisher::default();
    let id = start(&courier, json!({"target": "dev-1"})).await;
    let out = dispatch(&courier, &publisher, records_of(&courier, &id).await, at(1)).await;
    assert_eq!(out["handled"][0]["did"], "sent", "{out}");
    let sent = publisher.take();
    let topics: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["courier/things/dev-1/jobs/notify-next"]);
    assert_eq!(sent[0].1["execution"]["jobId"], json!(id));
    assert_eq!(
        status_of(&courier, &id, at(1)).await,
        (ExecutionStatus::Sent, 2)
    );
}

/// Cancels `id` at `offset`, then hands the cancel's stream record to the
/// dispatcher a second later; what it answered.
async fn cancel_and_dispatch(
    courier: &Courier<DynamoStore>,
    publisher: &RecordingPublisher,
    id: &str,
    offset: i64,
) -> Value {
    courier
        .cancel_execution(id, &json!({}).into(), "ops", at(offset), "req")
        .await
        .unwrap();
    let canceled: Vec<Value> = records_of(courier, id)
        .await
        .into_iter()
        .filter(|r| r["dynamodb"]["NewImage"]["status"]["S"] == "CANCELED")
        .collect();
    dispatch(courier, publisher, canceled, at(offset + 1)).await
}

#[tokio::test]
async fn without_list_notifications_a_change_that_leaves_the_next_execution_publishes_nothing() {
    let courier = setup_without_list_notifications().await;
    let publisher = RecordingPublisher::default();
    let first = start(&courier, json!({"target": "dev-2"})).await;
    // created a second later, so it is behind the first in the queue
    let (second, _) = courier
        .start_execution(
            "reboot",
            &json!({"target": "dev-2"}).into(),
            "tester",
            at(1),
        )
        .await
        .unwrap();
    let second = second.execution_id.to_string();
    for id in [&first, &second] {
        dispatch(&courier, &publisher, records_of(&courier, id).await, at(1)).await;
    }
    publisher.take();
    // WHEN the second (not the device's next) is canceled
    let out = cancel_and_dispatch(&courier, &publisher, &second, 2).await;
    // THEN its pending list changed, but its next did not: no message at all
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    assert_eq!(publisher.take(), Vec::<(String, Value)>::new());
    // AND canceling the first (its next) tells it that nothing is next
    cancel_and_dispatch(&courier, &publisher, &first, 4).await;
    let told = publisher.take();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "courier/things/dev-2/jobs/notify-next");
    assert!(told[0].1.get("execution").is_none(), "{told:?}");
}

#[tokio::test]
async fn a_failed_publish_is_retried_by_the_sweeper_without_blocking_the_stream() {
    let courier = setup().await;
    let publisher = RecordingPublisher::default();
    let id = start(&courier, json!({"target": "dev-2"})).await;
    let insert = records_of(&courier, &id).await;

    // WHEN the broker is unreachable
    publisher.failing.store(true, Ordering::Relaxed);
    let out = dispatch(&courier, &publisher, insert, at(1)).await;
    // THEN the record is done with (no batch failure) and the execution waits
    // on hold for the retry
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(out["handled"][0]["did"], "publish failed, retry scheduled");
    let held = courier.get_execution(&id, at(1)).await.unwrap();
    assert_eq!(held.status, ExecutionStatus::Queued);
    assert_eq!(held.not_before, Some(at(31)));
    assert_eq!(held.status_reason.unwrap().reason_code, "PUBLISH_FAILED");

    // WHEN the sweeper runs after the hold, with the broker back
    publisher.failing.store(false, Ordering::Relaxed);
    let early = sweeper::handle(
        &courier,
        &root(),
        &publisher,
        &thing_groups().await,
        lambda_event(
            courier_local::events::scheduled_event_json(at(20)),
            context("s0"),
        ),
        || at(20),
    )
    .await
    .unwrap();
    assert_eq!(early.dispatched, 0, "not before its retry time");
    let report = sweeper::handle(
        &courier,
        &root(),
        &publisher,
        &thing_groups().await,
        lambda_event(
            courier_local::events::scheduled_event_json(at(40)),
            context("s1"),
        ),
        || at(31),
    )
    .await
    .unwrap();
    // THEN it is delivered
    assert_eq!(report.dispatched, 1, "{report:?}");
    assert_eq!(
        status_of(&courier, &id, at(31)).await.0,
        ExecutionStatus::Sent
    );
    assert!(publisher
        .take()
        .iter()
        .any(|(t, p)| t.ends_with("/notify-next") && p["execution"]["jobId"] == json!(id)));
}

#[tokio::test]
async fn poison_and_foreign_records_are_skipped_and_do_not_block_the_shard() {
    let courier = setup().await;
    let publisher = RecordingPublisher::default();
    let id = start(&courier, json!({"target": "dev-3"})).await;
    // Well-formed records (Lambda's envelope is always whole) whose images
    // are not executions Courier can read, or not executions at all.
    let record = |n: u32, event: &str, image: Value| {
        json!({"eventID": format!("e{n}"), "eventName": event, "awsRegion": "us-east-1",
               "dynamodb": {"SequenceNumber": n.to_string(), "SizeBytes": 10, "NewImage": image}})
    };
    let mut records = vec![
        record(
            1,
            "INSERT",
            json!({"pk": {"S": "T#default#EXEC#x"}, "status": {"N": "oops"}}),
        ),
        record(
            2,
            "INSERT",
            json!({"pk": {"S": "T#default#COMMANDS"}, "sk": {"S": "reboot"}}),
        ),
        record(3, "REMOVE", json!({})),
    ];
    records.extend(records_of(&courier, &id).await);
    let out = dispatch(&courier, &publisher, records, at(1)).await;
    assert_eq!(out["batchItemFailures"], json!([]));
    assert_eq!(out["handled"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(
        status_of(&courier, &id, at(1)).await.0,
        ExecutionStatus::Sent
    );
}

#[tokio::test]
async fn the_sweeper_times_out_what_is_overdue_and_the_device_is_told() {
    let courier = setup().await;
    let publisher = RecordingPublisher::default();
    let undelivered = start(
        &courier,
        json!({"target": "dev-4", "deliveryTimeoutSeconds": 10}),
    )
    .await;
    let fine = start(&courier, json!({"target": "dev-5"})).await;
    dispatch(
        &courier,
        &publisher,
        records_of(&courier, &undelivered).await,
        at(1),
    )
    .await;
    publisher.take();

    // WHEN the sweeper runs past deliverBy
    let report = sweeper::handle(
        &courier,
        &root(),
        &publisher,
        &thing_groups().await,
        lambda_event(
            courier_local::events::scheduled_event_json(at(0)),
            context("s"),
        ),
        || at(11),
    )
    .await
    .unwrap();
    // THEN only the overdue one is timed out, saying which deadline fired
    assert_eq!((report.due, report.timed_out), (1, 1), "{report:?}");
    let e = courier.get_execution(&undelivered, at(11)).await.unwrap();
    assert_eq!(e.status, ExecutionStatus::TimedOut);
    assert_eq!(e.status_reason.unwrap().reason_code, "DELIVERY_TIMEOUT");
    assert_eq!(
        status_of(&courier, &fine, at(11)).await.0,
        ExecutionStatus::Queued,
        "the other is not due: delivering it is the stream's job"
    );

    // AND the sweep that timed it out told the device at once: nothing next
    let told = publisher.take();
    assert!(
        told.iter()
            .any(|(t, p)| t == "courier/things/dev-4/jobs/notify-next"
                && p.get("execution").is_none()),
        "{told:?}"
    );
    // AND the timeout's MODIFY record makes the dispatcher publish the list,
    // but no second notify-next (the device was told)
    let modify: Vec<Value> = records_of(&courier, &undelivered)
        .await
        .into_iter()
        .filter(|r| r["dynamodb"]["NewImage"]["status"]["S"] == "TIMED_OUT")
        .collect();
    let out = dispatch(&courier, &publisher, modify, at(12)).await;
    assert_eq!(out["handled"][0]["did"], "device notified", "{out}");
    let topics: Vec<String> = publisher.take().into_iter().map(|(t, _)| t).collect();
    assert_eq!(topics, ["courier/things/dev-4/jobs/notify"]);

    // AND a read never shows an overdue execution as still running
    let slow = start(
        &courier,
        json!({"target": "dev-6", "executionTimeoutSeconds": 5}),
    )
    .await;
    let seen = courier.get_execution(&slow, at(6)).await.unwrap();
    assert_eq!(
        seen.status,
        ExecutionStatus::TimedOut,
        "reported before any sweep"
    );
    assert_eq!(
        courier
            .store()
            .get_execution(&seen.execution_id, at(6))
            .await
            .unwrap()
            .unwrap()
            .status,
        ExecutionStatus::Queued
    );
}

#[tokio::test]
async fn a_cancel_after_a_missed_deadline_enforces_it_first() {
    let courier = setup().await;
    // GIVEN one execution past its only attempt's deliverBy, and one that
    // may be retried
    let last = start(
        &courier,
        json!({"target": "dev-7", "deliveryTimeoutSeconds": 5}),
    )
    .await;
    let retried = start(
        &courier,
        json!({"target": "dev-8", "deliveryTimeoutSeconds": 5, "onTimeout": "RETRY", "maxAttempts": 2}),
    )
    .await;
    // WHEN an operator cancels both after deliverBy, before any sweep
    let refused = courier
        .cancel_execution(&last, &json!({}).into(), "ops", at(6), "c1")
        .await
        .unwrap_err();
    let canceled = courier
        .cancel_execution(&retried, &json!({}).into(), "ops", at(6), "c2")
        .await
        .unwrap();
    // THEN the first is timed out (the cancel came too late to matter) and
    // the second's new attempt is canceled
    assert_eq!(refused.code().as_str(), "TerminalStateReached");
    assert_eq!(
        status_of(&courier, &last, at(6)).await.0,
        ExecutionStatus::TimedOut
    );
    assert_eq!(
        (canceled.status, canceled.execution_number),
        (ExecutionStatus::Canceled, 2)
    );
    assert_eq!(canceled.canceled_by.as_deref(), Some("ops"));
}
