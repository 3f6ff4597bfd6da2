//! The AWS IoT commands device protocol against DynamoDB Local: a command
//! defined with `"protocol": "commands"` is published to its device's
//! request topic, the device's UpdateCommandExecution (the AWS developer
//! guide's example payloads, verbatim) is answered on accepted / rejected,
//! and status events name each change. One case per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::{CommandExecution, ExecutionStatus, Timestamp};
use courier_functions::ops::device_updates::Delivery;
use courier_functions::ops::{Courier, OptionalMessages};
use courier_functions::platform::publisher::{Message, Payload};
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::store::Store;
use courier_tests::{fresh_courier, RecordingPublisher};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_secs(NOW + offset)
}

fn jobs_root() -> courier_core::protocol::TopicRoot {
    courier_core::protocol::TopicRoot::parse(courier_core::protocol::DEFAULT_ROOT).unwrap()
}

/// A fresh courier with `definition` created at(0), one execution of it
/// started with `start` at(1) and dispatched at(2): the courier, the
/// execution and what the dispatch published.
async fn defined_and_dispatched(
    definition: Value,
    start: Value,
) -> (Courier<DynamoStore>, CommandExecution, RecordingPublisher) {
    let courier = fresh_courier().await;
    let command = definition["commandId"].as_str().unwrap().to_owned();
    courier
        .create_command(&definition.into(), at(0))
        .await
        .unwrap();
    let (execution, _) = courier
        .start_execution(&command, &start.into(), "tester", at(1))
        .await
        .unwrap();
    let publisher = RecordingPublisher::default();
    courier
        .dispatch(&jobs_root(), &publisher, &execution, at(2))
        .await
        .unwrap();
    (courier, execution, publisher)
}

/// A courier with the `My_Car` commands, and one execution of it started
/// and dispatched to `thing`: its id, and what was published.
async fn dispatched(thing: &str) -> (Courier<DynamoStore>, String, Vec<(String, Value)>) {
    let (courier, execution, publisher) = defined_and_dispatched(
        json!({"commandId": "set-power", "protocol": "commands", "executionTimeoutSeconds": 300,
               "parameters": [{"name": "powerStatus", "type": "S", "enum": ["ON", "OFF"], "required": true}]}),
        json!({"target": thing, "parameters": {"powerStatus": {"S": "ON"}}}),
    )
    .await;
    (
        courier,
        execution.execution_id.to_string(),
        publisher.take(),
    )
}

async fn respond(
    courier: &Courier<DynamoStore>,
    topic: &str,
    payload: &str,
    delivery: &str,
    offset: i64,
) -> Vec<Message> {
    courier
        .command_message(
            topic,
            payload.as_bytes(),
            Delivery::new(delivery),
            at(offset),
        )
        .await
        .expect("a commands topic")
        .expect("storage is up")
}

fn response_topic(thing: &str, id: &str) -> String {
    format!("courier/commands/things/{thing}/executions/{id}/response/json")
}

fn payload(message: &Message) -> Value {
    serde_json::to_value(&message.payload).unwrap()
}

#[tokio::test]
async fn the_request_is_published_to_the_devices_request_topic_and_not_to_the_jobs_api() {
    let (courier, id, published) = dispatched("My_Car").await;
    assert_eq!(
        published,
        [(
            format!("courier/commands/things/My_Car/executions/{id}/request/json"),
            json!({"commandId": "set-power", "parameters": {"powerStatus": {"S": "ON"}}})
        )]
    );
    let execution = courier.get_execution(&id, at(3)).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Sent);
    // The Jobs API of the same thing does not offer it.
    let pending = courier
        .pending(&courier_core::ThingName::parse("My_Car").unwrap(), at(3))
        .await
        .unwrap();
    assert!(pending.is_empty(), "{pending:?}");
}

