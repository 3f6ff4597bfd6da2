//! DIRECT DELIVERY: the API delivers an execution it creates itself instead
//! of waiting for the table's stream, and the safety nets behind it: a
//! failed publish is delivered by the sweeper within its bound, a crash
//! between the write and the publish by the dispatcher from the stream, a
//! replayed stream record sends nothing new, and a device that claimed the
//! execution first is not told stale news. Over DynamoDB Local, with a
//! recording publisher; time is passed in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::json::Json;
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, ThingName, Timestamp};
use courier_functions::ops::delivery::PUBLISH_RETRY_SECONDS;
use courier_functions::ops::Courier;
use courier_functions::platform::publisher::{Message, PublishError, Publisher};
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::store::Store;
use courier_local::stream::replay as read_stream;
use courier_tests::{
    api_settings_delivering, fresh_courier, http_event, send_to_api_publishing, send_to_dispatcher,
    thing_groups, RecordingPublisher,
};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).unwrap()
}

async fn courier() -> Courier<DynamoStore> {
    let courier = fresh_courier().await;
    courier
        .create_command(
            &json!({"commandId": "unlock", "executionTimeoutSeconds": 600}).into(),
            at(0),
        )
        .await
        .unwrap();
    courier
}

/// `POST /commands/unlock/executions` through the API handler as deployed
/// (direct delivery on), publishing through `publisher`.
async fn start(
    courier: &Courier<DynamoStore>,
    publisher: &RecordingPublisher,
    body: Value,
    now: Timestamp,
) -> (u16, Value) {
    let event = http_event("POST", "/commands/unlock/executions", Some(&body));
    let reply = send_to_api_publishing(
        courier,
        &thing_groups().await,
        publisher,
        &api_settings_delivering(),
        &event,
        now,
    )
    .await;
    (reply.status, reply.body)
}

fn topics(sent: &[(String, Value)]) -> Vec<&str> {
    sent.iter().map(|(t, _)| t.as_str()).collect()
}

/// The table's stream records about `id`, as Lambda delivers them.
async fn records_of(courier: &Courier<DynamoStore>, id: &str) -> Vec<Value> {
    let pk = courier
        .store()
        .execution_pk(&courier_core::ExecutionId::parse(id).unwrap());
    read_stream(courier.store().table())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r["dynamodb"]["Keys"]["pk"]["S"] == json!(pk))
        .collect()
}

#[tokio::test]
async fn the_api_delivers_what_it_creates_before_it_answers() {
    let courier = courier().await;
    let publisher = RecordingPublisher::default();
    let (status, body) = start(&courier, &publisher, json!({"target": "door-1"}), at(1)).await;
    // THEN the answer is the record after the claim: SENT, version 2
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["version"].as_u64()),
        (Some("SENT"), Some(2))
    );
    assert_eq!(body["sentAt"], json!(NOW + 1));
    // and the device was told in the same request
    let sent = publisher.take();
    assert_eq!(
        topics(&sent),
        [
            "courier/things/door-1/jobs/notify",
            "courier/things/door-1/jobs/notify-next"
        ]
    );
    assert_eq!(sent[1].1["execution"]["jobId"], body["executionId"]);
    // what it was told is the record after the claim (read while the claim
    // was written, then replaced by the claim's own result)
    assert_eq!(sent[1].1["execution"]["versionNumber"], json!(2));
    assert_eq!(sent[0].1["jobs"]["QUEUED"][0]["versionNumber"], json!(2));
}

#[tokio::test]
async fn a_held_execution_is_not_delivered_by_the_api() {
    let courier = courier().await;
    let publisher = RecordingPublisher::default();
    let (status, body) = start(
        &courier,
        &publisher,
        json!({"target": "door-2", "notBefore": NOW + 3600}),
        at(1),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (201, Some("QUEUED")));
    assert!(publisher.take().is_empty());
}

#[tokio::test]
async fn a_failed_publish_is_delivered_by_the_sweeper_within_its_bound() {
    let courier = courier().await;
    let publisher = RecordingPublisher::default();
    publisher.failing.store(true, Ordering::Relaxed);
    // WHEN the broker is unreachable during the request
    let (status, body) = start(&courier, &publisher, json!({"target": "door-3"}), at(1)).await;
    // THEN the execution is still created (201), back in the queue for a retry
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "QUEUED");
    assert_eq!(body["statusReason"]["reasonCode"], "PUBLISH_FAILED");
    assert_eq!(body["notBefore"], json!(NOW + 1 + PUBLISH_RETRY_SECONDS));
    // WHEN the broker is back and the sweeper runs at the retry time
    publisher.failing.store(false, Ordering::Relaxed);
    let report = courier
        .sweep(&root(), &publisher, at(1 + PUBLISH_RETRY_SECONDS), 100)
        .await
        .unwrap();
    assert_eq!(report.dispatched, 1, "{report:?}");
    assert!(topics(&publisher.take()).contains(&"courier/things/door-3/jobs/notify-next"));
    let id = body["executionId"].as_str().unwrap();
    let e = courier.get_execution(id, at(32)).await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Sent);
}

