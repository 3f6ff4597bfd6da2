//! Deferrals ("not now") and the retry policy through the service, over
//! DynamoDB Local: what the device is offered next, what is counted, and
//! when held work comes back (times passed in, never slept).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::TopicRoot;
use courier_core::{ExecutionStatus, ThingName, Timestamp};
use courier_functions::ops::device_updates::{Delivery, DeviceUpdateOutcome};
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::{fresh_courier, RecordingPublisher};
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse("$aws/things/{thingName}/jobs").unwrap()
}

fn dev() -> ThingName {
    ThingName::parse("dev-1").unwrap()
}

/// A command (with `definition`'s extra fields) and `count` executions of
/// it queued for dev-1, one second apart.
async fn queued(definition: serde_json::Value, count: i64) -> (Courier<DynamoStore>, Vec<String>) {
    let courier = fresh_courier().await;
    let mut body = json!({"commandId": "flash"});
    body.as_object_mut()
        .unwrap()
        .extend(definition.as_object().unwrap().clone());
    courier.create_command(&body.into(), at(0)).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..count {
        let (e, _) = courier
            .start_execution("flash", &json!({"target": "dev-1"}).into(), "alice", at(i))
            .await
            .unwrap();
        ids.push(e.execution_id.to_string());
    }
    (courier, ids)
}

async fn take_next(courier: &Courier<DynamoStore>, now: Timestamp) -> Option<String> {
    courier
        .start_next(
            &dev(),
            &json!({}).into(),
            &format!("req-{}", now.millis()),
            now,
        )
        .await
        .unwrap()
        .map(|next| next.execution.execution_id.to_string())
}

async fn report(
    courier: &Courier<DynamoStore>,
    id: &str,
    body: serde_json::Value,
    now: Timestamp,
) -> courier_core::CommandExecution {
    let request = format!("update-{id}-{}", now.millis());
    match courier
        .device_update("dev-1", id, &body.into(), Delivery::new(&request), now)
        .await
        .unwrap()
    {
        DeviceUpdateOutcome::Applied { execution, .. } => execution,
        other => panic!("not applied: {other:?}"),
    }
}

fn not_now_from_an_aws_sdk_device() -> serde_json::Value {
    json!({"status": "REJECTED", "statusDetails": {"reasonCode": "NOT_NOW"}})
}

#[tokio::test]
async fn a_deferred_execution_is_skipped_until_its_wait_ends() {
    let (courier, ids) = queued(json!({}), 2).await;
    assert_eq!(
        take_next(&courier, at(10)).await.as_deref(),
        Some(ids[0].as_str())
    );
    let deferred = report(&courier, &ids[0], not_now_from_an_aws_sdk_device(), at(11)).await;
    assert_eq!(deferred.status, ExecutionStatus::Queued);
    // THEN start-next offers the next one, not the deferred one straight back
    assert_eq!(
        take_next(&courier, at(12)).await.as_deref(),
        Some(ids[1].as_str())
    );
    let pending = courier.pending(&dev(), at(12)).await.unwrap();
    assert!(
        pending.iter().all(|e| e.execution_id.as_str() != ids[0]),
        "get does not show it while it waits"
    );
}

#[tokio::test]
async fn a_deferred_execution_is_offered_again_without_spending_an_attempt() {
    let (courier, ids) = queued(json!({}), 1).await;
    take_next(&courier, at(10)).await.unwrap();
    report(&courier, &ids[0], not_now_from_an_aws_sdk_device(), at(11)).await;
    assert_eq!(
        take_next(&courier, at(70)).await,
        None,
        "still waiting at 70 s"
    );
    // WHEN the wait (60 s by default) is over, the sweeper releases it
    let publisher = RecordingPublisher::default();
    let report = courier
        .sweep(&root(), &publisher, at(71), 100)
        .await
        .unwrap();
    assert_eq!(report.dispatched, 1);
    assert_eq!(
        take_next(&courier, at(72)).await.as_deref(),
        Some(ids[0].as_str())
    );
    let e = courier.get_execution(&ids[0], at(72)).await.unwrap();
    assert_eq!(
        (e.status, e.execution_number, e.defer_count),
        (ExecutionStatus::InProgress, 1, 1)
    );
    assert_eq!(e.last_deferred_at, Some(at(11)));
}

