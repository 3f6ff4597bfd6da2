//! The AWS IoT Jobs device protocol: topics under a configurable root and the
//! exact payload shapes (field names as AWS IoT Device SDK jobs clients read them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::*;
use courier_core::*;

/// A JSON value in core's model, written as `serde_json::json!` writes one.
macro_rules! json {
    ($($t:tt)+) => {
        serde_json::from_value::<courier_core::json::Json>(serde_json::json!($($t)+))
            .expect("valid JSON")
    };
}

fn execution(id: &str, status: ExecutionStatus, created: i64) -> CommandExecution {
    CommandExecution {
        execution_id: ExecutionId::parse(id).unwrap(),
        command_id: CommandId::parse("set-config").unwrap(),
        target: ThingName::parse("dev-1").unwrap(),
        status,
        status_reason: None,
        status_details: StatusDetails::from([("step".to_string(), "2/3".to_string())]),
        parameters: Parameters::from([("rate".to_string(), TypedValue::I(30))]),
        redacted_parameters: Vec::new(),
        result: Parameters::new(),
        execution_timeout_seconds: 600,
        retention_seconds: 3600,
        created_at: Timestamp::from_millis(created * 1000 + 250),
        last_updated_at: Timestamp::from_secs(created + 5),
        started_at: (status == ExecutionStatus::InProgress)
            .then(|| Timestamp::from_secs(created + 4)),
        completed_at: None,
        time_to_live: Timestamp::from_secs(created + 10_000),
        version: 2,
        execution_number: 1,
        client_token: None,
        not_before: None,
        delivery_timeout_seconds: None,
        deliver_by: None,
        complete_by: Timestamp::from_secs(created + 600),
        step_deadline: None,
        retry_policy: Default::default(),
        defer_count: 0,
        last_deferred_at: None,
        dedupe_key: None,
        supersedes: None,
        superseded_by: None,
        created_by: None,
        last_updated_by: None,
        changed_by: Default::default(),
        sent_at: None,
        acknowledged_at: None,
        job_id: None,
        run_id: None,
        run_operation: None,
        late_result: None,
        canceled_by: None,
        protocol: Default::default(),
        document_template: None,
    }
}

#[test]
fn roots_must_have_one_whole_thing_level_and_no_wildcards() {
    assert!(TopicRoot::parse(DEFAULT_ROOT).is_ok());
    assert!(TopicRoot::parse("$aws/things/{thingName}/jobs").is_ok());
    for bad in [
        "courier/jobs",
        "a/{thingName}/{thingName}",
        "a/x{thingName}/jobs",
        "a/+/{thingName}",
        "a//{thingName}",
        "a/{thingName}/#",
    ] {
        let err = TopicRoot::parse(bad).expect_err(bad);
        assert_eq!(err.code(), "InvalidValue");
    }
}

#[test]
fn request_topics_parse_and_replies_go_where_aws_sends_them() {
    let root = TopicRoot::parse(DEFAULT_ROOT).unwrap();
    let thing = ThingName::parse("dev-1").unwrap();
    let cases = [
        (
            "courier/things/dev-1/jobs/get",
            RequestKind::GetPending,
            "courier/things/dev-1/jobs/get/accepted",
        ),
        (
            "courier/things/dev-1/jobs/start-next",
            RequestKind::StartNext,
            "courier/things/dev-1/jobs/start-next/accepted",
        ),
        (
            "courier/things/dev-1/jobs/$next/get",
            RequestKind::Describe(JobRef::Next),
            "courier/things/dev-1/jobs/$next/get/accepted",
        ),
        (
            "courier/things/dev-1/jobs/e-7/get",
            RequestKind::Describe(JobRef::Execution(ExecutionId::parse("e-7").unwrap())),
            "courier/things/dev-1/jobs/e-7/get/accepted",
        ),
        (
            "courier/things/dev-1/jobs/e-7/update",
            RequestKind::Update(ExecutionId::parse("e-7").unwrap()),
            "courier/things/dev-1/jobs/e-7/update/accepted",
        ),
    ];
    for (topic, kind, accepted) in cases {
        let request = root.parse_request(topic).unwrap();
        assert_eq!(
            request,
            DeviceRequest {
                thing: thing.clone(),
                kind
            }
        );
        assert_eq!(root.reply_topic(&request, true), accepted);
        assert_eq!(
            root.reply_topic(&request, false),
            accepted.replace("/accepted", "/rejected")
        );
    }
    assert_eq!(
        root.notify_topic(&thing),
        "courier/things/dev-1/jobs/notify"
    );
    assert_eq!(
        root.notify_next_topic(&thing),
        "courier/things/dev-1/jobs/notify-next"
    );
    assert_eq!(root.filter("+/update"), "courier/things/+/jobs/+/update");
}

