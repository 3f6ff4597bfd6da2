//! THE STREAM FILTER drops only what the dispatcher ignores. The template's
//! `FilterCriteria` (read from `infra/template.yaml`, as `courier-local
//! bridge` reads it) keeps records from invoking the dispatcher; a record it
//! drops must be one the dispatcher would have done nothing with. Each test
//! drives one kind of life over DynamoDB Local, then hands every record of
//! the table's stream the filter drops to the dispatcher on its own: none
//! may publish or act. One case per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ThingName, Timestamp};
use courier_functions::ops::device_updates::Delivery;
use courier_functions::ops::job_runner::StepReport;
use courier_functions::ops::{Courier, OptionalMessages};
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::filter::{passes, template_patterns, template_patterns_with};
use courier_local::stream::replay;
use courier_tests::{fresh_courier, send_to_dispatcher, thing_groups, RecordingPublisher};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).unwrap()
}

async fn courier() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    for command in [
        json!({"commandId": "reboot", "executionTimeoutSeconds": 600}),
        json!({"commandId": "flaky", "executionTimeoutSeconds": 600, "retryPolicy": {"maxAttempts": 2,
               "retryOn": [{"status": "FAILED", "reasonCodes": ["E_NETWORK"]}]}}),
        json!({"commandId": "set-power", "protocol": "commands", "executionTimeoutSeconds": 600,
               "parameters": [{"name": "powerStatus", "type": "S", "enum": ["ON", "OFF"], "required": true}]}),
    ] {
        courier
            .create_command(&command.into(), at(0))
            .await
            .unwrap();
    }
    courier
}

async fn start(courier: &Courier<DynamoStore>, body: Value, offset: i64) -> String {
    start_of(courier, "reboot", body, offset).await
}

async fn start_of(
    courier: &Courier<DynamoStore>,
    command: &str,
    body: Value,
    offset: i64,
) -> String {
    let (e, _) = courier
        .start_execution(command, &body.into(), "alice", at(offset))
        .await
        .unwrap();
    let publisher = RecordingPublisher::default();
    courier
        .dispatch(&root(), &publisher, &e, at(offset))
        .await
        .unwrap();
    e.execution_id.to_string()
}

async fn update(courier: &Courier<DynamoStore>, thing: &str, id: &str, status: &str, offset: i64) {
    report(courier, thing, id, json!({"status": status}), offset).await;
}

async fn report(courier: &Courier<DynamoStore>, thing: &str, id: &str, body: Value, offset: i64) {
    let status = body["status"].as_str().unwrap_or_default().to_owned();
    courier
        .device_update(
            thing,
            id,
            &body.into(),
            Delivery::new(&format!("r-{id}-{status}")),
            at(offset),
        )
        .await
        .unwrap();
}

/// Hands each record the filter drops to the dispatcher alone; returns how
/// many executions' records were dropped. Fails on any that published or
/// did something.
async fn dropped_records_do_nothing(courier: &Courier<DynamoStore>, now: i64) -> usize {
    dropped_by_these_do_nothing(courier, &patterns(), now).await
}

/// [`dropped_records_do_nothing`] with the filter `patterns`.
async fn dropped_by_these_do_nothing(
    courier: &Courier<DynamoStore>,
    patterns: &[Value],
    now: i64,
) -> usize {
    let records = replay(courier.store().table()).await.unwrap();
    let groups = thing_groups().await;
    let mut dropped = 0;
    for record in records.into_iter().filter(|r| !passes(patterns, r)) {
        if record["dynamodb"]["Keys"]["sk"]["S"] == "EXEC" {
            dropped += 1;
        }
        let publisher = RecordingPublisher::default();
        let out =
            send_to_dispatcher(courier, &publisher, &groups, vec![record.clone()], at(now)).await;
        let sent = publisher.take();
        assert!(
            sent.is_empty(),
            "a dropped record published {sent:?}: {record}"
        );
        for handled in out["handled"].as_array().into_iter().flatten() {
            assert_eq!(
                handled["did"], "nothing to do",
                "a dropped record acted: {record} -> {out}"
            );
        }
    }
    dropped
}

fn patterns() -> Vec<Value> {
    template_patterns(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/template.yaml"
    ))
    .unwrap()
}

async fn every_execution_record_passes(courier: &Courier<DynamoStore>) {
    let patterns = patterns();
    let mut seen = 0;
    for record in replay(courier.store().table()).await.unwrap() {
        if record["dynamodb"]["Keys"]["sk"]["S"] == "EXEC" && record["eventName"] != "REMOVE" {
            seen += 1;
            assert!(
                passes(&patterns, &record),
                "an execution's record dropped: {record}"
            );
        }
    }
    assert!(seen >= 3, "{seen} execution records");
}

#[tokio::test]
async fn a_direct_jobs_execution_s_later_writes_invoke_nothing() {
    let courier = courier().await;
    let id = start(&courier, json!({"target": "dev-1"}), 1).await;
    courier
        .start_next(
            &ThingName::parse("dev-1").unwrap(),
            &json!({}).into(),
            "r-s",
            at(2),
        )
        .await
        .unwrap();
    update(&courier, "dev-1", &id, "IN_PROGRESS", 3).await;
    update(&courier, "dev-1", &id, "SUCCEEDED", 4).await;
    // SENT, IN_PROGRESS twice and SUCCEEDED: four invocations saved.
    assert_eq!(dropped_records_do_nothing(&courier, 5).await, 4);
}

