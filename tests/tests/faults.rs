//! Faults, with the functions' own SDK settings (bounded retries and
//! timeouts): storage unreachable, throttled, BatchWriteItem leaving items
//! unprocessed (injected by `courier_tests::chaos` in front of DynamoDB
//! Local), and DynamoDB Local itself stopped and restarted in the middle of
//! a load run. The API answers 503/429 with Retry-After, the device path
//! hands the event back to the platform, and afterwards every accepted
//! request is stored and no execution is half-updated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, JobId, Timestamp};
use courier_functions::entry::device_events;
use courier_functions::ops::page_token::PageTokens;
use courier_functions::ops::Courier;
use courier_functions::platform::aws::SDK_MAX_ATTEMPTS;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::chaos::{Chaos, Mode};
use courier_tests::lambda_event;
use courier_tests::{
    all_job_executions, api_settings, context, endpoint, http_event, iot_rule_event_at,
    production_like_client, send_to_api, thing_groups, OwnDynamoDbLocal, RecordingPublisher,
    PAGE_TOKEN_SECRET,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const NOW: i64 = 1_800_000_000;

/// A fresh table on DynamoDB Local, and the service reaching it through
/// `endpoint` with the functions' SDK settings.
async fn courier_via(endpoint: &str) -> Courier<DynamoStore> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let table = format!(
        "courier-faults-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    courier_functions::store::table::create_table(&courier_tests::client().await, &table)
        .await
        .unwrap();
    let store = DynamoStore::new(
        production_like_client(endpoint).await,
        table,
        courier_functions::entry::api::auth::default_tenant(),
    );
    Courier::new(store, PageTokens::new(PAGE_TOKEN_SECRET.to_vec()))
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<String>,
}

async fn call(
    courier: &Courier<DynamoStore>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Answer {
    let event = http_event(method, path, body.as_ref());
    let reply = send_to_api(
        courier,
        &api_settings(true),
        &event,
        Timestamp::from_secs(NOW),
    )
    .await;
    Answer {
        status: reply.status,
        retry_after: reply
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: reply.body,
    }
}

/// A device update as the IoT rule delivers it; `Err` when the handler hands
/// the event back to Lambda for a retry.
async fn device(
    courier: &Courier<DynamoStore>,
    thing: &str,
    id: &str,
    status: &str,
    request_id: &str,
    received_ms: i64,
) -> Result<Vec<(String, Value)>, String> {
    let publisher = RecordingPublisher::default();
    let topic = format!("courier/things/{thing}/jobs/{id}/update");
    let mut update = json!({ "status": status });
    if status == "SUCCEEDED" {
        update["result"] = json!({"ok": {"B": true}});
    }
    device_events::handle(
        courier,
        &TopicRoot::parse(DEFAULT_ROOT).unwrap(),
        &publisher,
        lambda_event(
            iot_rule_event_at(&topic, &update, received_ms),
            context(request_id),
        ),
        Timestamp::from_secs(NOW),
    )
    .await
    .map(|_| publisher.take())
    .map_err(|e| e.error_type)
}

fn upstream() -> String {
    endpoint().trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn an_unreachable_store_is_503_with_retry_after_and_device_events_go_back_to_the_platform() {
    let chaos = Chaos::start(&upstream()).await.unwrap();
    let courier = courier_via(&chaos.url).await;
    assert_eq!(
        call(
            &courier,
            "POST",
            "/commands",
            Some(json!({"commandId": "reboot"}))
        )
        .await
        .status,
        201
    );
    let started = call(
        &courier,
        "POST",
        "/commands/reboot/executions",
        Some(json!({"target": "dev-1", "clientToken": "first"})),
    )
    .await;
    let id = started.body["executionId"].as_str().unwrap().to_owned();

    // WHEN storage becomes unreachable
    chaos.set(Mode::Down);
    let before = chaos.calls();
    let refused = call(
        &courier,
        "POST",
        "/commands/reboot/executions",
        Some(json!({"target": "dev-1", "clientToken": "second"})),
    )
    .await;
    // THEN the API answers 503 with Retry-After, after a bounded number of attempts
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (503, Some("ServiceUnavailableException"))
    );
    assert_eq!(refused.retry_after.as_deref(), Some("2"));
    assert!(
        chaos.calls() - before <= u64::from(SDK_MAX_ATTEMPTS) * 2,
        "{} calls",
        chaos.calls() - before
    );
    // ... and a device's update is handed back to the platform, unanswered
    let outcome = device(
        &courier,
        "dev-1",
        &id,
        "IN_PROGRESS",
        "req-7",
        NOW * 1000 + 7,
    )
    .await;
    assert_eq!(outcome, Err("ServiceUnavailableException".to_owned()));

    // WHEN storage is back and the platform redelivers (the same request id, twice)
    chaos.set(Mode::Pass);
    for _ in 0..2 {
        let replies = device(
            &courier,
            "dev-1",
            &id,
            "IN_PROGRESS",
            "req-7",
            NOW * 1000 + 7,
        )
        .await
        .unwrap();
        assert!(replies[0].0.ends_with("/update/accepted"), "{replies:?}");
    }
    let retried = call(
        &courier,
        "POST",
        "/commands/reboot/executions",
        Some(json!({"target": "dev-1", "clientToken": "second"})),
    )
    .await;
    // THEN each is applied once
    assert!(
        retried.status == 201 || retried.status == 200,
        "{}",
        retried.status
    );
    let e = courier
        .get_execution(&id, Timestamp::from_secs(NOW))
        .await
        .unwrap();
    assert_eq!((e.status, e.version), (ExecutionStatus::InProgress, 2));
}

#[tokio::test]
async fn throttling_is_429_with_retry_after_after_the_sdk_retry_budget() {
    let chaos = Chaos::start(&upstream()).await.unwrap();
    let courier = courier_via(&chaos.url).await;
    chaos.set(Mode::Throttle);
    let before = chaos.calls();
    let answer = call(&courier, "GET", "/commands", None).await;
    assert_eq!(
        (answer.status, answer.body["code"].as_str()),
        (429, Some("ThrottlingException"))
    );
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    // Exactly the budget: the first attempt and its retries, no more.
    assert_eq!(chaos.calls() - before, u64::from(SDK_MAX_ATTEMPTS));
}

#[tokio::test]
async fn unprocessed_batch_items_are_retried_until_every_execution_is_written_once() {
    let chaos = Chaos::start(&upstream()).await.unwrap();
    let courier = courier_via(&chaos.url).await;
    let now = Timestamp::from_secs(NOW);
    courier
        .create_command(
            &json!({"commandId": "reboot", "executionTimeoutSeconds": 3600}).into(),
            now,
        )
        .await
        .unwrap();
    let things: Vec<String> = (0..200).map(|i| format!("t-{i:03}")).collect();
    let (job, _) = courier
        .create_job(
            &thing_groups().await,
            &json!({"commandId": "reboot", "targets": {"things": things}}).into(),
            now,
        )
        .await
        .unwrap();
    // WHEN every BatchWriteItem of the fan-out writes only half its items
    let batch_writes_before = chaos.batch_writes();
    chaos.leave_unprocessed(1_000);
    let id: JobId = job.job.job_id.clone();
    courier
        .run_job(&thing_groups().await, &id, now)
        .await
        .unwrap();
    chaos.leave_unprocessed(0);
    // THEN the store retried the unprocessed halves until all 200 were written
    let all = all_job_executions(&courier, &id, now).await;
    let mut targets: Vec<String> = all.iter().map(|e| e.target.to_string()).collect();
    targets.sort();
    targets.dedup();
    assert_eq!(targets.len(), 200);
    assert_eq!(all.len(), 200, "each once");
    let calls = chaos.batch_writes() - batch_writes_before;
    assert!(
        calls > 8,
        "8 calls would have sufficed without throttling; {calls} were made"
    );
    assert_eq!(
        courier
            .get_job(id.as_str(), now)
            .await
            .unwrap()
            .job
            .fan_out
            .created,
        200
    );
}

/// What a load worker saw.
#[derive(Debug, Default)]
struct Tally {
    accepted_creates: Vec<String>,
    /// Execution id -> the last status an update was accepted with.
    accepted_updates: Vec<(String, &'static str)>,
    unavailable: u32,
    other_errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_stopped_mid_load_loses_no_accepted_request_and_half_updates_nothing() {
    let mut ddb = OwnDynamoDbLocal::start("mid-load").await;
    let table = format!("courier-mid-load-{}", std::process::id());
    courier_functions::store::table::create_table(
        &production_like_client(&ddb.endpoint()).await,
        &table,
    )
    .await
    .unwrap();
    let store = DynamoStore::new(
        production_like_client(&ddb.endpoint()).await,
        table,
        courier_functions::entry::api::auth::default_tenant(),
    );
    let courier = Arc::new(Courier::new(
        store,
        PageTokens::new(PAGE_TOKEN_SECRET.to_vec()),
    ));
    assert_eq!(
        call(
            &courier,
            "POST",
            "/commands",
            Some(json!({"commandId": "reboot", "executionTimeoutSeconds": 3600}))
        )
        .await
        .status,
        201
    );
    let progress = Arc::new(AtomicU32::new(0));
    const WORKERS: usize = 6;
    const EACH: usize = 12;
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (courier, progress) = (Arc::clone(&courier), Arc::clone(&progress));
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for k in 0..EACH {
                let thing = format!("load-{w}-{k}");
                // Each step is retried as a well-behaved client (or Lambda) would.
                let mut id = None;
                for _ in 0..60 {
                    let answer = call(
                        &courier,
                        "POST",
                        "/commands/reboot/executions",
                        Some(json!({"target": thing, "clientToken": format!("c-{w}-{k}")})),
                    )
                    .await;
                    match answer.status {
                        200 | 201 => {
                            id = answer.body["executionId"].as_str().map(str::to_owned);
                            break;
                        }
                        503 | 429 => {
                            assert!(answer.retry_after.is_some());
                            tally.unavailable += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                        other => tally
                            .other_errors
                            .push(format!("create {other}: {}", answer.body)),
                    }
                }
                let Some(id) = id else { continue };
                tally.accepted_creates.push(id.clone());
                for (n, status) in ["IN_PROGRESS", "SUCCEEDED"].into_iter().enumerate() {
                    let request = format!("u-{w}-{k}-{n}");
                    let received = NOW * 1000 + (w * 1000 + k * 10 + n) as i64;
                    for _ in 0..60 {
                        match device(&courier, &thing, &id, status, &request, received).await {
                            Ok(replies)
                                if replies.first().is_some_and(|r| r.0.ends_with("/accepted")) =>
                            {
                                tally.accepted_updates.push((id.clone(), status));
                                break;
                            }
                            Ok(replies) => {
                                tally
                                    .other_errors
                                    .push(format!("update refused: {replies:?}"));
                                break;
                            }
                            Err(_) => {
                                tally.unavailable += 1;
                                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            }
                        }
                    }
                }
                progress.fetch_add(1, Ordering::SeqCst);
            }
            tally
        }));
    }
    // WHEN DynamoDB Local is stopped a third of the way in, and started again
    while (progress.load(Ordering::SeqCst) as usize) < WORKERS * EACH / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    ddb.stop();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    ddb.resume().await;
    let mut tallies = Vec::new();
    for worker in workers {
        tallies.push(worker.await.unwrap());
    }

    // THEN the outage was seen, and answered only with 503/429 or a retry
    let unavailable: u32 = tallies.iter().map(|t| t.unavailable).sum();
    assert!(unavailable > 0, "the outage was observed");
    for t in &tallies {
        assert!(t.other_errors.is_empty(), "{:?}", t.other_errors);
    }
    // ... every accepted create and update is stored, each execution whole
    let now = Timestamp::from_secs(NOW);
    for t in &tallies {
        assert_eq!(
            t.accepted_creates.len(),
            EACH,
            "every create eventually accepted"
        );
        for id in &t.accepted_creates {
            let e = courier.get_execution(id, now).await.unwrap();
            let last = t
                .accepted_updates
                .iter()
                .rfind(|(i, _)| i == id)
                .map(|(_, s)| *s);
            assert_eq!(last, Some("SUCCEEDED"), "{id}: both updates accepted");
            assert_eq!(e.status, ExecutionStatus::Succeeded, "{id}");
            assert_eq!(e.version, 3, "{id}: created, started, succeeded: each once");
            assert!(e.completed_at.is_some() && e.started_at.is_some(), "{id}");
            assert_eq!(e.result.len(), 1, "{id}");
            // No longer pending: the pending index entry left with the status.
            assert!(courier.pending(&e.target, now).await.unwrap().is_empty());
        }
    }
}
