//! ONE-OFF: writes `tests/fixtures/table-v0.1.0.json`, every item kind as
//! the code of this commit writes it (run once with CAPTURE_FIXTURE=path;
//! removed in the next commit, kept in history as the fixture's origin).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{TenantId, Timestamp};
use courier_functions::service::Delivery;
use courier_tests::local::StreamTail;
use courier_tests::{
    endpoint, fresh_courier, send_to_dispatcher, thing_groups, RecordingPublisher,
};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

#[tokio::test]
async fn capture() {
    let Ok(out) = std::env::var("CAPTURE_FIXTURE") else {
        return;
    };
    let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
    let base = fresh_courier().await;
    let courier = base.for_tenant(&TenantId::parse("default").unwrap());
    let acme = base.for_tenant(&TenantId::parse("acme").unwrap());
    let publisher = RecordingPublisher::default();
    let groups = thing_groups().await;
    let mut stream = StreamTail::new(&endpoint(), courier.store().table())
        .await
        .unwrap();
    courier
        .create_command(
            &json!({"commandId": "set-config", "description": "sets the reporting rate",
            "executionTimeoutSeconds": 3600, "retentionSeconds": 86400,
            "parameters": [
                {"name": "rate", "type": "I", "required": true, "min": 1, "max": 3600},
                {"name": "mode", "type": "S", "enum": ["eco", "normal"], "default": {"S": "eco"}},
                {"name": "label", "type": "S", "pattern": "[a-z-]+", "maxLength": 16},
                {"name": "wifiPassword", "type": "S", "sensitive": true},
                {"name": "blob", "type": "BIN", "maxBytes": 8},
                {"name": "serial", "type": "UL", "max": 100000},
                {"name": "gain", "type": "D", "min": 0.5},
                {"name": "big", "type": "L"},
                {"name": "on", "type": "B"}
            ]}),
            at(0),
        )
        .await
        .unwrap();
    courier
        .create_command(&json!({"commandId": "reboot"}), at(0))
        .await
        .unwrap();
    acme.create_command(
        &json!({"commandId": "reboot", "executionTimeoutSeconds": 60}),
        at(0),
    )
    .await
    .unwrap();
    let start = |body: Value, now: Timestamp| {
        let courier = &courier;
        async move {
            courier
                .start_execution("set-config", &body, now)
                .await
                .unwrap()
                .0
        }
    };
    // QUEUED, held until notBefore, with a clientToken.
    start(
        json!({"target": "dev-held", "parameters": {"rate": {"I": 5}}, "notBefore": NOW + 3000,
            "clientToken": "held-1"}),
        at(1),
    )
    .await;
    // QUEUED, every typed value.
    start(
        json!({"target": "dev-queued", "parameters": {"rate": {"I": 7}, "mode": {"S": "normal"},
            "label": {"S": "ab-c"}, "wifiPassword": {"S": "hunter2"}, "blob": {"BIN": "AAEC"},
            "serial": {"UL": "99999"}, "gain": {"D": 1.25}, "big": {"L": 9007199254740993i64}, "on": {"B": true}}}),
        at(2),
    )
    .await;
    // SENT: dispatched.
    let sent = start(
        json!({"target": "dev-sent", "parameters": {"rate": {"I": 1}},
        "deliveryTimeoutSeconds": 600, "onTimeout": "RETRY", "maxAttempts": 3}),
        at(3),
    )
    .await;
    courier
        .dispatch(&root, &publisher, &sent, at(4))
        .await
        .unwrap();
    // IN_PROGRESS with a step timer and details.
    let running = start(
        json!({"target": "dev-running", "parameters": {"rate": {"I": 2}}}),
        at(5),
    )
    .await;
    courier
        .device_update(
            "dev-running",
            running.execution_id.as_str(),
            &json!({"status": "IN_PROGRESS", "statusDetails": {"step": "download"}, "stepTimeoutInMinutes": 30}),
            Delivery { request_id: "r-1", received_at: Some(at(6)) },
            at(6),
        )
        .await
        .unwrap();
    // SUCCEEDED with a result; FAILED and REJECTED with reasons.
    for (target, update) in [
        (
            "dev-ok",
            json!({"status": "SUCCEEDED", "result": {"applied": {"B": true}, "took": {"D": 1.5}}}),
        ),
        (
            "dev-failed",
            json!({"status": "FAILED", "statusReason": {"reasonCode": "DISK_FULL", "reasonDescription": "no space"}}),
        ),
        (
            "dev-rejected",
            json!({"status": "REJECTED", "statusReason": {"reasonCode": "UNSUPPORTED"}}),
        ),
    ] {
        let e = start(
            json!({"target": target, "parameters": {"rate": {"I": 3}}}),
            at(7),
        )
        .await;
        courier
            .device_update(
                target,
                e.execution_id.as_str(),
                &update,
                Delivery::new("r-2"),
                at(8),
            )
            .await
            .unwrap();
    }
    // CANCELED by an operator.
    let doomed = start(
        json!({"target": "dev-canceled", "parameters": {"rate": {"I": 4}}}),
        at(9),
    )
    .await;
    courier
        .cancel_execution(
            doomed.execution_id.as_str(),
            &json!({"statusReason": {"reasonCode": "NOT_NEEDED"}}),
            "alice",
            at(10),
            "req-c",
        )
        .await
        .unwrap();
    // TIMED_OUT by the sweeper, then a late result from the device.
    let late = start(json!({"target": "dev-late", "parameters": {"rate": {"I": 6}}, "executionTimeoutSeconds": 60}), at(11)).await;
    courier
        .sweep(&root, &publisher, at(100), 100)
        .await
        .unwrap();
    let _ = courier
        .device_update(
            "dev-late",
            late.execution_id.as_str(),
            &json!({"status": "SUCCEEDED", "result": {"ok": {"B": true}}}),
            Delivery::new("r-3"),
            at(120),
        )
        .await;
    // Another tenant's execution.
    acme.start_execution("reboot", &json!({"target": "acme-1"}), at(12))
        .await
        .unwrap();
    // A job over an explicit list: target page, fan-out, counters and a
    // batch marker (through the dispatcher), a BUSY answer.
    let (job, _) = courier
        .create_job(
            &groups,
            &json!({"commandId": "reboot", "jobId": "nightly-reboot", "targets": {"things": ["dev-j1", "dev-j2", "dev-j3"]},
                "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50, "minNumberOfExecutedThings": 2}]},
                "jobExecutionsRetryConfig": {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": 2}]},
                "clientToken": "job-token-1"}),
            at(20),
        )
        .await
        .unwrap();
    for round in 0..3 {
        let records = stream.read().await.unwrap();
        if !records.is_empty() {
            send_to_dispatcher(&courier, &publisher, &groups, records, at(21 + round)).await;
        }
    }
    let busy_id = courier_functions::ids::job_execution_id(
        &job.job.job_id,
        &courier_core::ThingName::parse("dev-j1").unwrap(),
    );
    courier
        .device_update(
            "dev-j1",
            busy_id.as_str(),
            &json!({"status": "REJECTED", "statusReason": {"reasonCode": "BUSY"}}),
            Delivery::new("r-4"),
            at(30),
        )
        .await
        .unwrap();
    let ok_id = courier_functions::ids::job_execution_id(
        &job.job.job_id,
        &courier_core::ThingName::parse("dev-j2").unwrap(),
    );
    courier
        .device_update(
            "dev-j2",
            ok_id.as_str(),
            &json!({"status": "SUCCEEDED"}),
            Delivery::new("r-5"),
            at(31),
        )
        .await
        .unwrap();
    let records = stream.read().await.unwrap();
    send_to_dispatcher(&courier, &publisher, &groups, records, at(32)).await;
    // A second job, canceled.
    let (second, _) = courier
        .create_job(&groups, &json!({"commandId": "reboot", "targets": {"things": ["dev-k1"]}, "schedulingConfig": {"startTime": NOW + 5000}}), at(40))
        .await
        .unwrap();
    courier
        .cancel_job(
            second.job.job_id.as_str(),
            &json!({"comment": "not tonight"}),
            "bob",
            at(41),
        )
        .await
        .unwrap();
    let records = stream.read().await.unwrap();
    send_to_dispatcher(&courier, &publisher, &groups, records, at(42)).await;

    // Dump every item, DynamoDB JSON, sorted by key.
    let client = courier_tests::client().await;
    let mut items = Vec::new();
    let mut start_key = None;
    loop {
        let page = client
            .scan()
            .table_name(courier.store().table())
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let wire: serde_dynamo::Item = item.clone().into();
            items.push(serde_json::to_value(wire).unwrap());
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start_key = Some(k),
            _ => break,
        }
    }
    items.sort_by_key(|i| {
        (
            i["pk"]["S"].as_str().unwrap_or_default().to_owned(),
            i["sk"]["S"].as_str().unwrap_or_default().to_owned(),
        )
    });
    let doc = json!({
        "about": "Every item kind as Courier 0.1.0 wrote it (commit before the restructuring; captured by tests/tests/capture_fixture.rs in that commit). Times are epoch seconds around 1800000000. tests/tests/upgrade.rs loads it and reads, lists, updates and cancels through the current code.",
        "items": items,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    eprintln!("wrote {} items to {out}", items.len());
}