#[tokio::test]
async fn the_aws_example_updates_are_accepted_and_applied() {
    let (courier, id, _) = dispatched("My_Car").await;
    // Verbatim from the AWS IoT developer guide ("UpdateCommandExecution").
    let in_progress = r#"{
  "status": "IN_PROGRESS",
  "statusReason": {
    "reasonCode": "200",
    "reasonDescription": "Execution_in_progress"
  },
  "result": {
        "car_battery": {
            "s": "car battery at 50 percent"
        }
    }
}"#;
    let out = respond(
        &courier,
        &response_topic("My_Car", &id),
        in_progress,
        "r1",
        3,
    )
    .await;
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].topic,
        format!("courier/commands/things/My_Car/executions/{id}/response/accepted/json")
    );
    assert_eq!(payload(&out[0]), json!({"executionId": id}));
    let failed = format!(
        r#"{{
  "deviceId": "My_Car",
  "executionId": "{id}",
  "status": "FAILED",
  "statusReason": {{
    "reasonCode": "CAR_LOW_ON_BATTERY",
    "reasonDescription": "Car battery is lower than 5 percent"
  }}
}}"#
    );
    let out = respond(&courier, &response_topic("My_Car", &id), &failed, "r2", 4).await;
    assert!(out[0].topic.ends_with("/response/accepted/json"), "{out:?}");
    let execution = courier.get_execution(&id, at(5)).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Failed);
    assert_eq!(
        execution.status_reason.unwrap().reason_code,
        "CAR_LOW_ON_BATTERY"
    );
    assert_eq!(
        serde_json::to_value(&execution.result).unwrap(),
        json!({"car_battery": {"S": "car battery at 50 percent"}})
    );
}

#[tokio::test]
async fn the_request_expires_from_the_broker_with_the_executions_timeout() {
    let (_, _, publisher) = defined_and_dispatched(
        json!({"commandId": "unlock", "protocol": "commands", "executionTimeoutSeconds": 300}),
        json!({"target": "My_Car"}),
    )
    .await;
    let sent = publisher.take_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].topic.ends_with("/request/json"), "{sent:?}");
    // completeBy is at(1) + 300 s; published at(2): 299 s left. AWS IoT
    // commands devices read the MQTT 5 message expiry as the timeout.
    assert_eq!(sent[0].message_expiry_seconds, Some(299));
}

#[tokio::test]
async fn the_java_device_sdk_update_is_accepted_and_applied() {
    let (courier, id, _) = dispatched("My_Car").await;
    // What aws-iot-device-sdk-java-v2's IotCommandsV2Client publishes (Gson
    // writes every field of its request, deviceType included, and a byte[]
    // as signed numbers).
    let update = format!(
        r#"{{"deviceType":"things","deviceId":"My_Car","executionId":"{id}","status":"SUCCEEDED",
            "statusReason":{{"reasonCode":"OK","reasonDescription":"unlocked"}},
            "result":{{"log":{{"bin":[104,105,-1]}},"locked":{{"b":false}}}}}}"#
    );
    let out = respond(&courier, &response_topic("My_Car", &id), &update, "r1", 3).await;
    assert!(out[0].topic.ends_with("/response/accepted/json"), "{out:?}");
    let execution = courier.get_execution(&id, at(4)).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::to_value(&execution.result).unwrap(),
        json!({"log": {"BIN": "aGn/"}, "locked": {"B": false}})
    );
}

