//! The Lambda handlers, driven by the events Lambda would deliver (API Gateway
//! HTTP API v2 requests, IoT rule events), over DynamoDB Local.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::Timestamp;
use courier_functions::entry::api::routes::ApiSettings;
use courier_functions::entry::device_events;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::lambda_event;
use courier_tests::{
    api_settings, context, fresh_courier, http_event, iot_rule_event, send_to_api, ApiReply,
    RecordingPublisher,
};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

struct Api {
    courier: Courier<DynamoStore>,
    settings: ApiSettings,
    publisher: RecordingPublisher,
}

type Reply = ApiReply;

impl Api {
    async fn new() -> Self {
        Self {
            courier: fresh_courier().await,
            // Local mode: requests without a JWT act as the default tenant.
            settings: api_settings(true),
            publisher: RecordingPublisher::default(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call_at(method, path, body, NOW).await
    }

    async fn call_at(&self, method: &str, path: &str, body: Option<Value>, now: i64) -> Reply {
        let event = http_event(method, path, body.as_ref());
        self.send(&event.to_string(), now).await
    }

    async fn send(&self, event: &str, now: i64) -> Reply {
        let event: Value = serde_json::from_str(event).expect("an event as JSON");
        send_to_api(
            &self.courier,
            &self.settings,
            &event,
            Timestamp::from_secs(now),
        )
        .await
    }

    /// `thing` publishes `payload` on `{root}/{id}/update`; returns what
    /// Courier published: the reply first, then any notifications.
    async fn device(
        &self,
        thing: &str,
        id: &str,
        payload: Value,
        request_id: &str,
        now: i64,
    ) -> Vec<(String, Value)> {
        let topic = format!("courier/things/{thing}/jobs/{id}/update");
        let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
        device_events::handle(
            &self.courier,
            &root,
            &self.publisher,
            lambda_event(iot_rule_event(&topic, &payload), context(request_id)),
            Timestamp::from_secs(now),
        )
        .await
        .expect("answered unless publishing fails");
        self.publisher.take()
    }

    async fn with_command(self) -> Self {
        let reply = self.call("POST", "/commands", Some(set_config())).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        self
    }
}

fn set_config() -> Value {
    json!({
        "commandId": "set-config",
        "description": "Set the reporting rate",
        "parameters": [
            {"name": "rate", "type": "I", "required": true, "min": 1, "max": 3600},
            {"name": "mode", "type": "S", "enum": ["eco", "normal"], "default": {"S": "normal"}}
        ],
        "executionTimeoutSeconds": 300
    })
}

fn codes(body: &Value) -> Vec<(String, String)> {
    body["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn commands_are_created_idempotently_and_immutable() {
    let api = Api::new().await;
    let created = api.call("POST", "/commands", Some(set_config())).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.headers["location"], "/commands/set-config");
    assert_eq!(created.body["createdAt"], NOW);
    let again = api.call("POST", "/commands", Some(set_config())).await;
    assert_eq!(again.status, 200);
    let mut changed = set_config();
    changed["executionTimeoutSeconds"] = json!(5);
    let conflict = api.call("POST", "/commands", Some(changed)).await;
    assert_eq!(
        (conflict.status, conflict.body["code"].as_str()),
        (409, Some("ConflictException"))
    );
    let got = api.call("GET", "/commands/set-config", None).await;
    assert_eq!(got.body["parameters"][0]["name"], "rate");
    let listed = api.call("GET", "/commands", None).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let missing = api.call("GET", "/commands/nope", None).await;
    assert_eq!(
        (missing.status, missing.body["code"].as_str()),
        (404, Some("ResourceNotFoundException"))
    );
}

#[tokio::test]
async fn invalid_definitions_and_bodies_are_400_with_every_problem() {
    let api = Api::new().await;
    let bad = api
        .call(
            "POST",
            "/commands",
            Some(json!({"commandId": "x", "parameters": [{"name": "a", "type": "I", "min": 9, "max": 1, "pattern": "z"}]})),
        )
        .await;
    assert_eq!(
        (bad.status, bad.body["code"].as_str()),
        (400, Some("ValidationException"))
    );
    assert_eq!(codes(&bad.body).len(), 2, "{}", bad.body);
    let request = http_event("POST", "/commands", None)
        .to_string()
        .replace("\"body\":null", "\"body\":\"{not json\"");
    let not_json = api.send(&request, NOW).await;
    assert_eq!(
        (not_json.status, codes(&not_json.body)[0].1.as_str()),
        (400, "InvalidJson")
    );
    let unknown_type = api
        .call(
            "POST",
            "/commands",
            Some(json!({"commandId": "x", "parameters": [{"name": "a", "type": "Q"}]})),
        )
        .await;
    assert_eq!(unknown_type.status, 400);
}

#[tokio::test]
async fn starting_an_execution_validates_everything_at_once() {
    let api = Api::new().await.with_command().await;
    let reply = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(json!({"target": "bad thing", "parameters": {"rate": {"I": 0}, "mode": {"S": "turbo"}, "extra": {"B": true}}})),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        codes(&reply.body),
        [
            ("target".to_string(), "InvalidId".to_string()),
            (
                "parameters.extra".to_string(),
                "UnknownParameter".to_string()
            ),
            ("parameters.rate".to_string(), "OutOfRange".to_string()),
            ("parameters.mode".to_string(), "NotInEnum".to_string()),
        ]
    );
    let too_big = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(json!({"target": "dev-1", "parameters": {"mode": {"S": "x".repeat(200_000)}}})),
        )
        .await;
    assert_eq!(
        (too_big.status, too_big.body["code"].as_str()),
        (413, Some("PayloadTooLargeException"))
    );
    let unknown = api
        .call(
            "POST",
            "/commands/nope/executions",
            Some(json!({"target": "dev-1"})),
        )
        .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn full_lifecycle_through_the_handlers() {
    // GIVEN a command and an execution started over HTTP
    let api = Api::new().await.with_command().await;
    let started = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(json!({"target": "dev-1", "parameters": {"rate": {"I": 30}}})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.body);
    let id = started.body["executionId"].as_str().unwrap().to_owned();
    assert_eq!(
        started.headers["location"],
        format!("/executions/{id}").as_str()
    );
    assert_eq!(started.body["status"], "QUEUED");
    assert_eq!(
        started.body["parameters"],
        json!({"rate": {"I": 30}, "mode": {"S": "normal"}})
    );

    // WHEN the device reports IN_PROGRESS then SUCCEEDED through the IoT rule
    let progress = api
        .device(
            "dev-1",
            &id,
            json!({"status": "IN_PROGRESS", "statusDetails": {"step": "1/2"}}),
            "r1",
            NOW + 1,
        )
        .await;
    assert_eq!(
        progress[0].0,
        format!("courier/things/dev-1/jobs/{id}/update/accepted")
    );
    assert_eq!(
        progress[1].0, "courier/things/dev-1/jobs/notify",
        "the pending list changed"
    );
    let done = api
        .device(
            "dev-1",
            &id,
            json!({"status": "SUCCEEDED", "expectedVersion": 2, "includeJobExecutionState": true,
                   "result": {"applied": {"B": true}}, "statusReason": {"reasonCode": "OK"}}),
            "r2",
            NOW + 2,
        )
        .await;
    assert_eq!(done[0].1["executionState"]["versionNumber"], 3, "{done:?}");
    assert_eq!(done[0].1["executionState"]["status"], "SUCCEEDED");

    // THEN the execution reads back with result, reason and timestamps
    let read = api.call("GET", &format!("/executions/{id}"), None).await;
    assert_eq!(read.status, 200);
    let e = &read.body;
    assert_eq!(e["status"], "SUCCEEDED");
    assert_eq!(e["result"], json!({"applied": {"B": true}}));
    assert_eq!(e["statusReason"]["reasonCode"], "OK");
    assert_eq!(e["statusDetails"]["step"], "1/2");
    assert_eq!(
        (
            e["createdAt"].as_i64(),
            e["startedAt"].as_i64(),
            e["completedAt"].as_i64()
        ),
        (Some(NOW), Some(NOW + 1), Some(NOW + 2))
    );
    assert_eq!(e["timeToLive"], NOW + 2 + 30 * 86_400);
    let without = api
        .call(
            "GET",
            &format!("/executions/{id}?includeResult=false"),
            None,
        )
        .await;
    assert!(without.body.get("result").is_none());

    // and cancelling a finished execution is a 409 that says why
    let cancel = api
        .call("POST", &format!("/executions/{id}/cancel"), None)
        .await;
    assert_eq!(
        (cancel.status, cancel.body["code"].as_str()),
        (409, Some("TerminalStateReached"))
    );
    assert_eq!(cancel.body["details"]["currentStatus"], "SUCCEEDED");
}

#[tokio::test]
async fn a_create_retried_with_its_client_token_returns_the_same_execution() {
    let api = Api::new().await.with_command().await;
    let body = json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}, "clientToken": "op-42"});
    let first = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(body.clone()),
        )
        .await;
    let retry = api
        .call_at(
            "POST",
            "/commands/set-config/executions",
            Some(body),
            NOW + 30,
        )
        .await;
    assert_eq!((first.status, retry.status), (201, 200));
    assert_eq!(first.body, retry.body);
    let different = api
        .call("POST", "/commands/set-config/executions", Some(json!({"target": "dev-1", "parameters": {"rate": {"I": 6}}, "clientToken": "op-42"})))
        .await;
    assert_eq!(
        (different.status, different.body["code"].as_str()),
        (409, Some("ConflictException"))
    );
}

