//! UPGRADES KEEP WORKING: `tests/fixtures/table-v0.1.0.json` holds every item
//! kind exactly as Courier 0.1.0 wrote it (commands, executions in each
//! status, a late result, a busy job execution, jobs with their target pages,
//! statistics counters and batch markers, thing owners, two tenants). Each
//! test loads it into a fresh DynamoDB Local table with raw PutItems and
//! then reads, lists, updates and cancels through the current code, black
//! box (the API and device-events handlers). A change that cannot read what
//! the last release wrote fails here; the fixture is never regenerated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::Timestamp;
use courier_functions::entry::device_events;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::lambda_event;
use courier_tests::{
    api_settings, context, fresh_courier, http_event, iot_rule_event_at, send_to_api,
    RecordingPublisher,
};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn fixture() -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/table-v0.1.0.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["items"].as_array().unwrap().clone()
}

/// A fresh table holding the fixture's items, written as they are.
async fn loaded() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    let client = courier_tests::client().await;
    for item in fixture() {
        let item: serde_dynamo::Item = serde_json::from_value(item).unwrap();
        client
            .put_item()
            .table_name(courier.store().table())
            .set_item(Some(item.into()))
            .send()
            .await
            .unwrap();
    }
    courier
}

/// The fixture's execution of `target` (its id and stored status).
fn execution_of(target: &str) -> (String, String) {
    fixture()
        .into_iter()
        .find(|i| i["target"]["S"] == json!(target))
        .map(|i| {
            (
                i["executionId"]["S"].as_str().unwrap().to_owned(),
                i["status"]["S"].as_str().unwrap().to_owned(),
            )
        })
        .unwrap_or_else(|| panic!("the fixture has an execution for {target}"))
}

async fn api(
    courier: &Courier<DynamoStore>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    api_as(courier, "default", method, path, body).await
}

async fn api_as(
    courier: &Courier<DynamoStore>,
    tenant: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut event = http_event(method, path, body.as_ref());
    event["headers"]["x-courier-dev-tenant"] = json!(tenant);
    let reply = send_to_api(courier, &api_settings(true), &event, at(60)).await;
    (reply.status, reply.body)
}

async fn device(
    courier: &Courier<DynamoStore>,
    thing: &str,
    suffix: &str,
    payload: Value,
) -> Vec<(String, Value)> {
    let publisher = RecordingPublisher::default();
    let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
    device_events::handle(
        courier,
        &root,
        &publisher,
        lambda_event(
            iot_rule_event_at(
                &format!("courier/things/{thing}/jobs/{suffix}"),
                &payload,
                (NOW + 61) * 1000,
            ),
            context(&format!("upgrade-{thing}-{suffix}")),
        ),
        at(61),
    )
    .await
    .unwrap();
    publisher.take()
}

#[tokio::test]
async fn every_stored_execution_reads_back_with_its_status() {
    let courier = loaded().await;
    for item in fixture().iter().filter(|i| i["sk"]["S"] == json!("EXEC")) {
        let id = item["executionId"]["S"].as_str().unwrap();
        let tenant = item["pk"]["S"].as_str().unwrap().split('#').nth(1).unwrap();
        let (status, body) =
            api_as(&courier, tenant, "GET", &format!("/executions/{id}"), None).await;
        assert_eq!(status, 200, "{id}: {body}");
        assert_eq!(body["status"], item["status"]["S"], "{id}: {body}");
        assert_eq!(body["target"], item["target"]["S"], "{id}");
        assert_eq!(
            body["version"].to_string(),
            item["version"]["N"].as_str().unwrap(),
            "{id}"
        );
    }
}