#[tokio::test]
async fn an_update_after_the_end_is_rejected_terminal_state_reached() {
    let (courier, id, _) = dispatched("My_Car").await;
    respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "SUCCEEDED"}"#,
        "r1",
        3,
    )
    .await;
    let out = respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "REJECTED"}"#,
        "r2",
        4,
    )
    .await;
    assert_eq!(
        out[0].topic,
        format!("courier/commands/things/My_Car/executions/{id}/response/rejected/json")
    );
    let body = payload(&out[0]);
    assert_eq!(
        (body["error"].as_str(), body["executionId"].as_str()),
        (Some("TerminalStateReached"), Some(id.as_str()))
    );
    assert!(
        body["errorMessage"].as_str().unwrap().contains("SUCCEEDED"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_responses_are_rejected_with_the_aws_codes() {
    let (courier, id, _) = dispatched("My_Car").await;
    let cases = [
        (response_topic("My_Car", &id), "not json", "InvalidJson"),
        (
            response_topic("My_Car", &id),
            r#"{"status": "DONE"}"#,
            "InvalidRequest",
        ),
        (
            response_topic("My_Car", &id),
            r#"{"status": "SUCCEEDED", "result": {}}"#,
            "InvalidRequest",
        ),
        (
            response_topic("My_Car", &id),
            r#"{"status": "SUCCEEDED", "result": {"x": "STRING"}}"#,
            "InvalidRequest",
        ),
        (
            response_topic("Other_Car", &id),
            r#"{"status": "SUCCEEDED"}"#,
            "ResourceNotFound",
        ),
        (
            format!("courier/commands/things/My_Car/executions/{id}/response/xml"),
            r#"{"status": "SUCCEEDED"}"#,
            "InvalidRequest",
        ),
    ];
    let mut wrong = Vec::new();
    for (n, (topic, body, code)) in cases.iter().enumerate() {
        let out = respond(&courier, topic, body, &format!("bad-{n}"), 3).await;
        let answer = out.first().map(payload).unwrap_or_default();
        if answer["error"] != *code || !out[0].topic.ends_with("/response/rejected/json") {
            wrong.push(format!(
                "{topic} {body}: {answer} on {:?}",
                out.first().map(|m| &m.topic)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // and nothing was written
    let execution = courier.get_execution(&id, at(4)).await.unwrap();
    assert_eq!(
        (execution.status, execution.version),
        (ExecutionStatus::Sent, 2)
    );
}

/// Each device API finds only its own protocol's executions: a commands
/// response naming a Jobs-protocol execution, and a Jobs update naming a
/// commands execution, are not found (the write's condition says so;
/// nothing is read first) and change nothing.
#[tokio::test]
async fn each_device_api_finds_only_its_own_protocols_executions() {
    let (courier, commands_id, _) = dispatched("My_Car").await;
    courier
        .create_command(&json!({"commandId": "reboot"}).into(), at(0))
        .await
        .unwrap();
    let (jobs_execution, _) = courier
        .start_execution(
            "reboot",
            &json!({"target": "My_Car"}).into(),
            "tester",
            at(1),
        )
        .await
        .unwrap();
    let jobs_id = jobs_execution.execution_id.to_string();
    let out = respond(
        &courier,
        &response_topic("My_Car", &jobs_id),
        r#"{"status": "SUCCEEDED"}"#,
        "cross-1",
        3,
    )
    .await;
    assert!(out[0].topic.ends_with("/response/rejected/json"), "{out:?}");
    assert_eq!(payload(&out[0])["error"], "ResourceNotFound");
    let answer = courier
        .device_message(
            &jobs_root(),
            &format!("courier/things/My_Car/jobs/{commands_id}/update"),
            br#"{"status": "SUCCEEDED"}"#,
            Delivery::new("cross-2"),
            at(3),
        )
        .await
        .unwrap();
    assert!(
        answer.replies[0].topic.ends_with("/update/rejected"),
        "{:?}",
        answer.replies
    );
    assert_eq!(
        serde_json::to_value(&answer.replies[0].payload).unwrap()["code"],
        "ResourceNotFound"
    );
    // AND the Jobs API does not describe it either
    let described = courier
        .device_message(
            &jobs_root(),
            &format!("courier/things/My_Car/jobs/{commands_id}/get"),
            b"{}",
            Delivery::new("cross-3"),
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&described.replies[0].payload).unwrap()["code"],
        "ResourceNotFound",
        "{:?}",
        described.replies
    );
    for (id, version) in [(&jobs_id, 1), (&commands_id, 2)] {
        let e = courier.get_execution(id, at(4)).await.unwrap();
        assert_eq!(e.version, version, "{id} changed: {e:?}");
    }
}

#[tokio::test]
async fn a_device_may_report_timed_out_itself() {
    let (courier, id, _) = dispatched("My_Car").await;
    let out = respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "TIMED_OUT", "statusReason": {"reasonCode": "MOTOR_STALLED"}}"#,
        "r1",
        3,
    )
    .await;
    assert!(out[0].topic.ends_with("/response/accepted/json"), "{out:?}");
    let execution = courier.get_execution(&id, at(4)).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::TimedOut);
    assert_eq!(
        execution.status_reason.unwrap().reason_code,
        "MOTOR_STALLED"
    );
}

#[tokio::test]
async fn several_executions_run_on_one_device_at_once() {
    let (courier, first, _) = dispatched("My_Car").await;
    let (second, _) = courier
        .start_execution(
            "set-power",
            &json!({"target": "My_Car", "parameters": {"powerStatus": {"S": "OFF"}}}).into(),
            "tester",
            at(3),
        )
        .await
        .unwrap();
    let publisher = RecordingPublisher::default();
    courier
        .dispatch(&jobs_root(), &publisher, &second, at(4))
        .await
        .unwrap();
    assert_eq!(publisher.take().len(), 1, "sent while the first still runs");
    for (id, delivery) in [(first.as_str(), "a"), (second.execution_id.as_str(), "b")] {
        let out = respond(
            &courier,
            &response_topic("My_Car", id),
            r#"{"status": "IN_PROGRESS"}"#,
            delivery,
            5,
        )
        .await;
        assert!(out[0].topic.ends_with("/response/accepted/json"), "{out:?}");
    }
}

#[tokio::test]
async fn status_events_follow_the_aws_shape_and_come_once_per_status() {
    let (courier, id, _) = dispatched("My_Car").await;
    let publisher = RecordingPublisher::default();
    let sent = courier.get_execution(&id, at(3)).await.unwrap();
    // QUEUED -> SENT is CREATED both times: no event
    let published = courier
        .command_status_event(&publisher, &sent, Some(ExecutionStatus::Queued), at(3))
        .await
        .unwrap();
    assert!(!published);
    respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "FAILED", "statusReason": {"reasonCode": "DEVICE_TOO_BUSY", "reasonDescription": ""}}"#,
        "r1",
        4,
    )
    .await;
    let failed = courier.get_execution(&id, at(5)).await.unwrap();
    assert!(courier
        .command_status_event(&publisher, &failed, Some(ExecutionStatus::Sent), at(5))
        .await
        .unwrap());
    let events = publisher.take();
    assert_eq!(events.len(), 1);
    let (topic, event) = &events[0];
    assert_eq!(topic, "courier/events/commandExecution/set-power/FAILED");
    assert_eq!(
        event,
        &json!({
            "executionId": id,
            "status": "FAILED",
            "statusReason": {"reasonCode": "DEVICE_TOO_BUSY", "reasonDescription": ""},
            "eventType": "COMMAND_EXECUTION",
            "commandArn": "arn:aws:iot:us-east-1:000000000000:command/set-power",
            "targetArn": "arn:aws:iot:us-east-1:000000000000:thing/My_Car",
            "timestamp": (NOW + 5) * 1000,
        })
    );
    // the store kept what the event says
    let stored = courier
        .store()
        .get_execution(&failed.execution_id, at(6))
        .await
        .unwrap();
    assert_eq!(stored.map(|e| e.status), Some(ExecutionStatus::Failed));
}

