//! `make bench`: THE BILL PER MILLION EXECUTIONS, measured in the running
//! local stack and priced with `bench/prices.json`.
//!
//! One device per protocol works through `COST_RUNS` executions, one at a
//! time, each its whole life: the API creates it (direct delivery), the
//! device is told, takes it (Jobs: start-next; commands: the request is the
//! delivery), reports progress once and succeeds, and gets whatever
//! notifications follow. Every billable unit of that window is counted
//! where it happens:
//!
//! - DynamoDB read and write units, Lambda invocations and handler time:
//!   the functions' usage lines (`USAGE_REPORT=on`, from ReturnConsumedCapacity
//!   and the handler's clock), in `WATCH_LOG`;
//! - MQTT messages: mosquitto's log (`MOSQUITTO_LOG`, with `MOSQUITTO_DEBUG=on`), as AWS IoT
//!   Core meters them: each PUBLISH a device or a function sends, each
//!   delivery to a device, and each QoS 1 PUBACK a device sends, per started
//!   5 KB of topic and payload; a delivery to the rules stand-in is a rule
//!   triggered and its action (a Lambda invoke), not a message;
//! - API requests: the api's invocations.
//!
//! The scheduled sweeper runs on a timer whatever the traffic, so it is a
//! fixed monthly cost, reported apart. Writes `bench/results/cost{suffix}.json`
//! and `cost{suffix}.md`, with the stack's optional-message settings
//! (`LIST_NOTIFICATIONS`, `COMMAND_STATUS_EVENTS`: `make bench` measures
//! the defaults, then a stack with both off as `-lean`). Environment:
//! API_URL, MQTT_BROKER, WATCH_LOG, MOSQUITTO_LOG, COST_RUNS (default 20),
//! BENCH_SUFFIX (default none).

use courier_local::accounting::{broker_publishes, usage_reports, Direction, LogWindow};
use courier_local::http::call_api;
use courier_local::mqtt::MqttDevice;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// The rules stand-in's and the data-plane stand-in's broker clients.
const RULES_CLIENT: &str = "courier-local-rules";
const DATA_PLANE_CLIENT: &str = "courier-local-data-plane";
const JOBS_ROOT: &str = "courier/things/{thingName}/jobs";
const COMMANDS_ROOT: &str = "courier/commands/things/{thingName}";
/// How long the stack gets after the last step for what follows it (the
/// stream's records, trailing notifications).
const SETTLE: Duration = Duration::from_secs(3);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/bench.sh sets it)"))
}

