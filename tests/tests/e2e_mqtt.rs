//! END TO END over MQTT: a real MQTT client (rumqttc) acts as the device
//! against the local stack that `scripts/test.sh` starts — mosquitto, the
//! functions under `cargo lambda watch`, DynamoDB Local, and the local
//! stand-ins for IoT rules, the data plane, the table stream and the
//! scheduler (`courier-local bridge`, sweeping every second).
//!
//! Each test uses its own things, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::DEFAULT_ROOT;
use courier_functions::entry::api::auth::DEFAULT_TENANT;
use courier_local::http::{call_api, invoke};
use courier_local::mqtt::MqttDevice;
use courier_local::stream::replay as read_stream;
use courier_tests::fleet::spawn_device;
use serde_json::{json, Value};
use std::time::Duration;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the end-to-end tests through `make test` (scripts/test.sh starts the local stack)")
    })
}

/// `METHOD /path` on the API under cargo lambda watch.
/// Every answer is checked against the OpenAPI document.
async fn api(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, reply) = call_api(&env("API_URL"), method, path, body.as_ref())
        .await
        .unwrap();
    courier_tests::openapi::assert_documented(method, path, status, None, &reply);
    (status, reply)
}

async fn device(thing: &str) -> MqttDevice {
    MqttDevice::connect(&env("MQTT_BROKER"), thing, DEFAULT_ROOT)
        .await
        .unwrap()
}

/// Creates the test command (idempotent).
async fn create_command() {
    let (status, body) = api(
        "POST",
        "/commands",
        Some(json!({"commandId": "e2e-reboot", "parameters": [{"name": "delay", "type": "I", "default": {"I": 0}}],
                    "executionTimeoutSeconds": 600, "retentionSeconds": 3600})),
    )
    .await;
    assert!(
        status == 200 || status == 201,
        "create command: {status} {body}"
    );
}

/// Creates the test command (idempotent) and starts an execution on `thing`.
async fn start(thing: &str, extra: Value) -> String {
    create_command().await;
    let mut request = json!({"target": thing, "parameters": {"delay": {"I": 1}}});
    for (k, v) in extra.as_object().unwrap() {
        request[k] = v.clone();
    }
    let (status, body) = api("POST", "/commands/e2e-reboot/executions", Some(request)).await;
    assert_eq!(status, 201, "{body}");
    body["executionId"].as_str().unwrap().to_owned()
}

