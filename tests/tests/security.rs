//! The security model, black-box through the handlers over DynamoDB Local:
//! tenants from the JWT authorizer's claims (another tenant's resources are
//! 404 and stay unchanged), scopes, the development identity only in local
//! mode, the body limit, devices confined to their own executions, and
//! sensitive parameters kept out of listings and logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{JobId, TenantId, Timestamp};
use courier_functions::entry::api::reply::MAX_BODY_BYTES;
use courier_functions::entry::api::routes::ApiSettings;
use courier_functions::entry::device_events;
use courier_functions::ops::job_runner::StepReport;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::lambda_event;
use courier_tests::{
    api_settings, context, fresh_courier, http_event, http_event_with_jwt, iot_rule_event,
    send_to_api, thing_groups, ApiReply, RecordingPublisher,
};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const NOW: i64 = 1_800_000_000;
const ALL: &[&str] = &["courier/read", "courier/write", "courier/cancel"];

struct Api {
    courier: Courier<DynamoStore>,
    settings: ApiSettings,
}

type Reply = ApiReply;

impl Api {
    async fn new(local_dev_identity: bool) -> Self {
        Self {
            courier: fresh_courier().await,
            settings: api_settings(local_dev_identity),
        }
    }

    /// A request with a verified token of `tenant` holding `scopes`.
    async fn call(
        &self,
        tenant: &str,
        scopes: &[&str],
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let claims = json!({ "sub": format!("{tenant}-operator"), "tenant": tenant });
        self.send(http_event_with_jwt(
            method,
            path,
            body.as_ref(),
            claims,
            scopes,
        ))
        .await
    }

    /// `tenant` starts `reboot` on `thing`; the new execution's id.
    async fn start_reboot(&self, tenant: &str, thing: &str) -> String {
        let started = self
            .call(
                tenant,
                ALL,
                "POST",
                "/commands/reboot/executions",
                Some(json!({"target": thing})),
            )
            .await;
        assert_eq!(started.status, 201, "{:?}", started.body);
        started.body["executionId"].as_str().unwrap().to_owned()
    }

    async fn send(&self, event: Value) -> Reply {
        send_to_api(
            &self.courier,
            &self.settings,
            &event,
            Timestamp::from_secs(NOW),
        )
        .await
    }

    /// `tenant`'s view of the service, to read the table back directly.
    fn tenant(&self, tenant: &str) -> Courier<DynamoStore> {
        self.courier.for_tenant(&TenantId::parse(tenant).unwrap())
    }
}

fn reboot() -> Value {
    json!({"commandId": "reboot", "executionTimeoutSeconds": 3600})
}

