//! Least privilege, checked rather than read: each function's handler runs
//! a scenario that takes every kind of path it has (every API route, every
//! device request, stream batches with direct executions and jobs, sweeps of
//! deadlines, scheduled jobs and rollouts) over DynamoDB Local and moto, its
//! SDK clients carrying an interceptor that records each AWS action and the
//! table or index it acts on. What each function did must match what
//! `infra/template.yaml` grants its role: an action used but not granted
//! would be AccessDenied in AWS; one granted but never used is privilege
//! nobody needs.
//!
//! Only the actions Courier's code performs are compared (DynamoDB and IoT).
//! The stream's read permissions and the dead-letter `sqs:SendMessage` are
//! used by Lambda itself on the function's behalf, not by its code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use courier_core::Timestamp;
use courier_functions::entry::api::auth::default_tenant;
use courier_functions::ops::page_token::PageTokens;
use courier_functions::ops::Courier;
use courier_functions::platform::thing_groups::IotThingGroups;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::stream::{StartAt, StreamPoller};
use courier_tests::{
    api_settings_delivering, client, fresh_table, http_event, iot_client, iot_rule_event_at,
    moto_thing_group, send_to_api_publishing, send_to_device_events, send_to_dispatcher,
    send_to_sweeper, RecordingPublisher, PAGE_TOKEN_SECRET,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

/// An IAM action and what it acts on: `table`, `index/gsi1`, `thinggroup`,
/// `topic`.
type Use = (String, String);

/// Records every call a client makes as the IAM actions that authorize it
/// (one recorder serves the DynamoDB and the IoT client: both SDK crates use
/// the same interceptor trait).
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<BTreeSet<Use>>>);

impl Recorder {
    fn note(&self, action: &str, resource: &str) {
        self.0
            .lock()
            .unwrap()
            .insert((action.to_owned(), resource.to_owned()));
    }

    fn used(&self) -> BTreeSet<Use> {
        self.0.lock().unwrap().clone()
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "least-privilege recorder"
    }

    /// Before serialization: the operation's metadata is in the bag by then
    /// (a client interceptor's `read_before_execution` runs before it).
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg
            .load::<Metadata>()
            .expect("every operation has metadata");
        let input = context.input();
        match (metadata.service(), metadata.name()) {
            ("DynamoDB", "Query") => {
                let query = input.downcast_ref::<QueryInput>().expect("a Query input");
                let resource = query
                    .index_name()
                    .map_or_else(|| "table".to_owned(), |index| format!("index/{index}"));
                self.note("dynamodb:Query", &resource);
            }
            // A transaction is authorized item by item (there is no
            // TransactWriteItems action in IAM).
            ("DynamoDB", "TransactWriteItems") => {
                let transaction = input
                    .downcast_ref::<TransactWriteItemsInput>()
                    .expect("a TransactWriteItems input");
                for item in transaction.transact_items() {
                    let action = if item.put().is_some() {
                        "dynamodb:PutItem"
                    } else if item.update().is_some() {
                        "dynamodb:UpdateItem"
                    } else if item.delete().is_some() {
                        "dynamodb:DeleteItem"
                    } else {
                        "dynamodb:ConditionCheckItem"
                    };
                    self.note(action, "table");
                }
            }
            ("DynamoDB", operation) => self.note(&format!("dynamodb:{operation}"), "table"),
            ("IoT", "ListThingsInThingGroup") => {
                self.note("iot:ListThingsInThingGroup", "thinggroup");
            }
            ("IoT", "SearchIndex") => self.note("iot:SearchIndex", "fleetindex"),
            (service, operation) => panic!("unexpected call {service}:{operation}"),
        }
        Ok(())
    }
}

/// One function as its binary wires it: the service over the shared table,
/// thing groups through moto, a publisher; every AWS call recorded.
struct Function {
    courier: Courier<DynamoStore>,
    groups: IotThingGroups,
    publisher: RecordingPublisher,
    recorder: Recorder,
    published: bool,
}