#[tokio::test]
async fn a_failure_the_command_policy_names_is_retried_after_its_backoff() {
    let policy = json!({"retryPolicy": {"maxAttempts": 3,
        "retryOn": [{"status": "FAILED", "reasonCodes": ["E_NETWORK"]}],
        "backoff": {"strategy": "EXPONENTIAL", "minSeconds": 30, "maxSeconds": 600}}});
    let (courier, ids) = queued(policy, 1).await;
    take_next(&courier, at(10)).await.unwrap();
    let failed = json!({"status": "FAILED", "statusReason": {"reasonCode": "E_NETWORK"}});
    let e = report(&courier, &ids[0], failed.clone(), at(20)).await;
    assert_eq!(
        (e.status, e.execution_number, e.not_before),
        (ExecutionStatus::Queued, 2, Some(at(50)))
    );
    assert_eq!(take_next(&courier, at(49)).await, None, "held for 30 s");
    assert!(take_next(&courier, at(50)).await.is_some());
    // The second failure waits twice as long.
    let e = report(&courier, &ids[0], failed.clone(), at(60)).await;
    assert_eq!((e.execution_number, e.not_before), (3, Some(at(120))));
}

#[tokio::test]
async fn a_failure_the_policy_does_not_name_stands() {
    let policy = json!({"retryPolicy": {"maxAttempts": 3,
        "retryOn": [{"status": "FAILED", "reasonCodes": ["E_NETWORK"]}]}});
    let (courier, ids) = queued(policy, 1).await;
    take_next(&courier, at(10)).await.unwrap();
    let failed = json!({"status": "FAILED", "statusReason": {"reasonCode": "DISK_FULL"}});
    let e = report(&courier, &ids[0], failed, at(20)).await;
    assert_eq!((e.status, e.execution_number), (ExecutionStatus::Failed, 1));
}

#[tokio::test]
async fn delivery_and_the_first_answer_are_recorded_with_who_changed_it() {
    let (courier, ids) = queued(json!({}), 1).await;
    // WHEN the dispatcher delivers it (as the table's stream would ask)
    let queued = courier.get_execution(&ids[0], at(5)).await.unwrap();
    let publisher = RecordingPublisher::default();
    courier
        .dispatch(&root(), &publisher, &queued, at(5))
        .await
        .unwrap();
    let e = courier.get_execution(&ids[0], at(5)).await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Sent);
    assert_eq!(e.sent_at, Some(at(5)));
    assert_eq!(e.created_by.as_deref(), Some("alice"));
    assert_eq!(e.last_updated_by.as_deref(), Some("courier"));
    let e = report(&courier, &ids[0], json!({"status": "IN_PROGRESS"}), at(9)).await;
    let e2 = report(&courier, &ids[0], json!({"status": "SUCCEEDED"}), at(15)).await;
    assert_eq!(e.acknowledged_at, Some(at(9)));
    assert_eq!(e2.acknowledged_at, Some(at(9)), "the first answer stays");
    assert_eq!(e2.last_updated_by.as_deref(), Some("thing/dev-1"));
    // and who moved it into each status, as the table keeps it
    let by: Vec<(String, String)> = e2
        .changed_by
        .iter()
        .map(|(s, who)| (s.clone(), who.clone()))
        .collect();
    let expected = [
        ("IN_PROGRESS", "thing/dev-1"),
        ("SENT", "courier"),
        ("SUCCEEDED", "thing/dev-1"),
    ];
    assert_eq!(
        by,
        expected.map(|(s, w)| (s.to_owned(), w.to_owned())),
        "per status"
    );
    let stored = courier.get_execution(&ids[0], at(16)).await.unwrap();
    assert_eq!(stored.changed_by, e2.changed_by, "read back from the table");
}
