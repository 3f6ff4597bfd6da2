//! Presence and the head of a device's queue, over DynamoDB Local: a silent
//! head ended by its deadline gets what is behind it announced in the same
//! invocation, and a device that reconnects is told its pending work at
//! once (times passed in, never slept).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, ThingName, Timestamp};
use courier_functions::ops::{Courier, OptionalMessages};
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::{fresh_courier, iot_rule_event, send_to_device_events, RecordingPublisher};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).unwrap()
}

fn thing(name: &str) -> ThingName {
    ThingName::parse(name).unwrap()
}

/// `count` executions of `reboot` queued for `target`, one second apart.
async fn queued(courier: &Courier<DynamoStore>, target: &str, count: i64) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let (e, _) = courier
            .start_execution("reboot", &json!({"target": target}).into(), "alice", at(i))
            .await
            .unwrap();
        ids.push(e.execution_id.to_string());
    }
    ids
}

async fn courier() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    courier
        .create_command(
            &json!({"commandId": "reboot", "executionTimeoutSeconds": 3600}).into(),
            at(0),
        )
        .await
        .unwrap();
    courier
}

#[tokio::test]
async fn the_sweep_that_ends_a_silent_head_announces_the_next_execution() {
    let courier = courier().await;
    let ids = queued(&courier, "dev-h1", 2).await;
    // GIVEN the device took the first with a one-minute step timer, then went quiet
    courier
        .start_next(
            &thing("dev-h1"),
            &json!({"stepTimeoutInMinutes": 1}).into(),
            "r1",
            at(10),
        )
        .await
        .unwrap()
        .unwrap();
    // WHEN one sweep runs after the step timer passed
    let publisher = RecordingPublisher::default();
    let report = courier
        .sweep(&root(), &publisher, at(71), 100)
        .await
        .unwrap();
    assert_eq!(report.timed_out, 1);
    // THEN that same sweep told the device its next execution: the second
    let sent = publisher.take();
    let next = sent
        .iter()
        .find(|(topic, _)| topic == "courier/things/dev-h1/jobs/notify-next")
        .unwrap_or_else(|| panic!("notify-next in the sweep's messages: {sent:?}"));
    assert_eq!(next.1["execution"]["jobId"], ids[1].as_str());
    let head = courier.get_execution(&ids[0], at(71)).await.unwrap();
    assert_eq!(head.status, ExecutionStatus::TimedOut);
}

/// What `device-events` publishes for `thing`'s lifecycle event.
async fn lifecycle(
    courier: &Courier<DynamoStore>,
    kind: &str,
    thing: &str,
    at_ms: i64,
    now: Timestamp,
) -> Vec<(String, Value)> {
    let publisher = RecordingPublisher::default();
    let payload = json!({"clientId": thing, "timestamp": at_ms, "eventType": kind,
                         "sessionIdentifier": "s-1", "principalIdentifier": "cert", "versionNumber": 1});
    let event = iot_rule_event(&format!("$aws/events/presence/{kind}/{thing}"), &payload);
    send_to_device_events(courier, &publisher, &event, &format!("{kind}-{at_ms}"), now)
        .await
        .expect("handled");
    publisher.take()
}

fn ms(secs: i64) -> i64 {
    (NOW + secs) * 1000
}

#[tokio::test]
async fn a_reconnecting_device_is_told_its_pending_work_at_once() {
    let courier = courier().await;
    let ids = queued(&courier, "dev-h2", 2).await;
    // GIVEN the device was told its next execution once (and missed it: offline)
    let first = courier.get_execution(&ids[0], at(5)).await.unwrap();
    courier
        .announce_change(&root(), &RecordingPublisher::default(), &first, at(5))
        .await
        .unwrap();
    // WHEN it connects
    let sent = lifecycle(&courier, "connected", "dev-h2", ms(60), at(60)).await;
    // THEN it is told its list and its next execution right away, again
    let topics: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "courier/things/dev-h2/jobs/notify",
            "courier/things/dev-h2/jobs/notify-next"
        ]
    );
    assert_eq!(sent[1].1["execution"]["jobId"], ids[0].as_str());
    assert_eq!(sent[0].1["jobs"]["QUEUED"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn without_list_notifications_a_reconnecting_device_is_told_its_next_alone() {
    let courier = courier().await.with_optional_messages(OptionalMessages {
        list_notifications: false,
        ..OptionalMessages::default()
    });
    let ids = queued(&courier, "dev-h5", 2).await;
    let sent = lifecycle(&courier, "connected", "dev-h5", ms(60), at(60)).await;
    let topics: Vec<&str> = sent.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, ["courier/things/dev-h5/jobs/notify-next"]);
    assert_eq!(sent[0].1["execution"]["jobId"], ids[0].as_str());
}

#[tokio::test]
async fn a_reconnecting_commands_device_gets_its_unanswered_requests_again() {
    let courier = courier().await;
    courier
        .create_command(
            &json!({"commandId": "honk", "protocol": "commands"}).into(),
            at(0),
        )
        .await
        .unwrap();
    let (e, _) = courier
        .start_execution("honk", &json!({"target": "car-h3"}).into(), "alice", at(1))
        .await
        .unwrap();
    // GIVEN it was published (SENT) while the car was away
    courier
        .dispatch(&root(), &RecordingPublisher::default(), &e, at(2))
        .await
        .unwrap();
    // WHEN the car connects THEN the request is published to it again
    let sent = lifecycle(&courier, "connected", "car-h3", ms(30), at(30)).await;
    let request = format!(
        "courier/commands/things/car-h3/executions/{}/request/json",
        e.execution_id
    );
    assert_eq!(
        sent.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        [request]
    );
}

#[tokio::test]
async fn presence_is_shown_with_the_queue_and_an_older_event_does_not_replace_a_newer_one() {
    let courier = courier().await;
    queued(&courier, "dev-h4", 1).await;
    lifecycle(&courier, "connected", "dev-h4", ms(10), at(10)).await;
    let payload = json!({"clientId": "dev-h4", "timestamp": ms(20), "eventType": "disconnected",
                         "disconnectReason": "MQTT_KEEP_ALIVE_TIMEOUT"});
    let publisher = RecordingPublisher::default();
    let event = iot_rule_event("$aws/events/presence/disconnected/dev-h4", &payload);
    send_to_device_events(&courier, &publisher, &event, "d-20", at(20))
        .await
        .unwrap();
    // WHEN the connect event is delivered again, late
    let sent = lifecycle(&courier, "connected", "dev-h4", ms(10), at(25)).await;
    assert!(sent.is_empty(), "a stale event tells nothing: {sent:?}");
    // THEN the queue shows the device disconnected since the newer event
    let view = courier.thing_queue("dev-h4", at(30)).await.unwrap();
    let presence = view.presence.expect("presence recorded");
    assert!(!presence.connected);
    assert_eq!(presence.since, at(20));
    assert_eq!(
        presence.disconnect_reason.as_deref(),
        Some("MQTT_KEEP_ALIVE_TIMEOUT")
    );
}

#[tokio::test]
async fn a_lifecycle_event_of_a_client_that_is_not_a_thing_is_ignored() {
    let courier = courier().await;
    let sent = lifecycle(&courier, "connected", "not a thing!", ms(1), at(1)).await;
    assert!(sent.is_empty());
}