fn runs() -> usize {
    std::env::var("COST_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

async fn api(method: &str, path: &str, body: Value) -> Result<Value, String> {
    let (status, reply) = call_api(&env("API_URL"), method, path, Some(&body)).await?;
    if status >= 300 {
        return Err(format!("{method} {path}: {status} {reply}"));
    }
    Ok(reply)
}

/// A Jobs-protocol execution's whole life.
async fn jobs_lifecycle(device: &mut MqttDevice, command: &str) -> Result<(), String> {
    let created = api(
        "POST",
        &format!("/commands/{command}/executions"),
        json!({"target": device.thing}),
    )
    .await?;
    let id = created["executionId"].clone();
    device
        .wait_for(Duration::from_secs(30), |(t, body, _)| {
            t.ends_with("/notify-next") && body["execution"]["jobId"] == id
        })
        .await
        .ok_or("notify-next never came")?;
    let started = device
        .request("start-next", json!({}))
        .await
        .map_err(|e| format!("start-next: {e}"))?;
    if started["execution"]["jobId"] != id {
        return Err(format!("start-next took {started}"));
    }
    let id = id.as_str().unwrap_or_default();
    for update in [
        json!({"status": "IN_PROGRESS", "statusDetails": {"step": "download"}}),
        json!({"status": "SUCCEEDED", "statusDetails": {"step": "done"}}),
    ] {
        device
            .request(&format!("{id}/update"), update)
            .await
            .map_err(|e| format!("update: {e}"))?;
    }
    Ok(())
}

/// An AWS IoT commands execution's whole life.
async fn commands_lifecycle(device: &mut MqttDevice, command: &str) -> Result<(), String> {
    let created = api(
        "POST",
        &format!("/commands/{command}/executions"),
        json!({"target": device.thing, "parameters": {"powerStatus": {"S": "ON"}}}),
    )
    .await?;
    let id = created["executionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let request = format!("executions/{id}/request/json");
    device
        .wait_for(Duration::from_secs(30), |(t, _, _)| t.ends_with(&request))
        .await
        .ok_or("the command request never came")?;
    for update in [
        json!({"status": "IN_PROGRESS", "statusReason": {"reasonCode": "STARTED"}}),
        json!({"status": "SUCCEEDED", "result": {"ok": {"b": true}}}),
    ] {
        device
            .publish(&format!("executions/{id}/response/json"), &update)
            .await?;
        let answer = format!("executions/{id}/response/");
        let (topic, body, _) = device
            .wait_for(Duration::from_secs(15), |(t, _, _)| {
                t.contains(&answer) && !t.ends_with("/response/json")
            })
            .await
            .ok_or("no answer to a command response")?;
        if !topic.ends_with("/accepted/json") {
            return Err(format!("{topic}: {body}"));
        }
    }
    Ok(())
}

/// The units one protocol's window used, per execution.
fn count(watch: &str, broker: &str, runs: usize, memory_mb: f64) -> Value {
    let mut invocations: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let (mut write_units, mut read_units) = (0.0, 0.0);
    for report in usage_reports(watch) {
        let function = report["function"].as_str().unwrap_or_default().to_owned();
        if function == "sweeper" {
            continue;
        }
        let handler_ms = report["handlerMs"].as_f64().unwrap_or_default();
        let entry = invocations.entry(function).or_default();
        entry.0 += 1.0;
        // Lambda bills the duration rounded up to the millisecond.
        entry.1 += handler_ms.ceil() * memory_mb / 1024.0 / 1000.0;
        write_units += report["writeUnits"].as_f64().unwrap_or_default();
        read_units += report["readUnits"].as_f64().unwrap_or_default();
    }
    // AWS IoT meters topic and payload together, per started 5 KB.
    let units = |bytes: usize| courier_functions::platform::usage::message_units(bytes) as f64;
    let (mut device_in, mut function_in, mut device_out, mut pubacks, mut rules) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut topics: BTreeMap<String, f64> = BTreeMap::new();
    for p in broker_publishes(broker) {
        let generic = topic_kind(&p.topic);
        match (p.direction, p.client.as_str()) {
            (Direction::Sent, RULES_CLIENT) => rules += 1.0,
            (Direction::Received, DATA_PLANE_CLIENT) => {
                function_in += units(p.bytes + p.topic.len());
                *topics
                    .entry(format!("Courier publishes {generic}"))
                    .or_default() += 1.0;
            }
            (Direction::Received, _) => {
                device_in += units(p.bytes + p.topic.len());
                *topics
                    .entry(format!("device publishes {generic}"))
                    .or_default() += 1.0;
            }
            (Direction::Sent, _) => {
                device_out += units(p.bytes + p.topic.len());
                *topics
                    .entry(format!("delivered to the device: {generic}"))
                    .or_default() += 1.0;
            }
        }
    }
    for line in broker.lines() {
        if line.contains("Received PUBACK from ")
            && !line.contains(DATA_PLANE_CLIENT)
            && !line.contains(RULES_CLIENT)
        {
            pubacks += 1.0;
        }
    }
    let per = |x: f64| x / runs as f64;
    json!({
        "executions": runs,
        "dynamodb": {"writeUnits": per(write_units), "readUnits": per(read_units)},
        "lambda": invocations.iter().map(|(f, (n, gbs))| (f.clone(), json!({"invocations": per(*n), "gbSeconds": per(*gbs)}))).collect::<serde_json::Map<_, _>>(),
        "apiRequests": per(invocations.get("api").map_or(0.0, |v| v.0)),
        "messages": {
            "fromDevices": per(device_in), "fromFunctions": per(function_in),
            "toDevices": per(device_out), "devicePubacks": per(pubacks),
            "total": per(device_in + function_in + device_out + pubacks),
            "byTopic": topics.iter().map(|(t, n)| (t.clone(), json!(per(*n)))).collect::<serde_json::Map<_, _>>(),
        },
        "rules": {"triggered": per(rules), "actions": per(rules)},
    })
}

/// A topic with its thing and execution ids taken out.
fn topic_kind(topic: &str) -> String {
    let parts: Vec<&str> = topic.split('/').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let after = i.checked_sub(1).and_then(|j| parts.get(j)).copied();
            match after {
                Some("things" | "executions") => "+",
                _ if part.len() > 20 => "+",
                _ => part,
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Dollars per million executions, by part, from the counted units.
fn price(units: &Value, prices: &Value) -> Value {
    let p = |path: &str| {
        prices
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let f = |path: &str| {
        units
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or_default()
    };
    let million = 1e6;
    let lambda = units["lambda"].as_object().cloned().unwrap_or_default();
    let invocations: f64 = lambda
        .values()
        .map(|v| v["invocations"].as_f64().unwrap_or_default())
        .sum();
    let gb_seconds: f64 = lambda
        .values()
        .map(|v| v["gbSeconds"].as_f64().unwrap_or_default())
        .sum();
    let dynamodb = f("/dynamodb/writeUnits") * p("/dynamodb/writeRequestUnit/usdPerMillion")
        + f("/dynamodb/readUnits") * p("/dynamodb/readRequestUnit/usdPerMillion");
    let lambda = invocations * p("/lambda/requests/usdPerMillion")
        + gb_seconds * p("/lambda/arm64GbSecond/usd") * million;
    let rules = f("/rules/triggered") * p("/iotRules/triggered/usdPerMillion")
        + f("/rules/actions") * p("/iotRules/actions/usdPerMillion");
    let api = f("/apiRequests") * p("/httpApi/requests/usdPerMillion");
    let messaging = f("/messages/total") * p("/iotMessaging/messages/usdPerMillion");
    let own = dynamodb + lambda + rules + api;
    json!({
        "dynamodb": dynamodb, "lambda": lambda, "iotRules": rules, "httpApi": api,
        "courierOwnShare": own, "iotMessaging": messaging, "allIn": own + messaging,
    })
}

/// `MemorySize` in the template's Globals (every function's memory).
fn template_memory_mb() -> f64 {
    std::fs::read_to_string("infra/template.yaml")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.trim().strip_prefix("MemorySize:")?.trim().parse().ok())
        })
        .unwrap_or(f64::NAN)
}

struct Protocol {
    name: &'static str,
    command: Value,
    root: &'static str,
    /// What the device subscribes to under its root: what the AWS IoT
    /// Device SDKs' samples subscribe to (the Jobs sample: notify-next and
    /// the replies to its requests; the commands sample: its requests and
    /// the replies to its responses).
    subscriptions: &'static [&'static str],
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let prices: Value = serde_json::from_str(&std::fs::read_to_string("bench/prices.json")?)?;
    let memory_mb = template_memory_mb();
    let broker = env("MQTT_BROKER");
    let runs = runs();
    let protocols = [
        Protocol {
            name: "jobs",
            command: json!({"commandId": "cost-reboot", "executionTimeoutSeconds": 600}),
            root: JOBS_ROOT,
            subscriptions: &[
                "notify-next",
                "start-next/accepted",
                "start-next/rejected",
                "+/update/accepted",
                "+/update/rejected",
            ],
        },
        Protocol {
            name: "commands",
            command: json!({"commandId": "cost-power", "protocol": "commands", "executionTimeoutSeconds": 600,
                            "parameters": [{"name": "powerStatus", "type": "S", "enum": ["ON", "OFF"], "required": true}]}),
            root: COMMANDS_ROOT,
            subscriptions: &[
                "executions/+/request/#",
                "executions/+/response/accepted/json",
                "executions/+/response/rejected/json",
            ],
        },
    ];
    let mut results = serde_json::Map::new();
    for protocol in &protocols {
        let (status, reply) = call_api(
            &env("API_URL"),
            "POST",
            "/commands",
            Some(&protocol.command),
        )
        .await?;
        if status >= 300 && status != 409 {
            return Err(format!("create command: {status} {reply}").into());
        }
        let command = protocol.command["commandId"].as_str().unwrap_or_default();
        let mut device = MqttDevice::connect_subscribed(
            &broker,
            &format!("cost-{}", protocol.name),
            protocol.root,
            protocol.subscriptions,
        )
        .await?;
        tokio::time::sleep(SETTLE).await;
        let watch = LogWindow::mark(&env("WATCH_LOG"))?;
        let mosquitto = LogWindow::mark(&env("MOSQUITTO_LOG"))?;
        for _ in 0..runs {
            match protocol.name {
                "jobs" => jobs_lifecycle(&mut device, command).await?,
                _ => commands_lifecycle(&mut device, command).await?,
            }
            device.clear();
        }
        tokio::time::sleep(SETTLE).await;
        let units = count(&watch.text()?, &mosquitto.text()?, runs, memory_mb);
        let dollars = price(&units, &prices);
        device.disconnect().await;
        results.insert(
            protocol.name.into(),
            json!({"unitsPerExecution": units, "usdPerMillionExecutions": dollars}),
        );
    }
    let setting = |name: &str| std::env::var(name).unwrap_or_else(|_| "on".into());
    let results = json!({
        "protocols": results,
        "settings": {
            "LIST_NOTIFICATIONS": setting("LIST_NOTIFICATIONS"),
            "COMMAND_STATUS_EVENTS": setting("COMMAND_STATUS_EVENTS"),
        },
        "lambdaMemoryMb": memory_mb,
        "awsIotJobsUsdPerMillion": prices.pointer("/awsIotJobs/executions/usdPerMillion"),
        "pricesFrom": "bench/prices.json",
    });
    let suffix = std::env::var("BENCH_SUFFIX").unwrap_or_default();
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/cost{suffix}.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let md = markdown(&results);
    std::fs::write(format!("{out_dir}/cost{suffix}.md"), &md)?;
    print!("{md}");
    Ok(())
}

fn markdown(results: &Value) -> String {
    let mut md =
        String::from("| per execution | Jobs protocol | commands protocol |\n|---|---|---|\n");
    let get = |protocol: &str, path: &str| {
        results["protocols"][protocol]
            .pointer(path)
            .and_then(Value::as_f64)
            .unwrap_or_default()
    };
    let rows: [(&str, &str, bool); 15] = [
        (
            "DynamoDB write units",
            "/unitsPerExecution/dynamodb/writeUnits",
            false,
        ),
        (
            "DynamoDB read units",
            "/unitsPerExecution/dynamodb/readUnits",
            false,
        ),
        (
            "Lambda invocations: api",
            "/unitsPerExecution/lambda/api/invocations",
            false,
        ),
        (
            "Lambda invocations: device-events",
            "/unitsPerExecution/lambda/device-events/invocations",
            false,
        ),
        (
            "Lambda invocations: dispatcher",
            "/unitsPerExecution/lambda/dispatcher/invocations",
            false,
        ),
        (
            "IoT rules triggered (and actions)",
            "/unitsPerExecution/rules/triggered",
            false,
        ),
        (
            "MQTT messages from the device",
            "/unitsPerExecution/messages/fromDevices",
            false,
        ),
        (
            "MQTT messages Courier publishes",
            "/unitsPerExecution/messages/fromFunctions",
            false,
        ),
        (
            "MQTT deliveries to the device",
            "/unitsPerExecution/messages/toDevices",
            false,
        ),
        (
            "MQTT PUBACKs from the device",
            "/unitsPerExecution/messages/devicePubacks",
            false,
        ),
        ("HTTP API requests", "/unitsPerExecution/apiRequests", false),
        (
            "$/M: DynamoDB + Lambda + rules + API (Courier's own share)",
            "/usdPerMillionExecutions/courierOwnShare",
            true,
        ),
        (
            "$/M: of which DynamoDB",
            "/usdPerMillionExecutions/dynamodb",
            true,
        ),
        (
            "$/M: IoT Core messaging",
            "/usdPerMillionExecutions/iotMessaging",
            true,
        ),
        ("$/M: all in", "/usdPerMillionExecutions/allIn", true),
    ];
    for (label, path, dollars) in rows {
        let (j, c) = (get("jobs", path), get("commands", path));
        if dollars {
            md.push_str(&format!("| {label} | ${j:.2} | ${c:.2} |\n"));
        } else {
            md.push_str(&format!("| {label} | {j:.2} | {c:.2} |\n"));
        }
    }
    md.push_str(&format!(
        "\nAWS IoT Jobs lists ${} per million job executions before messaging. Lambda at {} MB arm64, duration as the handlers measured it (release builds on the local stack), rounded up to the millisecond per invocation. Prices: bench/prices.json. Settings: LIST_NOTIFICATIONS={}, COMMAND_STATUS_EVENTS={}.\n",
        results["awsIotJobsUsdPerMillion"],
        results["lambdaMemoryMb"],
        results["settings"]["LIST_NOTIFICATIONS"].as_str().unwrap_or("on"),
        results["settings"]["COMMAND_STATUS_EVENTS"].as_str().unwrap_or("on"),
    ));
    md
}