/// AWS lets a device's report replace a cloud-set TIMED_OUT; Courier keeps
/// it as the late result, answers the device as AWS would (accepted), and
/// the TIMED_OUT status event carries it.
#[tokio::test]
async fn a_report_after_the_timeout_is_accepted_and_kept_as_the_late_result() {
    let (courier, id, _) = dispatched("My_Car").await;
    // created at +1 with a 300 s timeout: the deadline passed at +301
    let out = respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "SUCCEEDED", "result": {"unlocked": {"b": true}}}"#,
        "late",
        400,
    )
    .await;
    assert!(out[0].topic.ends_with("/response/accepted/json"), "{out:?}");
    let execution = courier.get_execution(&id, at(401)).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::TimedOut);
    let late = execution
        .late_result
        .clone()
        .expect("kept as the late result");
    assert_eq!(late.status, ExecutionStatus::Succeeded);
    let publisher = RecordingPublisher::default();
    assert!(courier
        .command_status_event(&publisher, &execution, Some(ExecutionStatus::Sent), at(401))
        .await
        .unwrap());
    let (topic, event) = publisher.take().remove(0);
    assert_eq!(topic, "courier/events/commandExecution/set-power/TIMED_OUT");
    assert_eq!(event["lateResult"]["status"], "SUCCEEDED", "{event}");
    assert_eq!(
        event["lateResult"]["result"],
        json!({"unlocked": {"B": true}}),
        "{event}"
    );
    // a second report is not kept again, and is refused as AWS refuses one
    // after a final status
    let again = respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "FAILED"}"#,
        "later",
        500,
    )
    .await;
    assert_eq!(payload(&again[0])["error"], "TerminalStateReached");
}