#[test]
fn anything_else_is_not_a_request() {
    let root = TopicRoot::parse("$aws/things/{thingName}/jobs").unwrap();
    for topic in [
        "$aws/things/dev-1/jobs",
        "$aws/things/dev-1/jobs/get/accepted",
        "$aws/things/dev-1/jobs/notify",
        "$aws/things/dev-1/shadow/get",
        "other/things/dev-1/jobs/get",
        "$aws/things/bad thing/jobs/get",
        "$aws/things/dev-1/jobs/bad id/update",
    ] {
        assert!(root.parse_request(topic).is_err(), "{topic}");
    }
}

#[test]
fn payloads_use_the_aws_field_names_and_epoch_seconds() {
    let queued = execution("e-1", ExecutionStatus::Sent, 1_800_000_000);
    assert_eq!(
        data(&queued, true),
        json!({
            "jobId": "e-1", "thingName": "dev-1", "status": "QUEUED", "statusDetails": {"step": "2/3"},
            "queuedAt": 1_800_000_000, "lastUpdatedAt": 1_800_000_005, "versionNumber": 2, "executionNumber": 1,
            "jobDocument": {"commandId": "set-config", "parameters": {"rate": {"I": 30}}}
        })
    );
    let running = execution("e-2", ExecutionStatus::InProgress, 1_800_000_100);
    assert_eq!(summary(&running)["startedAt"], 1_800_000_104);
    assert!(data(&running, false).get("jobDocument").is_none());
    assert_eq!(
        state(&running),
        json!({"status": "IN_PROGRESS", "statusDetails": {"step": "2/3"}, "versionNumber": 2})
    );
}