/// Every field of a start request is part of it: the same clientToken with
/// any one of them changed is another request (409), while writing out a
/// default the first request left out is the same one (200).
#[tokio::test]
async fn a_client_token_reused_with_any_field_changed_is_a_conflict() {
    let api = Api::new().await.with_command().await;
    let base = json!({"target": "dev-1", "parameters": {"rate": {"I": 5}},
                      "executionTimeoutSeconds": 600, "onTimeout": "RETRY"});
    let changes = [
        ("target", json!("dev-2"), 409),
        ("parameters", json!({"rate": {"I": 6}}), 409),
        ("executionTimeoutSeconds", json!(601), 409),
        ("timeToLive", json!(NOW + 86_400), 409),
        ("notBefore", json!(NOW + 60), 409),
        ("deliveryTimeoutSeconds", json!(30), 409),
        ("onTimeout", json!("TIME_OUT"), 409),
        ("maxAttempts", json!(2), 409),
        // RETRY's default number of attempts, written out
        ("maxAttempts", json!(3), 200),
    ];
    let mut wrong = Vec::new();
    for (n, (field, value, expected)) in changes.into_iter().enumerate() {
        let mut first = base.clone();
        first["clientToken"] = json!(format!("token-{n}"));
        let created = api
            .call(
                "POST",
                "/commands/set-config/executions",
                Some(first.clone()),
            )
            .await;
        let mut retry = first;
        retry[field] = value.clone();
        let answer = api
            .call("POST", "/commands/set-config/executions", Some(retry))
            .await;
        if (created.status, answer.status) != (201, expected) {
            wrong.push(format!(
                "{field} = {value}: {} then {} {}, expected 201 then {expected}",
                created.status, answer.status, answer.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn device_requests_for_another_thing_or_bad_input_are_rejected_and_write_nothing() {
    let api = Api::new().await.with_command().await;
    let started = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}})),
        )
        .await;
    let id = started.body["executionId"].as_str().unwrap().to_owned();

    let rejected = |reply: &[(String, Value)]| {
        assert!(reply[0].0.ends_with("/update/rejected"), "{reply:?}");
        reply[0].1.clone()
    };
    let other = api
        .device("dev-2", &id, json!({"status": "SUCCEEDED"}), "r1", NOW + 1)
        .await;
    assert_eq!(rejected(&other)["code"], "ResourceNotFound");
    let stale = api
        .device(
            "dev-1",
            &id,
            json!({"status": "IN_PROGRESS", "expectedVersion": 9}),
            "r2",
            NOW + 1,
        )
        .await;
    assert_eq!(rejected(&stale)["code"], "VersionMismatch");
    assert_eq!(rejected(&stale)["executionState"]["versionNumber"], 1);
    let cancel = api
        .device("dev-1", &id, json!({"status": "CANCELED"}), "r3", NOW + 1)
        .await;
    assert_eq!(rejected(&cancel)["code"], "InvalidStateTransition");
    let garbage = api
        .device(
            "dev-1",
            &id,
            json!({"status": 5, "result": "x"}),
            "r4",
            NOW + 1,
        )
        .await;
    assert_eq!(rejected(&garbage)["code"], "InvalidRequest");
    let message = rejected(&garbage)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("status") && message.contains("result"),
        "{message}"
    );

    // nothing was written by any of them
    let read = api.call("GET", &format!("/executions/{id}"), None).await;
    assert_eq!(
        (read.body["status"].as_str(), read.body["version"].as_i64()),
        (Some("QUEUED"), Some(1))
    );

    // a redelivery (same request id) is applied once
    let update = json!({"status": "IN_PROGRESS"});
    let first = api
        .device("dev-1", &id, update.clone(), "same", NOW + 2)
        .await;
    // accepted, notify, and notify-next: no dispatcher runs in this test,
    // so the device had never been told its next execution
    assert_eq!(first.len(), 3, "accepted, notify, notify-next: {first:?}");
    let again = api.device("dev-1", &id, update, "same", NOW + 2).await;
    assert_eq!(
        again.len(),
        1,
        "accepted again, nothing notified twice: {again:?}"
    );
    assert!(again[0].0.ends_with("/update/accepted"));
    let read = api.call("GET", &format!("/executions/{id}"), None).await;
    assert_eq!(read.body["version"], 2, "applied once");
}

