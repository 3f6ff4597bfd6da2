//! `make bench` (load part): a bounded load on loopback against the local
//! stack (the functions under `cargo lambda watch`, mosquitto, `courier-local
//! bridge`, DynamoDB Local) for LOAD_SECONDS (default 60):
//!
//! - API clients (LOAD_CLIENTS, default 8) in a closed loop: start an
//!   execution on one of the devices, read it back, and every fifth time
//!   list the device's executions;
//! - MQTT devices (LOAD_DEVICES, default 20) taking whatever they are sent:
//!   `start-next`, then `SUCCEEDED` — each request timed until its
//!   `accepted`/`rejected` reply.
//!
//! Reports per operation the count, p50, p99, max and errors (a non-2xx
//! answer, a rejection or no answer) to `bench/results/load.{json,md}`.
//! Environment as the end-to-end tests: MQTT_BROKER, API_URL.

use courier_core::protocol::DEFAULT_ROOT;
use courier_local::http::call_api;
use courier_local::mqtt::MqttDevice;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (scripts/bench.sh sets it)"))
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Latencies and errors per operation.
#[derive(Debug, Default)]
struct Book {
    ms: BTreeMap<&'static str, Vec<f64>>,
    errors: BTreeMap<&'static str, u64>,
    first_errors: Vec<String>,
}