#[test]
fn pending_lists_in_progress_then_queued_oldest_first() {
    let now = Timestamp::from_secs(1_900_000_000);
    let pending = [
        execution("new", ExecutionStatus::Queued, 300),
        execution("run", ExecutionStatus::InProgress, 200),
        execution("old", ExecutionStatus::Sent, 100),
        execution("done", ExecutionStatus::Succeeded, 50),
    ];
    let reply = pending_reply(&pending, Some("tok"), now);
    let ids = |key: &str| {
        reply[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["jobId"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("inProgressJobs"), ["run"]);
    assert_eq!(ids("queuedJobs"), ["old", "new"]);
    assert_eq!(
        (reply["clientToken"].as_str(), reply["timestamp"].as_i64()),
        (Some("tok"), Some(1_900_000_000))
    );
    let notify = jobs_changed(&pending, now);
    assert_eq!(notify["jobs"]["QUEUED"].as_array().unwrap().len(), 2);
    assert_eq!(
        jobs_changed(&[], now),
        json!({"jobs": {}, "timestamp": 1_900_000_000})
    );
    assert_eq!(next_changed(None, now), json!({"timestamp": 1_900_000_000}));
    assert_eq!(
        next_changed(Some(&pending[1]), now)["execution"]["jobId"],
        "run"
    );
}

#[test]
fn rejections_carry_the_current_state_only_where_aws_does() {
    let now = Timestamp::from_secs(5);
    let current = execution("e-1", ExecutionStatus::InProgress, 1);
    let mismatch = rejected(
        RejectedCode::VersionMismatch,
        "stale",
        Some("t1"),
        Some(&current),
        now,
    );
    assert_eq!(mismatch["executionState"]["versionNumber"], 2);
    assert_eq!(
        (mismatch["code"].as_str(), mismatch["clientToken"].as_str()),
        (Some("VersionMismatch"), Some("t1"))
    );
    let terminal = rejected(
        RejectedCode::TerminalStateReached,
        "over",
        None,
        Some(&current),
        now,
    );
    assert!(terminal.get("executionState").is_none() && terminal.get("clientToken").is_none());
    assert_eq!(RejectedCode::RequestThrottled.as_str(), "RequestThrottled");
}

/// A device's queue: started work first, then what it may take now (the
/// first is its next execution), then held work by its notBefore; each with
/// why it waits.
#[test]
fn the_queue_lists_in_delivery_order_with_why_each_waits() {
    use courier_core::queue::{queue, Waiting};
    let now = Timestamp::from_secs(1_000);
    let mut held = execution(
        "00000000-0000-4000-8000-000000000001",
        ExecutionStatus::Queued,
        10,
    );
    held.not_before = Some(Timestamp::from_secs(2_000));
    let pending = vec![
        held,
        execution(
            "00000000-0000-4000-8000-000000000002",
            ExecutionStatus::Queued,
            30,
        ),
        execution(
            "00000000-0000-4000-8000-000000000003",
            ExecutionStatus::Sent,
            20,
        ),
        execution(
            "00000000-0000-4000-8000-000000000004",
            ExecutionStatus::InProgress,
            40,
        ),
        execution(
            "00000000-0000-4000-8000-000000000005",
            ExecutionStatus::Succeeded,
            5,
        ),
    ];
    let order: Vec<(String, Waiting)> = queue(&pending, now)
        .into_iter()
        .map(|(e, w)| (e.execution_id.to_string()[35..].to_owned(), w))
        .collect();
    assert_eq!(
        order,
        [
            ("4".to_owned(), Waiting::InProgress),
            ("3".to_owned(), Waiting::DeliveredNotStarted),
            ("2".to_owned(), Waiting::NotYetDelivered),
            ("1".to_owned(), Waiting::HeldUntilNotBefore),
        ]
    );
    // its first waiting-to-start one is the one the device is offered next
    let not_held: Vec<CommandExecution> = pending
        .iter()
        .filter(|e| !e.is_held(now))
        .cloned()
        .collect();
    assert_eq!(
        next_pending(&not_held).map(|e| e.execution_id.to_string()),
        Some("00000000-0000-4000-8000-000000000004".to_owned())
    );
}

/// Held work says why it is held: deferred by the device, waiting for a
/// retry's backoff, or scheduled; soonest release first.
#[test]
fn held_work_in_the_queue_says_why_it_is_held() {
    use courier_core::queue::{queue, Waiting};
    let now = Timestamp::from_secs(1_000);
    let held = |id: &str, until: i64, code: &str, attempt: u32| {
        let mut e = execution(id, ExecutionStatus::Queued, 10);
        e.not_before = Some(Timestamp::from_secs(until));
        e.execution_number = attempt;
        e.status_reason = Some(StatusReason {
            reason_code: code.to_owned(),
            reason_description: None,
        });
        e
    };
    let pending = vec![
        held(
            "00000000-0000-4000-8000-000000000001",
            3_000,
            "SCHEDULED",
            1,
        ),
        held("00000000-0000-4000-8000-000000000002", 1_500, "DEFERRED", 1),
        held(
            "00000000-0000-4000-8000-000000000003",
            2_000,
            "RETRY_AFTER_FAILURE",
            2,
        ),
    ];
    let order: Vec<(String, Waiting)> = queue(&pending, now)
        .into_iter()
        .map(|(e, w)| (e.execution_id.to_string()[35..].to_owned(), w))
        .collect();
    assert_eq!(
        order,
        [
            ("2".to_owned(), Waiting::Deferred),
            ("3".to_owned(), Waiting::RetryBackoff),
            ("1".to_owned(), Waiting::HeldUntilNotBefore),
        ]
    );
}
