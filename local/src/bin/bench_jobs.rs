//! `make bench`, jobs part: the fan-out of one job to 10,000 targets against
//! DynamoDB Local — wall time, BatchWriteItem calls, write units per
//! execution next to a single execution's create, and what keeping the
//! job's statistics costs per execution change (the dispatcher's stream
//! aggregation, fed the table's real stream). Writes `bench/results/jobs.json`
//! and `bench/results/jobs.md`.
//!
//! The job is scheduled a day ahead, so its executions are written held and
//! the stream pass measures statistics alone (no delivery).

use courier_core::JobStatus;
use courier_functions::entry::dispatcher;
use courier_functions::ops::job_runner::StepReport;
use courier_functions::platform::clock;
use courier_functions::platform::publisher::{Message, PublishError, Publisher};
use courier_local::events::{context, stream_event};
use courier_local::stream::{StartAt, StreamPoller};
use lambda_runtime::LambdaEvent;
use serde_json::json;
use std::time::Instant;

const TARGETS: usize = 10_000;
const SINGLE: usize = 50;

/// Publishing is not part of this benchmark (nothing is due).
#[derive(Debug)]
struct NoPublish;

impl Publisher for NoPublish {
    async fn publish(&self, message: &Message) -> Result<(), PublishError> {
        Err(PublishError {
            topic: message.topic.clone(),
            message: "the jobs benchmark publishes nothing".into(),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "bench/results".into());
    let (client, table) = courier_local::aws::fresh_table().await;
    let courier = courier_local::aws::courier(client, &table);
    let store = courier.store();
    let groups = courier_local::aws::thing_groups().await;
    let now = clock::now();
    courier
        .create_command(&json!({"commandId": "reboot"}).into(), now)
        .await?;

    // The baseline: single executions started through the service.
    store.meter().reset();
    for i in 0..SINGLE {
        courier
            .start_execution(
                "reboot",
                &json!({"target": format!("single-{i}")}).into(),
                "tester",
                now,
            )
            .await?;
    }
    let single_write = store.meter().write_units() / SINGLE as f64;

    // The job: created (its target list stored), then fanned out step by step
    // as the dispatcher would, each step one claimed chunk.
    let targets: Vec<String> = (0..TARGETS).map(|i| format!("dev-{i:05}")).collect();
    store.meter().reset();
    let (view, _) = courier
        .create_job(
            &groups,
            &json!({"commandId": "reboot", "targets": {"things": targets},
                    "schedulingConfig": {"startTime": now.epoch_secs() + 86_400}})
            .into(),
            now,
        )
        .await?;
    let create_write = store.meter().write_units();
    let id = view.job.job_id.clone();
    store.meter().reset();
    let calls_before = store.batch_write_calls();
    let started = Instant::now();
    let mut steps = 0;
    loop {
        match courier.run_job(&groups, &id, clock::now()).await? {
            StepReport::FannedOut { .. } => steps += 1,
            StepReport::Idle => break,
            other => return Err(format!("unexpected step {other:?}").into()),
        }
    }
    let fan_out_secs = started.elapsed().as_secs_f64();
    let batch_calls = store.batch_write_calls() - calls_before;
    let fan_out_write = store.meter().write_units();
    let fan_out_read = store.meter().read_units();
    let per_execution = fan_out_write / TARGETS as f64;

    // Statistics: the table's stream through the dispatcher, 100 records per
    // invocation (Lambda's default batch size).
    let mut stream = StreamPoller::new(&table, StartAt::Beginning).await?;
    store.meter().reset();
    let mut counted = 0usize;
    let mut invocations = 0usize;
    let stats_started = Instant::now();
    loop {
        let records = stream.poll().await?;
        if records.is_empty() {
            break;
        }
        for batch in records.chunks(100) {
            counted += batch
                .iter()
                .filter(|r| r["dynamodb"]["Keys"]["sk"]["S"] == "EXEC")
                .count();
            let out = dispatcher::handle(
                &courier,
                &courier_core::protocol::TopicRoot::parse(courier_core::protocol::DEFAULT_ROOT)?,
                &NoPublish,
                &groups,
                LambdaEvent::new(stream_event(batch)?, context("bench")),
                clock::now(),
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
            invocations += 1;
            if !out.response.batch_item_failures.is_empty() {
                return Err(format!("dispatcher reported failures: {out:?}").into());
            }
        }
    }
    let stats_secs = stats_started.elapsed().as_secs_f64();
    let stats_write = store.meter().write_units();
    let stats_read = store.meter().read_units();
    let job = courier.get_job(id.as_str(), now).await?;
    let queued = job.statistics.count(courier_core::ExecutionStatus::Queued);
    if queued != TARGETS as u64 || job.job.status != JobStatus::Scheduled {
        return Err(format!("statistics say {queued} QUEUED, expected {TARGETS}").into());
    }

    let result = json!({
        "targets": TARGETS,
        "singleCreate": {"writeUnits": single_write},
        "jobCreate": {"writeUnits": create_write, "note": "job item and the stored target list"},
        "fanOut": {
            "wallSeconds": fan_out_secs,
            "steps": steps,
            "batchWriteItemCalls": batch_calls,
            "writeUnitsPerExecution": per_execution,
            "readUnitsTotal": fan_out_read,
            "ratioToSingleCreate": per_execution / single_write,
            "goal": "at most 1.05x the single create",
        },
        "statistics": {
            "executionChangesCounted": counted,
            "dispatcherInvocations": invocations,
            "writeUnitsPerChange": stats_write / counted.max(1) as f64,
            "readUnitsPerChange": stats_read / counted.max(1) as f64,
            "wallSeconds": stats_secs,
        },
    });
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(
        format!("{out_dir}/jobs.json"),
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    let md = format!(
        "| job fan-out, {TARGETS} targets (DynamoDB Local) | value |\n|---|---|\n\
         | wall time of the fan-out ({steps} steps) | {fan_out_secs:.1} s |\n\
         | BatchWriteItem calls | {batch_calls} |\n\
         | write units per execution (fan-out, incl. claims and commits) | {per_execution:.3} |\n\
         | write units per single execution create | {single_write:.3} |\n\
         | ratio (goal <= 1.05) | {:.3} |\n\
         | job create (job item + target list) | {create_write:.1} write units |\n\
         | statistics: write units per execution change | {:.4} |\n\
         | statistics: read units per execution change | {:.4} |\n",
        per_execution / single_write,
        stats_write / counted.max(1) as f64,
        stats_read / counted.max(1) as f64,
    );
    std::fs::write(format!("{out_dir}/jobs.md"), &md)?;
    print!("{md}");
    Ok(())
}