/// 0.1.0 spelled retries as onTimeout/maxAttempts (and a job's
/// failureRetries) and deferrals as busyCount; they read as the one policy.
#[tokio::test]
async fn stored_retry_settings_read_as_a_retry_policy() {
    let courier = loaded().await;
    let (sent, _) = execution_of("dev-sent");
    let (status, body) = api(&courier, "GET", &format!("/executions/{sent}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["retryPolicy"],
        json!({"maxAttempts": 3, "retryOn": [{"status": "TIMED_OUT", "maxRetries": 2}]})
    );
    let (busy, _) = execution_of("dev-j1");
    let (_, body) = api(&courier, "GET", &format!("/executions/{busy}"), None).await;
    assert_eq!(
        body["retryPolicy"],
        json!({"maxAttempts": 3, "retryOn": [{"status": "FAILED", "maxRetries": 2}]})
    );
    assert_eq!(body["deferCount"], 1, "busyCount is a deferral count");
    assert!(body.get("busyCount").is_none() && body.get("onTimeout").is_none());
}

#[tokio::test]
async fn stored_commands_read_and_list() {
    let courier = loaded().await;
    let (status, body) = api(&courier, "GET", "/commands/set-config", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["parameters"].as_array().map(Vec::len),
        Some(9),
        "{body}"
    );
    let (status, body) = api(&courier, "GET", "/commands", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = api_as(&courier, "acme", "GET", "/commands/reboot", None).await;
    assert_eq!(
        (status, &body["executionTimeoutSeconds"]),
        (200, &json!(60)),
        "{body}"
    );
}

#[tokio::test]
async fn stored_executions_list_by_target_and_command_with_sensitive_values_redacted() {
    let courier = loaded().await;
    let (status, body) = api(&courier, "GET", "/executions?target=dev-queued", None).await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(
        items[0]["parameters"]["big"],
        json!({"L": 9007199254740993i64})
    );
    assert_eq!(items[0]["redactedParameters"], json!(["wifiPassword"]));
    let (status, body) = api(
        &courier,
        "GET",
        "/executions?commandId=set-config&limit=100",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(9), "{body}");
    let (status, body) = api(&courier, "GET", "/executions?target=dev-late", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"][0]["status"], "TIMED_OUT");
    assert_eq!(
        body["items"][0]["lateResult"]["status"], "SUCCEEDED",
        "{body}"
    );
}

#[tokio::test]
async fn a_stored_job_shows_its_counted_statistics_and_executions() {
    let courier = loaded().await;
    let (status, body) = api(&courier, "GET", "/jobs/nightly-reboot", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "IN_PROGRESS");
    assert_eq!(body["fanOut"]["created"], 3, "{body}");
    let devices = &body["statistics"]["devices"];
    let total: u64 = devices
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(total, 3, "{body}");
    assert_eq!(devices["SUCCEEDED"], 1, "{body}");
    let (status, body) = api(&courier, "GET", "/jobs/nightly-reboot/executions", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(3), "{body}");
    let (status, body) = api(&courier, "GET", "/jobs", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test]
async fn a_stored_in_progress_execution_takes_the_device_s_result() {
    let courier = loaded().await;
    let (id, status) = execution_of("dev-running");
    assert_eq!(status, "IN_PROGRESS");
    let sent = device(
        &courier,
        "dev-running",
        &format!("{id}/update"),
        json!({"status": "SUCCEEDED", "result": {"ok": {"B": true}}}),
    )
    .await;
    assert!(sent[0].0.ends_with("/update/accepted"), "{sent:?}");
    let (_, body) = api(&courier, "GET", &format!("/executions/{id}"), None).await;
    assert_eq!(body["status"], "SUCCEEDED", "{body}");
    assert_eq!(body["result"]["ok"], json!({"B": true}));
}

#[tokio::test]
async fn a_stored_sent_execution_is_started_by_start_next() {
    let courier = loaded().await;
    let (id, status) = execution_of("dev-sent");
    assert_eq!(status, "SENT");
    let sent = device(&courier, "dev-sent", "start-next", json!({})).await;
    assert!(sent[0].0.ends_with("/start-next/accepted"), "{sent:?}");
    assert_eq!(sent[0].1["execution"]["jobId"], json!(id));
    assert_eq!(sent[0].1["execution"]["status"], "IN_PROGRESS");
}

#[tokio::test]
async fn a_stored_queued_execution_is_canceled_and_a_held_one_stays_hidden() {
    let courier = loaded().await;
    let (id, _) = execution_of("dev-queued");
    let (status, body) = api(
        &courier,
        "POST",
        &format!("/executions/{id}/cancel"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("CANCELED")),
        "{body}"
    );
    let sent = device(&courier, "dev-held", "get", json!({})).await;
    assert_eq!(sent[0].1["queuedJobs"], json!([]), "{sent:?}");
}

#[tokio::test]
async fn a_stored_job_is_canceled_and_a_stored_owner_keeps_other_tenants_out() {
    let courier = loaded().await;
    let (status, body) = api(
        &courier,
        "POST",
        "/jobs/nightly-reboot/cancel",
        Some(json!({"force": true})),
    )
    .await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("CANCELED")),
        "{body}"
    );
    let (status, body) = api_as(
        &courier,
        "acme",
        "POST",
        "/commands/reboot/executions",
        Some(json!({"target": "dev-ok"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_next_token_issued_by_0_1_0_is_refused_with_the_usual_400() {
    let courier = loaded().await;
    // What 0.1.0 sealed for `GET /executions?target=dev-queued`: its query
    // scope was Rust debug output.
    let (id, _) = execution_of("dev-queued");
    let item = fixture()
        .into_iter()
        .find(|i| i["executionId"]["S"] == json!(id))
        .unwrap();
    let cursor: courier_functions::store::Cursor = ["pk", "sk", "gsi1pk", "gsi1sk"]
        .into_iter()
        .map(|k| (k.to_owned(), item[k]["S"].as_str().unwrap().to_owned()))
        .collect();
    let old = courier_functions::ops::page_token::PageTokens::new(
        courier_tests::PAGE_TOKEN_SECRET.to_vec(),
    )
    .seal(
        "default/executions?Target(ThingName(\"dev-queued\"))&None",
        &cursor,
    );
    let (status, body) = api(
        &courier,
        "GET",
        &format!("/executions?target=dev-queued&nextToken={old}"),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "ValidationException");
    assert_eq!(body["details"]["errors"][0]["path"], "nextToken", "{body}");
}