impl Book {
    fn record(&mut self, op: &'static str, started: Instant, ok: Result<(), String>) {
        self.ms
            .entry(op)
            .or_default()
            .push(started.elapsed().as_secs_f64() * 1000.0);
        if let Err(e) = ok {
            *self.errors.entry(op).or_default() += 1;
            if self.first_errors.len() < 10 {
                self.first_errors.push(format!("{op}: {e}"));
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn expect_2xx(answer: Result<(u16, Value), String>) -> Result<Value, String> {
    match answer {
        Ok((status, body)) if (200..300).contains(&status) => Ok(body),
        Ok((status, body)) => Err(format!("{status} {}", body["code"])),
        Err(e) => Err(e),
    }
}

async fn api_client(n: usize, devices: usize, until: Instant, book: Arc<Mutex<Book>>) {
    let base = env("API_URL");
    let mut i = 0usize;
    while Instant::now() < until {
        i += 1;
        let thing = format!("load-dev-{}", (n * 7 + i) % devices);
        let started = Instant::now();
        let created = expect_2xx(
            call_api(
                &base,
                "POST",
                "/commands/load-reboot/executions",
                Some(&json!({"target": thing, "clientToken": format!("load-{n}-{i}")})),
            )
            .await,
        );
        let id = created
            .as_ref()
            .ok()
            .and_then(|b| b["executionId"].as_str().map(str::to_owned));
        book.lock().expect("not poisoned").record(
            "POST /commands/{id}/executions",
            started,
            created.map(|_| ()),
        );
        if let Some(id) = id {
            let started = Instant::now();
            let read = expect_2xx(call_api(&base, "GET", &format!("/executions/{id}"), None).await);
            book.lock().expect("not poisoned").record(
                "GET /executions/{id}",
                started,
                read.map(|_| ()),
            );
        }
        if i % 5 == 0 {
            let started = Instant::now();
            let listed = expect_2xx(
                call_api(
                    &base,
                    "GET",
                    &format!("/executions?target={thing}&limit=10"),
                    None,
                )
                .await,
            );
            book.lock().expect("not poisoned").record(
                "GET /executions?target=",
                started,
                listed.map(|_| ()),
            );
        }
    }
}

/// A device working through what it is sent until the deadline.
async fn device(broker: String, thing: String, until: Instant, book: Arc<Mutex<Book>>) {
    let Ok(mut dev) = MqttDevice::connect(&broker, &thing, DEFAULT_ROOT).await else {
        book.lock().expect("not poisoned").record(
            "device connect",
            Instant::now(),
            Err("no connection".into()),
        );
        return;
    };
    while Instant::now() < until {
        let started = Instant::now();
        let next = dev.request("start-next", json!({})).await;
        let id = next
            .as_ref()
            .ok()
            .and_then(|b| b["execution"]["jobId"].as_str().map(str::to_owned));
        book.lock().expect("not poisoned").record(
            "device start-next",
            started,
            next.map(|_| ()).map_err(|e| e["code"].to_string()),
        );
        let Some(id) = id else {
            // Nothing pending: wait for the next notification (or a second).
            let _ = dev.expect("notify-next", Duration::from_secs(1)).await;
            dev.clear();
            continue;
        };
        let started = Instant::now();
        let done = dev
            .request(&format!("{id}/update"), json!({"status": "SUCCEEDED"}))
            .await;
        book.lock().expect("not poisoned").record(
            "device update SUCCEEDED",
            started,
            done.map(|_| ()).map_err(|e| e["code"].to_string()),
        );
    }
    dev.disconnect().await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let results = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "bench/results".into()),
    );
    let seconds = env_or("LOAD_SECONDS", 60);
    let clients = env_or("LOAD_CLIENTS", 8) as usize;
    let devices = env_or("LOAD_DEVICES", 20) as usize;
    let (status, body) = call_api(
        &env("API_URL"),
        "POST",
        "/commands",
        Some(&json!({"commandId": "load-reboot", "executionTimeoutSeconds": 3600, "retentionSeconds": 3600})),
    )
    .await?;
    if status != 201 && status != 200 {
        return Err(format!("creating the command: {status} {body}").into());
    }
    let book = Arc::new(Mutex::new(Book::default()));
    let began = Instant::now();
    let until = began + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for d in 0..devices {
        tasks.push(tokio::spawn(device(
            env("MQTT_BROKER"),
            format!("load-dev-{d}"),
            until,
            Arc::clone(&book),
        )));
    }
    for n in 0..clients {
        tasks.push(tokio::spawn(api_client(
            n,
            devices,
            until,
            Arc::clone(&book),
        )));
    }
    for task in tasks {
        task.await?;
    }
    let wall = began.elapsed().as_secs_f64();

    let book = book.lock().expect("not poisoned");
    let mut rows = Vec::new();
    let mut json_rows = Vec::new();
    let (mut total, mut errors) = (0usize, 0u64);
    for (op, ms) in &book.ms {
        let mut sorted = ms.clone();
        sorted.sort_by(f64::total_cmp);
        let errs = book.errors.get(op).copied().unwrap_or(0);
        total += sorted.len();
        errors += errs;
        rows.push(format!(
            "| {op} | {} | {:.1} | {:.1} | {:.1} | {errs} |",
            sorted.len(),
            percentile(&sorted, 50.0),
            percentile(&sorted, 99.0),
            sorted.last().copied().unwrap_or(f64::NAN)
        ));
        json_rows.push(json!({
            "operation": op, "n": sorted.len(), "p50_ms": percentile(&sorted, 50.0),
            "p99_ms": percentile(&sorted, 99.0), "max_ms": sorted.last(), "errors": errs,
        }));
    }
    let md = format!(
        "| operation | n | p50 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|\n{}\n\n{total} requests ({:.0}/s) with {errors} errors in {wall:.1} s: {clients} API clients in a closed loop and {devices} MQTT devices, on loopback against the local stack (functions as {} builds under cargo lambda watch, DynamoDB Local).\n",
        rows.join("\n"),
        total as f64 / wall,
        // scripts/bench.sh starts the stack with WATCH_RELEASE=on.
        if std::env::var("WATCH_RELEASE").as_deref() == Ok("on") {
            "release"
        } else {
            "debug"
        }
    );
    print!("{md}");
    for e in &book.first_errors {
        eprintln!("error: {e}");
    }
    std::fs::create_dir_all(&results)?;
    std::fs::write(results.join("load.md"), &md)?;
    std::fs::write(
        results.join("load.json"),
        serde_json::to_string_pretty(&json!({
            "seconds": wall, "clients": clients, "devices": devices,
            "requests": total, "errors": errors, "operations": json_rows,
        }))?,
    )?;
    Ok(())
}
