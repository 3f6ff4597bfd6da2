//! The device side of the service (AWS IoT Jobs semantics) over DynamoDB
//! Local: GetPendingJobExecutions and StartNextPendingJobExecution's atomic
//! claim.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::{protocol, ExecutionStatus, Timestamp};
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::Courier;
use courier_tests::fresh_courier;
use serde_json::json;
use std::sync::Arc;

const NOW: i64 = 1_800_000_000;

async fn courier_with_queued(thing: &str, count: i64) -> (Courier<DynamoStore>, Vec<String>) {
    let courier = fresh_courier().await;
    courier
        .create_command(&json!({"commandId": "reboot"}), Timestamp::from_secs(NOW))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..count {
        let (e, _) = courier
            .start_execution(
                "reboot",
                &json!({"target": thing}),
                Timestamp::from_secs(NOW + i),
            )
            .await
            .unwrap();
        ids.push(e.execution_id.to_string());
    }
    (courier, ids)
}

#[tokio::test]
async fn start_next_claims_the_oldest_queued_then_keeps_returning_it() {
    // GIVEN three queued executions
    let (courier, ids) = courier_with_queued("dev-1", 3).await;
    let now = Timestamp::from_secs(NOW + 10);
    // WHEN the device asks for its next one, with progress details
    let started = courier
        .start_next(
            "dev-1",
            &json!({"statusDetails": {"step": "boot"}, "stepTimeoutInMinutes": 5}),
            "req-1",
            now,
        )
        .await
        .unwrap()
        .unwrap();
    // THEN the oldest is IN_PROGRESS, version 2, with the details
    assert_eq!(started.execution_id.as_str(), ids[0]);
    assert_eq!(
        (started.status, started.version),
        (ExecutionStatus::InProgress, 2)
    );
    assert_eq!(started.status_details["step"], "boot");
    // and asking again returns the same one, unchanged
    let again = courier
        .start_next("dev-1", &json!({}), "req-2", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.execution_id.as_str(), again.version),
        (ids[0].as_str(), 2)
    );
    // and the pending list shows it in progress, the others queued
    let pending = courier.pending("dev-1", now).await.unwrap();
    let reply = protocol::pending_reply(&pending, None, now);
    assert_eq!(reply["inProgressJobs"][0]["jobId"], ids[0].as_str());
    let queued: Vec<_> = reply["queuedJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(queued, [ids[1].as_str(), ids[2].as_str()]);
}

#[tokio::test]
async fn nothing_pending_is_none_and_other_devices_are_untouched() {
    let (courier, _) = courier_with_queued("dev-1", 1).await;
    let now = Timestamp::from_secs(NOW + 10);
    assert_eq!(
        courier
            .start_next("dev-2", &json!(null), "r", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        courier.pending("dev-1", now).await.unwrap()[0].status,
        ExecutionStatus::Queued
    );
    assert!(courier
        .start_next("bad thing", &json!(null), "r", now)
        .await
        .is_err());
}

#[tokio::test]
async fn concurrent_start_next_requests_claim_one_execution_once() {
    // GIVEN two queued executions and six simultaneous start-next requests
    let (courier, ids) = courier_with_queued("dev-1", 2).await;
    let courier = Arc::new(courier);
    let now = Timestamp::from_secs(NOW + 10);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let courier = Arc::clone(&courier);
            tokio::spawn(async move {
                courier
                    .start_next("dev-1", &json!({}), &format!("req-{i}"), now)
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.push(task.await.unwrap());
    }
    // THEN every request got the oldest, which moved to IN_PROGRESS exactly once
    assert!(claimed
        .iter()
        .all(|e| e.execution_id.as_str() == ids[0] && e.status == ExecutionStatus::InProgress));
    let first = courier.get_execution(&ids[0], now).await.unwrap();
    assert_eq!(first.version, 2);
    let second = courier.get_execution(&ids[1], now).await.unwrap();
    assert_eq!(
        (second.status, second.version),
        (ExecutionStatus::Queued, 1)
    );
}

#[tokio::test]
async fn a_cancelled_execution_is_skipped_by_start_next() {
    let (courier, ids) = courier_with_queued("dev-1", 2).await;
    let now = Timestamp::from_secs(NOW + 10);
    courier
        .cancel_execution(&ids[0], &json!(null), now, "op")
        .await
        .unwrap();
    let next = courier
        .start_next("dev-1", &json!(null), "r", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.execution_id.as_str(), ids[1]);
}
