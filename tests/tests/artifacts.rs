//! Artifacts: an S3 placeholder in a string parameter is checked when the
//! execution, job or pipeline is created, stored as written, and replaced
//! by a presigned GET URL whenever the document goes to the device; the
//! URL fetches the object from S3 (moto, on `MOTO_ENDPOINT`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::Timestamp;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::http::{client as http_client, request};
use courier_tests::artifacts::{api, bucket_with, courier_with_artifacts as courier, moto, NOW};
use courier_tests::{
    device_start_next, fresh_courier, iot_rule_event, send_to_device_events, RecordingPublisher,
};
use serde_json::{json, Value};

fn placeholder(bucket: &str, key: &str) -> String {
    format!("${{aws:iot:s3-presigned-url-v2:https://s3.us-east-1.amazonaws.com/{bucket}/{key}}}")
}

async fn with_firmware_command(courier: &Courier<DynamoStore>) {
    let reply = api(
        courier,
        "POST",
        "/commands",
        json!({"commandId": "flash", "parameters": [{"name": "url", "type": "S", "required": true}]}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn a_device_gets_a_presigned_url_that_fetches_the_object() {
    let bucket = format!("fw-{}", std::process::id());
    bucket_with(&bucket, "v2/image.bin", b"firmware bytes").await;
    let courier = courier(&bucket).await;
    with_firmware_command(&courier).await;
    let written = format!("download {}", placeholder(&bucket, "v2/image.bin"));
    let started = api(
        &courier,
        "POST",
        "/commands/flash/executions",
        json!({"target": "dev-art-1", "parameters": {"url": {"S": written}}}),
    )
    .await;
    assert_eq!(started.status, 201, "{}", started.body);
    // The record keeps what was written.
    assert_eq!(started.body["parameters"]["url"]["S"], written.as_str());

    // The device claims it: its document carries a URL signed now.
    let accepted = device_start_next(&courier, "dev-art-1", Timestamp::from_secs(NOW + 5)).await;
    let shown = accepted["execution"]["jobDocument"]["parameters"]["url"]["S"]
        .as_str()
        .unwrap();
    let url = shown.strip_prefix("download ").unwrap();
    assert!(
        url.starts_with(&format!("{}/{bucket}/v2/image.bin?", moto())),
        "{url}"
    );
    for part in [
        "X-Amz-Expires=600",
        "X-Amz-Signature=",
        "X-Amz-Date=20261118T110645Z",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let (status, body) = request(&http_client(), "GET", url, vec![]).await.unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, b"firmware bytes".as_slice())
    );

    // Operators still read the placeholder.
    let id = started.body["executionId"].as_str().unwrap();
    let read = api(&courier, "GET", &format!("/executions/{id}"), Value::Null).await;
    assert_eq!(read.body["parameters"]["url"]["S"], written.as_str());
}

/// A device that (re)connects is told its next execution again; that
/// document's URLs are presigned too, as on every other path.
#[tokio::test]
async fn a_reconnecting_device_is_told_its_next_execution_with_a_presigned_url() {
    let bucket = format!("fw-re-{}", std::process::id());
    bucket_with(&bucket, "v3/image.bin", b"firmware bytes").await;
    let courier = courier(&bucket).await;
    with_firmware_command(&courier).await;
    let started = api(
        &courier,
        "POST",
        "/commands/flash/executions",
        json!({"target": "dev-art-9", "parameters": {"url": {"S": placeholder(&bucket, "v3/image.bin")}}}),
    )
    .await;
    assert_eq!(started.status, 201, "{}", started.body);
    let publisher = RecordingPublisher::default();
    let connected = json!({"clientId": "dev-art-9", "timestamp": (NOW + 5) * 1000, "eventType": "connected",
                           "sessionIdentifier": "s-1", "principalIdentifier": "cert", "versionNumber": 1});
    let event = iot_rule_event("$aws/events/presence/connected/dev-art-9", &connected);
    send_to_device_events(
        &courier,
        &publisher,
        &event,
        "connected-1",
        Timestamp::from_secs(NOW + 5),
    )
    .await
    .unwrap();
    let sent = publisher.take();
    let (_, next) = sent
        .iter()
        .find(|(topic, _)| topic.ends_with("/notify-next"))
        .unwrap_or_else(|| panic!("notify-next: {sent:?}"));
    let url = next["execution"]["jobDocument"]["parameters"]["url"]["S"]
        .as_str()
        .unwrap();
    assert!(
        url.starts_with(&format!("{}/{bucket}/v3/image.bin?", moto()))
            && url.contains("X-Amz-Signature="),
        "{url}"
    );
}

#[tokio::test]
async fn a_placeholder_naming_another_bucket_is_refused_where_it_is_written() {
    let courier = courier("fw-allowed").await;
    with_firmware_command(&courier).await;
    let other = placeholder("someone-elses", "image.bin");
    let started = api(
        &courier,
        "POST",
        "/commands/flash/executions",
        json!({"target": "dev-art-2", "parameters": {"url": {"S": other}}}),
    )
    .await;
    assert_eq!(started.status, 400, "{}", started.body);
    assert_eq!(
        started.body["details"]["errors"][0]["path"],
        "parameters.url"
    );
    assert_eq!(started.body["details"]["errors"][0]["code"], "InvalidValue");

    let job = api(
        &courier,
        "POST",
        "/jobs",
        json!({"commandId": "flash", "targets": {"things": ["dev-art-2"]}, "parameters": {"url": {"S": other}}}),
    )
    .await;
    assert_eq!(job.status, 400, "{}", job.body);
    assert_eq!(job.body["details"]["errors"][0]["path"], "parameters.url");

    let pipeline = api(
        &courier,
        "POST",
        "/pipelines",
        json!({"pipelineId": "art", "stages": [{"name": "download", "operations": [
            {"commandId": "flash", "parameters": {"url": {"S": other}}}]}]}),
    )
    .await;
    assert_eq!(pipeline.status, 400, "{}", pipeline.body);
    assert_eq!(
        pipeline.body["details"]["errors"][0]["path"],
        "stages[0].operations[0].parameters.url"
    );
}

#[tokio::test]
async fn a_malformed_placeholder_is_refused_by_the_schema() {
    let courier = courier("fw-allowed").await;
    with_firmware_command(&courier).await;
    let started = api(
        &courier,
        "POST",
        "/commands/flash/executions",
        json!({"target": "dev-art-3", "parameters": {"url": {"S": "${aws:iot:s3-presigned-url-v2:https://example.com/fw/a.bin}"}}}),
    )
    .await;
    assert_eq!(started.status, 400, "{}", started.body);
    let error = &started.body["details"]["errors"][0];
    assert_eq!(error["code"], "InvalidValue");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("https://s3.<region>.amazonaws.com/<bucket>/<key>"),
        "{error}"
    );
}

#[tokio::test]
async fn without_artifact_buckets_a_placeholder_is_refused() {
    let courier = fresh_courier().await;
    with_firmware_command(&courier).await;
    let started = api(
        &courier,
        "POST",
        "/commands/flash/executions",
        json!({"target": "dev-art-4", "parameters": {"url": {"S": placeholder("fw-allowed", "a.bin")}}}),
    )
    .await;
    assert_eq!(started.status, 400, "{}", started.body);
    assert!(started.body["message"]
        .as_str()
        .unwrap()
        .contains("ARTIFACT_BUCKETS"));
}