#[tokio::test]
async fn cancel_is_idempotent_and_versioned() {
    let api = Api::new().await.with_command().await;
    let started = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}})),
        )
        .await;
    let id = started.body["executionId"].as_str().unwrap().to_owned();
    let stale = api
        .call(
            "POST",
            &format!("/executions/{id}/cancel"),
            Some(json!({"expectedVersion": 4})),
        )
        .await;
    assert_eq!(
        (stale.status, stale.body["code"].as_str()),
        (409, Some("VersionMismatch"))
    );
    let canceled = api
        .call(
            "POST",
            &format!("/executions/{id}/cancel"),
            Some(json!({"expectedVersion": 1, "statusReason": {"reasonCode": "OPERATOR"}})),
        )
        .await;
    assert_eq!(
        (canceled.status, canceled.body["status"].as_str()),
        (200, Some("CANCELED"))
    );
    let again = api
        .call("POST", &format!("/executions/{id}/cancel"), None)
        .await;
    assert_eq!(
        (again.status, again.body["version"].as_i64()),
        (200, Some(2))
    );
    let bad = api
        .call(
            "POST",
            &format!("/executions/{id}/cancel"),
            Some(json!({"force": "yes"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["details"]["errors"][0]["path"], "force");
}

#[tokio::test]
async fn listings_paginate_with_tamper_checked_tokens() {
    let api = Api::new().await.with_command().await;
    for i in 0..3 {
        let r = api
            .call_at(
                "POST",
                "/commands/set-config/executions",
                Some(json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}})),
                NOW + i,
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let first = api
        .call("GET", "/executions?target=dev-1&limit=2", None)
        .await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(first.body["items"][0]["createdAt"], NOW + 2);
    let token = first.body["nextToken"].as_str().unwrap().to_owned();
    let second = api
        .call(
            "GET",
            &format!("/executions?target=dev-1&limit=2&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert!(second.body.get("nextToken").is_none());
    // the same token on another query, or altered, is refused
    let other = api
        .call(
            "GET",
            &format!("/executions?target=dev-2&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(
        (other.status, codes(&other.body)[0].0.as_str()),
        (400, "nextToken")
    );
    let forged = api
        .call(
            "GET",
            &format!("/executions?target=dev-1&nextToken=x{token}"),
            None,
        )
        .await;
    assert_eq!(forged.status, 400);
    let by_command = api
        .call(
            "GET",
            "/executions?commandId=set-config&status=QUEUED",
            None,
        )
        .await;
    assert_eq!(by_command.body["items"].as_array().unwrap().len(), 3);
    let neither = api
        .call("GET", "/executions?status=BOGUS&limit=0", None)
        .await;
    assert_eq!(neither.status, 400);
}

/// API Gateway hands bytes that are not text to the function
/// base64-encoded; bytes that are not UTF-8 are not JSON: 400, nothing
/// written. (Schemathesis's case: `cargo lambda watch` answers it with its
/// own 500 before the function runs, so make test filters it there.)
#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400() {
    use base64::Engine as _;
    let api = Api::new().await.with_command().await;
    let mut event = http_event("POST", "/commands/set-config/executions", None);
    event["body"] = Value::from(base64::engine::general_purpose::STANDARD.encode(b"g\x0f\xff\xfe"));
    event["isBase64Encoded"] = Value::Bool(true);
    let reply = api.send(&event.to_string(), NOW).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.body["details"]["errors"][0]["code"], "InvalidJson");
    let listed = api
        .call("GET", "/executions?commandId=set-config", None)
        .await;
    assert_eq!(listed.body["items"], json!([]));
}

/// The contract is served to anyone (API Gateway imports, SDK generators),
/// as written in the repository.
#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let mut api = Api::new().await;
    api.settings = api_settings(false);
    let refused = api.call("GET", "/commands", None).await;
    assert_eq!(refused.status, 401, "this API wants tokens");
    let served = api.call("GET", "/openapi.json", None).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.headers["content-type"], "application/json");
    let document: Value =
        serde_json::from_str(courier_functions::entry::api::openapi::DOCUMENT).unwrap();
    assert_eq!(served.body, document);
}

