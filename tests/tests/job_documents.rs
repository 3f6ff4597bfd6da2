//! Job documents of a command's own shape: a Jobs-protocol command's
//! `payloadTemplate` (AWS IoT Jobs' document with `${aws:iot:parameter:NAME}`
//! document parameters) is what the device receives as `jobDocument`, filled
//! from each execution — on a single execution's start-next, on a job's
//! fan-out through the dispatcher's notify-next, with an artifact URL
//! presigned as on every other path. The AWS IoT OTA agent's `afr_ota`
//! document is the example. Against DynamoDB Local and moto (S3, thing
//! groups).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::Timestamp;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::http::{client as http_client, request};
use courier_local::stream::{StartAt, StreamPoller};
use courier_tests::artifacts::{api, bucket_with, courier_with_artifacts as courier, NOW};
use courier_tests::{
    device_start_next, fresh_courier, send_to_dispatcher, thing_groups, RecordingPublisher,
};
use serde_json::{json, Value};

/// An OTA command as AWS IoT's OTA agent reads it: the file's URL (an S3
/// artifact, presigned when sent), its path and size as document parameters.
const OTA_TEMPLATE: &str = r#"{"afr_ota": {"protocols": ["HTTP"], "files": [{"filepath": "${aws:iot:parameter:path}", "filesize": ${aws:iot:parameter:size}, "fileid": 0, "update_data_url": "${aws:iot:parameter:url}"}]}}"#;

async fn ota_command(courier: &Courier<DynamoStore>, bucket: &str) {
    let url = format!(
        "${{aws:iot:s3-presigned-url-v2:https://s3.us-east-1.amazonaws.com/{bucket}/fw/app.bin}}"
    );
    let reply = api(
        courier,
        "POST",
        "/commands",
        json!({"commandId": "ota", "payloadTemplate": OTA_TEMPLATE, "parameters": [
            {"name": "url", "type": "S", "default": {"S": url}},
            {"name": "path", "type": "S", "default": {"S": "/ota/app.bin"}},
            {"name": "size", "type": "I", "required": true, "min": 1}]}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["payloadTemplate"], OTA_TEMPLATE);
}

async fn bucket_with_firmware(bucket: &str) {
    bucket_with(bucket, "fw/app.bin", b"image").await;
}

/// The document's one file, with its URL checked to fetch the object.
async fn check_ota_document(document: &Value, size: i64) {
    let file = &document["afr_ota"]["files"][0];
    assert_eq!(document["afr_ota"]["protocols"], json!(["HTTP"]));
    assert_eq!(file["filepath"], "/ota/app.bin");
    assert_eq!(
        file["filesize"], size,
        "a typed value outside a string is a number"
    );
    assert_eq!(file["fileid"], 0);
    assert!(document.get("commandId").is_none(), "{document}");
    let url = file["update_data_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, body) = request(&http_client(), "GET", url, vec![]).await.unwrap();
    assert_eq!((status, body.as_slice()), (200, b"image".as_slice()));
}

#[tokio::test]
async fn a_devices_start_next_gets_the_commands_own_document_filled_and_presigned() {
    let bucket = format!("ota-one-{}", std::process::id());
    bucket_with_firmware(&bucket).await;
    let courier = courier(&bucket).await;
    ota_command(&courier, &bucket).await;
    let started = api(
        &courier,
        "POST",
        "/commands/ota/executions",
        json!({"target": "ota-dev-1", "parameters": {"size": {"I": 5}}}),
    )
    .await;
    assert_eq!(started.status, 201, "{}", started.body);

    let accepted = device_start_next(&courier, "ota-dev-1", Timestamp::from_secs(NOW + 5)).await;
    check_ota_document(&accepted["execution"]["jobDocument"], 5).await;

    // Operators read the execution as written: its parameters, no document.
    let id = started.body["executionId"].as_str().unwrap();
    let read = api(&courier, "GET", &format!("/executions/{id}"), Value::Null).await;
    assert_eq!(read.body["parameters"]["size"], json!({"I": 5}));
    assert!(read.body.get("documentTemplate").is_none(), "{}", read.body);
}

#[tokio::test]
async fn a_jobs_devices_are_told_the_commands_own_document() {
    let bucket = format!("ota-job-{}", std::process::id());
    bucket_with_firmware(&bucket).await;
    let courier = courier(&bucket).await;
    ota_command(&courier, &bucket).await;
    let mut stream = StreamPoller::new(courier.store().table(), StartAt::Beginning)
        .await
        .unwrap();
    let groups = thing_groups().await;
    let (_, created) = courier
        .create_job(
            &groups,
            &json!({"commandId": "ota", "targets": {"things": ["ota-dev-2", "ota-dev-3"]},
                    "parameters": {"size": {"I": 7}}})
            .into(),
            Timestamp::from_secs(NOW),
        )
        .await
        .unwrap();
    assert!(created);

    // The dispatcher fans the job out and tells each device its next execution.
    let publisher = RecordingPublisher::default();
    loop {
        let fresh = stream.poll().await.unwrap();
        if fresh.is_empty() {
            break;
        }
        let out = send_to_dispatcher(
            &courier,
            &publisher,
            &groups,
            fresh,
            Timestamp::from_secs(NOW + 1),
        )
        .await;
        assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    }
    let told: Vec<(String, Value)> = publisher
        .take()
        .into_iter()
        .filter(|(topic, body)| topic.ends_with("/notify-next") && body.get("execution").is_some())
        .collect();
    for thing in ["ota-dev-2", "ota-dev-3"] {
        let (_, next) = told
            .iter()
            .find(|(topic, _)| topic.contains(&format!("/{thing}/")))
            .unwrap_or_else(|| panic!("{thing} was told nothing: {told:?}"));
        check_ota_document(&next["execution"]["jobDocument"], 7).await;
    }
}

#[tokio::test]
async fn a_template_naming_an_optional_parameter_is_refused_at_definition() {
    let courier = fresh_courier().await;
    let reply = api(
        &courier,
        "POST",
        "/commands",
        json!({"commandId": "ota-bad", "payloadTemplate": "{\"v\": \"${aws:iot:parameter:version}\"}",
               "parameters": [{"name": "version", "type": "S"}]}),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(
        reply.body["details"]["errors"][0]["path"],
        "payloadTemplate"
    );
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("must be required or have a default"),
        "{}",
        reply.body
    );
}
