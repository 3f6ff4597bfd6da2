//! The device side of the service (AWS IoT Jobs semantics) over DynamoDB
//! Local: GetPendingJobExecutions and StartNextPendingJobExecution's atomic
//! claim.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::{protocol, ExecutionStatus, ThingName, Timestamp};
use courier_functions::ops::device_updates::Delivery;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_tests::{fresh_courier, RecordingPublisher};
use serde_json::json;
use std::sync::Arc;

fn thing(name: &str) -> ThingName {
    ThingName::parse(name).unwrap()
}

const NOW: i64 = 1_800_000_000;

async fn courier_with_queued(thing: &str, count: i64) -> (Courier<DynamoStore>, Vec<String>) {
    let courier = fresh_courier().await;
    courier
        .create_command(
            &json!({"commandId": "reboot"}).into(),
            Timestamp::from_secs(NOW),
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..count {
        let (e, _) = courier
            .start_execution(
                "reboot",
                &json!({"target": thing}).into(),
                "tester",
                Timestamp::from_secs(NOW + i),
            )
            .await
            .unwrap();
        ids.push(e.execution_id.to_string());
    }
    // The device has been told its queue, as the dispatcher would have told
    // it when these were queued (this test drives no stream).
    let last = courier
        .get_execution(
            ids.last().expect("one at least"),
            Timestamp::from_secs(NOW + count),
        )
        .await
        .unwrap();
    courier
        .announce_change(
            &root(),
            &RecordingPublisher::default(),
            &last,
            Timestamp::from_secs(NOW + count),
        )
        .await
        .unwrap();
    (courier, ids)
}

#[tokio::test]
async fn start_next_claims_the_oldest_queued_then_keeps_returning_it() {
    // GIVEN three queued executions
    let (courier, ids) = courier_with_queued("dev-1", 3).await;
    let now = Timestamp::from_secs(NOW + 10);
    // WHEN the device asks for its next one, with progress details
    let started = courier
        .start_next(
            &thing("dev-1"),
            &json!({"statusDetails": {"step": "boot"}, "stepTimeoutInMinutes": 5}).into(),
            "req-1",
            now,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(started.claimed);
    let started = started.execution;
    // THEN the oldest is IN_PROGRESS, version 2, with the details
    assert_eq!(started.execution_id.as_str(), ids[0]);
    assert_eq!(
        (started.status, started.version),
        (ExecutionStatus::InProgress, 2)
    );
    assert_eq!(started.status_details["step"], "boot");
    // and asking again returns the same one, unchanged
    let again = courier
        .start_next(&thing("dev-1"), &json!({}).into(), "req-2", now)
        .await
        .unwrap()
        .unwrap();
    assert!(!again.claimed);
    let again = again.execution;
    assert_eq!(
        (again.execution_id.as_str(), again.version),
        (ids[0].as_str(), 2)
    );
    // and the pending list shows it in progress, the others queued
    let pending = courier.pending(&thing("dev-1"), now).await.unwrap();
    let reply = protocol::pending_reply(&pending, None, now);
    assert_eq!(reply["inProgressJobs"][0]["jobId"], ids[0].as_str());
    let queued: Vec<_> = reply["queuedJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(queued, [ids[1].as_str(), ids[2].as_str()]);
}

#[tokio::test]
async fn nothing_pending_is_none_and_other_devices_are_untouched() {
    let (courier, _) = courier_with_queued("dev-1", 1).await;
    let now = Timestamp::from_secs(NOW + 10);
    assert_eq!(
        courier
            .start_next(&thing("dev-2"), &json!(null).into(), "r", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        courier.pending(&thing("dev-1"), now).await.unwrap()[0].status,
        ExecutionStatus::Queued
    );
    // A name that is not a thing name never reaches start-next: the
    // device's topic is parsed into a ThingName first.
    assert!(ThingName::parse("bad thing").is_err());
}

#[tokio::test]
async fn concurrent_start_next_requests_claim_one_execution_once() {
    // GIVEN two queued executions and six simultaneous start-next requests
    let (courier, ids) = courier_with_queued("dev-1", 2).await;
    let courier = Arc::new(courier);
    let now = Timestamp::from_secs(NOW + 10);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let courier = Arc::clone(&courier);
            tokio::spawn(async move {
                courier
                    .start_next(&thing("dev-1"), &json!({}).into(), &format!("req-{i}"), now)
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.push(task.await.unwrap());
    }
    // THEN every request got the oldest, which moved to IN_PROGRESS exactly once
    assert!(claimed
        .iter()
        .all(|n| n.execution.execution_id.as_str() == ids[0]
            && n.execution.status == ExecutionStatus::InProgress));
    assert_eq!(claimed.iter().filter(|n| n.claimed).count(), 1);
    let first = courier.get_execution(&ids[0], now).await.unwrap();
    assert_eq!(first.version, 2);
    let second = courier.get_execution(&ids[1], now).await.unwrap();
    assert_eq!(
        (second.status, second.version),
        (ExecutionStatus::Queued, 1)
    );
}

#[tokio::test]
async fn a_cancelled_execution_is_skipped_by_start_next() {
    let (courier, ids) = courier_with_queued("dev-1", 2).await;
    let now = Timestamp::from_secs(NOW + 10);
    courier
        .cancel_execution(&ids[0], &json!(null).into(), "ops", now, "op")
        .await
        .unwrap();
    let next = courier
        .start_next(&thing("dev-1"), &json!(null).into(), "r", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.execution.execution_id.as_str(), ids[1]);
}

// ---- the request topics (AWS IoT Jobs device API) ---------------------------

use courier_core::protocol::TopicRoot;
use courier_functions::platform::publisher::Message as Outgoing;

fn root() -> TopicRoot {
    TopicRoot::parse("$aws/things/{thingName}/jobs").unwrap()
}

async fn ask(
    courier: &Courier<DynamoStore>,
    topic: &str,
    payload: serde_json::Value,
    delivery: &str,
) -> Vec<Outgoing> {
    let now = Timestamp::from_secs(NOW + 20);
    let answer = courier
        .device_request(
            &root(),
            topic,
            &courier_core::json::Json::from(payload.clone()),
            Delivery::new(delivery),
            now,
        )
        .await
        .expect("storage is up");
    // As device-events publishes them: the replies, then the notifications.
    let mut out = answer.replies;
    if let Some(thing) = &answer.notify {
        out.extend(
            courier
                .device_notifications(&root(), thing, now)
                .await
                .expect("storage is up"),
        );
    }
    out
}

fn topics(out: &[Outgoing]) -> Vec<&str> {
    out.iter().map(|o| o.topic.as_str()).collect()
}

#[tokio::test]
async fn get_and_start_next_answer_on_accepted_and_notify_on_change() {
    let (courier, ids) = courier_with_queued("dev-1", 2).await;
    let out = ask(
        &courier,
        "$aws/things/dev-1/jobs/get",
        json!({"clientToken": "c1"}),
        "d1",
    )
    .await;
    assert_eq!(topics(&out), ["$aws/things/dev-1/jobs/get/accepted"]);
    assert_eq!(out[0].payload.json()["clientToken"], "c1");
    assert_eq!(
        out[0].payload.json()["queuedJobs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(out[0].payload.json()["inProgressJobs"], json!([]));

    let out = ask(
        &courier,
        "$aws/things/dev-1/jobs/start-next",
        json!({"clientToken": "c2", "statusDetails": {"step": "1"}}),
        "d2",
    )
    .await;
    assert_eq!(
        topics(&out),
        [
            "$aws/things/dev-1/jobs/start-next/accepted",
            "$aws/things/dev-1/jobs/notify"
        ]
    );
    let execution = &out[0].payload.json()["execution"];
    assert_eq!(
        (execution["jobId"].as_str(), execution["status"].as_str()),
        (Some(ids[0].as_str()), Some("IN_PROGRESS"))
    );
    assert_eq!(
        execution["jobDocument"],
        json!({"commandId": "reboot", "parameters": {}})
    );
    assert_eq!(
        out[1].payload.json()["jobs"]["IN_PROGRESS"][0]["jobId"],
        ids[0].as_str()
    );

    // asking again returns the same execution and changes nothing
    let out = ask(
        &courier,
        "$aws/things/dev-1/jobs/start-next",
        json!({}),
        "d3",
    )
    .await;
    assert_eq!(topics(&out), ["$aws/things/dev-1/jobs/start-next/accepted"]);
    assert_eq!(out[0].payload.json()["execution"]["versionNumber"], 2);
}

#[tokio::test]
async fn describe_by_next_or_id_only_for_the_devices_own_executions() {
    let (courier, ids) = courier_with_queued("dev-1", 1).await;
    let out = ask(
        &courier,
        "$aws/things/dev-1/jobs/$next/get",
        json!({"includeJobDocument": false}),
        "d",
    )
    .await;
    // The reply alone: a notify-next here would make a device that asks
    // $next/get on every notify-next loop.
    assert_eq!(topics(&out), ["$aws/things/dev-1/jobs/$next/get/accepted"]);
    assert_eq!(out[0].payload.json()["execution"]["jobId"], ids[0].as_str());
    assert!(out[0].payload.json()["execution"]
        .get("jobDocument")
        .is_none());

    let mine = ask(
        &courier,
        &format!("$aws/things/dev-1/jobs/{}/get", ids[0]),
        json!({"executionNumber": 1}),
        "d",
    )
    .await;
    assert_eq!(mine[0].payload.json()["execution"]["thingName"], "dev-1");
    let theirs = ask(
        &courier,
        &format!("$aws/things/dev-2/jobs/{}/get", ids[0]),
        json!({}),
        "d",
    )
    .await;
    assert_eq!(
        theirs[0].topic,
        format!("$aws/things/dev-2/jobs/{}/get/rejected", ids[0])
    );
    assert_eq!(theirs[0].payload.json()["code"], "ResourceNotFound");
    let wrong_attempt = ask(
        &courier,
        &format!("$aws/things/dev-1/jobs/{}/get", ids[0]),
        json!({"executionNumber": 2}),
        "d",
    )
    .await;
    assert_eq!(wrong_attempt[0].payload.json()["code"], "ResourceNotFound");
}

/// As AWS answers it: `accepted` with the client token and no `execution`
/// (the AWS IoT OTA agent reads "no active job" from exactly this reply).
#[tokio::test]
async fn describing_next_with_nothing_pending_is_accepted_without_an_execution() {
    let (courier, _) = courier_with_queued("dev-1", 1).await;
    let nothing = ask(
        &courier,
        "$aws/things/dev-9/jobs/$next/get",
        json!({"clientToken": "ota-1"}),
        "d",
    )
    .await;
    assert_eq!(
        topics(&nothing),
        ["$aws/things/dev-9/jobs/$next/get/accepted"]
    );
    assert_eq!(nothing[0].payload.json()["clientToken"], "ota-1");
    assert!(nothing[0].payload.json()["timestamp"].as_number().is_some());
    assert!(
        nothing[0].payload.json().get("execution").is_none(),
        "{:?}",
        nothing[0].payload
    );
}

/// The AWS IoT Device Client reports a job's output in `statusDetails`
/// (`stdout`, `stderr`: lines and all, at most 1,024 characters); other
/// control characters are still refused.
#[tokio::test]
async fn the_device_clients_job_output_with_line_breaks_is_accepted() {
    let (courier, ids) = courier_with_queued("dev-1", 1).await;
    let topic = format!("$aws/things/dev-1/jobs/{}/update", ids[0]);
    let body = json!({"status": "SUCCEEDED", "clientToken": "Xk3v9QaB2c",
        "statusDetails": {"reason": "exit 0", "stdout": "line 1\n\tline 2\r\n"}});
    let done = ask(&courier, &topic, body, "o1").await;
    assert_eq!(done[0].topic, format!("{topic}/accepted"), "{done:?}");
    let stored = courier
        .get_execution(&ids[0], Timestamp::from_secs(NOW + 21))
        .await
        .unwrap();
    assert_eq!(stored.status_details["stdout"], "line 1\n\tline 2\r\n");

    let (courier, ids) = courier_with_queued("dev-2", 1).await;
    let topic = format!("$aws/things/dev-2/jobs/{}/update", ids[0]);
    let bell = json!({"status": "IN_PROGRESS", "statusDetails": {"stdout": "ding\u{7}"}});
    let refused = ask(&courier, &topic, bell, "o2").await;
    assert_eq!(
        (
            refused[0].topic.as_str(),
            refused[0].payload.json()["code"].as_str()
        ),
        (format!("{topic}/rejected").as_str(), Some("InvalidRequest"))
    );
}

#[tokio::test]
async fn the_embedded_c_jobs_librarys_update_with_a_string_expected_version_is_applied() {
    let (courier, ids) = courier_with_queued("dev-1", 1).await;
    let topic = format!("$aws/things/dev-1/jobs/{}/update", ids[0]);
    // Byte for byte what Jobs_UpdateMsg (aws/Jobs-for-AWS-IoT-embedded-sdk,
    // FreeRTOS's Jobs library) writes: expectedVersion in quotes.
    let body =
        r#"{"status":"IN_PROGRESS","expectedVersion":"1","statusDetails":{"self_test":"ready"}}"#;
    let started = ask(&courier, &topic, serde_json::from_str(body).unwrap(), "c1").await;
    assert_eq!(started[0].topic, format!("{topic}/accepted"), "{started:?}");
    // and a stale one in quotes is a VersionMismatch, as a number is
    let stale = r#"{"status":"SUCCEEDED","expectedVersion":"1"}"#;
    let stale = ask(&courier, &topic, serde_json::from_str(stale).unwrap(), "c2").await;
    assert_eq!(
        (
            stale[0].topic.as_str(),
            stale[0].payload.json()["code"].as_str()
        ),
        (
            format!("{topic}/rejected").as_str(),
            Some("VersionMismatch")
        )
    );
    let done = r#"{"status":"SUCCEEDED","expectedVersion":"2"}"#;
    let done = ask(&courier, &topic, serde_json::from_str(done).unwrap(), "c3").await;
    assert_eq!(done[0].topic, format!("{topic}/accepted"), "{done:?}");
}

#[tokio::test]
async fn updates_reply_with_aws_codes_and_state_and_notify_when_the_next_changes() {
    let (courier, ids) = courier_with_queued("dev-1", 2).await;
    let update = |id: &str| format!("$aws/things/dev-1/jobs/{id}/update");
    // the device starts the oldest: accepted, and notify (the list changed)
    let out = ask(
        &courier,
        &update(&ids[0]),
        json!({"status": "IN_PROGRESS", "expectedVersion": 1, "includeJobExecutionState": true}),
        "u1",
    )
    .await;
    assert_eq!(
        topics(&out),
        [
            format!("{}/accepted", update(&ids[0])).as_str(),
            "$aws/things/dev-1/jobs/notify"
        ]
    );
    assert_eq!(
        out[0].payload.json()["executionState"],
        json!({"status": "IN_PROGRESS", "statusDetails": {}, "versionNumber": 2})
    );
    // a stale version is rejected with the current state
    let stale = ask(
        &courier,
        &update(&ids[0]),
        json!({"status": "SUCCEEDED", "expectedVersion": 1, "clientToken": "c9"}),
        "u2",
    )
    .await;
    assert_eq!(stale[0].topic, format!("{}/rejected", update(&ids[0])));
    assert_eq!(
        (
            stale[0].payload.json()["code"].as_str(),
            stale[0].payload.json()["clientToken"].as_str()
        ),
        (Some("VersionMismatch"), Some("c9"))
    );
    assert_eq!(
        stale[0].payload.json()["executionState"]["versionNumber"],
        2
    );
    // a progress report publishes nothing else; a redelivery is accepted again
    let progress = ask(
        &courier,
        &update(&ids[0]),
        json!({"status": "IN_PROGRESS", "statusDetails": {"pct": "50"}}),
        "u3",
    )
    .await;
    assert_eq!(progress.len(), 1);
    let redelivered = ask(
        &courier,
        &update(&ids[0]),
        json!({"status": "IN_PROGRESS", "statusDetails": {"pct": "50"}}),
        "u3",
    )
    .await;
    assert_eq!(
        (
            redelivered.len(),
            redelivered[0].topic.ends_with("/accepted")
        ),
        (1, true)
    );
    // success ends it: notify and notify-next with the other execution
    let done = ask(
        &courier,
        &update(&ids[0]),
        json!({"status": "SUCCEEDED", "includeJobDocument": true}),
        "u4",
    )
    .await;
    assert_eq!(
        topics(&done)[1..],
        [
            "$aws/things/dev-1/jobs/notify",
            "$aws/things/dev-1/jobs/notify-next"
        ]
    );
    assert_eq!(done[0].payload.json()["jobDocument"]["commandId"], "reboot");
    assert_eq!(
        done[2].payload.json()["execution"]["jobId"],
        ids[1].as_str()
    );
    // after the end: InvalidStateTransition with the state; a bad status: InvalidRequest
    let late = ask(
        &courier,
        &update(&ids[0]),
        json!({"status": "FAILED"}),
        "u5",
    )
    .await;
    assert_eq!(late[0].payload.json()["code"], "InvalidStateTransition");
    assert_eq!(
        late[0].payload.json()["executionState"]["status"],
        "SUCCEEDED"
    );
    let bad = ask(&courier, &update(&ids[1]), json!({"status": "DONE"}), "u6").await;
    assert_eq!(bad[0].payload.json()["code"], "InvalidRequest");
    let not_json = ask(&courier, &update(&ids[1]), json!("text"), "u7").await;
    assert_eq!(not_json[0].payload.json()["code"], "InvalidJson");
    let cancel = ask(
        &courier,
        &update(&ids[1]),
        json!({"status": "CANCELED"}),
        "u8",
    )
    .await;
    assert_eq!(cancel[0].payload.json()["code"], "InvalidStateTransition");
}

#[tokio::test]
async fn unknown_topics_are_rejected_as_invalid_topic_or_ignored() {
    let (courier, _) = courier_with_queued("dev-1", 1).await;
    let out = ask(
        &courier,
        "$aws/things/dev-1/jobs/frobnicate",
        json!({"clientToken": "t"}),
        "d",
    )
    .await;
    assert_eq!(topics(&out), ["$aws/things/dev-1/jobs/frobnicate/rejected"]);
    assert_eq!(
        (
            out[0].payload.json()["code"].as_str(),
            out[0].payload.json()["clientToken"].as_str()
        ),
        (Some("InvalidTopic"), Some("t"))
    );
    assert!(ask(&courier, "elsewhere/dev-1/get", json!({}), "d")
        .await
        .is_empty());
}

/// notify-next is published when the device's next execution changes, and
/// only then (AWS: "not sent when the next job's execution details change"),
/// whichever function publishes; a publish that fails is told again.
#[tokio::test]
async fn notify_next_is_published_only_when_the_next_execution_changes() {
    let courier = fresh_courier().await;
    let at = |s: i64| Timestamp::from_secs(NOW + s);
    courier
        .create_command(&json!({"commandId": "reboot"}).into(), at(0))
        .await
        .unwrap();
    let publisher = RecordingPublisher::default();
    let start = |offset: i64| {
        let courier = &courier;
        async move {
            courier
                .start_execution(
                    "reboot",
                    &json!({"target": "dev-7"}).into(),
                    "tester",
                    at(offset),
                )
                .await
                .unwrap()
                .0
        }
    };
    let sent_topics = |publisher: &RecordingPublisher| -> Vec<String> {
        publisher
            .take()
            .into_iter()
            .map(|(topic, _)| topic)
            .collect()
    };
    // the first execution is news
    let first = start(0).await;
    courier
        .dispatch(&root(), &publisher, &first, at(1))
        .await
        .unwrap();
    assert_eq!(
        sent_topics(&publisher),
        [
            "$aws/things/dev-7/jobs/notify",
            "$aws/things/dev-7/jobs/notify-next"
        ]
    );
    // a second one queued behind it changes the list, not the next
    let second = start(2).await;
    courier
        .dispatch(&root(), &publisher, &second, at(3))
        .await
        .unwrap();
    assert_eq!(sent_topics(&publisher), ["$aws/things/dev-7/jobs/notify"]);
    // the device finishes the first: the second is next
    let done = ask(
        &courier,
        &format!("$aws/things/dev-7/jobs/{}/update", first.execution_id),
        json!({"status": "SUCCEEDED"}),
        "u1",
    )
    .await;
    assert_eq!(
        topics(&done)[1..],
        [
            "$aws/things/dev-7/jobs/notify",
            "$aws/things/dev-7/jobs/notify-next"
        ]
    );
    assert_eq!(
        done[2].payload.json()["execution"]["jobId"],
        second.execution_id.as_str()
    );
    // a third queued while publishing fails: nothing reaches the device, and
    // the retry tells it everything again, notify-next included
    let third = start(30).await;
    publisher
        .failing
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let failed = courier
        .announce_change(&root(), &publisher, &third, at(31))
        .await;
    assert!(failed.is_err());
    publisher
        .failing
        .store(false, std::sync::atomic::Ordering::Relaxed);
    courier
        .announce_change(&root(), &publisher, &third, at(32))
        .await
        .unwrap();
    assert_eq!(
        sent_topics(&publisher),
        [
            "$aws/things/dev-7/jobs/notify",
            "$aws/things/dev-7/jobs/notify-next"
        ]
    );
    // and once told, not again
    courier
        .announce_change(&root(), &publisher, &third, at(33))
        .await
        .unwrap();
    assert_eq!(sent_topics(&publisher), ["$aws/things/dev-7/jobs/notify"]);
}

/// DescribeJobExecution as AWS documents it: a terminal execution answers
/// TerminalStateReached, held work (notBefore) does not exist for the
/// device, and the JobExecution carries approximateSecondsBeforeTimedOut.
#[tokio::test]
async fn describe_follows_aws_for_terminal_held_and_timed_work() {
    let (courier, ids) = courier_with_queued("dev-1", 1).await;
    let describe = |id: &str| format!("$aws/things/dev-1/jobs/{id}/get");
    // queued, created at NOW with the default 600 s timeout; asked at NOW + 20
    let queued = ask(&courier, &describe(&ids[0]), json!({}), "d1").await;
    assert_eq!(
        queued[0].payload.json()["execution"]["approximateSecondsBeforeTimedOut"],
        json!(580),
        "{:?}",
        queued[0].payload
    );
    let started = ask(
        &courier,
        "$aws/things/dev-1/jobs/start-next",
        json!({"stepTimeoutInMinutes": 1}),
        "d2",
    )
    .await;
    assert_eq!(
        started[0].payload.json()["execution"]["approximateSecondsBeforeTimedOut"],
        json!(60),
        "the step timer is the nearer deadline: {:?}",
        started[0].payload
    );
    let update = format!("$aws/things/dev-1/jobs/{}/update", ids[0]);
    ask(&courier, &update, json!({"status": "SUCCEEDED"}), "d3").await;
    let ended = ask(
        &courier,
        &describe(&ids[0]),
        json!({"clientToken": "t"}),
        "d4",
    )
    .await;
    assert_eq!(ended[0].topic, format!("{}/rejected", describe(&ids[0])));
    assert_eq!(
        (
            ended[0].payload.json()["code"].as_str(),
            ended[0].payload.json()["clientToken"].as_str()
        ),
        (Some("TerminalStateReached"), Some("t"))
    );
    assert!(ended[0].payload.json().get("executionState").is_none());

    // held until notBefore: not found for the device, until it is due
    let (held, _) = courier
        .start_execution(
            "reboot",
            &json!({"target": "dev-1", "notBefore": NOW + 600}).into(),
            "tester",
            Timestamp::from_secs(NOW + 10),
        )
        .await
        .unwrap();
    let hidden = ask(
        &courier,
        &describe(held.execution_id.as_str()),
        json!({}),
        "d5",
    )
    .await;
    assert_eq!(hidden[0].payload.json()["code"], "ResourceNotFound");
}
