//! `make bench` (second part): end-to-end latencies through the local stack
//! (mosquitto, the functions under `cargo lambda watch` as release builds,
//! `courier-local bridge`), with real MQTT devices (rumqttc), and each hop
//! of the two paths:
//!
//! - broker round trip: publish -> the same client receives it (the floor);
//! - delivery: `POST /commands/{id}/executions` sent -> the device receives
//!   `notify-next` naming the execution. Hops: the HTTP round trip to the
//!   api, its handler, the handler's DynamoDB calls and its publish (the
//!   api's `Server-Timing` header, `USAGE_REPORT=on`);
//! - update: the device publishes SUCCEEDED -> its `accepted` reply, then
//!   `GET /executions/{id}` shows it. Hops: the `device-events` handler, its
//!   DynamoDB calls and publishes (its usage lines in `WATCH_LOG`), and the
//!   read's round trip.
//!
//! Writes `bench/results/latency{SUFFIX}.json` and `.md`. Environment:
//! MQTT_BROKER, API_URL, WATCH_LOG, BENCH_DEVICES (default 20),
//! BENCH_SUFFIX, BENCH_STACK (a description of the stack for the report).

use courier_core::protocol::DEFAULT_ROOT;
use courier_local::accounting::{percentile, usage_reports, LogWindow};
use courier_local::http::{self, server_timing_ms, HttpClient};
use courier_local::mqtt::MqttDevice;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PER_DEVICE: usize = 50;
/// Executions each device runs first, unmeasured: DynamoDB Local's JVM and
/// every connection warm up on them, so the figures are the steady state.
const WARM_UP: usize = 10;
const ROUND_TRIPS: usize = 1000;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/bench.sh sets it)"))
}

/// Devices working at once. Under `cargo lambda watch` each function serves
/// one invocation at a time, so with many devices the figures include
/// queueing; 1 measures a single path.
fn devices() -> usize {
    std::env::var("BENCH_DEVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

/// Figures per hop name, in milliseconds.
type Samples = BTreeMap<&'static str, Vec<f64>>;

const FLOOR: &str = "broker round trip (the floor)";
const CREATE_RTT: &str = "create: HTTP round trip to the api";
const CREATE_HANDLER: &str = "create: api handler";
const CREATE_DB: &str = "create: of which DynamoDB";
const CREATE_PUBLISH: &str = "create: of which publish (data plane -> broker)";
const DELIVERY: &str = "create -> device receives notify-next (end to end)";
const UPDATE_ACCEPTED: &str = "update: device publishes -> its accepted reply";
const UPDATE_HANDLER: &str = "update: device-events handler";
const UPDATE_DB: &str = "update: of which DynamoDB";
const UPDATE_PUBLISH: &str = "update: of which publish";
const READ_RTT: &str = "update: GET /executions/{id} round trip";
const UPDATE_READABLE: &str = "device update -> readable through the API (end to end)";
const ORDER: [&str; 12] = [
    FLOOR,
    CREATE_RTT,
    CREATE_HANDLER,
    CREATE_DB,
    CREATE_PUBLISH,
    DELIVERY,
    UPDATE_ACCEPTED,
    UPDATE_HANDLER,
    UPDATE_DB,
    UPDATE_PUBLISH,
    READ_RTT,
    UPDATE_READABLE,
];

fn ms_since(start: Instant, end: Instant) -> f64 {
    end.duration_since(start).as_secs_f64() * 1000.0
}

async fn broker_round_trips(broker: &str) -> Result<Vec<f64>, String> {
    let mut probe = MqttDevice::connect(broker, "bench-probe", DEFAULT_ROOT).await?;
    let mut out = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let start = Instant::now();
        probe.publish("probe", &json!({ "i": i })).await?;
        let got = probe
            .wait_for(Duration::from_secs(5), |(t, body, _)| {
                t.ends_with("/probe") && body["i"] == json!(i)
            })
            .await
            .ok_or("probe lost")?;
        out.push(ms_since(start, got.2));
    }
    probe.disconnect().await;
    Ok(out)
}

/// `METHOD path` on the api over `client`: status, body, Server-Timing.
async fn api(
    client: &HttpClient,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value, String), String> {
    let url = format!("{}{path}", env("API_URL").trim_end_matches('/'));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let reply = http::exchange(client, method, &url, body.into_bytes()).await?;
    let value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    Ok((reply.status, value, reply.server_timing.unwrap_or_default()))
}

/// One device working through `PER_DEVICE` executions, one at a time.
async fn device_run(broker: String, thing: String) -> Result<Samples, String> {
    let client = http::client();
    let mut dev = MqttDevice::connect(&broker, &thing, DEFAULT_ROOT).await?;
    let mut samples = Samples::new();
    for round in 0..WARM_UP + PER_DEVICE {
        let mut add = |name: &'static str, ms: f64| {
            if round >= WARM_UP {
                samples.entry(name).or_default().push(ms);
            }
        };
        let start = Instant::now();
        let (status, created, timing) = api(
            &client,
            "POST",
            "/commands/bench-reboot/executions",
            Some(json!({ "target": thing })),
        )
        .await?;
        let answered = Instant::now();
        if status != 201 {
            return Err(format!("create: {status} {created}"));
        }
        let id = created["executionId"].clone();
        let got = dev
            .wait_for(Duration::from_secs(30), |(t, body, _)| {
                t.ends_with("/notify-next") && body["execution"]["jobId"] == id
            })
            .await
            .ok_or("notify-next never came")?;
        add(DELIVERY, ms_since(start, got.2));
        add(CREATE_RTT, ms_since(start, answered));
        for (name, part) in [
            (CREATE_HANDLER, "handler"),
            (CREATE_DB, "dynamodb"),
            (CREATE_PUBLISH, "publish"),
        ] {
            if let Some(ms) = server_timing_ms(&timing, part) {
                add(name, ms);
            }
        }
        let id = id.as_str().unwrap_or_default().to_owned();
        let start = Instant::now();
        dev.request(&format!("{id}/update"), json!({"status": "SUCCEEDED"}))
            .await
            .map_err(|e| format!("update: {e}"))?;
        let accepted = Instant::now();
        let (_, read, _) = api(&client, "GET", &format!("/executions/{id}"), None).await?;
        if read["status"] != "SUCCEEDED" {
            return Err(format!("read after update: {read}"));
        }
        add(UPDATE_ACCEPTED, ms_since(start, accepted));
        add(READ_RTT, accepted.elapsed().as_secs_f64() * 1000.0);
        add(UPDATE_READABLE, start.elapsed().as_secs_f64() * 1000.0);
        dev.clear();
    }
    dev.disconnect().await;
    Ok(samples)
}

