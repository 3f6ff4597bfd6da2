//! Dedupe and supersede through the service, over DynamoDB Local: one
//! pending execution per device and `dedupeKey`, concurrent requests
//! included; a superseding request cancels the pending one (SUPERSEDED,
//! its successor named) and the device is told.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, ThingName, Timestamp};
use courier_functions::error::ServiceError;
use courier_functions::ops::job_runner::StepReport;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::{fresh_courier, thing_groups, RecordingPublisher};
use serde_json::{json, Value};
use std::sync::Arc;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

async fn courier() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    let lock = json!({"commandId": "lock", "parameters": [
        {"name": "pin", "type": "S", "default": {"S": "0000"}}]});
    courier.create_command(&lock.into(), at(0)).await.unwrap();
    courier
}

async fn start(
    courier: &Courier<DynamoStore>,
    body: Value,
    now: Timestamp,
) -> Result<(courier_core::CommandExecution, bool), ServiceError> {
    courier
        .start_execution("lock", &body.into(), "alice", now)
        .await
}

async fn pending_on(courier: &Courier<DynamoStore>, thing: &str) -> Vec<String> {
    courier
        .pending(&ThingName::parse(thing).unwrap(), at(100))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.execution_id.to_string())
        .collect()
}

#[tokio::test]
async fn the_same_keyed_request_twice_gives_one_execution() {
    let courier = courier().await;
    let body = json!({"target": "phone-1", "dedupeKey": "lock"});
    let (first, created) = start(&courier, body.clone(), at(1)).await.unwrap();
    assert!(created, "201");
    let (second, created) = start(&courier, body, at(2)).await.unwrap();
    assert!(!created, "200: the pending one");
    assert_eq!(second.execution_id, first.execution_id);
    assert_eq!(
        pending_on(&courier, "phone-1").await,
        [first.execution_id.to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_keyed_requests_create_one_execution() {
    let courier = Arc::new(courier().await);
    let body = json!({"target": "phone-2", "dedupeKey": "lock"});
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (courier, body) = (Arc::clone(&courier), body.clone());
            tokio::spawn(async move { start(&courier, body, at(1 + i)).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    let created = results.iter().filter(|(_, created)| *created).count();
    assert_eq!(created, 1, "exactly one request created it");
    let id = &results[0].0.execution_id;
    assert!(
        results.iter().all(|(e, _)| e.execution_id == *id),
        "all got the same one"
    );
    assert_eq!(pending_on(&courier, "phone-2").await, [id.to_string()]);
}

#[tokio::test]
async fn other_parameters_under_a_pending_key_are_a_conflict() {
    let courier = courier().await;
    let (pending, _) = start(
        &courier,
        json!({"target": "phone-3", "dedupeKey": "lock"}),
        at(1),
    )
    .await
    .unwrap();
    let err = start(
        &courier,
        json!({"target": "phone-3", "dedupeKey": "lock", "parameters": {"pin": {"S": "9999"}}}),
        at(2),
    )
    .await
    .unwrap_err();
    match err {
        ServiceError::Conflict(why) => {
            assert!(why.contains(pending.execution_id.as_str()), "{why}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(pending_on(&courier, "phone-3").await.len(), 1);
}

#[tokio::test]
async fn a_superseding_request_cancels_the_pending_one_and_names_its_successor() {
    let courier = courier().await;
    let (old, _) = start(
        &courier,
        json!({"target": "phone-4", "dedupeKey": "lock"}),
        at(1),
    )
    .await
    .unwrap();
    let (new, created) = start(
        &courier,
        json!({"target": "phone-4", "dedupeKey": "lock", "supersede": true,
               "parameters": {"pin": {"S": "4321"}}}),
        at(2),
    )
    .await
    .unwrap();
    assert!(created);
    assert_eq!(new.supersedes.as_ref(), Some(&old.execution_id));
    let old = courier
        .get_execution(old.execution_id.as_str(), at(3))
        .await
        .unwrap();
    assert_eq!(old.status, ExecutionStatus::Canceled);
    assert_eq!(
        old.status_reason.as_ref().unwrap().reason_code,
        "SUPERSEDED"
    );
    assert_eq!(old.superseded_by.as_ref(), Some(&new.execution_id));
    assert_eq!(old.canceled_by.as_deref(), Some("alice"));
    assert_eq!(
        pending_on(&courier, "phone-4").await,
        [new.execution_id.to_string()]
    );

    // THEN the device is told, as the dispatcher tells it of any cancel:
    // its next execution is now the successor
    let publisher = RecordingPublisher::default();
    let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
    courier
        .announce_change(&root, &publisher, &old, at(3))
        .await
        .unwrap();
    let sent = publisher.take();
    let next = sent
        .iter()
        .find(|(topic, _)| topic.ends_with("/notify-next"))
        .expect("notify-next published");
    assert_eq!(next.1["execution"]["jobId"], new.execution_id.as_str());
}

#[tokio::test]
async fn started_work_is_not_superseded_without_force() {
    let courier = courier().await;
    let (old, _) = start(
        &courier,
        json!({"target": "phone-5", "dedupeKey": "lock"}),
        at(1),
    )
    .await
    .unwrap();
    courier
        .start_next(
            &ThingName::parse("phone-5").unwrap(),
            &json!({}).into(),
            "r1",
            at(2),
        )
        .await
        .unwrap()
        .unwrap();
    let replace = json!({"target": "phone-5", "dedupeKey": "lock", "supersede": true,
                         "parameters": {"pin": {"S": "1111"}}});
    let err = start(&courier, replace.clone(), at(3)).await.unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    let mut forced = replace;
    forced["force"] = json!(true);
    let (new, _) = start(&courier, forced, at(4)).await.unwrap();
    let old = courier
        .get_execution(old.execution_id.as_str(), at(5))
        .await
        .unwrap();
    assert_eq!(old.status, ExecutionStatus::Canceled);
    assert_eq!(old.superseded_by.as_ref(), Some(&new.execution_id));
}

#[tokio::test]
async fn a_key_is_free_again_once_its_execution_ended() {
    let courier = courier().await;
    let body = json!({"target": "phone-6", "dedupeKey": "lock"});
    let (old, _) = start(&courier, body.clone(), at(1)).await.unwrap();
    courier
        .cancel_execution(
            old.execution_id.as_str(),
            &json!({}).into(),
            "bob",
            at(2),
            "c1",
        )
        .await
        .unwrap();
    let (new, created) = start(&courier, body, at(3)).await.unwrap();
    assert!(created);
    assert_ne!(new.execution_id, old.execution_id);
    assert_eq!(new.supersedes, None, "nothing was pending to supersede");
}

#[tokio::test]
async fn a_job_s_execution_is_never_superseded_by_a_standalone_request() {
    let courier = courier().await;
    let groups = thing_groups().await;
    let (job, _) = courier
        .create_job(
            &groups,
            &json!({"commandId": "lock", "targets": {"things": ["phone-7"]}}).into(),
            at(1),
        )
        .await
        .unwrap();
    let id = job.job.job_id.clone();
    while let StepReport::FannedOut { .. } = courier.run_job(&groups, &id, at(2)).await.unwrap() {}
    let (mine, created) = start(
        &courier,
        json!({"target": "phone-7", "dedupeKey": "lock", "supersede": true}),
        at(3),
    )
    .await
    .unwrap();
    assert!(created);
    let pending = pending_on(&courier, "phone-7").await;
    assert_eq!(
        pending.len(),
        2,
        "the job's execution is still pending: {pending:?}"
    );
    assert!(pending.contains(&mine.execution_id.to_string()));
}

#[tokio::test]
async fn supersede_needs_a_dedupe_key() {
    let courier = courier().await;
    let err = start(
        &courier,
        json!({"target": "phone-8", "supersede": true}),
        at(1),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ServiceError::Validation(_)), "{err:?}");
}
