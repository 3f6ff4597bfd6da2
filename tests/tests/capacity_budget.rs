//! THE WRITE-UNIT BUDGET: what one execution's life costs in DynamoDB
//! capacity, asserted exactly. DynamoDB Local reports consumed capacity as
//! DynamoDB bills it and the figures are deterministic, so a feature that
//! raises the cost fails here; a change that must raise it updates the
//! budget below in the same commit and says why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ThingName, Timestamp};
use courier_functions::ops::device_updates::Delivery;
use courier_functions::ops::job_runner::StepReport;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::{fresh_courier, thing_groups, RecordingPublisher};
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

/// Write and read units of one step.
fn spent(courier: &Courier<DynamoStore>) -> (f64, f64) {
    let meter = courier.store().meter();
    let units = (meter.write_units(), meter.read_units());
    meter.reset();
    units
}

/// Delivery, start-next, one progress update, success: what follows the
/// create for any execution. Returns each step's units.
async fn lifecycle(courier: &Courier<DynamoStore>, id: &str) -> Vec<(&'static str, (f64, f64))> {
    let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
    let publisher = RecordingPublisher::default();
    let thing = ThingName::parse("dev-budget").unwrap();
    let mut steps = Vec::new();
    let queued = courier.get_execution(id, at(1)).await.unwrap();
    spent(courier);
    courier
        .dispatch(&root, &publisher, &queued, at(2))
        .await
        .unwrap();
    steps.push((
        "deliver (claim QUEUED -> SENT, tell the device)",
        spent(courier),
    ));
    courier
        .start_next(&thing, &json!({}).into(), "r-start", at(3))
        .await
        .unwrap()
        .unwrap();
    steps.push(("start-next", spent(courier)));
    let update = |status: &str| json!({"status": status, "statusDetails": {"step": "1"}});
    courier
        .device_update(
            "dev-budget",
            id,
            &update("IN_PROGRESS").into(),
            Delivery::new("r-p"),
            at(4),
        )
        .await
        .unwrap();
    steps.push(("progress update", spent(courier)));
    courier
        .device_update(
            "dev-budget",
            id,
            &update("SUCCEEDED").into(),
            Delivery::new("r-s"),
            at(5),
        )
        .await
        .unwrap();
    steps.push(("success", spent(courier)));
    steps
}

fn report(steps: &[(&str, (f64, f64))]) -> String {
    steps
        .iter()
        .map(|(step, (w, r))| format!("{step}: {w} write, {r} read"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn total(steps: &[(&str, (f64, f64))]) -> (f64, f64) {
    steps
        .iter()
        .fold((0.0, 0.0), |(w, r), (_, (sw, sr))| (w + sw, r + sr))
}

async fn courier_with_command() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    courier
        .create_command(&json!({"commandId": "reboot"}).into(), at(0))
        .await
        .unwrap();
    courier
}

#[tokio::test]
async fn one_direct_execution_s_life_costs_its_budget() {
    let courier = courier_with_command().await;
    spent(&courier);
    let (e, _) = courier
        .start_execution(
            "reboot",
            &json!({"target": "dev-budget"}).into(),
            "alice",
            at(1),
        )
        .await
        .unwrap();
    let mut steps = vec![("create", spent(&courier))];
    steps.extend(lifecycle(&courier, e.execution_id.as_str()).await);
    let (write, read) = total(&steps);
    // The budget, measured when it was set: create 6 write units (the item
    // and its four index entries, the thing's owner claim), delivery 2 (the
    // claim; what the device was told next), start-next 1, a progress
    // update 1, success 3 (the item and its pending and due index entries
    // removed). Change it only with a reason in the same commit.
    assert_eq!((write, read), (13.0, 4.5), "{}", report(&steps));
}

#[tokio::test]
async fn one_job_execution_s_life_costs_its_budget() {
    let courier = courier_with_command().await;
    let groups = thing_groups().await;
    let (job, _) = courier
        .create_job(
            &groups,
            &json!({"commandId": "reboot", "targets": {"things": ["dev-budget"]}}).into(),
            at(1),
        )
        .await
        .unwrap();
    spent(&courier);
    let id = job.job.job_id.clone();
    while let StepReport::FannedOut { .. } = courier.run_job(&groups, &id, at(1)).await.unwrap() {}
    let mut steps = vec![("fan-out of its one target", spent(&courier))];
    let page = courier
        .list_job_executions(id.as_str(), None, None, None, at(1))
        .await
        .unwrap();
    let execution = page.items[0].execution_id.to_string();
    spent(&courier);
    steps.extend(lifecycle(&courier, &execution).await);
    let (write, read) = total(&steps);
    // The budget, measured when it was set: the fan-out of one target 12
    // (the claim in the job item, the execution in a batch, the commit),
    // then as a direct execution. The item must stay under 1 KB: when audit
    // fields first pushed a job execution over it, every later write cost 2
    // units (22 in all), which this test caught. Change it only with a reason.
    assert_eq!((write, read), (19.0, 8.0), "{}", report(&steps));
}