impl Function {
    async fn new(table: &str) -> Self {
        let recorder = Recorder::default();
        let dynamodb = client()
            .await
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        let iot = iot_client()
            .await
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        Self {
            courier: Courier::new(
                DynamoStore::new(
                    aws_sdk_dynamodb::Client::from_conf(dynamodb),
                    table,
                    default_tenant(),
                ),
                PageTokens::new(PAGE_TOKEN_SECRET.to_vec()),
            ),
            groups: IotThingGroups::new(aws_sdk_iot::Client::from_conf(iot)),
            publisher: RecordingPublisher::default(),
            recorder,
            published: false,
        }
    }

    /// Everything it did, publishing included (and each topic it published
    /// to, as `(PUBLISHED_TO, topic)`, for `check_topics`).
    fn used(&mut self) -> BTreeSet<Use> {
        let sent = self.publisher.take();
        self.published |= !sent.is_empty();
        let mut used = self.recorder.used();
        if self.published {
            used.insert(("iot:Publish".to_owned(), "topic".to_owned()));
        }
        used.extend(
            sent.into_iter()
                .map(|(topic, _)| (PUBLISHED_TO.to_owned(), topic)),
        );
        used
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>, now: Timestamp) -> Value {
        let event = http_event(method, path, body.as_ref());
        // As deployed: the API delivers what it creates (direct delivery).
        let reply = send_to_api_publishing(
            &self.courier,
            &self.groups,
            &self.publisher,
            &api_settings_delivering(),
            &event,
            now,
        )
        .await;
        assert!(
            reply.status < 300,
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }

    async fn device(&self, thing: &str, suffix: &str, payload: Value, n: i64) -> Value {
        self.device_on(&format!("courier/things/{thing}/jobs/{suffix}"), payload, n)
            .await
    }

    /// A device's message on any topic the rules deliver.
    async fn device_on(&self, topic: &str, payload: Value, n: i64) -> Value {
        let event = iot_rule_event_at(topic, &payload, (NOW + n) * 1000);
        let published = send_to_device_events(
            &self.courier,
            &self.publisher,
            &event,
            &format!("device-{n}"),
            at(n),
        )
        .await
        .unwrap();
        serde_json::to_value(published).unwrap()
    }

    /// Delivers the stream's new records until there are none.
    async fn drain(&self, stream: &mut StreamPoller, now: Timestamp) {
        loop {
            let records = stream.poll().await.unwrap();
            if records.is_empty() {
                return;
            }
            let out =
                send_to_dispatcher(&self.courier, &self.publisher, &self.groups, records, now)
                    .await;
            assert_eq!(out["batchItemFailures"], json!([]), "{out}");
        }
    }

    async fn sweep(&self, now: Timestamp) {
        send_to_sweeper(&self.courier, &self.publisher, &self.groups, now).await;
    }
}

/// What the template grants each function: `{logical id: {(action,
/// resource)}}`, read from the policy statements in its block. A statement
/// grants each of its actions on each of its resources.
fn granted() -> BTreeMap<String, BTreeSet<Use>> {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .unwrap();
    let mut grants: BTreeMap<String, BTreeSet<Use>> = BTreeMap::new();
    let mut function: Option<String> = None;
    let mut actions: Vec<String> = Vec::new();
    let mut flush = |function: &Option<String>, actions: &mut Vec<String>, resources: &[String]| {
        if let Some(function) = function {
            for action in actions.iter() {
                for resource in resources {
                    grants
                        .entry(function.clone())
                        .or_default()
                        .insert((action.clone(), resource.clone()));
                }
            }
        }
        actions.clear();
    };
    let mut resources: Vec<String> = Vec::new();
    let mut in_resource_list = false;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 2 && text.ends_with(':') && !text.starts_with('#') {
            flush(&function, &mut actions, &resources);
            resources.clear();
            let name = text.trim_end_matches(':');
            function = name.ends_with("Function").then(|| name.to_owned());
            continue;
        }
        if function.is_none() {
            continue;
        }
        if text.starts_with("- Effect: Allow") {
            flush(&function, &mut actions, &resources);
            resources.clear();
            in_resource_list = false;
        } else if let Some(list) = text.strip_prefix("Action:") {
            actions = list
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|a| a.trim().to_owned())
                .filter(|a| a.starts_with("dynamodb:") || a.starts_with("iot:"))
                .collect();
        } else if let Some(rest) = text.strip_prefix("Resource:") {
            in_resource_list = rest.trim().is_empty();
            if !in_resource_list {
                resources.push(resource_kind(rest));
            }
        } else if in_resource_list && text.starts_with("- ") {
            resources.push(resource_kind(text));
        } else {
            in_resource_list = false;
        }
    }
    flush(&function, &mut actions, &resources);
    grants
}

