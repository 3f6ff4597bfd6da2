//! THE EMF LINES: executions created, delivered, worked, ended and refused
//! through the service over DynamoDB Local are recorded as they happen, and
//! the invocation's documents are CloudWatch Embedded Metric Format that
//! CloudWatch accepts: `_aws` metadata with a millisecond timestamp, the
//! `Courier` namespace, dimension sets whose every name is a string member,
//! every metric a member holding a number or at most 100 numbers, in a
//! CloudWatch unit. One test (the counters are process-wide), checked case
//! by case with a report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::Timestamp;
use courier_functions::ops::device_updates::Delivery;
use courier_functions::platform::metrics;
use courier_tests::{fresh_courier, iot_rule_event, send_to_device_events, RecordingPublisher};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(NOW * 1000 + ms)
}

/// Every way a document could break EMF, as a list of problems.
fn emf_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let aws = &doc["_aws"];
    if !aws["Timestamp"].is_i64() {
        problems.push("_aws.Timestamp is not epoch milliseconds".to_owned());
    }
    let Some(directives) = aws["CloudWatchMetrics"].as_array() else {
        return vec!["_aws.CloudWatchMetrics is not a list".to_owned()];
    };
    for directive in directives {
        if directive["Namespace"] != "Courier" {
            problems.push(format!("namespace {}", directive["Namespace"]));
        }
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            let names = set.as_array().map_or(&[][..], Vec::as_slice);
            if names.len() > 30 {
                problems.push("more than 30 dimensions".to_owned());
            }
            for name in names {
                let name = name.as_str().unwrap_or_default();
                if !doc[name].is_string() {
                    problems.push(format!("dimension {name} has no string value"));
                }
            }
        }
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default();
            let unit = metric["Unit"].as_str().unwrap_or_default();
            if !["Count", "Milliseconds"].contains(&unit) {
                problems.push(format!("{name}: unit {unit}"));
            }
            match &doc[name] {
                Value::Number(_) => {}
                Value::Array(values)
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => problems.push(format!("{name}: value {other}")),
            }
        }
    }
    if doc.to_string().len() > 256 * 1024 {
        problems.push("over 256 KB".to_owned());
    }
    problems
}

#[tokio::test]
async fn executions_become_emf_documents_cloudwatch_accepts() {
    metrics::take_documents("discard", &[], 0);
    let courier = fresh_courier().await;
    let publisher = RecordingPublisher::default();
    let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
    courier
        .create_command(&json!({"commandId": "reboot"}).into(), at(0))
        .await
        .unwrap();
    // One delivered 40 ms after its creation, worked 2 s, SUCCEEDED.
    let (done, _) = courier
        .start_execution("reboot", &json!({"target": "m-1"}).into(), "alice", at(0))
        .await
        .unwrap();
    courier
        .dispatch(&root, &publisher, &done, at(40))
        .await
        .unwrap();
    for (status, ms) in [("IN_PROGRESS", 1000), ("SUCCEEDED", 3000)] {
        courier
            .device_update(
                "m-1",
                done.execution_id.as_str(),
                &json!({"status": status}).into(),
                Delivery {
                    request_id: status,
                    received_at: Some(at(ms)),
                },
                at(ms),
            )
            .await
            .unwrap();
    }
    // One canceled before delivery.
    let (canceled, _) = courier
        .start_execution("reboot", &json!({"target": "m-2"}).into(), "alice", at(0))
        .await
        .unwrap();
    courier
        .cancel_execution(
            canceled.execution_id.as_str(),
            &json!({}).into(),
            "bob",
            at(10),
            "r",
        )
        .await
        .unwrap();
    // A device request refused: an update of an execution it does not have.
    send_to_device_events(
        &courier,
        &publisher,
        &iot_rule_event(
            "courier/things/m-1/jobs/no-such-execution/update",
            &json!({"status": "SUCCEEDED"}),
        ),
        "refused",
        at(20),
    )
    .await
    .unwrap();

    let docs = metrics::take_documents("api", &["reboot".to_owned()], at(5000).millis());
    let mut report = Vec::new();
    for doc in &docs {
        for problem in emf_problems(doc) {
            report.push(format!("{doc}: {problem}"));
        }
    }
    let totals = docs
        .iter()
        .find(|d| d["commandIds"].is_array())
        .expect("a totals document");
    let expect = |report: &mut Vec<String>, what: &str, got: &Value, want: Value| {
        if *got != want {
            report.push(format!("{what}: got {got}, want {want}"));
        }
    };
    expect(
        &mut report,
        "created",
        &totals["ExecutionsCreated"],
        json!(2),
    );
    expect(
        &mut report,
        "succeeded",
        &totals["ExecutionsSucceeded"],
        json!(1),
    );
    expect(
        &mut report,
        "canceled",
        &totals["ExecutionsCanceled"],
        json!(1),
    );
    expect(
        &mut report,
        "delivery latency",
        &totals["DeliveryLatency"],
        json!([40.0]),
    );
    expect(
        &mut report,
        "device duration",
        &totals["DeviceDuration"],
        json!([2000.0]),
    );
    expect(
        &mut report,
        "totals have no dimension",
        &totals["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([[]]),
    );
    expect(
        &mut report,
        "command ids as a property",
        &totals["commandIds"],
        json!(["reboot"]),
    );
    let refused = docs.iter().find(|d| d["Code"].is_string());
    expect(
        &mut report,
        "refused requests by code",
        &refused.map_or(Value::Null, |d| {
            json!([d["Code"], d["DeviceRequestsRejected"]])
        }),
        json!(["ResourceNotFound", 1]),
    );
    let by_command = docs.iter().find(|d| d["CommandId"] == "reboot");
    expect(
        &mut report,
        "the opted-in command's dimension",
        &by_command.map_or(Value::Null, |d| d["ExecutionsCreated"].clone()),
        json!(2),
    );
    assert!(
        metrics::take_documents("api", &[], 0).is_empty(),
        "taking the documents forgets what was recorded"
    );
    assert!(report.is_empty(), "{}", report.join("\n"));
}
