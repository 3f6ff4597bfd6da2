//! Pipelines against DynamoDB Local and moto: runs driven through the table
//! stream (records read back from DynamoDB Local's stream and fed to the
//! `dispatcher` handler, as Lambda would), devices answering through the
//! `device-events` handler, the sweeper's timeouts, gates, resume, abort,
//! cancel, and every record delivered again. Time is passed in.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::json::Json;
use courier_core::pipeline_run::{RunStatus, TargetRun, TargetStatus};
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{ExecutionStatus, Timestamp};
use courier_functions::entry::device_events;
use courier_functions::error::ServiceError;
use courier_functions::ops::pipelines::RunView;
use courier_functions::ops::Courier;
use courier_functions::platform::thing_groups::IotThingGroups;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::filter::{passes, template_patterns};
use courier_local::stream::{replay as read_stream, StartAt, StreamPoller};
use courier_tests::{
    context, fresh_courier, iot_rule_event, lambda_event, send_to_dispatcher, send_to_sweeper,
    thing_groups, RecordingPublisher,
};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(NOW + secs)
}

fn root() -> TopicRoot {
    TopicRoot::parse(DEFAULT_ROOT).unwrap()
}

fn things(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("pipe-dev-{i:02}")).collect()
}

/// download → install (install, then reboot with CONTINUE) → verify.
const FIRMWARE: &str = r#"{
    "pipelineId": "fw",
    "stages": [
        {"name": "download", "timeoutSeconds": 600, "operations": [
            {"commandId": "download", "parameters": {"url": {"S": "s3://fw/2.4.bin"}}}]},
        {"name": "install", "operations": [
            {"commandId": "install"}, {"commandId": "reboot", "onFailure": "CONTINUE"}]},
        {"name": "verify", "operations": [{"commandId": "verify"}]}
    ]
}"#;

struct Harness {
    courier: Courier<DynamoStore>,
    publisher: RecordingPublisher,
    groups: IotThingGroups,
    stream: StreamPoller,
}

impl Harness {
    async fn new() -> Self {
        let courier = fresh_courier().await;
        for (id, params) in [
            (
                "download",
                json!([{"name": "url", "type": "S", "required": true}]),
            ),
            ("install", json!([])),
            ("reboot", json!([])),
            ("verify", json!([])),
        ] {
            courier
                .create_command(
                    &json!({"commandId": id, "parameters": params, "executionTimeoutSeconds": 3600}).into(),
                    at(0),
                )
                .await
                .unwrap();
        }
        let (_, created) = courier
            .create_pipeline(
                &Json::from(serde_json::from_str::<Value>(FIRMWARE).unwrap()),
                at(0),
            )
            .await
            .unwrap();
        assert!(created);
        let stream = StreamPoller::new(courier.store().table(), StartAt::Beginning)
            .await
            .unwrap();
        Self {
            courier,
            publisher: RecordingPublisher::default(),
            groups: thing_groups().await,
            stream,
        }
    }

    async fn start(&self, body: Value, now: Timestamp) -> RunView {
        let (run, created) = self
            .courier
            .start_run(&self.groups, "fw", &body.into(), now)
            .await
            .unwrap();
        assert!(created);
        run
    }

    async fn run(&self, view: &RunView) -> RunView {
        self.courier
            .get_run("fw", view.run.run_id.as_str(), at(0))
            .await
            .unwrap()
    }

    async fn targets(&self, view: &RunView) -> Vec<TargetRun> {
        let listing = self
            .courier
            .list_run_targets(
                "fw",
                view.run.run_id.as_str(),
                None,
                Some("100"),
                None,
                at(0),
            )
            .await
            .unwrap();
        listing.items
    }

    /// Feeds the stream's new records to the dispatcher until none appears:
    /// only those the template's `FilterCriteria` lets through, as on AWS
    /// (so a filter that dropped what a run needs would stall these tests).
    async fn pump(&mut self, now: Timestamp) {
        let patterns = template_patterns(TEMPLATE).unwrap();
        loop {
            let mut fresh = self.stream.poll().await.unwrap();
            if fresh.is_empty() {
                return;
            }
            fresh.retain(|record| passes(&patterns, record));
            for batch in fresh.chunks(100) {
                let out = send_to_dispatcher(
                    &self.courier,
                    &self.publisher,
                    &self.groups,
                    batch.to_vec(),
                    now,
                )
                .await;
                assert_eq!(out["batchItemFailures"], json!([]), "{out}");
            }
        }
    }