/// `!GetAtt Table.Arn` → `table`; `.../index/gsi2` → `index/gsi2`;
/// `...:thinggroup/*` → `thinggroup`; `...:topic/...` → `topic`.
fn resource_kind(resource: &str) -> String {
    if resource.contains("Table.Arn}/index/") {
        let index = resource.rsplit("/index/").next().unwrap();
        format!("index/{}", index.trim_end_matches('"'))
    } else if resource.contains("Table.Arn") {
        "table".to_owned()
    } else if resource.contains(":thinggroup/") {
        "thinggroup".to_owned()
    } else if resource.contains(":index/AWS_Things") {
        "fleetindex".to_owned()
    } else if resource.contains(":topic/") {
        "topic".to_owned()
    } else {
        format!("other: {resource}")
    }
}

/// What each function used over the whole scenario, by its logical id in the
/// template. The scenario runs once (on its own runtime), for every test.
fn used_by_function() -> &'static BTreeMap<&'static str, BTreeSet<Use>> {
    static USED: OnceLock<BTreeMap<&'static str, BTreeSet<Use>>> = OnceLock::new();
    USED.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(scenario())
        })
        .join()
        .expect("the scenario ran to its end (its panic message says where it stopped)")
    })
}

/// Every kind of path each function has, through its handler.
async fn scenario() -> BTreeMap<&'static str, BTreeSet<Use>> {
    let (_, table) = fresh_table().await;
    let mut api = Function::new(&table).await;
    let mut device = Function::new(&table).await;
    let mut dispatcher = Function::new(&table).await;
    let mut sweeper = Function::new(&table).await;
    let mut stream = StreamPoller::new(&table, StartAt::Beginning).await.unwrap();
    let (group, _) = moto_thing_group(2).await;

    // GIVEN commands, direct executions (one held until later, one to be
    // canceled) and jobs (explicit things; a thing group; scheduled with a
    // rollout of one per minute), through every API route
    api.api(
        "POST",
        "/commands",
        Some(json!({"commandId": "reboot", "executionTimeoutSeconds": 60})),
        at(0),
    )
    .await;
    api.api("GET", "/commands", None, at(0)).await;
    api.api("GET", "/commands/reboot", None, at(0)).await;
    let start = |target: &str, extra: Value| {
        let mut body = json!({"target": target, "clientToken": format!("t-{target}")});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        body
    };
    let direct = api
        .api(
            "POST",
            "/commands/reboot/executions",
            Some(start("dev-a", json!({}))),
            at(1),
        )
        .await["executionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let canceled = api
        .api(
            "POST",
            "/commands/reboot/executions",
            Some(start("dev-b", json!({}))),
            at(1),
        )
        .await["executionId"]
        .as_str()
        .unwrap()
        .to_owned();
    api.api(
        "POST",
        "/commands/reboot/executions",
        Some(start("dev-c", json!({"notBefore": NOW + 30}))),
        at(1),
    )
    .await;
    api.api("GET", "/executions?target=dev-a", None, at(2))
        .await;
    api.api("GET", "/executions?target=dev-a&status=QUEUED", None, at(2))
        .await;
    api.api("GET", "/executions?commandId=reboot", None, at(2))
        .await;
    api.api(
        "GET",
        "/executions?commandId=reboot&status=QUEUED",
        None,
        at(2),
    )
    .await;
    api.api("GET", &format!("/executions/{direct}"), None, at(2))
        .await;
    api.api(
        "POST",
        &format!("/executions/{canceled}/cancel"),
        Some(json!({"clientToken": "cancel-b"})),
        at(2),
    )
    .await;
    let explicit = api
        .api(
            "POST",
            "/jobs",
            Some(json!({"commandId": "reboot", "targets": {"things": ["job-1", "job-2"]}})),
            at(3),
        )
        .await["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let grouped = api
        .api(
            "POST",
            "/jobs",
            Some(json!({"commandId": "reboot", "targets": {"thingGroup": group}})),
            at(3),
        )
        .await["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    api.api(
        "POST",
        "/jobs",
        Some(json!({"commandId": "reboot",
                    "targets": {"things": ["roll-1", "roll-2", "roll-3"]},
                    "schedulingConfig": {"startTime": NOW + 40, "endTime": NOW + 200},
                    "jobExecutionsRolloutConfig": {"maximumPerMinute": 1}})),
        at(3),
    )
    .await;
    api.api("GET", "/jobs", None, at(4)).await;
    api.api("GET", &format!("/jobs/{explicit}"), None, at(4))
        .await;

    // WHEN the stream delivers all that (executions sent, jobs fanned out)
    dispatcher.drain(&mut stream, at(5)).await;
    api.api("GET", &format!("/jobs/{explicit}/executions"), None, at(6))
        .await;
    api.api(
        "POST",
        &format!("/jobs/{grouped}/cancel"),
        Some(json!({})),
        at(6),
    )
    .await;

    // AND devices ask, start, report and finish, through every request
    device.device("dev-a", "get", json!({}), 7).await;
    device.device("dev-a", "start-next", json!({}), 8).await;
    device
        .device("dev-a", &format!("{direct}/get"), json!({}), 9)
        .await;
    device
        .device(
            "dev-a",
            &format!("{direct}/update"),
            json!({"status": "IN_PROGRESS", "statusDetails": {"step": "1"}}),
            10,
        )
        .await;
    device
        .device(
            "dev-a",
            &format!("{direct}/update"),
            json!({"status": "SUCCEEDED"}),
            11,
        )
        .await;
    for thing in ["job-1", "job-2"] {
        let next = device.device(thing, "start-next", json!({}), 12).await;
        // The handler answers with what it published to the device.
        let id = next["published"][0]["payload"]["execution"]["jobId"]
            .as_str()
            .unwrap_or_else(|| panic!("{thing} has the job's execution: {next}"));
        device
            .device(
                thing,
                &format!("{id}/update"),
                json!({"status": "SUCCEEDED"}),
                13,
            )
            .await;
    }
    dispatcher.drain(&mut stream, at(14)).await;

    // AND the sweeper runs: the held execution's time comes, the scheduled
    // job starts and rolls out minute by minute, deadlines pass
    for minute in [31, 41, 101, 161, 221, 600] {
        sweeper.sweep(at(minute)).await;
        dispatcher.drain(&mut stream, at(minute)).await;
    }
    api.api("GET", "/executions?target=dev-c", None, at(600))
        .await;
    let finished = api
        .api("GET", &format!("/jobs/{explicit}"), None, at(600))
        .await;
    assert_eq!(finished["status"], "COMPLETED", "{finished}");

    // AND a job whose first stream batch is lost (its retries exhausted, it
    // went to the dead-letter queue): the sweeper starts the fan-out itself
    api.api(
        "POST",
        "/commands",
        Some(json!({"commandId": "update-firmware", "executionTimeoutSeconds": 3600})),
        at(650),
    )
    .await;
    let orphan = api
        .api(
            "POST",
            "/jobs",
            Some(
                json!({"commandId": "update-firmware", "targets": {"thingGroup": group},
                        "clientToken": "lost-batch"}),
            ),
            at(650),
        )
        .await["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    let lost = stream.poll().await.unwrap();
    assert!(!lost.is_empty());
    for later in [660, 840, 1000] {
        sweeper.sweep(at(later)).await;
        dispatcher.drain(&mut stream, at(later)).await;
    }
    // AND so does its cancel, whose batch is lost too: once the job's lease
    // has run out, the sweeper cancels the executions the job had left
    api.api(
        "POST",
        &format!("/jobs/{orphan}/cancel"),
        Some(json!({})),
        at(1010),
    )
    .await;
    assert!(!stream.poll().await.unwrap().is_empty());
    for later in [1011, 1200] {
        sweeper.sweep(at(later)).await;
    }
    dispatcher.drain(&mut stream, at(1200)).await;
    let left = api
        .api("GET", &format!("/jobs/{orphan}/executions"), None, at(1200))
        .await;
    let statuses: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CANCELED", "CANCELED"], "{left}");

    // AND a command over the AWS IoT commands protocol: its request
    // published, the device's response answered, its status events
    api.api(
        "POST",
        "/commands",
        Some(json!({"commandId": "unlock", "protocol": "commands"})),
        at(1300),
    )
    .await;
    let unlock = api
        .api(
            "POST",
            "/commands/unlock/executions",
            Some(json!({"target": "car-1"})),
            at(1300),
        )
        .await;
    dispatcher.drain(&mut stream, at(1301)).await;
    let id = unlock["executionId"].as_str().unwrap();
    let answered = device
        .device_on(
            &format!("courier/commands/things/car-1/executions/{id}/response/json"),
            json!({"status": "SUCCEEDED"}),
            1302,
        )
        .await;
    assert!(
        answered.to_string().contains("/response/accepted/json"),
        "{answered}"
    );
    dispatcher.drain(&mut stream, at(1303)).await;
    // AND the ended execution is deleted, and the car's queue read and cleared
    api.api("DELETE", &format!("/executions/{id}"), None, at(1304))
        .await;
    api.api("GET", "/things/car-1/queue", None, at(1305)).await;
    api.api("POST", "/things/car-1/queue/clear", None, at(1305))
        .await;
    // AND a keyed start, and one that supersedes it (a transaction each)
    api.api(
        "POST",
        "/commands/reboot/executions",
        Some(json!({"target": "dev-k", "dedupeKey": "reboot"})),
        at(1306),
    )
    .await;
    api.api(
        "POST",
        "/commands/reboot/executions",
        Some(
            json!({"target": "dev-k", "dedupeKey": "reboot", "supersede": true,
                    "executionTimeoutSeconds": 900}),
        ),
        at(1307),
    )
    .await;
    // AND the device reconnects (a lifecycle event: recorded, its queue told)
    device
        .device_on(
            "$aws/events/presence/connected/dev-k",
            json!({"clientId": "dev-k", "timestamp": (NOW + 1308) * 1000, "eventType": "connected"}),
            1308,
        )
        .await;
    // AND a car with a delivered, unanswered command reconnects: its request
    // is published to it again
    api.api(
        "POST",
        "/commands/unlock/executions",
        Some(json!({"target": "car-2"})),
        at(1309),
    )
    .await;
    let again = device
        .device_on(
            "$aws/events/presence/connected/car-2",
            json!({"clientId": "car-2", "timestamp": (NOW + 1310) * 1000, "eventType": "connected"}),
            1310,
        )
        .await;
    assert!(again.to_string().contains("/request/json"), "{again}");

    // AND a pipeline: created, listed, run over a device that works and
    // held at a manual gate until resumed; a second run over the group,
    // whose silent devices time out their stage in a sweep; a third
    // canceled; a fourth refused by the tenant's limits is not needed
    api.api(
        "POST",
        "/pipelines",
        Some(json!({"pipelineId": "fw", "stages": [
            {"name": "s1", "timeoutSeconds": 60, "operations": [{"commandId": "reboot"}]}]})),
        at(1400),
    )
    .await;
    api.api("GET", "/pipelines", None, at(1400)).await;
    api.api("GET", "/pipelines/fw", None, at(1400)).await;
    let gated = api
        .api(
            "POST",
            "/pipelines/fw/runs",
            Some(json!({"targets": {"things": ["pipe-1"]}, "gates": {"s1": {"manualApproval": true}}})),
            at(1401),
        )
        .await["runId"]
        .as_str()
        .unwrap()
        .to_owned();
    dispatcher.drain(&mut stream, at(1402)).await;
    let next = device.device("pipe-1", "start-next", json!({}), 1403).await;
    let id = next["published"][0]["payload"]["execution"]["jobId"]
        .as_str()
        .unwrap_or_else(|| panic!("pipe-1 has the run's execution: {next}"))
        .to_owned();
    device
        .device(
            "pipe-1",
            &format!("{id}/update"),
            json!({"status": "SUCCEEDED"}),
            1404,
        )
        .await;
    dispatcher.drain(&mut stream, at(1405)).await;
    let held = api
        .api(
            "GET",
            &format!("/pipelines/fw/runs/{gated}"),
            None,
            at(1406),
        )
        .await;
    assert_eq!(held["status"], "HELD", "{held}");
    api.api(
        "POST",
        &format!("/pipelines/fw/runs/{gated}/resume"),
        Some(json!({})),
        at(1406),
    )
    .await;
    dispatcher.drain(&mut stream, at(1407)).await;
    let done = api
        .api(
            "GET",
            &format!("/pipelines/fw/runs/{gated}"),
            None,
            at(1407),
        )
        .await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    api.api("GET", "/pipelines/fw/runs", None, at(1407)).await;
    api.api(
        "GET",
        &format!("/pipelines/fw/runs/{gated}/targets"),
        None,
        at(1407),
    )
    .await;
    let silent = api
        .api(
            "POST",
            "/pipelines/fw/runs",
            Some(json!({"targets": {"thingGroup": group}})),
            at(1408),
        )
        .await["runId"]
        .as_str()
        .unwrap()
        .to_owned();
    dispatcher.drain(&mut stream, at(1409)).await;
    sweeper.sweep(at(1480)).await;
    dispatcher.drain(&mut stream, at(1481)).await;
    let timed_out = api
        .api(
            "GET",
            &format!("/pipelines/fw/runs/{silent}"),
            None,
            at(1481),
        )
        .await;
    assert_eq!(timed_out["status"], "COMPLETED", "{timed_out}");
    assert!(
        timed_out["stages"][0]["timedOut"].as_u64().unwrap() > 0,
        "{timed_out}"
    );
    let canceled = api
        .api(
            "POST",
            "/pipelines/fw/runs",
            Some(json!({"targets": {"things": ["pipe-2"]}})),
            at(1490),
        )
        .await["runId"]
        .as_str()
        .unwrap()
        .to_owned();
    dispatcher.drain(&mut stream, at(1491)).await;
    api.api(
        "POST",
        &format!("/pipelines/fw/runs/{canceled}/cancel"),
        Some(json!({"force": true})),
        at(1492),
    )
    .await;
    dispatcher.drain(&mut stream, at(1493)).await;
    // AND targets by a fleet-index query: a job (checked by the api, fanned
    // out by the dispatcher) and a run whose first stream batch is lost, so
    // the sweeper starts it
    let queried = api
        .api(
            "POST",
            "/jobs",
            Some(json!({"commandId": "reboot", "targets": {"query": format!("thingGroupNames:{group}")}})),
            at(1500),
        )
        .await["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
    dispatcher.drain(&mut stream, at(1501)).await;
    let fanned = api
        .api("GET", &format!("/jobs/{queried}"), None, at(1501))
        .await;
    assert_eq!(fanned["fanOut"]["created"], 2, "{fanned}");
    api.api(
        "POST",
        "/pipelines/fw/runs",
        Some(json!({"targets": {"query": format!("thingGroupNames:{group}")}})),
        at(1510),
    )
    .await;
    assert!(
        !stream.poll().await.unwrap().is_empty(),
        "the run's batch, lost"
    );
    sweeper.sweep(at(1520)).await;
    dispatcher.drain(&mut stream, at(1521)).await;

    [
        ("ApiFunction", api.used()),
        ("DeviceEventsFunction", device.used()),
        ("DispatcherFunction", dispatcher.used()),
        ("SweeperFunction", sweeper.used()),
    ]
    .into_iter()
    .collect()
}

/// Marks a topic a function published to (not an action).
const PUBLISHED_TO: &str = "published to";

/// The topics `function` may publish to, as the template grants them, with
/// the template's default topic prefixes: IAM's `*` matches any characters.
fn granted_topics(function: &str) -> Vec<String> {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .unwrap();
    let default_of = |parameter: &str| {
        let at = template.find(&format!("\n  {parameter}:")).unwrap();
        let rest = &template[at..];
        let line = rest
            .lines()
            .find(|l| l.trim().starts_with("Default:"))
            .unwrap();
        line.trim().trim_start_matches("Default:").trim().to_owned()
    };
    let mut in_function = false;
    let mut patterns = Vec::new();
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 2 && line.trim().ends_with(':') {
            in_function = line.trim().trim_end_matches(':') == function;
            continue;
        }
        if let (true, Some(at)) = (in_function, line.find(":topic/")) {
            let pattern = line[at + ":topic/".len()..].trim_end_matches('"');
            patterns.push(
                [
                    "DeviceTopicPrefix",
                    "CommandsTopicPrefix",
                    "CommandEventsTopic",
                ]
                .iter()
                .fold(pattern.to_owned(), |p, name| {
                    p.replace(&format!("${{{name}}}"), &default_of(name))
                }),
            );
        }
    }
    patterns
}

/// Whether `topic` matches an IAM resource `pattern` (`*`: any characters).
fn matches(pattern: &str, topic: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = topic.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The topics the function published to that its role may not publish to.
fn refused_topics(function: &str) -> Vec<String> {
    let granted = granted_topics(function);
    used_by_function()
        .get(function)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(kind, topic)| kind == PUBLISHED_TO && !granted.iter().any(|p| matches(p, topic)))
        .map(|(_, topic)| format!("{function} publishes to {topic}, not granted ({granted:?})"))
        .collect()
}

/// The function's AWS actions against what the template grants its role,
/// both ways: every problem, one line each.
fn check(function: &str) {
    let used: BTreeSet<Use> = used_by_function()
        .get(function)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(kind, _)| kind != PUBLISHED_TO)
        .collect();
    let granted = granted().remove(function).unwrap_or_default();
    let mut problems = Vec::new();
    for (action, resource) in &used {
        if !granted.contains(&(action.clone(), resource.clone())) {
            problems.push(format!(
                "{function} uses {action} on {resource}, not granted"
            ));
        }
    }
    let used_actions: BTreeSet<&String> = used.iter().map(|(a, _)| a).collect();
    let used_resources: BTreeSet<&String> = used.iter().map(|(_, r)| r).collect();
    for (action, resource) in &granted {
        if !used_actions.contains(action) {
            problems.push(format!("{function} is granted {action}, never used"));
        }
        if !used_resources.contains(resource) {
            problems.push(format!(
                "{function} is granted access to {resource}, never used"
            ));
        }
    }
    problems.sort();
    problems.dedup();
    eprintln!("{function}: {used:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_api_function_uses_exactly_what_its_role_grants() {
    check("ApiFunction");
}

#[test]
fn the_device_events_function_uses_exactly_what_its_role_grants() {
    check("DeviceEventsFunction");
}

#[test]
fn the_dispatcher_function_uses_exactly_what_its_role_grants() {
    check("DispatcherFunction");
}

#[test]
fn the_sweeper_function_uses_exactly_what_its_role_grants() {
    check("SweeperFunction");
}

/// One report line per topic a function may not publish to.
#[test]
fn every_function_publishes_only_to_topics_its_role_grants() {
    let refused: Vec<String> = [
        "ApiFunction",
        "DeviceEventsFunction",
        "DispatcherFunction",
        "SweeperFunction",
    ]
    .into_iter()
    .flat_map(refused_topics)
    .collect();
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

/// Presigning makes no AWS call, so the scenario above cannot see it: a
/// presigned URL is a GET the signing role itself may make. Every function
/// hands devices documents (api: direct delivery; device-events: start-next
/// and describe; dispatcher and sweeper: notify-next and the commands
/// protocol's request), so each is granted exactly `s3:GetObject` on the
/// artifact bucket's objects, and only when a bucket is configured; no
/// other S3 action appears anywhere.
#[test]
fn every_function_that_signs_artifact_urls_may_read_the_artifact_bucket_and_nothing_else_of_s3() {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .unwrap();
    let grant = "              - Effect: Allow\n                Action: s3:GetObject\n                Resource: !Sub \"arn:${AWS::Partition}:s3:::${ArtifactBucket}/*\"";
    let mut function = "";
    let mut granted = Vec::new();
    let lines: Vec<&str> = template.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            function = line.trim().trim_end_matches(':');
        }
        if line.contains("s3:") && !line.contains(":s3:::") {
            assert!(
                line.trim() == "Action: s3:GetObject",
                "an S3 action other than GetObject: {line}"
            );
            let block = lines[i - 1..=i + 1].join("\n");
            assert_eq!(block, grant, "{function}'s S3 grant");
            assert_eq!(
                lines[i - 2].trim(),
                "- HasArtifactBucket",
                "{function}: only with a bucket"
            );
            granted.push(function);
        }
    }
    assert_eq!(
        granted,
        [
            "ApiFunction",
            "DeviceEventsFunction",
            "DispatcherFunction",
            "SweeperFunction"
        ]
    );
}
