//! `make bench`: DynamoDB capacity per execution lifecycle (create ->
//! IN_PROGRESS -> SUCCEEDED) from ReturnConsumedCapacity against DynamoDB
//! Local, the item size, and wall times of each step. Writes
//! `bench/results/latest.json` and `bench/results/latest.md`.
//!
//! Capacity figures are deterministic (DynamoDB's accounting rules); the
//! times are DynamoDB Local on this machine, useful only as a comparison
//! between runs.

use aws_sdk_dynamodb::types::AttributeValue;
use courier_core::Timestamp;
use courier_functions::entry::api::auth::DEFAULT_TENANT;
use courier_functions::ops::device_updates::Delivery;
use serde_json::{json, Value};
use std::time::Instant;

const EXECUTIONS: usize = 50;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let (client, table) = courier_local::aws::fresh_table().await;
    let courier = courier_local::aws::courier(client.clone(), &table);
    let meter = || courier.store().meter();
    let now = courier_functions::platform::clock::now();
    courier
        .create_command(
            &json!({
                "commandId": "set-config",
                "parameters": [
                    {"name": "rate", "type": "I", "required": true, "min": 1, "max": 3600},
                    {"name": "mode", "type": "S", "enum": ["eco", "normal"], "default": {"S": "normal"}}
                ]
            }).into(),
            now,
        )
        .await?;

    // The first start on a cold function reads the command once; later
    // starts use the cached (immutable) definition.
    let fresh = courier_local::aws::courier(client.clone(), &table);
    fresh.store().meter().reset();
    fresh
        .start_execution(
            "set-config",
            &json!({"target": "cold-start"}).into(),
            "tester",
            now,
        )
        .await
        .ok();
    let cold_read_units = fresh.store().meter().read_units();
    // ... that start failed validation (rate is required), so only the read counts.
    let _ = fresh
        .start_execution(
            "set-config",
            &json!({"target": "warm", "parameters": {"rate": {"I": 1}}}).into(),
            "tester",
            now,
        )
        .await?;

    // Steady state: the command is in the warm function's cache.
    courier.get_command("set-config").await?;
    let mut steps = [
        Step::new("create (PutItem)"),
        Step::new("IN_PROGRESS (UpdateItem)"),
        Step::new("SUCCEEDED (UpdateItem)"),
    ];
    let mut item_bytes = Vec::new();
    for i in 0..EXECUTIONS {
        let t = Timestamp::from_millis(now.millis() + i as i64);
        let target = format!("dev-{i:04}");
        let body = json!({"target": target, "parameters": {"rate": {"I": 30}}});
        let execution = steps[0]
            .measure(
                meter(),
                courier.start_execution(
                    "set-config",
                    &courier_core::json::Json::from(body.clone()),
                    "tester",
                    t,
                ),
            )
            .await?
            .0;
        let id = execution.execution_id.to_string();
        let progress = json!({"status": "IN_PROGRESS", "statusDetails": {"step": "apply"}});
        // As the IoT rule delivers them: a request id and the receive time.
        let (first, second) = (format!("{id}-1"), format!("{id}-2"));
        let delivery = |request_id| Delivery {
            request_id,
            received_at: Some(t),
        };
        steps[1]
            .measure(
                meter(),
                courier.device_update(
                    &target,
                    &id,
                    &courier_core::json::Json::from(progress.clone()),
                    delivery(&first),
                    t,
                ),
            )
            .await?;
        let done = json!({"status": "SUCCEEDED", "result": {"appliedRate": {"I": 30}}, "statusReason": {"reasonCode": "OK"}});
        steps[2]
            .measure(
                meter(),
                courier.device_update(
                    &target,
                    &id,
                    &courier_core::json::Json::from(done.clone()),
                    delivery(&second),
                    t,
                ),
            )
            .await?;
        let raw = client
            .get_item()
            .table_name(&table)
            .key(
                "pk",
                AttributeValue::S(format!("T#{DEFAULT_TENANT}#EXEC#{id}")),
            )
            .key("sk", AttributeValue::S("EXEC".into()))
            .send()
            .await?;
        item_bytes.push(raw.item().map_or(0, |item| {
            item.iter()
                .map(|(k, v)| k.len() + attribute_size(v))
                .sum::<usize>()
        }));
    }

    let lifecycle_write: f64 = steps
        .iter()
        .map(|s| s.write_units / EXECUTIONS as f64)
        .sum();
    let lifecycle_read: f64 = steps.iter().map(|s| s.read_units / EXECUTIONS as f64).sum();
    let max_item = item_bytes.iter().copied().max().unwrap_or(0);
    let results = json!({
        "benchmark": "execution lifecycle capacity (create -> IN_PROGRESS -> SUCCEEDED)",
        "measuredWith": "ReturnConsumedCapacity INDEXES/TOTAL on every call, DynamoDB Local, warm command cache",
        "executions": EXECUTIONS,
        "lifecycle": {"writeUnits": lifecycle_write, "readUnits": lifecycle_read},
        "steps": steps.iter().map(|s| s.to_json(EXECUTIONS)).collect::<Vec<_>>(),
        "coldStartCommandReadUnits": cold_read_units,
        "maxItemBytes": max_item,
        "goal": {"writeUnits": 3, "readUnits": 0},
    });
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/latest.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let mut md = String::from("| step | write units / execution | read units / execution | median ms (DynamoDB Local) |\n|---|---|---|---|\n");
    for s in &steps {
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.1} |\n",
            s.name,
            s.write_units / EXECUTIONS as f64,
            s.read_units / EXECUTIONS as f64,
            s.median_ms()
        ));
    }
    md.push_str(&format!(
        "| **lifecycle** | **{lifecycle_write:.2}** | **{lifecycle_read:.2}** | |\n\nLargest execution item: {max_item} bytes. \
         First start on a cold function: {cold_read_units:.2} read units (the command definition, then cached). {EXECUTIONS} executions.\n"
    ));
    std::fs::write(format!("{out_dir}/latest.md"), &md)?;
    println!("{md}");
    println!("results written to {out_dir}/latest.json and {out_dir}/latest.md");
    Ok(())
}

struct Step {
    name: &'static str,
    write_units: f64,
    read_units: f64,
    millis: Vec<f64>,
}

impl Step {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            write_units: 0.0,
            read_units: 0.0,
            millis: Vec::new(),
        }
    }

    async fn measure<T, E>(
        &mut self,
        meter: &courier_functions::platform::capacity::CapacityMeter,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let (w0, r0) = (meter.write_units(), meter.read_units());
        let started = Instant::now();
        let out = call.await?;
        self.millis.push(started.elapsed().as_secs_f64() * 1000.0);
        self.write_units += meter.write_units() - w0;
        self.read_units += meter.read_units() - r0;
        Ok(out)
    }

    fn median_ms(&self) -> f64 {
        let mut sorted = self.millis.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    }

    fn to_json(&self, n: usize) -> Value {
        json!({"step": self.name, "writeUnits": self.write_units / n as f64, "readUnits": self.read_units / n as f64, "medianMs": self.median_ms()})
    }
}

/// DynamoDB's item size rules: names and values in UTF-8 bytes, numbers about
/// one byte per two digits plus one, 3 bytes overhead per map or list and 1
/// per element.
fn attribute_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.trim_start_matches('-').replace('.', "").len().div_ceil(2) + 1,
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + attribute_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| attribute_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}
