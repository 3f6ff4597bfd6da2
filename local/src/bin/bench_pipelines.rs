//! `make bench`, pipelines part: one run of a 3-stage pipeline (one
//! operation per stage) over 1,000 devices against DynamoDB Local, driven as
//! AWS would drive it — the table's stream (only what the template's filter
//! lets through) through the `dispatcher`, devices answering IN_PROGRESS then
//! SUCCEEDED through the service — until the run is COMPLETED. Reports the
//! write units per target-operation (everything the run wrote, its
//! executions' whole lives included) against one single execution's whole
//! life (create, delivery, IN_PROGRESS, SUCCEEDED) measured the same way,
//! and the wall time. Writes `bench/results/pipelines.json` and `.md`.

use courier_core::json::Json;
use courier_core::pipeline_run::{RunStatus, TargetStatus};
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::Timestamp;
use courier_functions::entry::dispatcher;
use courier_functions::ops::device_updates::Delivery;
use courier_functions::ops::Courier;
use courier_functions::platform::clock;
use courier_functions::platform::publisher::{Message, PublishError, Publisher};
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::events::{context, stream_event};
use courier_local::filter::{passes, template_patterns};
use courier_local::stream::{StartAt, StreamPoller};
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// `BENCH_PIPELINE_TARGETS` (default 1,000).
fn targets() -> usize {
    std::env::var("BENCH_PIPELINE_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}
const STAGES: usize = 3;
const SINGLE: usize = 50;

/// A broker that takes every message (counted).
#[derive(Debug, Default)]
struct Broker(AtomicU64);

impl Publisher for Broker {
    async fn publish(&self, _: &Message) -> Result<(), PublishError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The device's two answers, as the IoT rule delivers them.
async fn device_works(
    courier: &Courier<DynamoStore>,
    thing: &str,
    id: &str,
    now: Timestamp,
) -> Result<(), Box<dyn std::error::Error>> {
    for (n, status) in ["IN_PROGRESS", "SUCCEEDED"].into_iter().enumerate() {
        let request_id = format!("{id}-{n}");
        courier
            .device_update(
                thing,
                id,
                &Json::from(json!({"status": status})),
                Delivery {
                    request_id: &request_id,
                    received_at: Some(now),
                },
                now,
            )
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target_count = targets();
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let (client, table) = courier_local::aws::fresh_table().await;
    let courier = courier_local::aws::courier(client, &table);
    let store = courier.store();
    let groups = courier_local::aws::thing_groups().await;
    let root = TopicRoot::parse(DEFAULT_ROOT)?;
    let broker = Broker::default();
    let patterns = template_patterns("infra/template.yaml")?;
    let now = clock::now();
    courier
        .create_command(&json!({"commandId": "step"}).into(), now)
        .await?;
    let stages: Vec<Value> = (0..STAGES)
        .map(|k| json!({"name": format!("stage-{k}"), "operations": [{"commandId": "step"}]}))
        .collect();
    courier
        .create_pipeline(
            &json!({"pipelineId": "bench", "stages": stages}).into(),
            now,
        )
        .await?;

    // The baseline: single executions' whole lives, measured the same way.
    store.meter().reset();
    for i in 0..SINGLE {
        let thing = format!("single-{i}");
        let (execution, _) = courier
            .start_execution("step", &json!({"target": thing}).into(), "bench", now)
            .await?;
        courier.dispatch(&root, &broker, &execution, now).await?;
        device_works(&courier, &thing, execution.execution_id.as_str(), now).await?;
    }
    let single_write = store.meter().write_units() / SINGLE as f64;
    let single_read = store.meter().read_units() / SINGLE as f64;

    // The run, from its start to COMPLETED.
    // The stream from here on: what the baseline wrote is read and left.
    let mut stream = StreamPoller::new(&table, StartAt::Beginning).await?;
    while !stream.poll().await?.is_empty() {}
    let things: Vec<String> = (0..targets()).map(|i| format!("dev-{i:04}")).collect();
    store.meter().reset();
    let messages_before = broker.0.load(Ordering::Relaxed);
    let started = Instant::now();
    let (view, _) = courier
        .start_run(
            &groups,
            "bench",
            &json!({"targets": {"things": things}, "waves": ["10%"]}).into(),
            now,
        )
        .await?;
    let run_id = view.run.run_id.to_string();
    let (mut invocations, mut records_passed, mut records_dropped) = (0usize, 0usize, 0usize);
    loop {
        // The stream, as Lambda delivers it: filtered, 100 records a batch.
        loop {
            let mut records = stream.poll().await?;
            if records.is_empty() {
                break;
            }
            let before = records.len();
            records.retain(|r| passes(&patterns, r));
            records_dropped += before - records.len();
            records_passed += records.len();
            for batch in records.chunks(100) {
                let out = dispatcher::handle(
                    &courier,
                    &root,
                    &broker,
                    &groups,
                    LambdaEvent::new(stream_event(batch)?, context("bench")),
                    now,
                )
                .await
                .map_err(|e| format!("{e:?}"))?;
                invocations += 1;
                if !out.response.batch_item_failures.is_empty() {
                    return Err(format!("dispatcher reported failures: {out:?}").into());
                }
            }
        }
        // Every device with work does it.
        let mut answered = 0;
        let mut next = None;
        loop {
            let page = courier
                .list_run_targets(
                    "bench",
                    &run_id,
                    Some("RUNNING"),
                    Some("100"),
                    next.as_deref(),
                    now,
                )
                .await?;
            for target in &page.items {
                if let (TargetStatus::Running, Some(last)) = (target.status, target.history.last())
                {
                    let id = last.execution_id.as_str();
                    device_works(&courier, target.thing_name.as_str(), id, now).await?;
                    answered += 1;
                }
            }
            match page.next_token {
                Some(token) => next = Some(token),
                None => break,
            }
        }
        eprintln!(
            "{:.1} s: {answered} devices answered, {invocations} dispatcher invocations",
            started.elapsed().as_secs_f64()
        );
        if answered == 0 {
            break;
        }
    }
    let wall_secs = started.elapsed().as_secs_f64();
    let run = courier.get_run("bench", &run_id, now).await?;
    if run.run.status != RunStatus::Completed || run.run.targets_ended != targets() as u64 {
        return Err(format!(
            "the run ended {} with {} of {target_count} devices done",
            run.run.status.as_str(),
            run.run.targets_ended
        )
        .into());
    }
    let operations = (targets() * STAGES) as f64;
    let run_write = store.meter().write_units();
    let run_read = store.meter().read_units();
    let per_operation = run_write / operations;
    let ratio = per_operation / single_write;
    let messages = broker.0.load(Ordering::Relaxed) - messages_before;

    let result = json!({
        "benchmark": "pipeline run: 1,000 devices, 3 stages of one operation, a first wave of 10% then the rest, DynamoDB Local",
        "targets": targets(),
        "operations": operations,
        "waves": run.run.wave_sizes,
        "wallSeconds": wall_secs,
        "writeUnitsPerTargetOperation": per_operation,
        "readUnitsPerTargetOperation": run_read / operations,
        "singleExecutionLifecycle": {"writeUnits": single_write, "readUnits": single_read},
        "ratio": ratio,
        "goal": 1.15,
        "dispatcherInvocations": invocations,
        "streamRecords": {"passed": records_passed, "dropped": records_dropped},
        "messagesPublished": messages,
    });
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/pipelines.json"),
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    let md = format!(
        "| pipeline run: {target_count} devices × {STAGES} operations, a 10% wave then the rest (DynamoDB Local) | value |\n|---|---|\n\
         | wall time, start to COMPLETED | {wall_secs:.1} s |\n\
         | write units per target-operation (its execution's whole life + the run's bookkeeping) | {per_operation:.2} |\n\
         | write units per single execution, whole life (create, delivery, IN_PROGRESS, SUCCEEDED) | {single_write:.2} |\n\
         | ratio (goal <= 1.15) | {ratio:.2} |\n\
         | read units per target-operation (single: {single_read:.2}) | {:.2} |\n\
         | dispatcher invocations (100 records each at most) | {invocations} |\n\
         | stream records passed by the filter / dropped | {records_passed} / {records_dropped} |\n",
        run_read / operations
    );
    std::fs::write(format!("{out_dir}/pipelines.md"), &md)?;
    println!("{md}");
    Ok(())
}
