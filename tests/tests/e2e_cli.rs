//! END TO END through the `courier` CLI: the binary (`COURIER_BIN`, built
//! by `scripts/test.sh`) against the local stack, with MQTT devices doing
//! the work; what it prints and the exit codes scripts rely on (0 done,
//! 1 refused, 2 bad arguments, 3 some devices failed, 4 stopped).
//!
//! Each test uses its own things and ids, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::DEFAULT_ROOT;
use courier_local::mqtt::MqttDevice;
use courier_tests::fleet::spawn_device;
use serde_json::{json, Value};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the CLI tests through `make test` (scripts/test.sh starts the local stack and builds the CLI)")
    })
}

/// `courier ARGS…` against the local stack, off the async runtime.
async fn courier(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env("COURIER_BIN"))
            .args(&args)
            .env("COURIER_API_URL", env("API_URL"))
            .env_remove("COURIER_TOKEN")
            .env_remove("COURIER_OUTPUT")
            .output()
            .expect("the courier binary runs")
    })
    .await
    .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `courier --output json ARGS…`, expected to succeed: its JSON.
async fn courier_json(args: &[&str]) -> Value {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let out = courier(&all).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "courier {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).expect("--output json prints JSON")
}

async fn create_command(id: &str) {
    let body = json!({"commandId": id, "executionTimeoutSeconds": 600,
                      "parameters": [{"name": "rate", "type": "I", "min": 1, "default": {"I": 5}}]});
    let created = courier_json(&["commands", "create", &body.to_string()]).await;
    assert_eq!(created["commandId"], id);
}

/// MQTT devices working until the returned flag is set.
async fn devices(
    things: &[String],
    fails: Option<&'static str>,
) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<usize>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for thing in things {
        let dev = MqttDevice::connect(&env("MQTT_BROKER"), thing, DEFAULT_ROOT)
            .await
            .unwrap();
        workers.push(spawn_device(dev, fails, stop.clone()));
    }
    (stop, workers)
}

async fn stop(flag: Arc<AtomicBool>, workers: Vec<tokio::task::JoinHandle<usize>>) {
    flag.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
}

fn things(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}-{}-{i}", std::process::id()))
        .collect()
}

#[tokio::test]
async fn an_execution_is_started_read_listed_and_canceled_through_the_cli() {
    create_command("cli-set-rate").await;
    let target = format!("cli-exec-{}", std::process::id());
    let started = courier_json(&[
        "executions",
        "start",
        "cli-set-rate",
        "--target",
        &target,
        "--parameters",
        r#"{"rate": {"I": 30}}"#,
    ])
    .await;
    let id = started["executionId"].as_str().unwrap();
    assert_eq!(started["parameters"]["rate"], json!({"I": 30}));

    let shown = courier(&["executions", "get", id]).await;
    assert_eq!(shown.status.code(), Some(0));
    assert!(
        stdout(&shown)
            .lines()
            .any(|l| l.starts_with("executionId") && l.ends_with(id)),
        "a record, one field per line:\n{}",
        stdout(&shown)
    );

    let listed = courier(&["executions", "list", "--target", &target]).await;
    let table = stdout(&listed);
    assert!(table.starts_with("EXECUTION"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(id) && l.contains("cli-set-rate")),
        "{table}"
    );

    let canceled = courier_json(&["executions", "cancel", id, "--comment", "not needed"]).await;
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(canceled["statusReason"]["reasonDescription"], "not needed");
}