#[tokio::test]
async fn routing_cors_and_method_errors() {
    let api = Api::new().await;
    let preflight = api.call("OPTIONS", "/commands", None).await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    assert!(preflight.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let health = api.call("GET", "/health", None).await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("ok"))
    );
    let no_route = api.call("GET", "/nowhere", None).await;
    assert_eq!(
        (no_route.status, no_route.body["code"].as_str()),
        (404, Some("ResourceNotFoundException"))
    );
    let wrong_method = api.call("DELETE", "/commands", None).await;
    assert_eq!(
        (
            wrong_method.status,
            wrong_method.body["details"]["allow"].as_str()
        ),
        (405, Some("GET, POST"))
    );
    let bad_id = api.call("GET", "/executions/has%20space", None).await;
    assert_eq!(bad_id.status, 400);
}

#[tokio::test]
async fn fixture_events_in_tests_events_are_valid_lambda_events() {
    // The files `cargo lambda invoke` uses in the smoke test parse as the
    // events the handlers receive.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("http-") {
            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            // An IoT rule event: an UpdateJobExecution request topic, and
            // the payload base64-encoded.
            use base64::Engine as _;
            let topic = json["topic"]
                .as_str()
                .unwrap()
                .replace("EXECUTION_ID", "e-1");
            let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
            let request = root
                .parse_request(&topic)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(request.thing.as_str(), "dev-1", "{name}");
            let payload = base64::engine::general_purpose::STANDARD
                .decode(json["payload"].as_str().unwrap())
                .unwrap();
            let payload: Value = serde_json::from_slice(&payload).unwrap();
            courier_core::StatusUpdate::parse(&courier_core::json::Json::from(payload.clone()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        seen += 1;
    }
    assert!(seen >= 3);
}

/// GET /executions takes ListCommandExecutions' filters: sort order, a
/// started or a completed time range (epoch seconds or AWS's
/// `YYYY-MM-DDTHH:MM`), and ARNs for the target or the command.
#[tokio::test]
async fn executions_are_listed_with_the_aws_filters() {
    let api = Api::new().await.with_command().await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = api
            .call_at(
                "POST",
                "/commands/set-config/executions",
                Some(json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}})),
                NOW + n * 10,
            )
            .await;
        ids.push(created.body["executionId"].as_str().unwrap().to_owned());
    }
    // the first starts at +35 and ends at +40, the second starts at +36 (the
    // command allows 300 s: nothing times out)
    api.device(
        "dev-1",
        &ids[0],
        json!({"status": "IN_PROGRESS"}),
        "s0",
        NOW + 35,
    )
    .await;
    api.device(
        "dev-1",
        &ids[0],
        json!({"status": "SUCCEEDED"}),
        "e0",
        NOW + 40,
    )
    .await;
    api.device(
        "dev-1",
        &ids[1],
        json!({"status": "IN_PROGRESS"}),
        "s1",
        NOW + 36,
    )
    .await;
    let listed = |query: &str| {
        let query = query.to_owned();
        let api = &api;
        async move {
            let reply = api
                .call_at("GET", &format!("/executions?{query}"), None, NOW + 50)
                .await;
            let ids: Vec<String> = reply.body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|e| e["executionId"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (reply.status, ids, reply.body)
        }
    };
    let at = |secs: i64| secs.to_string();
    let cases: Vec<(String, Vec<&String>)> = vec![
        ("target=dev-1".into(), vec![&ids[2], &ids[1], &ids[0]]),
        (
            "target=dev-1&sortOrder=DESCENDING".into(),
            vec![&ids[2], &ids[1], &ids[0]],
        ),
        (
            "target=dev-1&sortOrder=ASCENDING".into(),
            vec![&ids[0], &ids[1], &ids[2]],
        ),
        (
            format!("target=dev-1&startedAfter={}", at(NOW + 30)),
            vec![&ids[1], &ids[0]],
        ),
        (
            format!("target=dev-1&startedAfter={}", at(NOW + 36)),
            vec![&ids[1]],
        ),
        (
            format!("target=dev-1&startedBefore={}", at(NOW + 35)),
            vec![&ids[0]],
        ),
        (
            format!("target=dev-1&completedAfter={}", at(NOW + 40)),
            vec![&ids[0]],
        ),
        (
            "target=dev-1&completedBefore=2027-01-15T08:01".into(),
            vec![&ids[0]],
        ),
        (
            "target=dev-1&completedAfter=2027-01-15T08:01Z".into(),
            vec![],
        ),
        (
            "targetArn=arn:aws:iot:us-east-1:123456789012:thing/dev-1&sortOrder=ASCENDING".into(),
            vec![&ids[0], &ids[1], &ids[2]],
        ),
        (
            "commandArn=arn:aws:iot:us-east-1:123456789012:command/set-config&status=SUCCEEDED"
                .into(),
            vec![&ids[0]],
        ),
    ];
    let mut wrong = Vec::new();
    for (query, expected) in &cases {
        let (status, got, body) = listed(query).await;
        let expected: Vec<String> = expected.iter().map(|s| (*s).clone()).collect();
        if status != 200 || got != expected {
            wrong.push(format!(
                "{query}: {status} {got:?}, expected {expected:?} ({body})"
            ));
        }
    }
    for (query, field) in [
        (
            "target=dev-1&startedAfter=1&completedAfter=1",
            "completedAfter",
        ),
        ("target=dev-1&sortOrder=UP", "sortOrder"),
        ("target=dev-1&startedAfter=yesterday", "startedAfter"),
        ("targetArn=dev-1", "targetArn"),
    ] {
        let (status, _, body) = listed(query).await;
        let paths: Vec<&str> = body["details"]["errors"]
            .as_array()
            .map(|e| e.iter().filter_map(|e| e["path"].as_str()).collect())
            .unwrap_or_default();
        if status != 400 || !paths.contains(&field) {
            wrong.push(format!(
                "{query}: {status} {body}, expected 400 naming {field}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// GET /things/{thing}/queue lists a device's pending work in the order it
/// gets it, with why each waits; POST …/queue/clear cancels it (started
/// work only with force), and a second clear finds nothing left.
#[tokio::test]
async fn a_devices_queue_is_listed_in_delivery_order_and_cleared() {
    let api = Api::new().await.with_command().await;
    let start = |extra: Value, at: i64| {
        let mut body = json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let api = &api;
        async move {
            let reply = api
                .call_at("POST", "/commands/set-config/executions", Some(body), at)
                .await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.body["executionId"].as_str().unwrap().to_owned()
        }
    };
    let held = start(json!({"notBefore": NOW + 3600}), NOW).await;
    let started = start(json!({}), NOW + 1).await;
    let queued = start(json!({}), NOW + 2).await;
    api.device(
        "dev-1",
        &started,
        json!({"status": "IN_PROGRESS"}),
        "s",
        NOW + 3,
    )
    .await;

    let listed = api
        .call_at("GET", "/things/dev-1/queue", None, NOW + 4)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let order: Vec<(String, String)> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["executionId"].as_str().unwrap().to_owned(),
                i["waiting"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (started.clone(), "IN_PROGRESS".to_owned()),
            (queued.clone(), "NOT_YET_DELIVERED".to_owned()),
            (held.clone(), "HELD_UNTIL_NOT_BEFORE".to_owned()),
        ]
    );
    assert_eq!(listed.body["items"][0]["position"], 1);
    assert_eq!(listed.body["items"][2]["notBefore"], NOW + 3600);
    let nobody = api
        .call_at("GET", "/things/nobodys-thing/queue", None, NOW + 4)
        .await;
    assert_eq!(nobody.status, 404);

    let cleared = api
        .call_at("POST", "/things/dev-1/queue/clear", None, NOW + 5)
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["canceled"], json!([queued, held]));
    assert_eq!(cleared.body["leftInProgress"], json!([started]));
    let forced = api
        .call_at(
            "POST",
            "/things/dev-1/queue/clear",
            Some(json!({"force": true})),
            NOW + 6,
        )
        .await;
    assert_eq!(forced.body["canceled"], json!([started]), "{}", forced.body);
    let again = api
        .call_at("POST", "/things/dev-1/queue/clear", None, NOW + 7)
        .await;
    assert_eq!(
        (
            again.body["canceled"].clone(),
            again.body["leftInProgress"].clone()
        ),
        (json!([]), json!([]))
    );
    let empty = api
        .call_at("GET", "/things/dev-1/queue", None, NOW + 8)
        .await;
    assert_eq!(empty.body["items"], json!([]));
    let read = api
        .call_at("GET", &format!("/executions/{held}"), None, NOW + 8)
        .await;
    assert_eq!(read.body["status"], "CANCELED");
}

/// POST /commands/{id}/executions takes AWS's `targetArn` instead of
/// `target`; both at once, or an ARN that names no thing, is a 400.
#[tokio::test]
async fn an_execution_is_started_by_target_arn() {
    let api = Api::new().await.with_command().await;
    let by_arn = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(
                json!({"targetArn": "arn:aws:iot:us-east-1:123456789012:thing/dev-4",
                        "parameters": {"rate": {"I": 5}}}),
            ),
        )
        .await;
    assert_eq!(
        (by_arn.status, by_arn.body["target"].as_str()),
        (201, Some("dev-4")),
        "{}",
        by_arn.body
    );
    for body in [
        json!({"targetArn": "arn:aws:iot:us-east-1:123456789012:thing/dev-4", "target": "dev-4", "parameters": {"rate": {"I": 5}}}),
        json!({"targetArn": "arn:aws:iot:us-east-1:123456789012:client/dev-4", "parameters": {"rate": {"I": 5}}}),
    ] {
        let refused = api
            .call(
                "POST",
                "/commands/set-config/executions",
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (
                refused.status,
                refused.body["details"]["errors"][0]["path"].as_str()
            ),
            (400, Some("targetArn")),
            "{body}: {}",
            refused.body
        );
    }
}

/// DELETE /executions/{id} (DeleteCommandExecution) removes a standalone
/// execution that has ended; a running one or a job's is refused with a 409
/// that says why, and nothing is removed.
#[tokio::test]
async fn only_an_ended_standalone_execution_can_be_deleted() {
    let api = Api::new().await.with_command().await;
    let start = |token: &str| json!({"target": "dev-1", "parameters": {"rate": {"I": 5}}, "clientToken": token});
    let running = api
        .call(
            "POST",
            "/commands/set-config/executions",
            Some(start("run")),
        )
        .await;
    let running_id = running.body["executionId"].as_str().unwrap().to_owned();
    let refused = api
        .call("DELETE", &format!("/executions/{running_id}"), None)
        .await;
    assert_eq!(
        (refused.status, refused.body["code"].as_str()),
        (409, Some("ConflictException"))
    );
    assert!(
        refused.body["message"].as_str().unwrap().contains("QUEUED"),
        "{}",
        refused.body
    );
    let canceled = api
        .call("POST", &format!("/executions/{running_id}/cancel"), None)
        .await;
    assert_eq!(canceled.status, 200);
    let deleted = api
        .call("DELETE", &format!("/executions/{running_id}"), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = api
        .call("GET", &format!("/executions/{running_id}"), None)
        .await;
    assert_eq!(gone.status, 404);
    let again = api
        .call("DELETE", &format!("/executions/{running_id}"), None)
        .await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (404, Some("ResourceNotFoundException"))
    );
}

/// A job whose retention has passed is gone, as an expired execution is,
/// even while DynamoDB's TTL has not removed the item yet; its id cannot be
/// reused until it is removed.
#[tokio::test]
async fn an_expired_job_is_neither_served_nor_listed() {
    let api = Api::new().await.with_command().await;
    let body = json!({"commandId": "set-config", "targets": {"things": ["a"]},
                      "parameters": {"rate": {"I": 5}}, "jobId": "old-job"});
    let created = api.call("POST", "/jobs", Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let expires = created.body["timeToLive"].as_i64().expect("timeToLive");
    let before = api.call_at("GET", "/jobs/old-job", None, expires - 1).await;
    assert_eq!(before.status, 200);
    let got = api.call_at("GET", "/jobs/old-job", None, expires).await;
    assert_eq!(
        (got.status, got.body["code"].as_str()),
        (404, Some("ResourceNotFoundException"))
    );
    let listed = api.call_at("GET", "/jobs", None, expires).await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    let executions = api
        .call_at("GET", "/jobs/old-job/executions", None, expires)
        .await;
    assert_eq!(executions.status, 404);
    let again = api.call_at("POST", "/jobs", Some(body), expires).await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (409, Some("ConflictException"))
    );
}

#[tokio::test]
async fn the_job_routes_answer_with_typed_errors_and_pages() {
    let api = Api::new().await.with_command().await;

    // Bad requests: every problem at once, 400
    let bad = api
        .call(
            "POST",
            "/jobs",
            Some(
                json!({"commandId": "set-config", "targets": {"things": ["ok", "not/ok"]},
                        "parameters": {"rate": {"I": 0}},
                        "jobExecutionsRolloutConfig": {"maximumPerMinute": 0}, "extra": 1}),
            ),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(bad.body["code"], "ValidationException");
    let problems = codes(&bad.body);
    for expected in [
        ("targets.things[1]", "InvalidId"),
        ("parameters.rate", "OutOfRange"),
        ("jobExecutionsRolloutConfig.maximumPerMinute", "OutOfRange"),
        ("extra", "UnknownField"),
    ] {
        assert!(
            problems.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {problems:?}"
        );
    }
    let unknown_command = api
        .call(
            "POST",
            "/jobs",
            Some(json!({"commandId": "nope", "targets": {"things": ["a"]}})),
        )
        .await;
    assert_eq!(unknown_command.status, 404);

    // A job: 201 with its Location, then found by id and in the list
    let body = json!({"commandId": "set-config", "targets": {"things": ["a", "b", "a"]},
                      "parameters": {"rate": {"I": 5}}, "clientToken": "job-1"});
    let created = api.call("POST", "/jobs", Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["jobId"].as_str().unwrap().to_owned();
    assert_eq!(created.headers["location"], format!("/jobs/{id}").as_str());
    assert_eq!(
        created.body["targets"],
        json!({"things": {"count": 2}}),
        "duplicates removed"
    );
    assert_eq!(created.body["statistics"]["attempts"], 0);
    // ... the same request again is the same job (200); a different one with the token, 409
    let again = api.call("POST", "/jobs", Some(body)).await;
    assert_eq!(
        (again.status, again.body["jobId"].as_str()),
        (200, Some(id.as_str()))
    );
    let clash = api
        .call(
            "POST",
            "/jobs",
            Some(
                json!({"commandId": "set-config", "targets": {"things": ["c"]},
                        "parameters": {"rate": {"I": 5}}, "clientToken": "job-1"}),
            ),
        )
        .await;
    assert_eq!(
        (clash.status, clash.body["code"].as_str()),
        (409, Some("ConflictException"))
    );
    let got = api.call("GET", &format!("/jobs/{id}"), None).await;
    assert_eq!(
        (got.status, got.body["status"].as_str()),
        (200, Some("IN_PROGRESS"))
    );
    let listed = api.call("GET", "/jobs?limit=10", None).await;
    assert_eq!(listed.body["items"][0]["jobId"], json!(id));

    // Its executions: a bad status is 400, an unknown job 404
    let bad_status = api
        .call("GET", &format!("/jobs/{id}/executions?status=DONE"), None)
        .await;
    assert_eq!(bad_status.status, 400);
    let missing = api.call("GET", "/jobs/no-such-job/executions", None).await;
    assert_eq!(
        (missing.status, missing.body["details"]["resource"].as_str()),
        (404, Some("job"))
    );

    // Cancel: 200 and CANCELED; again 200; an unknown field 400
    let canceled = api
        .call(
            "POST",
            &format!("/jobs/{id}/cancel"),
            Some(json!({"comment": "oops"})),
        )
        .await;
    assert_eq!(
        (canceled.status, canceled.body["status"].as_str()),
        (200, Some("CANCELED"))
    );
    assert_eq!(canceled.body["canceledBy"], "developer");
    let bad_cancel = api
        .call(
            "POST",
            &format!("/jobs/{id}/cancel"),
            Some(json!({"force": "yes"})),
        )
        .await;
    assert_eq!(bad_cancel.status, 400);

    // Routes: wrong method 405 with Allow
    let wrong = api.call("DELETE", "/jobs", None).await;
    assert_eq!(
        (wrong.status, wrong.body["details"]["allow"].as_str()),
        (405, Some("GET, POST"))
    );
}