#[tokio::test]
async fn a_crash_between_the_write_and_the_publish_is_delivered_from_the_stream() {
    let courier = courier().await;
    // GIVEN an execution written, and the API gone before it delivered
    let (e, _) = courier
        .start_execution(
            "unlock",
            &json!({"target": "door-4"}).into(),
            "alice",
            at(1),
        )
        .await
        .unwrap();
    // WHEN the dispatcher gets the stream's INSERT record
    let publisher = RecordingPublisher::default();
    let out = send_to_dispatcher(
        &courier,
        &publisher,
        &thing_groups().await,
        records_of(&courier, e.execution_id.as_str()).await,
        at(2),
    )
    .await;
    // THEN it delivers
    assert!(
        topics(&publisher.take()).contains(&"courier/things/door-4/jobs/notify-next"),
        "{out}"
    );
    let e = courier
        .get_execution(e.execution_id.as_str(), at(2))
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::Sent);
}

#[tokio::test]
async fn the_stream_record_of_a_delivered_execution_sends_nothing() {
    let courier = courier().await;
    let publisher = RecordingPublisher::default();
    let (_, body) = start(&courier, &publisher, json!({"target": "door-5"}), at(1)).await;
    publisher.take();
    let id = body["executionId"].as_str().unwrap();
    // WHEN the dispatcher gets the INSERT (and replays of it) after the API delivered
    let inserts: Vec<Value> = records_of(&courier, id)
        .await
        .into_iter()
        .filter(|r| r["eventName"] == "INSERT")
        .collect();
    for _ in 0..2 {
        send_to_dispatcher(
            &courier,
            &publisher,
            &thing_groups().await,
            inserts.clone(),
            at(2),
        )
        .await;
    }
    // THEN nothing is claimed or published again
    assert_eq!(publisher.take(), Vec::<(String, Value)>::new());
    let e = courier.get_execution(id, at(3)).await.unwrap();
    assert_eq!((e.status, e.version), (ExecutionStatus::Sent, 2));
}

#[tokio::test]
async fn a_device_that_claimed_it_first_is_not_told_stale_news() {
    let courier = courier().await;
    let (created, _) = courier
        .start_execution(
            "unlock",
            &json!({"target": "door-6"}).into(),
            "alice",
            at(1),
        )
        .await
        .unwrap();
    // GIVEN the device took it (start-next) between the write and the API's delivery
    courier
        .start_next(
            &ThingName::parse("door-6").unwrap(),
            &json!({}).into(),
            "r",
            at(1),
        )
        .await
        .unwrap()
        .unwrap();
    // WHEN the API delivers the record it created
    let publisher = RecordingPublisher::default();
    let after = courier
        .deliver_now(&root(), &publisher, created.clone(), at(2))
        .await;
    // THEN it claims nothing and publishes nothing
    assert!(publisher.take().is_empty());
    assert_eq!(after, created, "the answer is the record as created");
    let e = courier
        .get_execution(created.execution_id.as_str(), at(2))
        .await
        .unwrap();
    assert_eq!(e.status, ExecutionStatus::InProgress);
}

/// Another publisher (the device path, say) that records, while the API's
/// notify-next is on its way, that it told the device the same next
/// execution.
struct TellingTheSameNews {
    store: DynamoStore,
    inner: RecordingPublisher,
}

impl Publisher for TellingTheSameNews {
    async fn publish(&self, message: &Message) -> Result<(), PublishError> {
        let payload = message.payload.json();
        if message.topic.ends_with("/notify-next") {
            let thing = ThingName::parse("door-7").unwrap();
            let told = self.store.told_next(&thing).await.unwrap();
            let execution = payload.get("execution").unwrap();
            let same = format!(
                "{}#{}",
                execution.get("jobId").and_then(Json::as_str).unwrap(),
                serde_json::to_value(execution.get("executionNumber").unwrap()).unwrap()
            );
            assert!(self
                .store
                .record_told_next(&thing, &told, Some(&same))
                .await
                .unwrap());
        }
        self.inner.publish(message).await
    }
}

#[tokio::test]
async fn two_publishers_telling_the_same_next_execution_keep_the_record_of_it() {
    let courier = courier().await;
    let (created, _) = courier
        .start_execution(
            "unlock",
            &json!({"target": "door-7"}).into(),
            "alice",
            at(1),
        )
        .await
        .unwrap();
    let publisher = TellingTheSameNews {
        store: courier.store().clone(),
        inner: RecordingPublisher::default(),
    };
    // WHEN the API delivers it while another publisher tells the device the same
    courier
        .deliver_now(&root(), &publisher, created.clone(), at(2))
        .await;
    assert_eq!(publisher.inner.take().len(), 2, "notify and notify-next");
    // THEN what the device was told stays recorded (forgetting it would tell
    // the device its next change twice, and cost a write)
    let told = courier
        .store()
        .told_next(&ThingName::parse("door-7").unwrap())
        .await
        .unwrap();
    assert_eq!(
        told.next.as_deref(),
        Some(format!("{}#1", created.execution_id).as_str())
    );
}