/// A payloadTemplate (the AWS CLI example's) is what the device receives,
/// filled from the execution; a template that cannot be filled is refused
/// when the command is defined.
#[tokio::test]
async fn the_payload_template_is_filled_for_the_device() {
    let (courier, _, publisher) = defined_and_dispatched(
        json!({"commandId": "Light_Power_Status", "protocol": "commands",
               "payloadTemplate": "{\"powerStatus\":\"${aws:iot:commandexecution::parameter:powerStatus}\"}",
               "parameters": [{"name": "powerStatus", "type": "S", "default": {"S": "OFF"}, "enum": ["ON", "OFF"]}]}),
        json!({"target": "lamp-1"}),
    )
    .await;
    assert_eq!(publisher.take()[0].1, json!({"powerStatus": "OFF"}));

    let refused = courier
        .create_command(
            &json!({"commandId": "broken", "protocol": "commands",
                    "payloadTemplate": "{\"level\": ${aws:iot:commandexecution::parameter:level}",
                    "parameters": [{"name": "level", "type": "I", "required": true}]})
            .into(),
            at(3),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 400);
    let body = refused.body();
    assert_eq!(
        body["details"]["errors"][0]["path"], "payloadTemplate",
        "{body}"
    );
    assert_eq!(
        body["details"]["errors"][0]["code"], "InvalidDefinition",
        "{body}"
    );
}

/// AWS's static payload example (`aws iot create-command --payload
/// '{"content": ..., "contentType": "application/json"}'`): the bytes go to
/// `request/json` unchanged, with their content type, and the device answers
/// as usual.
#[tokio::test]
async fn a_static_json_payload_is_sent_as_it_is_on_request_json() {
    let (courier, execution, publisher) = defined_and_dispatched(
        // AWS's CreateCommand body, as it is (it has no protocol field).
        json!({"commandId": "hello", "namespace": "AWS-IoT",
               "displayName": "Say hello",
               "payload": {"content": "eyAibWVzc2FnZSI6ICJIZWxsbyBJb1QiIH0=", "contentType": "application/json"}}),
        json!({"target": "My_Car"}),
    )
    .await;
    let id = execution.execution_id.to_string();
    let sent = publisher.take_messages();
    assert_eq!(
        sent[0].topic,
        format!("courier/commands/things/My_Car/executions/{id}/request/json")
    );
    assert_eq!(
        sent[0].payload,
        Payload::Bytes {
            content: br#"{ "message": "Hello IoT" }"#.to_vec(),
            content_type: "application/json".into()
        }
    );
    let out = respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "SUCCEEDED"}"#,
        "r1",
        3,
    )
    .await;
    assert!(out[0].topic.ends_with("/response/accepted/json"), "{out:?}");
    let shown = courier.get_command("hello").await.unwrap();
    let shown = serde_json::to_value(courier_core::codec::ToJson::to_json(&shown)).unwrap();
    assert_eq!(shown["displayName"], "Say hello");
    assert_eq!(shown["payload"]["contentType"], "application/json");
}

/// A payload of any other type (here AWS's default, none named) goes to the
/// format-less `.../request`, its type in the MQTT 5 content type alone.
#[tokio::test]
async fn a_binary_static_payload_goes_to_the_format_less_request_topic() {
    let (_, execution, publisher) = defined_and_dispatched(
        json!({"commandId": "blink", "protocol": "commands", "payload": {"content": "AP8Q"}}),
        json!({"target": "lamp-1"}),
    )
    .await;
    let sent = publisher.take_messages();
    assert_eq!(
        sent[0].topic,
        format!(
            "courier/commands/things/lamp-1/executions/{}/request",
            execution.execution_id
        )
    );
    assert_eq!(
        sent[0].payload,
        Payload::Bytes {
            content: vec![0x00, 0xff, 0x10],
            content_type: "application/octet-stream".into()
        }
    );
}