fn code(reply: &Reply) -> (u16, &str) {
    (reply.status, reply.body["code"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn another_tenants_resources_answer_404_and_nothing_changes() {
    let api = Api::new(false).await;
    // GIVEN acme's command, an execution on its device and a job
    assert_eq!(
        api.call("acme", ALL, "POST", "/commands", Some(reboot()))
            .await
            .status,
        201
    );
    let started = api
        .call(
            "acme",
            ALL,
            "POST",
            "/commands/reboot/executions",
            Some(json!({"target": "acme-dev-1"})),
        )
        .await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    let id = started.body["executionId"].as_str().unwrap().to_owned();
    let job = api
        .call(
            "acme",
            ALL,
            "POST",
            "/jobs",
            Some(json!({"commandId": "reboot", "targets": {"things": ["acme-dev-2"]}})),
        )
        .await;
    assert_eq!(job.status, 201, "{:?}", job.body);
    let job_id = job.body["jobId"].as_str().unwrap().to_owned();
    let job_version = job.body["version"].clone();

    // WHEN globex, with every scope, reaches for them THEN each is 404
    let globex = |method: &'static str, path: String, body: Option<Value>| {
        let api = &api;
        async move { api.call("globex", ALL, method, &path, body).await }
    };
    let attempts = [
        ("GET", "/commands/reboot".to_owned(), None),
        ("GET", format!("/executions/{id}"), None),
        ("GET", "/executions?target=acme-dev-1".to_owned(), None),
        ("GET", "/executions?commandId=reboot".to_owned(), None),
        (
            "POST",
            format!("/executions/{id}/cancel"),
            Some(json!({"force": true})),
        ),
        ("DELETE", format!("/executions/{id}"), None),
        ("GET", "/things/acme-dev-1/queue".to_owned(), None),
        (
            "POST",
            "/things/acme-dev-1/queue/clear".to_owned(),
            Some(json!({"force": true})),
        ),
        ("GET", format!("/jobs/{job_id}"), None),
        ("GET", format!("/jobs/{job_id}/executions"), None),
        (
            "POST",
            format!("/jobs/{job_id}/cancel"),
            Some(json!({"force": true})),
        ),
    ];
    for (method, path, body) in attempts {
        let reply = globex(method, path.clone(), body).await;
        assert_eq!(
            code(&reply),
            (404, "ResourceNotFoundException"),
            "{method} {path}: {:?}",
            reply.body
        );
    }
    // ... listings of its own show nothing of acme's
    let jobs = globex("GET", "/jobs".into(), None).await;
    assert_eq!((jobs.status, jobs.body["items"].clone()), (200, json!([])));
    let commands = globex("GET", "/commands".into(), None).await;
    assert_eq!(commands.body["items"], json!([]));
    // ... and it cannot target acme's device, even with a command of its own
    assert_eq!(
        globex("POST", "/commands".into(), Some(reboot()))
            .await
            .status,
        201
    );
    let stolen = globex(
        "POST",
        "/commands/reboot/executions".into(),
        Some(json!({"target": "acme-dev-1"})),
    )
    .await;
    assert_eq!(code(&stolen), (404, "ResourceNotFoundException"));
    assert_eq!(stolen.body["details"]["resource"], "thing");

    // THEN acme's execution and job are exactly as they were
    let execution = api
        .call("acme", ALL, "GET", &format!("/executions/{id}"), None)
        .await;
    assert_eq!(
        (
            execution.body["status"].as_str(),
            execution.body["version"].as_u64()
        ),
        (Some("QUEUED"), Some(1))
    );
    let job = api
        .call("acme", ALL, "GET", &format!("/jobs/{job_id}"), None)
        .await;
    assert_eq!(job.body["status"], "IN_PROGRESS");
    assert_eq!(job.body["version"], job_version);
    let on_device = api
        .call("acme", ALL, "GET", "/executions?target=acme-dev-1", None)
        .await;
    assert_eq!(on_device.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_next_token_opens_only_for_the_tenant_it_was_issued_to() {
    let api = Api::new(false).await;
    for tenant in ["acme", "globex"] {
        for id in ["a", "b"] {
            let body = json!({"commandId": id});
            assert_eq!(
                api.call(tenant, ALL, "POST", "/commands", Some(body))
                    .await
                    .status,
                201
            );
        }
    }
    let page = api
        .call("acme", ALL, "GET", "/commands?limit=1", None)
        .await;
    let token = page.body["nextToken"].as_str().unwrap().to_owned();
    let own = api
        .call(
            "acme",
            ALL,
            "GET",
            &format!("/commands?limit=1&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(own.body["items"][0]["commandId"], "b");
    let replayed = api
        .call(
            "globex",
            ALL,
            "GET",
            &format!("/commands?limit=1&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(code(&replayed), (400, "ValidationException"));
}

#[tokio::test]
async fn a_job_skips_things_another_tenant_owns() {
    let api = Api::new(false).await;
    for tenant in ["acme", "globex"] {
        api.call(tenant, ALL, "POST", "/commands", Some(reboot()))
            .await;
    }
    // GIVEN acme owns "shared-1" (it targeted it first)
    let first = api
        .call(
            "acme",
            ALL,
            "POST",
            "/commands/reboot/executions",
            Some(json!({"target": "shared-1"})),
        )
        .await;
    assert_eq!(first.status, 201);
    // WHEN globex sends a job to it and to a device of its own
    let job = api
        .call(
            "globex",
            ALL,
            "POST",
            "/jobs",
            Some(json!({"commandId": "reboot", "targets": {"things": ["shared-1", "globex-1"]}})),
        )
        .await;
    assert_eq!(job.status, 201);
    let job_id = JobId::parse(job.body["jobId"].as_str().unwrap()).unwrap();
    let globex = api.tenant("globex");
    let report = globex
        .run_job(
            &thing_groups().await,
            &job_id,
            Timestamp::from_secs(NOW + 1),
        )
        .await
        .unwrap();
    // THEN only its own device gets an execution; the other is counted skipped
    assert_eq!(
        report,
        StepReport::FannedOut {
            written: 1,
            resumed: false
        }
    );
    let view = globex
        .get_job(job_id.as_str(), Timestamp::from_secs(NOW))
        .await
        .unwrap();
    assert_eq!(
        (
            view.job.fan_out.created,
            view.job.fan_out.skipped,
            view.job.fan_out.done
        ),
        (1, 1, true)
    );
    let executions = api
        .call(
            "globex",
            ALL,
            "GET",
            &format!("/jobs/{job_id}/executions"),
            None,
        )
        .await;
    let targets: Vec<&str> = executions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, vec!["globex-1"]);
    // AND acme's device still has only acme's execution
    let acme = api
        .call("acme", ALL, "GET", "/executions?target=shared-1", None)
        .await;
    assert_eq!(acme.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn scopes_separate_reading_writing_and_cancelling() {
    let api = Api::new(false).await;
    // A read-only token cannot create
    let denied = api
        .call(
            "acme",
            &["courier/read"],
            "POST",
            "/commands",
            Some(reboot()),
        )
        .await;
    assert_eq!(code(&denied), (403, "AccessDeniedException"));
    assert_eq!(denied.body["details"]["requiredScope"], "courier/write");
    let listed = api.call("acme", ALL, "GET", "/commands", None).await;
    assert_eq!(listed.body["items"], json!([]), "nothing was written");

    // A read+write token creates, but cannot cancel
    let writer = &["courier/read", "courier/write"];
    api.call("acme", writer, "POST", "/commands", Some(reboot()))
        .await;
    let started = api
        .call(
            "acme",
            writer,
            "POST",
            "/commands/reboot/executions",
            Some(json!({"target": "dev-1"})),
        )
        .await;
    assert_eq!(started.status, 201);
    let id = started.body["executionId"].as_str().unwrap().to_owned();
    let cancel = api
        .call(
            "acme",
            writer,
            "POST",
            &format!("/executions/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(code(&cancel), (403, "AccessDeniedException"));
    assert_eq!(cancel.body["details"]["requiredScope"], "courier/cancel");
    // ... nor clear a queue, nor delete
    for (method, path) in [
        ("POST", "/things/dev-1/queue/clear".to_owned()),
        ("DELETE", format!("/executions/{id}")),
    ] {
        let denied = api.call("acme", writer, method, &path, None).await;
        assert_eq!(
            code(&denied),
            (403, "AccessDeniedException"),
            "{method} {path}"
        );
        assert_eq!(
            denied.body["details"]["requiredScope"], "courier/cancel",
            "{method} {path}"
        );
    }
    let unchanged = api
        .call("acme", writer, "GET", &format!("/executions/{id}"), None)
        .await;
    assert_eq!(unchanged.body["status"], "QUEUED");

    // Write does not imply read
    let blind = api
        .call(
            "acme",
            &["courier/write"],
            "GET",
            &format!("/executions/{id}"),
            None,
        )
        .await;
    assert_eq!(blind.body["details"]["requiredScope"], "courier/read");

    // Scopes in the token's `scope` claim (as Cognito access tokens carry them) count
    let claims = json!({"sub": "ops", "tenant": "acme", "scope": "courier/read courier/cancel"});
    let event = http_event_with_jwt(
        "POST",
        &format!("/executions/{id}/cancel"),
        None,
        claims,
        &[],
    );
    let canceled = api.send(event).await;
    assert_eq!(canceled.status, 200, "{:?}", canceled.body);
    assert_eq!(canceled.body["canceledBy"], "ops");

    // A token that names no tenant is refused
    let event = http_event_with_jwt("GET", "/commands", None, json!({"sub": "x"}), ALL);
    assert_eq!(code(&api.send(event).await), (403, "AccessDeniedException"));
}

#[tokio::test]
async fn the_tenant_claim_is_configurable() {
    let mut api = Api::new(false).await;
    api.settings.auth.tenant_claim = "custom:org".into();
    let claims = json!({"sub": "u", "custom:org": "initech", "tenant": "ignored"});
    let event = http_event_with_jwt("POST", "/commands", Some(&reboot()), claims, ALL);
    assert_eq!(api.send(event).await.status, 201);
    assert!(api.tenant("initech").get_command("reboot").await.is_ok());
    assert!(api.tenant("ignored").get_command("reboot").await.is_err());
}

#[tokio::test]
async fn the_development_identity_is_refused_unless_local_mode_is_on() {
    // GIVEN a deployment (local mode off)
    let api = Api::new(false).await;
    let mut event = http_event("POST", "/commands", Some(&reboot()));
    event["headers"]["x-courier-dev-tenant"] = json!("acme");
    // WHEN a request brings the development header THEN 401, nothing written
    let refused = api.send(event.clone()).await;
    assert_eq!(code(&refused), (401, "UnauthorizedException"));
    assert!(refused.body["message"]
        .as_str()
        .unwrap()
        .contains("local mode"));
    // ... and one with no identity at all is 401 too
    let anonymous = api.send(http_event("GET", "/commands", None)).await;
    assert_eq!(code(&anonymous), (401, "UnauthorizedException"));
    for tenant in ["acme", "default"] {
        let listed = api.tenant(tenant).list_commands(None, None).await.unwrap();
        assert!(listed.items.is_empty());
    }
    // ... while liveness needs no identity
    assert_eq!(
        api.send(http_event("GET", "/health", None)).await.status,
        200
    );

    // GIVEN local mode WHEN the same request comes THEN it acts for that tenant
    let local = Api::new(true).await;
    assert_eq!(local.send(event).await.status, 201);
    assert!(local.tenant("acme").get_command("reboot").await.is_ok());
    // ... with only the scopes it lists
    let mut limited = http_event("POST", "/commands", Some(&json!({"commandId": "other"})));
    limited["headers"]["x-courier-dev-scopes"] = json!("read");
    assert_eq!(
        code(&local.send(limited).await),
        (403, "AccessDeniedException")
    );
}

#[tokio::test]
async fn an_oversized_body_is_413_and_nothing_is_written() {
    let api = Api::new(false).await;
    api.call("acme", ALL, "POST", "/commands", Some(reboot()))
        .await;
    let padding = "x".repeat(MAX_BODY_BYTES);
    let big_command = json!({"commandId": "big", "description": padding});
    let big_start =
        json!({"target": "dev-1", "clientToken": "big-1", "parameters": {"note": {"S": padding}}});
    for (path, body) in [
        ("/commands", big_command),
        ("/commands/reboot/executions", big_start),
    ] {
        let reply = api.call("acme", ALL, "POST", path, Some(body)).await;
        assert_eq!(
            code(&reply),
            (413, "PayloadTooLargeException"),
            "{path}: {:?}",
            reply.body
        );
    }
    let acme = api.tenant("acme");
    let commands = acme.list_commands(None, None).await.unwrap();
    assert_eq!(commands.items.len(), 1, "only reboot");
    let listed = api
        .call("acme", ALL, "GET", "/executions?commandId=reboot", None)
        .await;
    assert_eq!(listed.body["items"], json!([]));
}

/// What Courier answered a device that published `payload` on `topic`.
async fn device_says(
    courier: &Courier<DynamoStore>,
    topic: &str,
    payload: Value,
) -> Vec<(String, Value)> {
    let publisher = RecordingPublisher::default();
    device_events::handle(
        courier,
        &TopicRoot::parse(DEFAULT_ROOT).unwrap(),
        &publisher,
        lambda_event(iot_rule_event(topic, &payload), context("device-req")),
        Timestamp::from_secs(NOW + 5),
    )
    .await
    .unwrap();
    publisher.take()
}

#[tokio::test]
async fn a_device_cannot_touch_another_things_execution_even_in_another_tenant() {
    let api = Api::new(false).await;
    let mut ids = Vec::new();
    for (tenant, thing) in [("acme", "acme-dev"), ("globex", "globex-dev")] {
        api.call(tenant, ALL, "POST", "/commands", Some(reboot()))
            .await;
        ids.push(api.start_reboot(tenant, thing).await);
    }
    let acme_id = &ids[0];
    // WHEN globex's device, on its own topic, reports on acme's execution
    let out = device_says(
        &api.courier,
        &format!("courier/things/globex-dev/jobs/{acme_id}/update"),
        json!({"status": "SUCCEEDED", "clientToken": "forged"}),
    )
    .await;
    // THEN it is rejected as not found, and acme's execution is untouched
    assert!(out[0].0.ends_with("/update/rejected"), "{out:?}");
    assert_eq!(out[0].1["code"], "ResourceNotFound");
    let acme = api
        .call("acme", ALL, "GET", &format!("/executions/{acme_id}"), None)
        .await;
    assert_eq!(
        (acme.body["status"].as_str(), acme.body["version"].as_u64()),
        (Some("QUEUED"), Some(1))
    );
    // AND each device sees only its own tenant's work
    let pending = device_says(
        &api.courier,
        "courier/things/globex-dev/jobs/get",
        Value::Null,
    )
    .await;
    let queued: Vec<&str> = pending[0].1["queuedJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(queued, vec![ids[1].as_str()]);
    // ... and a thing nobody targeted has nothing
    let nobody = device_says(&api.courier, "courier/things/nobody/jobs/get", Value::Null).await;
    assert_eq!(nobody[0].1["queuedJobs"], json!([]));
}

/// A deferral or a retried failure is computed from the execution read by
/// its id; the write that requeues it must still name the device that
/// reported, or one device could requeue another's work.
#[tokio::test]
async fn a_device_cannot_defer_another_things_execution_in_its_own_tenant() {
    let api = Api::new(false).await;
    api.call("acme", ALL, "POST", "/commands", Some(reboot()))
        .await;
    let theirs = api.start_reboot("acme", "acme-dev").await;
    // acme-dev-2 is acme's too: its requests are served in acme's view
    api.start_reboot("acme", "acme-dev-2").await;
    // WHEN acme-dev-2, on its own topic, says acme-dev's execution must wait
    let out = device_says(
        &api.courier,
        &format!("courier/things/acme-dev-2/jobs/{theirs}/update"),
        json!({"status": "REJECTED", "statusReason": {"reasonCode": "BUSY"}, "clientToken": "forged"}),
    )
    .await;
    // THEN it is rejected as not found, and the execution is untouched
    assert!(out[0].0.ends_with("/update/rejected"), "{out:?}");
    assert_eq!(out[0].1["code"], "ResourceNotFound");
    let after = api
        .call("acme", ALL, "GET", &format!("/executions/{theirs}"), None)
        .await;
    assert_eq!(
        (
            after.body["status"].as_str(),
            after.body["version"].as_u64()
        ),
        (Some("QUEUED"), Some(1)),
        "{}",
        after.body
    );
}

/// Collects everything logged while it is the thread's subscriber.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn sensitive_parameters_stay_out_of_listings_and_logs() {
    const SECRET: &str = "hunter2-correct-horse";
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    // The functions' own filter at the most verbose level a deployment can
    // ask for (AWS_LAMBDA_LOG_LEVEL=TRACE).
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(courier_functions::platform::logging::filter("TRACE"))
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let api = Api::new(false).await;
    let wifi = json!({"commandId": "join-wifi", "parameters": [
        {"name": "ssid", "type": "S", "required": true},
        {"name": "password", "type": "S", "required": true, "sensitive": true}
    ]});
    assert_eq!(
        api.call("acme", ALL, "POST", "/commands", Some(wifi))
            .await
            .status,
        201
    );
    let parameters = json!({"ssid": {"S": "home"}, "password": {"S": SECRET}});
    let started = api
        .call(
            "acme",
            ALL,
            "POST",
            "/commands/join-wifi/executions",
            Some(json!({"target": "dev-1", "parameters": parameters})),
        )
        .await;
    assert_eq!(started.status, 201);
    let id = started.body["executionId"].as_str().unwrap().to_owned();
    let job = api
        .call(
            "acme",
            ALL,
            "POST",
            "/jobs",
            Some(json!({"commandId": "join-wifi", "targets": {"things": ["dev-2"]}, "parameters": parameters})),
        )
        .await;
    let job_id = job.body["jobId"].as_str().unwrap().to_owned();
    api.tenant("acme")
        .run_job(
            &thing_groups().await,
            &JobId::parse(&job_id).unwrap(),
            Timestamp::from_secs(NOW + 1),
        )
        .await
        .unwrap();

    // The device gets the secret (it needs it) and reports back
    let next = device_says(
        &api.courier,
        "courier/things/dev-1/jobs/start-next",
        Value::Null,
    )
    .await;
    assert_eq!(
        next[0].1["execution"]["jobDocument"]["parameters"]["password"]["S"],
        SECRET
    );
    device_says(
        &api.courier,
        &format!("courier/things/dev-1/jobs/{id}/update"),
        json!({"status": "SUCCEEDED"}),
    )
    .await;

    // THEN GET by id shows it; every listing leaves it out and names it
    let one = api
        .call("acme", ALL, "GET", &format!("/executions/{id}"), None)
        .await;
    assert_eq!(one.body["parameters"]["password"]["S"], SECRET);
    for path in [
        "/executions?target=dev-1".to_owned(),
        "/executions?commandId=join-wifi".to_owned(),
        format!("/jobs/{job_id}/executions"),
        "/jobs".to_owned(),
    ] {
        let listed = api.call("acme", ALL, "GET", &path, None).await;
        assert_eq!(listed.status, 200, "{path}");
        let item = &listed.body["items"][0];
        assert!(
            !listed.body.to_string().contains(SECRET),
            "{path}: {}",
            listed.body
        );
        assert_eq!(item["redactedParameters"], json!(["password"]), "{path}");
        assert_eq!(item["parameters"]["ssid"]["S"], "home", "{path}");
    }
    // AND nothing logged along the way holds it
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("execution created"), "logs were captured");
    let leaks: Vec<String> = logged
        .lines()
        .filter(|line| line.contains(SECRET))
        .map(|line| line.replace(SECRET, "<SECRET>").chars().take(400).collect())
        .collect();
    assert!(
        leaks.is_empty(),
        "log lines hold the secret:\n{}",
        leaks.join("\n")
    );
    // AND the SDK's DEBUG and TRACE lines, which dump whole request and
    // response bodies (items, parameters), are not written at all
    let sdk_detail = logged
        .lines()
        .filter(|line| line.contains("aws_smithy") || line.contains("aws_sdk"))
        .filter(|line| line.contains(" DEBUG ") || line.contains(" TRACE "))
        .count();
    assert_eq!(sdk_detail, 0, "SDK debug/trace lines were logged");
}

#[tokio::test]
async fn the_audit_fields_name_the_token_subject_and_the_device() {
    let api = Api::new(false).await;
    api.call("acme", ALL, "POST", "/commands", Some(reboot()))
        .await;
    // WHEN acme's operator starts an execution and then cancels it
    let started = api
        .call(
            "acme",
            ALL,
            "POST",
            "/commands/reboot/executions",
            Some(json!({"target": "acme-dev-1"})),
        )
        .await;
    assert_eq!(started.status, 201, "{:?}", started.body);
    // THEN it was created by the token's subject
    assert_eq!(started.body["createdBy"], "acme-operator");
    assert!(started.body.get("lastUpdatedBy").is_none(), "no change yet");
    let id = started.body["executionId"].as_str().unwrap().to_owned();
    let canceled = api
        .call(
            "acme",
            ALL,
            "POST",
            &format!("/executions/{id}/cancel"),
            Some(json!({})),
        )
        .await;
    assert_eq!(canceled.status, 200, "{:?}", canceled.body);
    // THEN the cancel names the same subject, as canceller and last changer
    assert_eq!(canceled.body["canceledBy"], "acme-operator");
    assert_eq!(canceled.body["lastUpdatedBy"], "acme-operator");
    assert_eq!(
        canceled.body["changedBy"],
        json!({"CANCELED": "acme-operator"})
    );
    // and what the API shows is what the table keeps
    let stored = api
        .tenant("acme")
        .get_execution(&id, Timestamp::from_secs(NOW))
        .await
        .unwrap();
    assert_eq!(
        (stored.created_by.as_deref(), stored.canceled_by.as_deref()),
        (Some("acme-operator"), Some("acme-operator"))
    );
}

#[tokio::test]
async fn superseding_cancels_so_it_needs_the_cancel_scope() {
    let api = Api::new(false).await;
    let lock = json!({"commandId": "lock", "parameters": [
        {"name": "pin", "type": "S", "default": {"S": "0000"}}]});
    api.call("acme", ALL, "POST", "/commands", Some(lock)).await;
    let first = api
        .call(
            "acme",
            ALL,
            "POST",
            "/commands/lock/executions",
            Some(json!({"target": "acme-dev-9", "dedupeKey": "lock"})),
        )
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let replace = json!({"target": "acme-dev-9", "dedupeKey": "lock", "supersede": true,
                         "parameters": {"pin": {"S": "4321"}}});
    // WHEN a caller who may start but not cancel supersedes THEN 403
    let refused = api
        .call(
            "acme",
            &["courier/read", "courier/write"],
            "POST",
            "/commands/lock/executions",
            Some(replace.clone()),
        )
        .await;
    assert_eq!(
        code(&refused),
        (403, "AccessDeniedException"),
        "{:?}",
        refused.body
    );
    let id = first.body["executionId"].as_str().unwrap();
    let still = api
        .tenant("acme")
        .get_execution(id, Timestamp::from_secs(NOW))
        .await
        .unwrap();
    assert_eq!(
        still.status,
        courier_core::ExecutionStatus::Queued,
        "nothing canceled"
    );
    // WHEN a caller holding the cancel scope does THEN it is replaced
    let replaced = api
        .call(
            "acme",
            ALL,
            "POST",
            "/commands/lock/executions",
            Some(replace),
        )
        .await;
    assert_eq!(replaced.status, 201, "{:?}", replaced.body);
    assert_eq!(replaced.body["supersedes"], id);
}