    /// A device reports on its execution through the IoT rule's event.
    async fn device_says(&self, thing: &str, execution_id: &str, status: &str, now: Timestamp) {
        let topic = format!("courier/things/{thing}/jobs/{execution_id}/update");
        let out = device_events::handle(
            &self.courier,
            &root(),
            &RecordingPublisher::default(),
            lambda_event(
                iot_rule_event(&topic, &json!({"status": status})),
                context(&format!("{thing}-{execution_id}-{status}")),
            ),
            now,
        )
        .await
        .unwrap();
        assert!(
            out.published
                .iter()
                .any(|m| m.topic.ends_with("/update/accepted")),
            "{thing} {status}: {out:?}"
        );
    }

    /// Every device with work answers (`answer` decides how, by thing,
    /// stage and operation; `None`: it stays silent), then the stream is
    /// pumped, until nobody answers any more.
    async fn devices_work(
        &mut self,
        view: &RunView,
        answer: impl Fn(&str, u32, u32) -> Option<&'static str>,
        now: Timestamp,
    ) {
        self.pump(now).await;
        loop {
            let mut answered = false;
            for target in self.targets(view).await {
                let (TargetStatus::Running, Some(last)) = (target.status, target.history.last())
                else {
                    continue;
                };
                let Some(status) =
                    answer(target.thing_name.as_str(), target.stage, target.operation)
                else {
                    continue;
                };
                let id = last.execution_id.as_str();
                let execution = self.courier.get_execution(id, now).await.unwrap();
                if execution.status.is_terminal() {
                    continue;
                }
                self.device_says(target.thing_name.as_str(), id, "IN_PROGRESS", now)
                    .await;
                self.device_says(target.thing_name.as_str(), id, status, now)
                    .await;
                answered = true;
            }
            self.pump(now).await;
            if !answered {
                return;
            }
        }
    }
}

fn all_succeed(_: &str, _: u32, _: u32) -> Option<&'static str> {
    Some("SUCCEEDED")
}

#[tokio::test]
async fn a_pipeline_is_immutable_and_its_operations_are_checked_against_their_commands() {
    let h = Harness::new().await;
    // The same definition again: the stored one, not created now.
    let same = Json::from(serde_json::from_str::<Value>(FIRMWARE).unwrap());
    let (_, created) = h.courier.create_pipeline(&same, at(5)).await.unwrap();
    assert!(!created);
    // Another definition under the same id: refused.
    let other = json!({"pipelineId": "fw", "stages": [{"name": "a", "operations": [{"commandId": "install"}]}]});
    let err = h
        .courier
        .create_pipeline(&other.into(), at(5))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
    // An unknown command and a bad parameter: every problem, with its path.
    let bad = json!({"pipelineId": "p2", "stages": [{"name": "a", "operations": [
        {"commandId": "nope"}, {"commandId": "download", "parameters": {"url": {"I": 1}}}]}]});
    let ServiceError::Validation(errors) = h
        .courier
        .create_pipeline(&bad.into(), at(5))
        .await
        .unwrap_err()
    else {
        panic!("a validation error")
    };
    let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.code())).collect();
    assert_eq!(
        found,
        [
            ("stages[0].operations[0].commandId", "InvalidValue"),
            ("stages[0].operations[1].parameters.url", "WrongType"),
        ]
    );
}