/// A template with AWS's preprocessor `outputFormat: CBOR`: the filled JSON
/// as CBOR on `request/cbor`.
#[tokio::test]
async fn a_template_with_cbor_output_is_sent_as_cbor_on_request_cbor() {
    let (_, execution, publisher) = defined_and_dispatched(
        json!({"commandId": "dim", "protocol": "commands",
               "payloadTemplate": "{\"level\": ${aws:iot:commandexecution::parameter:level}}",
               "preprocessor": {"awsJsonSubstitution": {"outputFormat": "CBOR"}},
               "parameters": [{"name": "level", "type": "I", "required": true}]}),
        json!({"target": "lamp-1", "parameters": {"level": {"I": 500}}}),
    )
    .await;
    let sent = publisher.take_messages();
    assert!(sent[0].topic.ends_with("/request/cbor"), "{sent:?}");
    assert_eq!(
        sent[0].topic,
        format!(
            "courier/commands/things/lamp-1/executions/{}/request/cbor",
            execution.execution_id
        )
    );
    // {"level": 500}: a map of one pair, the text "level", 500 as uint16.
    let mut cbor = vec![0xa1, 0x65];
    cbor.extend(b"level");
    cbor.extend([0x19, 0x01, 0xf4]);
    assert_eq!(
        sent[0].payload,
        Payload::Bytes {
            content: cbor,
            content_type: "application/cbor".into()
        }
    );
}

/// A device that writes CBOR (`.../response/cbor`, as AWS IoT commands
/// allows): its update is applied as the same JSON would be, a byte string
/// result stored as BIN, and it is answered in CBOR on
/// `.../response/accepted/cbor`; bad CBOR is refused on `.../rejected/cbor`.
#[tokio::test]
async fn a_cbor_response_is_applied_and_answered_in_cbor() {
    let (courier, id, _) = dispatched("My_Car").await;
    let topic = format!("courier/commands/things/My_Car/executions/{id}/response/cbor");
    // {"status": "SUCCEEDED", "result": {"log": {"bin": h'6869ff'}}}
    let mut update = vec![0xa2, 0x66];
    update.extend(b"status");
    update.push(0x69);
    update.extend(b"SUCCEEDED");
    update.push(0x66);
    update.extend(b"result");
    update.extend([0xa1, 0x63]);
    update.extend(b"log");
    update.extend([0xa1, 0x63]);
    update.extend(b"bin");
    update.extend([0x43, 0x68, 0x69, 0xff]);
    let out = courier
        .command_message(&topic, &update, Delivery::new("r1"), at(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out[0].topic,
        format!("courier/commands/things/My_Car/executions/{id}/response/accepted/cbor")
    );
    // {"executionId": id}
    let mut accepted = vec![0xa1, 0x6b];
    accepted.extend(b"executionId");
    accepted.extend([0x78, u8::try_from(id.len()).unwrap()]);
    accepted.extend(id.as_bytes());
    assert_eq!(
        out[0].payload,
        Payload::Bytes {
            content: accepted,
            content_type: "application/cbor".into()
        }
    );
    let execution = courier.get_execution(&id, at(4)).await.unwrap();
    assert_eq!(execution.status, ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::to_value(&execution.result).unwrap(),
        json!({"log": {"BIN": "aGn/"}})
    );

    let out = courier
        .command_message(&topic, &[0xa1, 0x01], Delivery::new("r2"), at(5))
        .await
        .unwrap()
        .unwrap();
    assert!(out[0].topic.ends_with("/response/rejected/cbor"), "{out:?}");
    let Payload::Bytes { content, .. } = &out[0].payload else {
        panic!("a CBOR reply: {out:?}");
    };
    let rejected = courier_core::command_payload::json_from_cbor(content).unwrap();
    let rejected = serde_json::to_value(&rejected).unwrap();
    assert_eq!(rejected["error"], "InvalidRequest", "{rejected}");
    assert_eq!(rejected["executionId"], id.as_str(), "{rejected}");
}

/// AWS IoT commands' mandatoryParameters with valueConditions (the AWS
/// concepts page's example) are accepted as a definition and applied to
/// every start, by the same validator as Courier's own constraints.
#[tokio::test]
async fn mandatory_parameters_with_value_conditions_are_applied() {
    let courier = fresh_courier().await;
    let (definition, _) = courier
        .create_command(
            &json!({"commandId": "thermostat", "protocol": "commands", "mandatoryParameters": [
                {
                  "name": "temperature",
                  "type": "INTEGER",
                  "defaultValue": {"I": 72},
                  "valueConditions": [
                    {
                      "comparisonOperator": "IN_RANGE",
                      "operand": {"numberRange": {"min": "60", "max": "80"}}
                    }
                  ]
                }
            ]})
            .into(),
            at(0),
        )
        .await
        .unwrap();
    let shown = serde_json::to_value(&definition).unwrap();
    assert_eq!(shown["parameters"][0]["type"], "I", "{shown}");
    assert_eq!(
        shown["parameters"][0]["valueConditions"][0]["comparisonOperator"],
        "IN_RANGE"
    );
    let (execution, _) = courier
        .start_execution(
            "thermostat",
            &json!({"target": "hvac-1"}).into(),
            "tester",
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&execution.parameters).unwrap(),
        json!({"temperature": {"I": 72}})
    );
    let refused = courier
        .start_execution(
            "thermostat",
            &json!({"target": "hvac-1", "parameters": {"temperature": {"I": 90}}}).into(),
            "tester",
            at(2),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 400);
    assert_eq!(
        refused.body()["details"]["errors"][0],
        json!({"path": "parameters.temperature", "code": "OutOfRange", "message": "90 is outside the range 60..80"})
    );
}