#[tokio::test]
async fn an_api_error_exits_1_with_its_code_and_message() {
    let out = courier(&["jobs", "get", "no-such-job"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ResourceNotFoundException (404)"),
        "{}",
        stderr(&out)
    );
    let invalid = courier(&[
        "executions",
        "start",
        "cli-set-rate",
        "--target",
        "bad name!",
    ])
    .await;
    assert_eq!(invalid.status.code(), Some(1));
    assert!(
        stderr(&invalid).contains("ValidationException (400)"),
        "{}",
        stderr(&invalid)
    );
}

#[tokio::test]
async fn bad_arguments_exit_2_and_a_body_that_is_not_json_exits_1() {
    let out = courier(&["jobs", "frobnicate"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = courier(&["jobs", "create", "{not json"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the body is not JSON"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn jobs_watch_exits_0_once_every_device_succeeded() {
    create_command("cli-set-rate").await;
    let things = things("cli-ok", 3);
    let (flag, workers) = devices(&things, None).await;
    let job = courier_json(&[
        "jobs",
        "create",
        &json!({"commandId": "cli-set-rate", "targets": {"things": things}}).to_string(),
    ])
    .await;
    let job_id = job["jobId"].as_str().unwrap();
    let watched = courier(&["jobs", "watch", job_id, "--interval", "0.3"]).await;
    stop(flag, workers).await;
    assert_eq!(
        watched.status.code(),
        Some(0),
        "{}{}",
        stdout(&watched),
        stderr(&watched)
    );
    assert_eq!(stdout(&watched).trim(), "COMPLETED · 3 succeeded");
    let listed = courier_json(&["jobs", "executions", job_id]).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn jobs_watch_exits_3_when_a_device_failed() {
    create_command("cli-fails").await;
    let things = things("cli-fail", 2);
    let (flag, workers) = devices(&things, Some("cli-fails")).await;
    let job = courier_json(&[
        "jobs",
        "create",
        &json!({"commandId": "cli-fails", "targets": {"things": things}}).to_string(),
    ])
    .await;
    let watched = courier(&[
        "jobs",
        "watch",
        job["jobId"].as_str().unwrap(),
        "--interval",
        "0.3",
    ])
    .await;
    stop(flag, workers).await;
    assert_eq!(
        watched.status.code(),
        Some(3),
        "{}{}",
        stdout(&watched),
        stderr(&watched)
    );
    assert_eq!(stdout(&watched).trim(), "COMPLETED · 2 failed");
}

#[tokio::test]
async fn jobs_watch_exits_4_when_the_job_was_canceled() {
    create_command("cli-set-rate").await;
    // Nobody works on these: the job stays in progress until canceled.
    let things = things("cli-idle", 2);
    let job = courier_json(&[
        "jobs",
        "create",
        &json!({"commandId": "cli-set-rate", "targets": {"things": things}}).to_string(),
    ])
    .await;
    let job_id = job["jobId"].as_str().unwrap();
    let canceled = courier_json(&[
        "jobs",
        "cancel",
        job_id,
        "--force",
        "--comment",
        "wrong fleet",
    ])
    .await;
    assert_eq!(canceled["status"], "CANCELED");
    let watched = courier(&["jobs", "watch", job_id, "--interval", "0.3"]).await;
    assert_eq!(
        watched.status.code(),
        Some(4),
        "{}{}",
        stdout(&watched),
        stderr(&watched)
    );
    assert!(
        stdout(&watched).starts_with("CANCELED"),
        "{}",
        stdout(&watched)
    );
}

#[tokio::test]
async fn runs_watch_follows_a_run_through_a_manual_gate_to_completion() {
    for id in ["cli-install", "cli-verify"] {
        create_command(id).await;
    }
    let pipeline = json!({"pipelineId": "cli-fw", "stages": [
        {"name": "install", "operations": [{"commandId": "cli-install"}]},
        {"name": "verify", "operations": [{"commandId": "cli-verify"}]}]});
    let created = courier_json(&["pipelines", "create", &pipeline.to_string()]).await;
    assert_eq!(created["pipelineId"], "cli-fw");
    let listed = courier(&["pipelines", "list"]).await;
    assert!(
        stdout(&listed).lines().any(|l| l.starts_with("cli-fw ")),
        "{}",
        stdout(&listed)
    );

    let things = things("cli-run", 3);
    let (flag, workers) = devices(&things, None).await;
    let run_id = format!("cli-run-{}", std::process::id());
    let run = json!({"runId": run_id, "targets": {"things": things}, "waves": [1],
                     "gates": {"verify": {"manualApproval": true}}});
    courier_json(&["runs", "start", "cli-fw", &run.to_string()]).await;

    // The watch goes on through the holds; each is resumed from the CLI.
    let watch = {
        let run_id = run_id.clone();
        tokio::spawn(async move {
            courier(&["runs", "watch", "cli-fw", &run_id, "--interval", "0.3"]).await
        })
    };
    let mut resumed = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while !watch.is_finished() && tokio::time::Instant::now() < deadline {
        let shown = courier_json(&["runs", "get", "cli-fw", &run_id]).await;
        if shown["status"] == "HELD" {
            let after = courier_json(&["runs", "resume", "cli-fw", &run_id]).await;
            assert_ne!(after["status"], "HELD");
            resumed += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let watched = watch.await.unwrap();
    stop(flag, workers).await;
    assert_eq!(
        watched.status.code(),
        Some(0),
        "{}{}",
        stdout(&watched),
        stderr(&watched)
    );
    assert_eq!(resumed, 2, "one manual gate per wave");
    assert_eq!(
        stdout(&watched).trim(),
        "COMPLETED · wave 2/2 · install 3✓ 0✗ · verify 3✓ 0✗"
    );
    let targets = courier(&[
        "runs",
        "targets",
        "cli-fw",
        &run_id,
        "--status",
        "SUCCEEDED",
    ])
    .await;
    assert_eq!(
        stdout(&targets).lines().count(),
        4,
        "a header and three devices:\n{}",
        stdout(&targets)
    );
}