async fn execution(id: &str) -> Value {
    let (status, body) = api("GET", &format!("/executions/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the API until `done` holds (the sweeper runs every second).
async fn eventually(id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let e = execution(id).await;
        if done(&e) || tokio::time::Instant::now() > deadline {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The next `notify-next` naming `id` (or, with `None`, naming nothing).
async fn notify_next(dev: &mut MqttDevice, id: Option<&str>) -> Value {
    let topic = format!("{}/notify-next", dev.root);
    let wanted = id.map(|i| json!(i));
    dev.wait_for(Duration::from_secs(15), |(t, body, _)| {
        *t == topic && body["execution"]["jobId"] == wanted.clone().unwrap_or(Value::Null)
    })
    .await
    .map(|(_, body, _)| body)
    .unwrap_or_else(|| panic!("no notify-next for {id:?}"))
}

#[tokio::test]
async fn a_device_works_through_an_execution_over_mqtt() {
    let mut dev = device("e2e-worker").await;
    // GIVEN an execution started from the API
    let id = start("e2e-worker", json!({})).await;
    // THEN the dispatcher delivers it: notify-next names it, with its document
    let next = notify_next(&mut dev, Some(&id)).await;
    assert_eq!(next["execution"]["jobDocument"]["commandId"], "e2e-reboot");
    assert_eq!(next["execution"]["status"], "QUEUED");
    assert_eq!(
        eventually(&id, Duration::from_secs(5), |e| e["status"] == "SENT").await["status"],
        "SENT"
    );

    // get pending lists it as queued
    let pending = dev.request("get", json!({})).await.unwrap();
    assert_eq!(pending["queuedJobs"][0]["jobId"], json!(id));
    assert!(
        pending["clientToken"].is_string(),
        "the clientToken is echoed"
    );

    // start-next claims it: IN_PROGRESS
    let claimed = dev
        .request("start-next", json!({"statusDetails": {"step": "begin"}}))
        .await
        .unwrap();
    assert_eq!(claimed["execution"]["jobId"], json!(id));
    assert_eq!(claimed["execution"]["status"], "IN_PROGRESS");
    let mut version = claimed["execution"]["versionNumber"].as_u64().unwrap();

    // progress with expectedVersion
    let progress = dev
        .request(
            &format!("{id}/update"),
            json!({"status": "IN_PROGRESS", "expectedVersion": version,
            "statusDetails": {"step": "2/3"}, "includeJobExecutionState": true}),
        )
        .await
        .unwrap();
    version += 1;
    assert_eq!(progress["executionState"]["versionNumber"], version);

    // a stale version is rejected with the current state
    let stale = dev
        .request(
            &format!("{id}/update"),
            json!({"status": "IN_PROGRESS", "expectedVersion": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(stale["code"], "VersionMismatch");
    assert_eq!(stale["executionState"]["versionNumber"], version);
    assert_eq!(stale["executionState"]["status"], "IN_PROGRESS");

    // describe it
    let described = dev
        .request(&format!("{id}/get"), json!({"includeJobDocument": false}))
        .await
        .unwrap();
    assert_eq!(described["execution"]["statusDetails"]["step"], "2/3");
    assert!(described["execution"].get("jobDocument").is_none());

    // success with a typed result
    dev.request(
        &format!("{id}/update"),
        json!({"status": "SUCCEEDED", "expectedVersion": version,
            "result": {"uptime": {"I": 42}}, "statusReason": {"reasonCode": "OK"}}),
    )
    .await
    .unwrap();
    let done = execution(&id).await;
    assert_eq!(
        (
            done["status"].as_str(),
            done["result"]["uptime"]["I"].as_i64()
        ),
        (Some("SUCCEEDED"), Some(42))
    );

    // an update after a terminal state is rejected
    let late = dev
        .request(&format!("{id}/update"), json!({"status": "FAILED"}))
        .await
        .unwrap_err();
    assert_eq!(late["code"], "InvalidStateTransition");
    // nothing left: $next and start-next are accepted with no execution,
    // as AWS answers them
    assert!(dev
        .request("$next/get", json!({}))
        .await
        .unwrap()
        .get("execution")
        .is_none());
    assert!(dev
        .request("start-next", json!({}))
        .await
        .unwrap()
        .get("execution")
        .is_none());
    // malformed requests get their codes
    dev.publish_raw(&format!("{id}/update"), b"{not json")
        .await
        .unwrap();
    let invalid = dev
        .expect(&format!("{id}/update/rejected"), Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(invalid["code"], "InvalidJson");
    dev.disconnect().await;
}

#[tokio::test]
async fn an_untaken_execution_times_out_at_deliver_by_and_retries_as_a_new_attempt() {
    let mut dev = device("e2e-deaf").await;
    // GIVEN 2 attempts of 1 s each to take it
    let id = start(
        "e2e-deaf",
        json!({"deliveryTimeoutSeconds": 1, "onTimeout": "RETRY", "maxAttempts": 2}),
    )
    .await;
    let first = notify_next(&mut dev, Some(&id)).await;
    assert_eq!(first["execution"]["executionNumber"], 1);
    // THEN attempt 2 is delivered again, then it times out for good
    let second = dev
        .wait_for(Duration::from_secs(15), |(t, body, _)| {
            t.ends_with("/notify-next") && body["execution"]["executionNumber"] == 2
        })
        .await
        .expect("attempt 2 delivered");
    assert_eq!(second.1["execution"]["jobId"], json!(id));
    let e = eventually(&id, Duration::from_secs(15), |e| e["status"] == "TIMED_OUT").await;
    assert_eq!(e["status"], "TIMED_OUT", "{e}");
    assert_eq!(e["statusReason"]["reasonCode"], "DELIVERY_TIMEOUT");
    assert_eq!(e["executionNumber"], 2);
    dev.disconnect().await;
}

#[tokio::test]
async fn a_silent_device_times_out_at_complete_by_and_its_late_result_is_kept() {
    let mut dev = device("e2e-slow").await;
    let id = start("e2e-slow", json!({"executionTimeoutSeconds": 2})).await;
    notify_next(&mut dev, Some(&id)).await;
    let claimed = dev.request("start-next", json!({})).await.unwrap();
    assert_eq!(claimed["execution"]["jobId"], json!(id));
    // WHEN the device says nothing for longer than the execution timeout
    let e = eventually(&id, Duration::from_secs(15), |e| e["status"] == "TIMED_OUT").await;
    assert_eq!(e["statusReason"]["reasonCode"], "EXECUTION_TIMEOUT", "{e}");
    // THEN the device is told (notify-next without it), and its late result is
    // kept while the status stays TIMED_OUT
    notify_next(&mut dev, None).await;
    let refused = dev
        .request(
            &format!("{id}/update"),
            json!({"status": "SUCCEEDED", "result": {"done": {"B": true}}}),
        )
        .await
        .unwrap_err();
    assert_eq!(refused["code"], "InvalidStateTransition");
    let e = execution(&id).await;
    assert_eq!(e["status"], "TIMED_OUT");
    assert_eq!(e["lateResult"]["status"], "SUCCEEDED", "{e}");
    assert_eq!(e["lateResult"]["result"]["done"]["B"], true);
    dev.disconnect().await;
}

#[tokio::test]
async fn a_device_silent_past_its_step_timer_is_timed_out() {
    let mut dev = device("e2e-step").await;
    let id = start("e2e-step", json!({})).await;
    notify_next(&mut dev, Some(&id)).await;
    // stepTimeoutInMinutes is whole minutes (as in AWS): this test waits ~1 min.
    let claimed = dev
        .request("start-next", json!({"stepTimeoutInMinutes": 1}))
        .await
        .unwrap();
    assert_eq!(claimed["execution"]["jobId"], json!(id));
    let e = eventually(&id, Duration::from_secs(80), |e| e["status"] == "TIMED_OUT").await;
    assert_eq!(e["statusReason"]["reasonCode"], "STEP_TIMEOUT", "{e}");
    dev.disconnect().await;
}

#[tokio::test]
async fn a_scheduled_execution_is_held_until_not_before() {
    let mut dev = device("e2e-later").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let id = start("e2e-later", json!({"notBefore": now + 3.0})).await;
    // Held: not delivered, not visible to the device
    let pending = dev.request("get", json!({})).await.unwrap();
    assert_eq!(pending["queuedJobs"], json!([]), "{pending}");
    // Released by the sweeper once due
    let next = notify_next(&mut dev, Some(&id)).await;
    let released_at = next["timestamp"].as_f64().unwrap();
    assert!(
        released_at >= (now + 3.0).floor(),
        "released at {released_at}, due {}",
        now + 3.0
    );
    dev.disconnect().await;
}

#[tokio::test]
async fn a_forced_cancel_of_started_work_reaches_the_device() {
    let mut dev = device("e2e-cancel").await;
    let id = start("e2e-cancel", json!({})).await;
    notify_next(&mut dev, Some(&id)).await;
    dev.request("start-next", json!({})).await.unwrap();
    // WHEN an operator cancels without force THEN started work is kept
    let (status, body) = api("POST", &format!("/executions/{id}/cancel"), Some(json!({}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("InvalidStateTransition")),
        "{body}"
    );
    // WHEN with force THEN canceled, recorded, and the device hears of it
    let (status, body) = api(
        "POST",
        &format!("/executions/{id}/cancel"),
        Some(json!({"force": true, "statusReason": {"reasonCode": "WRONG_FIRMWARE"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["canceledBy"].as_str()),
        (Some("CANCELED"), Some("developer"))
    );
    notify_next(&mut dev, None).await;
    let refused = dev
        .request(&format!("{id}/update"), json!({"status": "SUCCEEDED"}))
        .await
        .unwrap_err();
    assert_eq!(refused["code"], "InvalidStateTransition");
    dev.disconnect().await;
}

#[tokio::test]
async fn a_replayed_stream_record_does_not_send_twice() {
    let mut dev = device("e2e-replay").await;
    let id = start("e2e-replay", json!({})).await;
    notify_next(&mut dev, Some(&id)).await;
    let sent = eventually(&id, Duration::from_secs(5), |e| e["status"] == "SENT").await;
    // WHEN the stream's INSERT record of it is delivered again
    let records = read_stream(&env("TABLE_NAME")).await.unwrap();
    let insert = records
        .into_iter()
        .find(|r| {
            r["eventName"] == "INSERT"
                && r["dynamodb"]["Keys"]["pk"]["S"]
                    == json!(format!("T#{DEFAULT_TENANT}#EXEC#{id}"))
        })
        .expect("the INSERT record is on the stream");
    let result = invoke(
        &env("INVOKE_URL"),
        "dispatcher",
        &json!({"Records": [insert]}),
    )
    .await
    .unwrap();
    assert_eq!(result["batchItemFailures"], json!([]));
    let did = result["handled"][0]["did"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        did == "already dispatched" || did == "changed since",
        "{result}"
    );
    // THEN nothing is sent again and nothing changes
    let again = dev
        .wait_for(Duration::from_secs(2), |(t, body, _)| {
            t.ends_with("/notify-next") && body["execution"]["jobId"] == json!(id)
        })
        .await;
    assert!(again.is_none(), "sent twice: {again:?}");
    assert_eq!(execution(&id).await["version"], sent["version"]);
    dev.disconnect().await;
}

#[tokio::test]
async fn a_job_over_a_thing_group_completes_while_mqtt_devices_work() {
    // GIVEN a thing group of five in the IoT control plane (moto), each thing
    // a device connected over MQTT
    let (group, things) = courier_tests::moto_thing_group(5).await;
    let mut devices = Vec::new();
    for thing in &things {
        devices.push(device(thing).await);
    }
    create_command().await;

    // WHEN a job targets the group through the API
    let (status, job) = api(
        "POST",
        "/jobs",
        Some(json!({"commandId": "e2e-reboot", "targets": {"thingGroup": group}})),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let job_id = job["jobId"].as_str().unwrap().to_owned();

    // THEN each device is told of its execution, takes it and reports; one fails
    for (i, dev) in devices.iter_mut().enumerate() {
        let topic = format!("{}/notify-next", dev.root);
        dev.wait_for(Duration::from_secs(30), |(t, body, _)| {
            *t == topic && body["execution"]["jobId"].is_string()
        })
        .await
        .unwrap_or_else(|| panic!("device {i} was not told of its execution"));
        let claimed = dev.request("start-next", json!({})).await.unwrap();
        let id = claimed["execution"]["jobId"].as_str().unwrap().to_owned();
        let outcome = if i == 0 { "FAILED" } else { "SUCCEEDED" };
        dev.request(&format!("{id}/update"), json!({"status": outcome}))
            .await
            .unwrap();
    }

    // AND the job completes with each device counted once
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let view = loop {
        let (_, view) = api("GET", &format!("/jobs/{job_id}"), None).await;
        if view["status"] == "COMPLETED" || tokio::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(view["status"], "COMPLETED", "{view}");
    assert_eq!(
        view["statistics"]["devices"],
        json!({"FAILED": 1, "SUCCEEDED": 4})
    );
    assert_eq!(view["statistics"]["attempts"], 5);
    let (_, failed) = api(
        "GET",
        &format!("/jobs/{job_id}/executions?status=FAILED"),
        None,
    )
    .await;
    assert_eq!(failed["items"][0]["target"], json!(things[0]));
}

/// The simulator speaks the AWS IoT commands protocol too: two executions of
/// a commands-protocol command, started at once on one simulated thing,
/// both end SUCCEEDED with its result (several run on a device at once).
#[tokio::test]
async fn the_simulator_runs_commands_protocol_executions_at_once() {
    let (status, body) = api(
        "POST",
        "/commands",
        Some(json!({"commandId": "e2e-unlock", "protocol": "commands", "executionTimeoutSeconds": 120})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let binary = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/debug/courier-device"
    );
    let mut simulator = std::process::Command::new(binary)
        .args([
            "--broker",
            &env("MQTT_BROKER"),
            "--thing",
            "sim-car-1",
            "--protocol",
            "commands",
            "--step-ms",
            "50",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("target/debug/courier-device (built by make test's local stack)");
    tokio::time::sleep(Duration::from_millis(500)).await; // connected and subscribed
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, body) = api(
            "POST",
            "/commands/e2e-unlock/executions",
            Some(json!({"target": "sim-car-1"})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["executionId"].as_str().unwrap().to_owned());
    }
    let mut ended = Vec::new();
    for id in &ids {
        ended.push(eventually(id, Duration::from_secs(30), |e| e["status"] == "SUCCEEDED").await);
    }
    let _ = simulator.kill();
    let _ = simulator.wait();
    for e in &ended {
        assert_eq!(
            (
                e["status"].as_str(),
                e["protocol"].as_str(),
                &e["result"]["ok"]
            ),
            (Some("SUCCEEDED"), Some("commands"), &json!({"B": true})),
            "{e}"
        );
    }
}

/// Creates the pipeline the pipeline tests run (idempotent): download →
/// install → verify, one operation each.
async fn create_pipeline() {
    for id in ["e2e-download", "e2e-install", "e2e-verify"] {
        let (status, body) = api(
            "POST",
            "/commands",
            Some(json!({"commandId": id, "executionTimeoutSeconds": 600})),
        )
        .await;
        assert!(status == 200 || status == 201, "{status} {body}");
    }
    let stages: Vec<Value> = ["download", "install", "verify"]
        .iter()
        .map(|s| json!({"name": s, "operations": [{"commandId": format!("e2e-{s}")}]}))
        .collect();
    let (status, body) = api(
        "POST",
        "/pipelines",
        Some(json!({"pipelineId": "e2e-fw", "stages": stages})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
}

/// Polls the run until `done` holds.
async fn run_until(run: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (status, view) = api("GET", &format!("/pipelines/e2e-fw/runs/{run}"), None).await;
        assert_eq!(status, 200, "{view}");
        if done(&view) || tokio::time::Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A 3-stage pipeline over 20 MQTT devices in 2 waves: one failing device
/// stops only itself, the manual gate is resumed through the API at each
/// wave, and every stream record delivered again changes nothing.
#[tokio::test]
async fn a_pipeline_runs_over_twenty_mqtt_devices_in_two_waves() {
    create_pipeline().await;
    let things: Vec<String> = (0..20).map(|i| format!("e2e-pipe-{i:02}")).collect();
    // The run's own order decides the waves: the device that fails is one
    // of the second wave (the first ten in that order are the first wave).
    let run_id = format!("e2e-run-{}", std::process::id());
    let order = courier_core::pipeline_run::wave_order(
        &courier_core::RunId::parse(&run_id).unwrap(),
        things
            .iter()
            .map(|t| courier_core::ThingName::parse(t).unwrap())
            .collect(),
    );
    let failing = order[15].to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for thing in &things {
        let dev = device(thing).await;
        workers.push(spawn_device(
            dev,
            (*thing == failing).then_some("e2e-install"),
            stop.clone(),
        ));
    }

    let (status, run) = api(
        "POST",
        "/pipelines/e2e-fw/runs",
        Some(
            json!({"runId": run_id, "targets": {"things": things}, "waves": ["50%"],
                    "gates": {"verify": {"manualApproval": true}}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    for wave in 0..2 {
        let held = run_until(&run_id, Duration::from_secs(90), |v| v["status"] == "HELD").await;
        assert_eq!(held["status"], "HELD", "wave {wave}: {held}");
        assert_eq!(held["hold"]["wave"], wave);
        assert_eq!(held["hold"]["manualApproval"], true);
        let (status, resumed) = api(
            "POST",
            &format!("/pipelines/e2e-fw/runs/{run_id}/resume"),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, 200, "{resumed}");
    }
    let done = run_until(&run_id, Duration::from_secs(90), |v| {
        v["status"] == "COMPLETED"
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut worked = 0;
    for w in workers {
        worked += w.await.unwrap();
    }
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(worked, 19 * 3 + 2, "19 devices ran 3 operations, one ran 2");
    let totals: Vec<(u64, u64, u64)> = done["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["entered"].as_u64().unwrap(),
                s["succeeded"].as_u64().unwrap(),
                s["failed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(totals, [(20, 20, 0), (20, 19, 1), (19, 19, 0)]);
    let (_, failed) = api(
        "GET",
        &format!("/pipelines/e2e-fw/runs/{run_id}/targets?status=FAILED"),
        None,
    )
    .await;
    assert_eq!(failed["items"][0]["thingName"], json!(failing));
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);

    // Every record of the table's stream delivered again, twice: same state.
    let (_, targets_before) = api(
        "GET",
        &format!("/pipelines/e2e-fw/runs/{run_id}/targets?limit=100"),
        None,
    )
    .await;
    // (This run's records only: other tests run beside this one.)
    let records: Vec<Value> = read_stream(&env("TABLE_NAME"))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            let image = &r["dynamodb"]["NewImage"];
            // A run's execution names its run in `runOp` ("{runId}/…").
            image["runOp"]["S"]
                .as_str()
                .is_some_and(|op| op.starts_with(&format!("{run_id}/")))
                || image["pk"]["S"]
                    .as_str()
                    .is_some_and(|pk| pk.ends_with(&format!("#RUN#{run_id}")))
        })
        .collect();
    assert!(records.len() > 60, "{} records", records.len());
    for _ in 0..2 {
        for batch in records.chunks(100) {
            let result = invoke(&env("INVOKE_URL"), "dispatcher", &json!({"Records": batch}))
                .await
                .unwrap();
            assert_eq!(result["batchItemFailures"], json!([]), "{result}");
        }
    }
    let after = run_until(&run_id, Duration::from_secs(1), |_| true).await;
    assert_eq!(after["counts"], done["counts"]);
    assert_eq!(after["status"], "COMPLETED");
    let (_, targets_after) = api(
        "GET",
        &format!("/pipelines/e2e-fw/runs/{run_id}/targets?limit=100"),
        None,
    )
    .await;
    assert_eq!(targets_after, targets_before);
}

/// A failure threshold aborts a run over MQTT devices: nothing new starts
/// and the devices that waited are skipped.
#[tokio::test]
async fn a_failure_threshold_aborts_a_pipeline_run_over_mqtt() {
    create_pipeline().await;
    let things: Vec<String> = (0..6).map(|i| format!("e2e-abort-{i:02}")).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for thing in &things {
        let dev = device(thing).await;
        // Every device fails its install.
        workers.push(spawn_device(dev, Some("e2e-install"), stop.clone()));
    }
    let (status, run) = api(
        "POST",
        "/pipelines/e2e-fw/runs",
        Some(json!({"targets": {"things": things}, "waves": [2],
                    "gates": {"install": {"abort": {"failedCount": 1}}}})),
    )
    .await;
    assert_eq!(status, 201, "{run}");
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let ended = run_until(&run_id, Duration::from_secs(90), |v| {
        v["status"] == "ABORTED"
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(ended["status"], "ABORTED", "{ended}");
    let skipped = run_until(&run_id, Duration::from_secs(10), |v| {
        v["sweepPending"].is_null()
    })
    .await;
    assert!(skipped["sweepPending"].is_null(), "{skipped}");
    let (_, targets) = api(
        "GET",
        &format!("/pipelines/e2e-fw/runs/{run_id}/targets?status=SKIPPED"),
        None,
    )
    .await;
    assert_eq!(
        targets["items"].as_array().unwrap().len(),
        4,
        "the second and third waves never started: {targets}"
    );
}