#[tokio::test]
async fn a_run_takes_each_device_through_the_stages_in_waves_and_a_failure_stops_only_that_device()
{
    let mut h = Harness::new().await;
    let fleet = things(6);
    let view = h
        .start(
            json!({"runId": "run-6", "targets": {"things": fleet}, "waves": [1],
                   "gates": {"install": {"minSuccessPercentage": 50}}}),
            at(0),
        )
        .await;
    // The device that fails its install: one of the second wave (the
    // canary is the first in the run's order).
    let names: Vec<courier_core::ThingName> = fleet
        .iter()
        .map(|t| courier_core::ThingName::parse(t).unwrap())
        .collect();
    let order = courier_core::pipeline_run::wave_order(&view.run.run_id, names);
    let failing = order[3].to_string();
    h.devices_work(
        &view,
        |thing, stage, operation| {
            Some(if thing == failing && stage == 1 && operation == 0 {
                "FAILED"
            } else {
                "SUCCEEDED"
            })
        },
        at(10),
    )
    .await;

    let run = h.run(&view).await;
    assert_eq!(run.run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.run.wave_sizes, [1, 5]);
    let totals: Vec<(u64, u64, u64)> = run
        .stages
        .iter()
        .map(|s| (s.totals.entered, s.totals.succeeded, s.totals.failed))
        .collect();
    assert_eq!(totals, [(6, 6, 0), (6, 5, 1), (5, 5, 0)]);
    for target in h.targets(&view).await {
        if target.thing_name.as_str() == failing {
            assert_eq!(
                (target.status, target.stage, target.history.len()),
                (TargetStatus::Failed, 1, 2)
            );
        } else {
            assert_eq!(
                (target.status, target.history.len()),
                (TargetStatus::Succeeded, 4),
                "{target:?}"
            );
        }
    }
    // Each operation is an ordinary execution, marked with the run.
    let first = &h.targets(&view).await[0].history[0];
    let execution = h
        .courier
        .get_execution(first.execution_id.as_str(), at(10))
        .await
        .unwrap();
    assert_eq!(execution.run_id.as_ref(), Some(&run.run.run_id));
    assert_eq!(execution.status, ExecutionStatus::Succeeded);
}

#[tokio::test]
async fn every_stream_record_delivered_again_leaves_the_run_as_it_was() {
    let mut h = Harness::new().await;
    let view = h
        .start(
            json!({"targets": {"things": things(4)}, "waves": ["50%"]}),
            at(0),
        )
        .await;
    h.devices_work(&view, all_succeed, at(10)).await;
    let before = h.run(&view).await;
    let targets_before = h.targets(&view).await;
    assert_eq!(before.run.status, RunStatus::Completed);
    for _ in 0..3 {
        let all = read_stream(h.courier.store().table()).await.unwrap();
        for batch in all.chunks(100) {
            send_to_dispatcher(&h.courier, &h.publisher, &h.groups, batch.to_vec(), at(20)).await;
        }
    }
    let after = h.run(&view).await;
    assert_eq!(after.run.counts, before.run.counts);
    assert_eq!(after.run.targets_ended, 4);
    assert_eq!(after.run.status, RunStatus::Completed);
    assert_eq!(h.targets(&view).await, targets_before);
}