#[tokio::test]
async fn a_canceled_and_a_failed_execution_drop_only_what_the_dispatcher_ignores() {
    let courier = courier().await;
    let first = start(&courier, json!({"target": "dev-2"}), 1).await;
    let second = start(&courier, json!({"target": "dev-2"}), 2).await;
    courier
        .cancel_execution(
            &first,
            &json!({"force": true}).into(),
            "alice",
            at(3),
            "req-1",
        )
        .await
        .unwrap();
    update(&courier, "dev-2", &second, "FAILED", 4).await;
    dropped_records_do_nothing(&courier, 5).await;
}

#[tokio::test]
async fn a_retried_execution_drops_only_what_the_dispatcher_ignores() {
    let courier = courier().await;
    let id = start_of(&courier, "flaky", json!({"target": "dev-3"}), 1).await;
    update(&courier, "dev-3", &id, "IN_PROGRESS", 2).await;
    let failed = json!({"status": "FAILED", "statusReason": {"reasonCode": "E_NETWORK"}});
    report(&courier, "dev-3", &id, failed, 3).await;
    let e = courier.get_execution(&id, at(4)).await.unwrap();
    assert_eq!(e.execution_number, 2, "retried");
    dropped_records_do_nothing(&courier, 4).await;
}

#[tokio::test]
async fn a_timed_out_execution_drops_only_what_the_dispatcher_ignores() {
    let courier = courier().await;
    let id = start(&courier, json!({"target": "dev-4"}), 1).await;
    update(&courier, "dev-4", &id, "IN_PROGRESS", 2).await;
    let publisher = RecordingPublisher::default();
    courier
        .sweep(&root(), &publisher, at(10_000), 100)
        .await
        .unwrap();
    dropped_records_do_nothing(&courier, 10_001).await;
}

#[tokio::test]
async fn a_job_s_executions_all_reach_the_dispatcher() {
    let courier = courier().await;
    let groups = thing_groups().await;
    let (job, _) = courier
        .create_job(
            &groups,
            &json!({"commandId": "reboot", "targets": {"things": ["dev-5", "dev-6"]}}).into(),
            at(1),
        )
        .await
        .unwrap();
    let id = job.job.job_id.clone();
    while let StepReport::FannedOut { .. } = courier.run_job(&groups, &id, at(1)).await.unwrap() {}
    let page = courier
        .list_job_executions(id.as_str(), None, None, None, at(1))
        .await
        .unwrap();
    for (i, e) in page.items.iter().enumerate() {
        let thing = e.target.to_string();
        let eid = e.execution_id.to_string();
        update(&courier, &thing, &eid, "IN_PROGRESS", 2 + i as i64).await;
        update(&courier, &thing, &eid, "SUCCEEDED", 4 + i as i64).await;
    }
    // Every change of a job's execution counts in its statistics.
    every_execution_record_passes(&courier).await;
}

#[tokio::test]
async fn a_commands_protocol_execution_s_changes_all_reach_the_dispatcher() {
    let courier = courier().await;
    let id = start_of(
        &courier,
        "set-power",
        json!({"target": "dev-7", "parameters": {"powerStatus": {"S": "ON"}}}),
        1,
    )
    .await;
    courier
        .command_message(
            &format!("courier/commands/things/dev-7/executions/{id}/response/json"),
            br#"{"status": "SUCCEEDED"}"#,
            Delivery::new("r-c"),
            at(2),
        )
        .await
        .expect("a commands topic")
        .expect("storage is up");
    // Each status moved publishes a status event: nothing may be dropped.
    every_execution_record_passes(&courier).await;
}

/// A deployment without status events (`CommandStatusEvents: off`): its
/// filter drops a commands-protocol execution's SENT, IN_PROGRESS and
/// SUCCEEDED records, and the dispatcher, so configured, would have done
/// nothing with them.
#[tokio::test]
async fn without_status_events_a_commands_execution_s_later_writes_invoke_nothing() {
    let courier = courier().await.with_optional_messages(OptionalMessages {
        command_status_events: false,
        ..OptionalMessages::default()
    });
    let id = start_of(
        &courier,
        "set-power",
        json!({"target": "dev-8", "parameters": {"powerStatus": {"S": "ON"}}}),
        1,
    )
    .await;
    for (status, offset) in [("IN_PROGRESS", 2), ("SUCCEEDED", 3)] {
        courier
            .command_message(
                &format!("courier/commands/things/dev-8/executions/{id}/response/json"),
                format!(r#"{{"status": "{status}"}}"#).as_bytes(),
                Delivery::new(&format!("r-{status}")),
                at(offset),
            )
            .await
            .expect("a commands topic")
            .expect("storage is up");
    }
    let lean = template_patterns_with(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml"),
        |name| (name == "COMMAND_STATUS_EVENTS").then(|| "off".to_owned()),
    )
    .unwrap();
    // SENT, IN_PROGRESS and SUCCEEDED: three invocations saved.
    assert_eq!(dropped_by_these_do_nothing(&courier, &lean, 4).await, 3);
}