fn summary(name: &str, mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "name": name, "n": ms.len(),
        "p50_ms": percentile(&ms, 50.0), "p99_ms": percentile(&ms, 99.0),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let suffix = std::env::var("BENCH_SUFFIX").unwrap_or_default();
    let stack = std::env::var("BENCH_STACK").unwrap_or_else(|_| {
        "local: mosquitto, functions under cargo lambda watch, courier-local bridge, DynamoDB Local".into()
    });
    let broker = env("MQTT_BROKER");
    let (status, _, _) = api(
        &http::client(),
        "POST",
        "/commands",
        Some(json!({"commandId": "bench-reboot", "executionTimeoutSeconds": 600})),
    )
    .await?;
    if status != 201 && status != 200 {
        return Err(format!("create command: {status}").into());
    }
    let mut samples = Samples::new();
    samples.insert(FLOOR, broker_round_trips(&broker).await?);
    let watch_log = LogWindow::mark(&env("WATCH_LOG"))?;
    let started = Instant::now();

    let devices = devices();
    let runs: Vec<_> = (0..devices)
        .map(|i| tokio::spawn(device_run(broker.clone(), format!("bench-{i}"))))
        .collect();
    for run in runs {
        for (name, figures) in run.await?? {
            samples.entry(name).or_default().extend(figures);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    // Each execution's update is one device-events invocation: the last
    // `devices * PER_DEVICE` of them are the measured ones (after warm-up).
    let updates: Vec<Value> = usage_reports(&watch_log.text()?)
        .into_iter()
        .filter(|r| r["function"] == "device-events")
        .collect();
    let measured = updates.len().saturating_sub(devices * PER_DEVICE);
    for report in &updates[measured..] {
        for (name, field) in [
            (UPDATE_HANDLER, "handlerMs"),
            (UPDATE_DB, "dynamodbMs"),
            (UPDATE_PUBLISH, "publishMs"),
        ] {
            if let Some(ms) = report[field].as_f64() {
                samples.entry(name).or_default().push(ms);
            }
        }
    }
    let latencies: Vec<Value> = ORDER
        .iter()
        .map(|name| summary(name, samples.remove(name).unwrap_or_default()))
        .collect();
    let results = json!({
        "devices": devices, "executions": devices * PER_DEVICE, "wall_seconds": wall,
        "stack": stack, "latencies": latencies,
    });
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/latency{suffix}.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let mut md =
        String::from("| path or hop | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
    for l in &latencies {
        md.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |\n",
            l["name"].as_str().unwrap_or_default(),
            l["n"],
            l["p50_ms"].as_f64().unwrap_or(f64::NAN),
            l["p99_ms"].as_f64().unwrap_or(f64::NAN),
            l["max_ms"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    md.push_str(&format!(
        "\n{} executions by {devices} device(s), each one at a time, after {WARM_UP} unmeasured each, in {wall:.1} s; {stack}.\n",
        devices * PER_DEVICE,
    ));
    std::fs::write(format!("{out_dir}/latency{suffix}.md"), &md)?;
    print!("{md}");
    Ok(())
}