#[tokio::test]
async fn a_manual_gate_holds_the_run_until_an_operator_resumes_it() {
    let mut h = Harness::new().await;
    let view = h
        .start(
            json!({"targets": {"things": things(3)}, "gates": {"download": {"manualApproval": true}}}),
            at(0),
        )
        .await;
    h.devices_work(&view, all_succeed, at(10)).await;
    let held = h.run(&view).await;
    assert_eq!(held.run.status, RunStatus::Held);
    assert!(held.run.hold.unwrap().manual_approval);
    assert!(h
        .targets(&view)
        .await
        .iter()
        .all(|t| t.status == TargetStatus::Waiting));

    let resumed = h
        .courier
        .resume_run("fw", view.run.run_id.as_str(), "alice", at(11))
        .await
        .unwrap();
    assert_eq!(resumed.run.resumed[0].by, "alice");
    h.devices_work(&view, all_succeed, at(12)).await;
    assert_eq!(h.run(&view).await.run.status, RunStatus::Completed);
    // Resuming a run that is not held is refused.
    let err = h
        .courier
        .resume_run("fw", view.run.run_id.as_str(), "alice", at(13))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn a_failure_threshold_aborts_the_run_and_the_rest_is_skipped() {
    let mut h = Harness::new().await;
    let view = h
        .start(
            json!({"targets": {"things": things(6)}, "waves": [2],
                   "gates": {"download": {"abort": {"failedCount": 1}}}}),
            at(0),
        )
        .await;
    h.devices_work(
        &view,
        |_, stage, _| Some(if stage == 0 { "FAILED" } else { "SUCCEEDED" }),
        at(10),
    )
    .await;
    let run = h.run(&view).await;
    assert_eq!(run.run.status, RunStatus::Aborted, "{run:?}");
    assert_eq!(
        run.run.status_reason.unwrap().reason_code,
        "FAILURE_THRESHOLD"
    );
    let targets = h.targets(&view).await;
    let skipped = targets
        .iter()
        .filter(|t| t.status == TargetStatus::Skipped)
        .count();
    assert_eq!(skipped, 4, "the second wave never started: {targets:?}");
    assert!(targets.iter().all(|t| t.stage == 0));
}

#[tokio::test]
async fn a_silent_device_times_out_its_stage_and_the_gate_counts_it() {
    let mut h = Harness::new().await;
    let fleet = things(3);
    let view = h
        .start(
            json!({"targets": {"things": fleet}, "gates": {"download": {"minSuccessCount": 3}}}),
            at(0),
        )
        .await;
    let silent = fleet[1].clone();
    h.devices_work(
        &view,
        |thing, _, _| (thing != silent).then_some("SUCCEEDED"),
        at(10),
    )
    .await;
    assert_eq!(h.run(&view).await.run.status, RunStatus::InProgress);

    // The download stage's 600 s pass: the sweeper times the device's
    // execution out (its completeBy is the stage's deadline; the stage
    // started at 10 s).
    let report = send_to_sweeper(&h.courier, &h.publisher, &h.groups, at(609)).await;
    assert_eq!(report.timed_out, 0);
    let report = send_to_sweeper(&h.courier, &h.publisher, &h.groups, at(610)).await;
    assert_eq!(report.timed_out, 1);
    h.pump(at(611)).await;
    let run = h.run(&view).await;
    let target = h
        .targets(&view)
        .await
        .into_iter()
        .find(|t| t.thing_name.as_str() == silent)
        .unwrap();
    assert_eq!(target.status, TargetStatus::TimedOut);
    assert_eq!(run.stages[0].totals.timed_out, 1);
    // Two of three succeeded against the three required: held for an operator.
    assert_eq!(run.run.status, RunStatus::Held, "{run:?}");
    let hold = run.run.hold.unwrap();
    assert_eq!(
        (hold.succeeded, hold.required, hold.manual_approval),
        (2, 3, false)
    );
}

#[tokio::test]
async fn a_cancel_without_force_lets_started_work_finish_then_the_run_is_canceled() {
    let mut h = Harness::new().await;
    let view = h
        .start(
            json!({"targets": {"things": things(2)}, "waves": [1]}),
            at(0),
        )
        .await;
    h.pump(at(1)).await;
    // The first wave's device has started its download.
    let running = h
        .targets(&view)
        .await
        .into_iter()
        .find(|t| t.status == TargetStatus::Running)
        .unwrap();
    let id = running.history[0].execution_id.to_string();
    h.device_says(running.thing_name.as_str(), &id, "IN_PROGRESS", at(2))
        .await;

    let canceled = h
        .courier
        .cancel_run(
            "fw",
            view.run.run_id.as_str(),
            &json!({}).into(),
            "bob",
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(canceled.run.status, RunStatus::Canceling);
    h.pump(at(4)).await;
    // The device that waited for its wave is skipped; the started one goes on.
    let targets = h.targets(&view).await;
    assert!(
        targets.iter().any(|t| t.status == TargetStatus::Skipped),
        "{targets:?}"
    );
    assert_eq!(h.run(&view).await.run.status, RunStatus::Canceling);

    h.device_says(running.thing_name.as_str(), &id, "SUCCEEDED", at(5))
        .await;
    h.pump(at(6)).await;
    let run = h.run(&view).await;
    assert_eq!(run.run.status, RunStatus::Canceled, "{run:?}");
    let done = h
        .targets(&view)
        .await
        .into_iter()
        .find(|t| t.thing_name == running.thing_name)
        .unwrap();
    assert_eq!(
        done.status,
        TargetStatus::Canceled,
        "it starts nothing more: {done:?}"
    );
    assert_eq!(done.history.len(), 1);
}

/// One HTTP request to the `api` handler, as API Gateway would send it.
async fn http(
    h: &Harness,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> courier_tests::ApiReply {
    let event = courier_tests::http_event(method, path, body.as_ref());
    courier_tests::send_to_api(
        &h.courier,
        &courier_tests::api_settings(true),
        &event,
        at(1),
    )
    .await
}

#[tokio::test]
async fn the_pipeline_routes_answer_with_their_status_codes_and_aws_style_errors() {
    let h = Harness::new().await;
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("GET", "/pipelines", None, 200, ""),
        ("GET", "/pipelines/fw", None, 200, ""),
        (
            "GET",
            "/pipelines/nope",
            None,
            404,
            "ResourceNotFoundException",
        ),
        (
            "GET",
            "/pipelines/has%20space",
            None,
            400,
            "ValidationException",
        ),
        (
            "POST",
            "/pipelines",
            Some(json!({"pipelineId": "p"})),
            400,
            "ValidationException",
        ),
        (
            "POST",
            "/pipelines",
            Some(json!([1])),
            400,
            "ValidationException",
        ),
        (
            "DELETE",
            "/pipelines",
            None,
            405,
            "MethodNotAllowedException",
        ),
        (
            "POST",
            "/pipelines/nope/runs",
            Some(json!({"targets": {"things": ["a"]}})),
            404,
            "ResourceNotFoundException",
        ),
        (
            "POST",
            "/pipelines/fw/runs",
            Some(json!({"targets": {"things": ["a"]}, "gates": {"flash": {}}})),
            400,
            "ValidationException",
        ),
        (
            "POST",
            "/pipelines/fw/runs",
            Some(json!({"targets": {"thingGroup": "no-such-group"}})),
            404,
            "ResourceNotFoundException",
        ),
        (
            "GET",
            "/pipelines/fw/runs/no-such-run",
            None,
            404,
            "ResourceNotFoundException",
        ),
        ("GET", "/pipelines/fw/runs", None, 200, ""),
        (
            "PUT",
            "/pipelines/fw/runs/r/resume",
            None,
            405,
            "MethodNotAllowedException",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let reply = http(&h, method, path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        if !code.is_empty() {
            assert_eq!(reply.body["code"], code, "{method} {path}: {}", reply.body);
        }
    }
}

#[tokio::test]
async fn a_run_started_over_http_is_read_listed_resumed_and_canceled_over_http() {
    let h = Harness::new().await;
    let body = json!({"runId": "r-1", "targets": {"things": ["a", "b"]}, "clientToken": "t"});
    let created = http(&h, "POST", "/pipelines/fw/runs", Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["location"], "/pipelines/fw/runs/r-1");
    assert_eq!(created.body["status"], "IN_PROGRESS");
    assert_eq!(created.body["stages"][1]["name"], "install");
    // The same request again: the same run, 200.
    let again = http(&h, "POST", "/pipelines/fw/runs", Some(body)).await;
    assert_eq!(
        (again.status, again.body["runId"].clone()),
        (200, json!("r-1"))
    );
    // Another request under the same id: 409.
    let other = json!({"runId": "r-1", "targets": {"things": ["c"]}});
    assert_eq!(
        http(&h, "POST", "/pipelines/fw/runs", Some(other))
            .await
            .status,
        409
    );

    let got = http(&h, "GET", "/pipelines/fw/runs/r-1", None).await;
    assert_eq!(got.status, 200);
    let listed = http(&h, "GET", "/pipelines/fw/runs", None).await;
    assert_eq!(listed.body["items"][0]["runId"], "r-1");
    let bad = http(
        &h,
        "GET",
        "/pipelines/fw/runs/r-1/targets?status=DONE",
        None,
    )
    .await;
    assert_eq!(
        (bad.status, bad.body["code"].clone()),
        (400, json!("ValidationException"))
    );
    let resume = http(&h, "POST", "/pipelines/fw/runs/r-1/resume", Some(json!({}))).await;
    assert_eq!(
        (resume.status, resume.body["code"].clone()),
        (409, json!("ConflictException"))
    );
    let canceled = http(
        &h,
        "POST",
        "/pipelines/fw/runs/r-1/cancel",
        Some(json!({"force": true})),
    )
    .await;
    assert_eq!(
        (canceled.status, canceled.body["status"].clone()),
        (200, json!("CANCELED")),
        "{}",
        canceled.body
    );
    let twice = http(&h, "POST", "/pipelines/fw/runs/r-1/cancel", Some(json!({}))).await;
    assert_eq!(twice.status, 200, "canceling a canceled run returns it");
}

#[tokio::test]
async fn a_tenants_active_runs_and_a_runs_targets_are_limited() {
    let mut h = Harness::new().await;
    h.courier = h
        .courier
        .with_run_limits(courier_functions::ops::RunLimits {
            max_active_runs: 1,
            max_targets: 2,
        });
    let too_many = json!({"targets": {"things": ["a", "b", "c"]}});
    let reply = http(&h, "POST", "/pipelines/fw/runs", Some(too_many)).await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (400, json!("LimitExceededException"))
    );

    let first = h
        .start(json!({"targets": {"things": ["a", "b"]}}), at(0))
        .await;
    let second = json!({"targets": {"things": ["c"]}});
    let reply = http(&h, "POST", "/pipelines/fw/runs", Some(second.clone())).await;
    assert_eq!(
        (reply.status, reply.body["code"].clone()),
        (400, json!("LimitExceededException")),
        "{}",
        reply.body
    );
    assert!(reply.body["message"]
        .as_str()
        .unwrap()
        .contains("1 pipeline runs have not ended"));

    // Once the first run ends, the tenant may start another.
    h.courier
        .cancel_run(
            "fw",
            first.run.run_id.as_str(),
            &json!({"force": true}).into(),
            "bob",
            at(1),
        )
        .await
        .unwrap();
    let reply = http(&h, "POST", "/pipelines/fw/runs", Some(second)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

#[tokio::test]
async fn a_run_over_a_fleet_index_query_takes_the_things_found_when_it_starts() {
    let (group, things) = courier_tests::moto_thing_group(3).await;
    let mut h = Harness::new().await;
    let view = h
        .start(
            json!({"targets": {"query": format!("thingGroupNames:{group}")}}),
            at(0),
        )
        .await;
    h.devices_work(&view, all_succeed, at(10)).await;
    let run = h.run(&view).await;
    assert_eq!(run.run.status, RunStatus::Completed, "{run:?}");
    let mut names: Vec<String> = h
        .targets(&view)
        .await
        .iter()
        .map(|t| t.thing_name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, things);
}

#[tokio::test]
async fn a_straggler_held_by_a_closed_window_goes_on_when_the_next_window_opens() {
    let mut h = Harness::new().await;
    let fleet = things(3);
    // 08:00-08:10 UTC every day (the test's clock starts at 08:00; the
    // downloads have an hour to finish).
    let view = h
        .start(
            json!({"runId": "stragglers", "targets": {"things": fleet},
                   "gates": {"download": {"minSuccessCount": 1}},
                   "schedulingConfig": {"maintenanceWindows": [{"startTime": "0 8 * * *", "durationInMinutes": 10}]}}),
            at(0),
        )
        .await;
    let first = fleet[0].clone();
    // Inside the window one device finishes its download: the gate passes
    // early and that device goes on to install.
    h.devices_work(
        &view,
        |thing, stage, _| (thing == first && stage == 0).then_some("SUCCEEDED"),
        at(60),
    )
    .await;
    // After the window (it closed at 600 s) the two others finish theirs,
    // within the download stage's 600 s (it started at 60 s): they wait for
    // the next window (and the first finishes install).
    h.devices_work(
        &view,
        |thing, stage, _| {
            ((thing != first && stage == 0) || (thing == first && stage == 1))
                .then_some("SUCCEEDED")
        },
        at(630),
    )
    .await;
    let held = h.run(&view).await;
    assert!(held.run.stragglers_waiting, "{held:?}");
    let waiting = h
        .targets(&view)
        .await
        .into_iter()
        .filter(|t| t.status == TargetStatus::Waiting && t.stage == 0)
        .count();
    assert_eq!(waiting, 2);
    // The next window: the sweeper wakes the run, the stragglers go on, and
    // every device completes.
    send_to_sweeper(&h.courier, &h.publisher, &h.groups, at(86_400)).await;
    h.devices_work(&view, all_succeed, at(86_460)).await;
    let done = h.run(&view).await;
    assert_eq!(done.run.status, RunStatus::Completed, "{done:?}");
    assert!(h
        .targets(&view)
        .await
        .iter()
        .all(|t| t.status == TargetStatus::Succeeded));
}

/// The write-unit budget of one operation of a run (see
/// `tests/tests/capacity_budget.rs` for a single execution's): a run's
/// execution carries its run and operation and still fits one 1 KB write
/// unit while it runs, index keys included, so the device's updates cost
/// what a single execution's do (IN_PROGRESS 1; SUCCEEDED 4: the item, the
/// removal of its pending and due entries, and the record of what the
/// device was told is next); and its stage's end writes the target run
/// once. A change that raises them updates this budget in
/// the same commit and says why.
#[tokio::test]
async fn a_runs_operation_costs_what_a_single_execution_does_within_its_write_unit_budget() {
    let mut h = Harness::new().await;
    let store = h.courier.store().clone();
    let meter = store.meter();
    // 24 characters: spelled out (runId, runOperation, createdBy), the
    // item crosses 1 KB from a 20-character name on; packed, from 40.
    let thing = "warehouse-7-sensor-00042";
    let view = h
        .start(json!({"targets": {"things": [thing]}}), at(1))
        .await;
    h.pump(at(1)).await;
    let target = h.targets(&view).await.remove(0);
    assert_eq!(target.status, TargetStatus::Running);
    let id = target.history.last().unwrap().execution_id.clone();
    assert_eq!(id.as_str().len(), 22, "a Jobs-protocol operation's id");
    let mut units = Vec::new();
    for status in ["IN_PROGRESS", "SUCCEEDED"] {
        meter.reset();
        h.device_says(thing, id.as_str(), status, at(2)).await;
        units.push(meter.write_units());
    }
    assert_eq!(units, [1.0, 4.0], "IN_PROGRESS, SUCCEEDED");
    // The stream: the stage settles (the target run, once), its tally is
    // counted (one transaction for the batch), the run steps, and the next
    // stage's execution is created (the item and its four index entries)
    // and delivered.
    meter.reset();
    h.pump(at(4)).await;
    let stage_end = meter.write_units();
    assert!(
        stage_end <= 16.0,
        "the stage's end and the next operation's start wrote {stage_end} units"
    );
}

/// Lambda may deliver a stream batch again along other boundaries (a
/// retry from a failed record, a bisected batch): the counters then count
/// a device twice. The run's decisions are taken on counts recounted from
/// the devices' records, so it goes on exactly, and a completed run keeps
/// its recounted counts.
#[tokio::test]
async fn tallies_delivered_again_one_by_one_mid_run_change_no_decision_or_final_count() {
    let mut h = Harness::new().await;
    let view = h
        .start(
            json!({"targets": {"things": things(4)}, "waves": ["50%"]}),
            at(0),
        )
        .await;
    // Wave 0 settles its download; each tally then comes again, alone.
    h.devices_work(
        &view,
        |_, stage, _| (stage == 0).then_some("SUCCEEDED"),
        at(10),
    )
    .await;
    let tallies: Vec<Value> = read_stream(h.courier.store().table())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r["dynamodb"]["NewImage"]["tally"]["S"].is_string())
        .collect();
    assert!(!tallies.is_empty());
    for record in &tallies {
        send_to_dispatcher(
            &h.courier,
            &h.publisher,
            &h.groups,
            vec![record.clone()],
            at(11),
        )
        .await;
    }
    let inflated = h.run(&view).await;
    assert!(
        inflated.run.counts[0][0].succeeded > 2,
        "the counters counted the wave's devices twice: {:?}",
        inflated.run.counts[0][0]
    );
    h.devices_work(&view, all_succeed, at(20)).await;
    let done = h.run(&view).await;
    assert_eq!(done.run.status, RunStatus::Completed, "{done:?}");
    let totals: Vec<(u64, u64)> = done
        .stages
        .iter()
        .map(|s| (s.totals.entered, s.totals.succeeded))
        .collect();
    assert_eq!(totals, [(4, 4), (4, 4), (4, 4)]);
    assert_eq!(done.run.targets_ended, 4);
    assert!(h
        .targets(&view)
        .await
        .iter()
        .all(|t| t.status == TargetStatus::Succeeded && t.outcomes == "SSS"));
}