/// A canceled commands-protocol execution: the dispatcher publishes its
/// CANCELED status event and nothing to the device (AWS IoT commands has no
/// cancel notification), and says so.
#[tokio::test]
async fn a_canceled_commands_execution_gets_a_status_event_and_no_device_message() {
    let (courier, id, _) = dispatched("My_Car").await;
    courier
        .cancel_execution(&id, &json!({}).into(), "bob", at(3), "c1")
        .await
        .unwrap();
    let pk = courier
        .store()
        .execution_pk(&courier_core::ExecutionId::parse(&id).unwrap());
    let canceled: Vec<Value> = courier_local::stream::replay(courier.store().table())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r["dynamodb"]["Keys"]["pk"]["S"] == json!(pk)
                && r["dynamodb"]["NewImage"]["status"]["S"] == "CANCELED"
        })
        .collect();
    let publisher = RecordingPublisher::default();
    let out = courier_tests::send_to_dispatcher(
        &courier,
        &publisher,
        &courier_tests::thing_groups().await,
        canceled,
        at(4),
    )
    .await;
    assert_eq!(
        out["handled"][0]["did"], "status event only (commands protocol)",
        "{out}"
    );
    let topics: Vec<String> = publisher.take().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        topics,
        ["courier/events/commandExecution/set-power/CANCELED"]
    );
}

/// A deployment without status events (`COMMAND_STATUS_EVENTS=off`): the
/// same cancel publishes nothing at all, and a device's report none either.
#[tokio::test]
async fn without_status_events_no_change_publishes_one() {
    let (courier, id, published) = dispatched("My_Car").await;
    assert_eq!(published.len(), 1, "the request still goes: {published:?}");
    let courier = courier.with_optional_messages(OptionalMessages {
        command_status_events: false,
        ..OptionalMessages::default()
    });
    let publisher = RecordingPublisher::default();
    respond(
        &courier,
        &response_topic("My_Car", &id),
        r#"{"status": "IN_PROGRESS"}"#,
        "r1",
        3,
    )
    .await;
    let started = courier.get_execution(&id, at(4)).await.unwrap();
    assert!(!courier
        .command_status_event(&publisher, &started, Some(ExecutionStatus::Sent), at(4))
        .await
        .unwrap());
    courier
        .cancel_execution(&id, &json!({"force": true}).into(), "bob", at(5), "c1")
        .await
        .unwrap();
    let pk = courier
        .store()
        .execution_pk(&courier_core::ExecutionId::parse(&id).unwrap());
    let changes: Vec<Value> = courier_local::stream::replay(courier.store().table())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r["dynamodb"]["Keys"]["pk"]["S"] == json!(pk))
        .collect();
    let out = courier_tests::send_to_dispatcher(
        &courier,
        &publisher,
        &courier_tests::thing_groups().await,
        changes,
        at(6),
    )
    .await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    assert_eq!(publisher.take(), Vec::<(String, Value)>::new());
    assert_eq!(
        courier.get_execution(&id, at(6)).await.unwrap().status,
        ExecutionStatus::Canceled
    );
}
