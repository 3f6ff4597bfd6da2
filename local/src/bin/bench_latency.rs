//! `make bench` (second part): end-to-end latencies through the local stack
//! (mosquitto, the functions under `cargo lambda watch`, `courier-local
//! bridge`), with real MQTT devices (rumqttc):
//!
//! - broker round trip: publish -> the same client receives it (the floor);
//! - delivery: `POST /commands/{id}/executions` sent -> the device receives
//!   `notify-next` naming the execution (API -> DynamoDB -> stream ->
//!   dispatcher -> data plane -> broker);
//! - update: the device publishes SUCCEEDED -> `GET /executions/{id}` shows
//!   it (broker -> rules -> device-events -> DynamoDB, then a read).
//!
//! Writes `bench/results/latency.json` and `latency.md`. Environment as the
//! end-to-end tests: MQTT_BROKER, API_URL.

use courier_core::protocol::DEFAULT_ROOT;
use courier_local::http::call_api;
use courier_local::mqtt::MqttDevice;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Devices working at once (`BENCH_DEVICES`, default 20). Under `cargo
/// lambda watch` each function serves one invocation at a time, so with
/// many devices the figures include queueing; 1 measures a single path.
fn devices() -> usize {
    std::env::var("BENCH_DEVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}
const PER_DEVICE: usize = 50;
const ROUND_TRIPS: usize = 1000;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/bench.sh sets it)"))
}

async fn api(method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
    call_api(&env("API_URL"), method, path, body.as_ref()).await
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    json!({
        "name": name, "n": ms.len(),
        "p50_ms": percentile(&ms, 50.0), "p99_ms": percentile(&ms, 99.0),
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
    })
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
        out.push(got.2.duration_since(start).as_secs_f64() * 1000.0);
    }
    probe.disconnect().await;
    Ok(out)
}

/// One device working through `PER_DEVICE` executions, one at a time.
async fn device_run(broker: String, thing: String) -> Result<(Vec<f64>, Vec<f64>), String> {
    let mut dev = MqttDevice::connect(&broker, &thing, DEFAULT_ROOT).await?;
    let (mut delivery, mut update) = (Vec::new(), Vec::new());
    for _ in 0..PER_DEVICE {
        let start = Instant::now();
        let (status, created) = api(
            "POST",
            "/commands/bench-reboot/executions",
            Some(json!({ "target": thing })),
        )
        .await?;
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
        delivery.push(got.2.duration_since(start).as_secs_f64() * 1000.0);
        let id = id.as_str().unwrap_or_default().to_owned();
        let start = Instant::now();
        dev.request(&format!("{id}/update"), json!({"status": "SUCCEEDED"}))
            .await
            .map_err(|e| format!("update: {e}"))?;
        let (_, read) = api("GET", &format!("/executions/{id}"), None).await?;
        if read["status"] != "SUCCEEDED" {
            return Err(format!("read after update: {read}"));
        }
        update.push(start.elapsed().as_secs_f64() * 1000.0);
        dev.clear();
    }
    dev.disconnect().await;
    Ok((delivery, update))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let broker = env("MQTT_BROKER");
    let (status, body) = api(
        "POST",
        "/commands",
        Some(json!({"commandId": "bench-reboot", "executionTimeoutSeconds": 600})),
    )
    .await?;
    if status != 201 && status != 200 {
        return Err(format!("create command: {status} {body}").into());
    }
    let floor = broker_round_trips(&broker).await?;
    let started = Instant::now();
    let devices = devices();
    let runs: Vec<_> = (0..devices)
        .map(|i| tokio::spawn(device_run(broker.clone(), format!("bench-{i}"))))
        .collect();
    let (mut delivery, mut update) = (Vec::new(), Vec::new());
    for run in runs {
        let (d, u) = run.await??;
        delivery.extend(d);
        update.extend(u);
    }
    let wall = started.elapsed().as_secs_f64();
    let results = json!({
        "devices": devices, "executions": devices * PER_DEVICE, "wall_seconds": wall,
        "stack": "local: mosquitto, functions under cargo lambda watch (debug builds), courier-local bridge, DynamoDB Local",
        "latencies": [
            summary("broker round trip (floor)", floor),
            summary("API create -> device receives notify-next", delivery),
            summary("device update -> status readable through the API", update),
        ],
    });
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/latency.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let mut md = String::from("| path | n | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
    for l in results["latencies"].as_array().into_iter().flatten() {
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
        "\n{} executions by {devices} devices in {wall:.1} s; {}.\n",
        devices * PER_DEVICE,
        results["stack"].as_str().unwrap_or_default()
    ));
    std::fs::write(format!("{out_dir}/latency.md"), &md)?;
    print!("{md}");
    Ok(())
}
