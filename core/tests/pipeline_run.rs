//! A pipeline run's rules (core::pipeline_run), one rule per test, and a
//! whole run driven by those rules alone over a simulated fleet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::ids::{ExecutionId, RunId, ThingName};
use courier_core::json::Json;
use courier_core::pipeline::{CreatePipeline, Pipeline};
use courier_core::pipeline_run::{
    wave_order, wave_sizes, AbortThreshold, EndBehavior, Gate, GateVerdict, Hold, PipelineRun,
    RunCancel, RunStatus, RunStep, StageCounts, StageOutcome, StartRun, TargetRun, TargetStatus,
    TargetStep, WaveSize,
};
use courier_core::schema::{CommandDefinition, Validator};
use courier_core::status::ExecutionStatus;
use courier_core::time::Timestamp;
use courier_core::{CommandId, RunOperation};
use std::collections::BTreeMap;

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap()
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_text(text).unwrap()
}

fn things(n: usize) -> Vec<ThingName> {
    (0..n)
        .map(|i| ThingName::parse(&format!("dev-{i:02}")).unwrap())
        .collect()
}

/// download → install (install, then reboot with CONTINUE) → verify.
fn pipeline() -> Pipeline {
    let mut validators: BTreeMap<CommandId, Validator> = BTreeMap::new();
    for id in ["download", "install", "reboot", "verify"] {
        let definition: CommandDefinition =
            serde_json::from_str(&format!(r#"{{"commandId": "{id}"}}"#)).unwrap();
        validators.insert(
            CommandId::parse(id).unwrap(),
            definition.validator().unwrap(),
        );
    }
    let body = json(
        r#"{"pipelineId": "fw", "stages": [
            {"name": "download", "timeoutSeconds": 600, "operations": [{"commandId": "download"}]},
            {"name": "install", "operations": [{"commandId": "install"}, {"commandId": "reboot", "onFailure": "CONTINUE"}]},
            {"name": "verify", "operations": [{"commandId": "verify"}]}]}"#,
    );
    CreatePipeline::parse(&body, &|id| validators.get(id))
        .unwrap()
        .into_pipeline(Timestamp::from_secs(0))
}

fn start(body: &str, now: Timestamp) -> PipelineRun {
    let p = pipeline();
    let request = StartRun::parse(&json(body), &p, now).unwrap();
    PipelineRun::new(request, RunId::parse("run-1").unwrap(), &p, now).0
}

fn counts(entered: u64, succeeded: u64, failed: u64, timed_out: u64) -> StageCounts {
    StageCounts {
        entered,
        succeeded,
        failed,
        timed_out,
        canceled: 0,
        went_on: 0,
    }
}

// ---- waves -----------------------------------------------------------------

#[test]
fn waves_round_up_and_the_rest_forms_the_last_wave() {
    let spec = [WaveSize::Count(1), WaveSize::Percent(10.0)];
    assert_eq!(wave_sizes(&spec, 20), [1, 2, 17]);
    assert_eq!(wave_sizes(&spec, 5), [1, 1, 3], "10% of 5 rounds up to 1");
    assert_eq!(wave_sizes(&[WaveSize::Percent(12.5)], 8), [1, 7]);
    assert_eq!(
        wave_sizes(&[WaveSize::Count(50)], 20),
        [20],
        "no empty wave"
    );
    assert_eq!(wave_sizes(&[WaveSize::Percent(100.0)], 3), [3]);
    assert_eq!(wave_sizes(&[], 4), [4]);
    assert!(wave_sizes(&spec, 0).is_empty());
}

#[test]
fn wave_order_is_the_same_for_a_run_and_differs_between_runs() {
    let one = RunId::parse("run-1").unwrap();
    let two = RunId::parse("run-2").unwrap();
    let mut reversed = things(50);
    reversed.reverse();
    let first = wave_order(&one, things(50));
    assert_eq!(
        first,
        wave_order(&one, reversed),
        "input order does not matter"
    );
    assert_ne!(first, wave_order(&two, things(50)));
    let mut doubled = things(3);
    doubled.extend(things(3));
    assert_eq!(wave_order(&one, doubled).len(), 3);
}

// ---- gates -----------------------------------------------------------------

#[test]
fn a_gate_waits_while_its_threshold_can_still_be_met_and_devices_run() {
    let gate = Gate {
        min_success_percentage: 90.0,
        ..Gate::default()
    };
    assert_eq!(gate.required(9), 9, "90% of 9 is 8.1, rounded up");
    assert_eq!(gate.verdict(&counts(10, 5, 0, 0)), GateVerdict::Waiting);
}

#[test]
fn a_gate_passes_early_once_it_cannot_be_missed() {
    let gate = Gate {
        min_success_percentage: 50.0,
        ..Gate::default()
    };
    assert_eq!(gate.verdict(&counts(10, 5, 0, 0)), GateVerdict::Passed);
}

#[test]
fn a_gate_missed_once_every_device_settled_holds_with_the_figures() {
    let gate = Gate {
        min_success_percentage: 90.0,
        min_success_count: 2,
        ..Gate::default()
    };
    assert_eq!(
        gate.verdict(&counts(10, 8, 1, 1)),
        GateVerdict::Missed {
            succeeded: 8,
            required: 9
        }
    );
    let count_only = Gate {
        min_success_count: 2,
        ..Gate::default()
    };
    assert_eq!(
        count_only.verdict(&counts(1, 1, 0, 0)),
        GateVerdict::Missed {
            succeeded: 1,
            required: 2
        },
        "a count above the wave's size can never pass"
    );
}

#[test]
fn a_manual_gate_awaits_approval_once_its_thresholds_are_met() {
    let gate = Gate {
        manual_approval: true,
        min_success_count: 1,
        ..Gate::default()
    };
    assert_eq!(gate.verdict(&counts(3, 0, 0, 0)), GateVerdict::Waiting);
    assert_eq!(
        gate.verdict(&counts(3, 1, 0, 0)),
        GateVerdict::AwaitingApproval
    );
}

#[test]
fn a_gate_without_thresholds_waits_for_every_device() {
    assert_eq!(
        Gate::default().verdict(&counts(4, 0, 0, 0)),
        GateVerdict::Waiting
    );
    assert_eq!(
        Gate::default().verdict(&counts(4, 3, 0, 0)),
        GateVerdict::Waiting
    );
}

#[test]
fn the_default_gate_passes_whatever_happened() {
    assert_eq!(
        Gate::default().verdict(&counts(4, 0, 4, 0)),
        GateVerdict::Passed
    );
    assert_eq!(
        Gate::default().verdict(&counts(0, 0, 0, 0)),
        GateVerdict::Passed
    );
}

#[test]
fn a_failure_threshold_counts_failed_and_timed_out_devices() {
    let by_count = Gate {
        abort: Some(AbortThreshold {
            failed_count: Some(3),
            failed_percentage: None,
            min_settled: 1,
        }),
        ..Gate::default()
    };
    assert!(!by_count.aborts(&counts(20, 10, 1, 1)));
    assert!(by_count.aborts(&counts(20, 10, 2, 1)));
    let by_share = Gate {
        abort: Some(AbortThreshold {
            failed_count: None,
            failed_percentage: Some(20.0),
            min_settled: 5,
        }),
        ..Gate::default()
    };
    assert!(
        !by_share.aborts(&counts(20, 0, 1, 0)),
        "1 of 1 settled: below minSettled"
    );
    assert!(by_share.aborts(&counts(20, 4, 1, 0)), "1 of 5 is 20%");
    assert!(!by_share.aborts(&counts(20, 5, 1, 0)));
    assert!(!Gate::default().aborts(&counts(20, 0, 20, 0)));
}

// ---- a device's steps ------------------------------------------------------

fn running(stage: u32) -> TargetRun {
    let p = pipeline();
    let mut t = TargetRun::new(ThingName::parse("dev-1").unwrap(), 0);
    t.start_stage(
        &p,
        stage,
        ExecutionId::parse("e-1").unwrap(),
        at("2026-11-28T10:00"),
    );
    t
}

#[test]
fn success_moves_to_the_next_operation_then_waits_at_the_stage_end() {
    let p = pipeline();
    let mut t = running(1);
    let step = t.after_execution(&p, ExecutionStatus::Succeeded).unwrap();
    assert_eq!(step, TargetStep::Next { operation: 1 });
    t.apply(step, ExecutionStatus::Succeeded);
    t.start_operation(1, ExecutionId::parse("e-2").unwrap());
    let step = t.after_execution(&p, ExecutionStatus::Succeeded).unwrap();
    assert_eq!(
        step,
        TargetStep::Settled {
            outcome: StageOutcome::Succeeded,
            goes_on: true,
            status: TargetStatus::Waiting
        }
    );
    t.apply(step, ExecutionStatus::Succeeded);
    assert_eq!(t.next_stage(), 2);
    assert_eq!(t.history.len(), 2);
}

#[test]
fn success_of_the_last_stage_ends_the_device_succeeded() {
    let p = pipeline();
    let t = running(2);
    assert_eq!(
        t.after_execution(&p, ExecutionStatus::Succeeded),
        Some(TargetStep::Settled {
            outcome: StageOutcome::Succeeded,
            goes_on: false,
            status: TargetStatus::Succeeded
        })
    );
}

#[test]
fn a_failure_under_stop_ends_the_device_failed() {
    let p = pipeline();
    for status in [
        ExecutionStatus::Failed,
        ExecutionStatus::Rejected,
        ExecutionStatus::TimedOut,
    ] {
        assert_eq!(
            running(1).after_execution(&p, status),
            Some(TargetStep::Settled {
                outcome: StageOutcome::Failed,
                goes_on: false,
                status: TargetStatus::Failed
            }),
            "{status:?}"
        );
    }
}

#[test]
fn a_failure_under_continue_goes_on_but_counts_failed_to_the_end() {
    let p = pipeline();
    let mut t = running(1);
    t.apply(
        TargetStep::Next { operation: 1 },
        ExecutionStatus::Succeeded,
    );
    t.start_operation(1, ExecutionId::parse("e-2").unwrap());
    let step = t.after_execution(&p, ExecutionStatus::Failed).unwrap();
    assert_eq!(
        step,
        TargetStep::Settled {
            outcome: StageOutcome::Failed,
            goes_on: true,
            status: TargetStatus::Waiting
        }
    );
    t.apply(step, ExecutionStatus::Failed);
    t.start_stage(
        &p,
        2,
        ExecutionId::parse("e-3").unwrap(),
        at("2026-11-28T11:00"),
    );
    assert_eq!(
        t.after_execution(&p, ExecutionStatus::Succeeded),
        Some(TargetStep::Settled {
            outcome: StageOutcome::Succeeded,
            goes_on: false,
            status: TargetStatus::Failed
        }),
        "the last stage succeeded, the device failed earlier"
    );
}

#[test]
fn a_canceled_execution_stops_the_device() {
    assert_eq!(
        running(0).after_execution(&pipeline(), ExecutionStatus::Canceled),
        Some(TargetStep::Settled {
            outcome: StageOutcome::Canceled,
            goes_on: false,
            status: TargetStatus::Canceled
        })
    );
}

#[test]
fn only_an_end_of_the_awaited_execution_moves_a_device() {
    let p = pipeline();
    assert_eq!(
        running(0).after_execution(&p, ExecutionStatus::InProgress),
        None
    );
    let pending = TargetRun::new(ThingName::parse("dev-1").unwrap(), 0);
    assert_eq!(
        pending.after_execution(&p, ExecutionStatus::Succeeded),
        None
    );
}

#[test]
fn a_stage_times_out_after_its_timeout_from_the_stage_start() {
    let t = running(0);
    let p = pipeline();
    // Ended before the deadline: the usual rules.
    assert_eq!(
        t.after_execution_at(&p, ExecutionStatus::TimedOut, at("2026-11-28T10:09:59")),
        Some(TargetStep::Settled {
            outcome: StageOutcome::Failed,
            goes_on: false,
            status: TargetStatus::Failed
        })
    );
    // At the deadline: the stage timed out.
    assert_eq!(
        t.after_execution_at(&p, ExecutionStatus::TimedOut, at("2026-11-28T10:10")),
        Some(TargetStep::Settled {
            outcome: StageOutcome::TimedOut,
            goes_on: false,
            status: TargetStatus::TimedOut
        })
    );
}

#[test]
fn an_operation_that_succeeded_after_the_stage_deadline_starts_nothing_more() {
    let t = running(1);
    let p = pipeline();
    assert_eq!(
        t.after_execution_at(&p, ExecutionStatus::Succeeded, at("2027-01-01T00:00")),
        Some(TargetStep::Settled {
            outcome: StageOutcome::TimedOut,
            goes_on: false,
            status: TargetStatus::TimedOut
        })
    );
}

#[test]
fn a_device_resumes_from_its_stored_record_and_the_operation_its_execution_carries() {
    let p = pipeline();
    let mut stored = TargetRun::new(ThingName::parse("dev-1").unwrap(), 0);
    let id = |n: u32| ExecutionId::parse(&format!("e-{n}")).unwrap();
    let at_op = |stage, operation, failed_in_stage| RunOperation {
        stage,
        operation,
        stage_deadline: at("2026-11-28T10:10"),
        failed_in_stage,
    };
    // Pending: only stage 0 resumes it.
    assert!(stored.resume(&p, at_op(1, 0, false), &[id(1)]).is_none());
    let running = stored.resume(&p, at_op(0, 0, false), &[id(1)]).unwrap();
    assert_eq!(
        (running.status, running.stage, running.operation),
        (TargetStatus::Running, 0, 0)
    );
    assert_eq!(running.waiting_on(), Some(&id(1)));
    assert_eq!(running.run_operation(), Some(at_op(0, 0, false)));
    // Settled stage 0 (WAITING): stage 1 resumes it, at its second operation.
    stored.status = TargetStatus::Waiting;
    let running = stored
        .resume(&p, at_op(1, 1, true), &[id(2), id(3)])
        .unwrap();
    assert_eq!((running.stage, running.operation), (1, 1));
    assert!(running.failed_in_stage);
    assert_eq!(running.history.len(), 2);
    assert_eq!(running.waiting_on(), Some(&id(3)));
    // The same stage again (a redelivered end): already settled.
    assert!(stored.resume(&p, at_op(0, 0, false), &[id(1)]).is_none());
    // Ids that do not match the operation: refused.
    assert!(stored.resume(&p, at_op(1, 1, false), &[id(2)]).is_none());
}

#[test]
fn entered_is_derived_from_wave_sizes_and_devices_that_went_on() {
    let p = pipeline();
    let mut run = start(
        r#"{"targets": {"thingGroup": "fleet"}, "waves": [2]}"#,
        at("2026-11-28T10:00"),
    );
    run.assign_waves(5, p.stages.len(), at("2026-11-28T10:00"));
    run.derive_entered();
    assert_eq!(run.counts_at(0, 0).entered, 0, "not released yet");
    run.released = true;
    run.counts[0][0].went_on = 2;
    run.derive_entered();
    assert_eq!(run.counts_at(0, 0).entered, 2);
    assert_eq!(
        run.counts_at(0, 1).entered,
        0,
        "wave 0 is not at stage 1 yet"
    );
    run.advance(0, 0, p.stages.len(), at("2026-11-28T10:00"));
    run.released = true;
    run.derive_entered();
    assert_eq!(run.counts_at(0, 1).entered, 2);
    assert_eq!(run.counts_at(1, 0).entered, 0);
}

#[test]
fn a_settled_device_goes_on_only_while_the_run_moves() {
    let p = pipeline();
    let mut run = start(
        r#"{"targets": {"thingGroup": "fleet"}}"#,
        at("2026-11-28T10:00"),
    );
    run.assign_waves(3, p.stages.len(), at("2026-11-28T10:00"));
    let t = running(0);
    let (status, tally) = run.settle(&t, StageOutcome::Succeeded, true, TargetStatus::Waiting);
    assert_eq!(status, TargetStatus::Waiting);
    assert_eq!(tally.fields(), vec![(0, 0, "succeeded"), (0, 0, "wentOn")]);
    assert!(!tally.ended);
    run.finish(RunStatus::Stopped, None, at("2026-11-28T10:00"));
    let (status, tally) = run.settle(&t, StageOutcome::Succeeded, true, TargetStatus::Waiting);
    assert_eq!(status, TargetStatus::Skipped);
    assert_eq!(tally.fields(), vec![(0, 0, "succeeded")]);
    assert!(tally.ended);
}

// ---- the run request -------------------------------------------------------

#[test]
fn a_run_request_parses_with_gates_by_stage_name() {
    let p = pipeline();
    let body = json(
        r#"{"targets": {"thingGroup": "fleet"}, "waves": [1, "10%"],
            "gates": {"install": {"minSuccessPercentage": 90, "manualApproval": true,
                                  "abort": {"failedPercentage": 20, "minSettled": 5}}},
            "schedulingConfig": {"endTime": 1900000000, "endBehavior": "CANCEL",
                "maintenanceWindows": [{"startTime": "0 2 * * SUN", "durationInMinutes": 120}]},
            "clientToken": "t-1"}"#,
    );
    let run = StartRun::parse(&body, &p, at("2026-11-28T10:00")).unwrap();
    assert_eq!(run.waves, [WaveSize::Count(1), WaveSize::Percent(10.0)]);
    assert_eq!(run.gates.len(), 3);
    assert_eq!(run.gates[0], Gate::default());
    assert!(run.gates[1].manual_approval);
    assert_eq!(run.gates[1].abort.as_ref().unwrap().min_settled, 5);
    assert_eq!(run.scheduling.end_behavior, EndBehavior::Cancel);
    assert_eq!(run.scheduling.maintenance_windows.len(), 1);
}

#[test]
fn a_run_request_reports_every_problem_with_its_path() {
    let p = pipeline();
    let body = json(
        r#"{"targets": {"things": []}, "waves": [0, "150%", "5 %", 2], "extra": true,
            "gates": {"flash": {}, "verify": {"minSuccessPercentage": 120, "abort": {}}},
            "schedulingConfig": {"endTime": 1000, "endBehavior": "PAUSE",
                "maintenanceWindows": [{"startTime": "0 2 * * ? *", "durationInMinutes": 0}]}}"#,
    );
    let errors = StartRun::parse(&body, &p, at("2026-11-28T10:00")).unwrap_err();
    let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.code())).collect();
    assert_eq!(
        found,
        [
            ("extra", "UnknownField"),
            ("targets.things", "OutOfRange"),
            ("waves[0]", "InvalidValue"),
            ("waves[1]", "InvalidValue"),
            ("waves[2]", "InvalidValue"),
            ("gates.flash", "InvalidValue"),
            ("gates.verify.minSuccessPercentage", "OutOfRange"),
            ("gates.verify.abort", "MissingRequired"),
            ("schedulingConfig.endTime", "OutOfRange"),
            ("schedulingConfig.endBehavior", "InvalidValue"),
            (
                "schedulingConfig.maintenanceWindows[0].startTime",
                "InvalidValue"
            ),
            (
                "schedulingConfig.maintenanceWindows[0].durationInMinutes",
                "OutOfRange"
            ),
        ]
    );
    let window = errors
        .iter()
        .find(|e| e.path.ends_with("startTime"))
        .unwrap();
    assert!(
        window.message.contains("expected 5 fields"),
        "{}",
        window.message
    );
}

#[test]
fn a_stored_run_reads_back_as_written() {
    let mut run = start(
        r#"{"targets": {"things": ["a", "b"]}, "waves": ["50%"],
            "gates": {"verify": {"manualApproval": true}},
            "schedulingConfig": {"maintenanceWindows": [{"startTime": "30 1 * * MON-FRI", "durationInMinutes": 60}]}}"#,
        at("2026-11-28T10:00"),
    );
    run.assign_waves(2, 3, at("2026-11-28T10:00"));
    let text = serde_json::to_string(&run).unwrap();
    assert!(
        text.contains(
            r#""maintenanceWindows":[{"startTime":"30 1 * * MON-FRI","durationInMinutes":60}]"#
        ),
        "{text}"
    );
    let back: PipelineRun = serde_json::from_str(&text).unwrap();
    assert_eq!(back, run);
}

// ---- the run's steps -------------------------------------------------------

#[test]
fn a_scheduled_run_starts_at_its_start_time() {
    let run = start(
        r#"{"targets": {"things": ["a"]}, "schedulingConfig": {"startTime": 1795870800}}"#,
        at("2026-11-28T10:00"),
    );
    assert_eq!(run.status, RunStatus::Scheduled);
    let start_time = Timestamp::from_secs(1_795_870_800);
    assert_eq!(run.next_step(start_time.plus_secs(-1)), RunStep::Idle);
    assert_eq!(run.wake_at(start_time.plus_secs(-1)), Some(start_time));
    assert_eq!(run.next_step(start_time), RunStep::Start);
}

#[test]
fn a_started_run_releases_its_first_stage_only_inside_a_window() {
    // 2026-11-28 is a Saturday; the window is Sundays 02:00-04:00.
    let mut run = start(
        r#"{"targets": {"things": ["a"]}, "schedulingConfig": {"maintenanceWindows": [{"startTime": "0 2 * * SUN", "durationInMinutes": 120}]}}"#,
        at("2026-11-28T10:00"),
    );
    assert_eq!(run.next_step(at("2026-11-28T10:00")), RunStep::Start);
    run.assign_waves(1, 3, at("2026-11-28T10:00"));
    assert_eq!(run.next_step(at("2026-11-28T10:00")), RunStep::Idle);
    assert_eq!(
        run.wake_at(at("2026-11-28T10:00")),
        Some(at("2026-11-29T02:00"))
    );
    assert_eq!(
        run.next_step(at("2026-11-29T02:30")),
        RunStep::Release { wave: 0, stage: 0 }
    );
}

#[test]
fn a_run_with_no_targets_completes() {
    let mut run = start(
        r#"{"targets": {"thingGroup": "empty"}}"#,
        at("2026-11-28T10:00"),
    );
    run.assign_waves(0, 3, at("2026-11-28T10:00"));
    assert_eq!(
        run.next_step(at("2026-11-28T10:00")),
        RunStep::Finish(RunStatus::Completed)
    );
}

#[test]
fn a_passed_gate_advances_to_the_next_stage_then_the_next_wave() {
    let now = at("2026-11-28T10:00");
    let mut run = start(r#"{"targets": {"things": ["a", "b"]}, "waves": [1]}"#, now);
    run.assign_waves(2, 3, now);
    assert_eq!(run.wave_sizes, [1, 1]);
    run.released = true;
    run.counts[0][0] = counts(1, 1, 0, 0);
    assert_eq!(run.next_step(now), RunStep::Advance { wave: 0, stage: 0 });
    assert!(run.advance(0, 0, 3, now));
    assert!(
        !run.advance(0, 0, 3, now),
        "a redelivered advance is a no-op"
    );
    assert_eq!((run.wave, run.stage, run.released), (0, 1, false));
    run.stage = 2;
    run.released = true;
    run.counts[0][2] = counts(1, 1, 0, 0);
    assert!(run.advance(0, 2, 3, now));
    assert_eq!(
        (run.wave, run.stage),
        (1, 0),
        "the next wave starts at the first stage"
    );
}

#[test]
fn a_missed_gate_holds_the_run_and_a_resume_passes_it_with_who() {
    let now = at("2026-11-28T10:00");
    let mut run = start(
        r#"{"targets": {"things": ["a", "b"]}, "gates": {"download": {"minSuccessPercentage": 100}}}"#,
        now,
    );
    run.assign_waves(2, 3, now);
    run.released = true;
    run.counts[0][0] = counts(2, 1, 1, 0);
    let RunStep::Hold(hold) = run.next_step(now) else {
        panic!("expected a hold")
    };
    assert_eq!(
        hold,
        Hold {
            wave: 0,
            stage: 0,
            succeeded: 1,
            required: 2,
            manual_approval: false
        }
    );
    run.hold(hold, now);
    assert_eq!(run.next_step(now), RunStep::Idle);
    assert!(run.resume("alice", 3, now));
    assert!(!run.resume("alice", 3, now), "resuming twice does nothing");
    assert_eq!(run.status, RunStatus::InProgress);
    assert_eq!(run.resumed[0].by, "alice");
    assert_eq!((run.wave, run.stage), (0, 1));
}

#[test]
fn stragglers_held_by_a_closed_window_are_released_when_the_next_opens() {
    // 2026-11-28 is a Saturday; the window is every day 02:00-03:00.
    let mut run = start(
        r#"{"targets": {"things": ["a", "b"]}, "schedulingConfig": {"maintenanceWindows": [{"startTime": "0 2 * * *", "durationInMinutes": 60}]}}"#,
        at("2026-11-28T02:00"),
    );
    run.assign_waves(2, 3, at("2026-11-28T02:00"));
    run.released = true;
    run.stage = 1;
    run.counts[0][1] = counts(1, 0, 0, 0);
    assert!(run.passed(0, 0), "the wave passed stage 0's gate");
    assert!(
        !run.may_go_on(0, 0, at("2026-11-28T03:30")),
        "no window is open"
    );
    run.stragglers_waiting = true;
    assert_eq!(
        run.wake_at(at("2026-11-28T03:30")),
        Some(at("2026-11-29T02:00"))
    );
    assert_eq!(run.next_step(at("2026-11-28T03:30")), RunStep::Idle);
    assert_eq!(
        run.next_step(at("2026-11-29T02:00")),
        RunStep::ReleaseStragglers
    );
}

#[test]
fn a_failure_threshold_aborts_the_run_even_while_held() {
    let now = at("2026-11-28T10:00");
    let mut run = start(
        r#"{"targets": {"things": ["a", "b", "c"]}, "gates": {"install": {"abort": {"failedCount": 2}}}}"#,
        now,
    );
    run.assign_waves(3, 3, now);
    run.released = true;
    run.counts[0][1] = counts(3, 1, 1, 1);
    assert_eq!(run.next_step(now), RunStep::Abort { stage: 1 });
}

#[test]
fn the_end_time_applies_the_end_behaviour() {
    let now = at("2026-11-28T10:00");
    let run = start(
        r#"{"targets": {"things": ["a"]}, "schedulingConfig": {"endTime": 1795870800, "endBehavior": "FORCE_CANCEL"}}"#,
        now,
    );
    let end = Timestamp::from_secs(1_795_870_800);
    let mut run = run;
    run.assign_waves(1, 3, now);
    run.released = true;
    assert_eq!(
        run.wake_at(now),
        Some(at("2026-11-28T10:05")),
        "released: the count check, before the end time"
    );
    assert_eq!(
        run.wake_at(at("2026-11-28T12:58")),
        Some(end),
        "released: the end time when it comes first"
    );
    assert_eq!(run.next_step(end), RunStep::End(EndBehavior::ForceCancel));
}

#[test]
fn a_cancel_without_force_waits_for_started_work() {
    let now = at("2026-11-28T10:00");
    let mut run = start(r#"{"targets": {"things": ["a", "b"]}}"#, now);
    run.assign_waves(2, 3, now);
    assert_eq!(
        run.cancel_effect(false),
        RunCancel::Canceled,
        "nothing started"
    );
    run.counts[0][0] = counts(2, 1, 0, 0);
    assert_eq!(run.cancel_effect(false), RunCancel::Canceling);
    assert_eq!(run.cancel_effect(true), RunCancel::Canceled);
    run.finish(RunStatus::Canceling, None, now);
    assert_eq!(
        run.next_step(now),
        RunStep::Sweep,
        "first the devices are told"
    );
    run.sweep_pending = false;
    assert_eq!(run.next_step(now), RunStep::Idle);
    assert_eq!(run.cancel_effect(false), RunCancel::AlreadyCanceled);
    run.counts[0][0] = counts(2, 2, 0, 0);
    assert_eq!(run.next_step(now), RunStep::Finish(RunStatus::Canceled));
    run.finish(RunStatus::Completed, None, now);
    assert_eq!(run.cancel_effect(true), RunCancel::Ended);
}

// ---- a whole run, driven by the rules alone -------------------------------

/// The fleet's answer for one operation: `dev-07` fails its install.
fn device_answer(thing: &ThingName, stage: u32, operation: u32) -> ExecutionStatus {
    if thing.as_str() == "dev-07" && stage == 1 && operation == 0 {
        ExecutionStatus::Failed
    } else {
        ExecutionStatus::Succeeded
    }
}

/// Performs steps until the run is idle and no device has work, as the
/// functions would (each device answers at once); `approve` resumes holds.
fn drive(
    run: &mut PipelineRun,
    p: &Pipeline,
    fleet: Vec<ThingName>,
    approve: bool,
) -> Vec<TargetRun> {
    let now = at("2026-11-28T10:00");
    let mut targets: Vec<TargetRun> = Vec::new();
    let mut ids = 0u32;
    let mut next_id = || {
        ids += 1;
        ExecutionId::parse(&format!("e-{ids}")).unwrap()
    };
    for _ in 0..10_000 {
        // Devices answer.
        let mut moved = false;
        for t in targets.iter_mut() {
            let Some(_) = t.waiting_on() else { continue };
            let status = device_answer(&t.thing_name, t.stage, t.operation);
            let step = t.after_execution(p, status).unwrap();
            t.apply(step, status);
            moved = true;
            match step {
                TargetStep::Next { operation } => t.start_operation(operation, next_id()),
                TargetStep::Settled {
                    outcome,
                    goes_on,
                    status,
                } => {
                    let (status, tally) = run.settle(t, outcome, goes_on, status);
                    t.status = status;
                    run.count(&tally);
                    if tally.went_on && run.may_go_on(t.wave, t.stage, now) {
                        let stage = t.next_stage();
                        t.start_stage(p, stage, next_id(), now);
                    }
                }
            }
        }
        run.derive_entered();
        match run.next_step(now) {
            RunStep::Idle if !moved => {
                if run.status == RunStatus::Held && approve {
                    run.resume("operator", p.stages.len(), now);
                    continue;
                }
                return targets;
            }
            RunStep::Idle => {}
            RunStep::Start => {
                let ordered = wave_order(&run.run_id, fleet.clone());
                run.assign_waves(ordered.len() as u64, p.stages.len(), now);
                let mut i = 0;
                for (w, size) in run.wave_sizes.clone().iter().enumerate() {
                    for _ in 0..*size {
                        targets.push(TargetRun::new(ordered[i].clone(), w as u32));
                        i += 1;
                    }
                }
            }
            RunStep::Release { wave, stage } => {
                for t in targets.iter_mut().filter(|t| t.wave == wave) {
                    let ready = match t.status {
                        TargetStatus::Pending => stage == 0,
                        TargetStatus::Waiting => t.next_stage() == stage,
                        _ => false,
                    };
                    if ready {
                        t.start_stage(p, stage, next_id(), now);
                    }
                }
                run.released = true;
            }
            RunStep::Advance { wave, stage } => {
                run.advance(wave, stage, p.stages.len(), now);
            }
            RunStep::Hold(hold) => run.hold(hold, now),
            RunStep::Abort { .. } => run.finish(RunStatus::Aborted, None, now),
            RunStep::End(_) => run.finish(RunStatus::Stopped, None, now),
            RunStep::Finish(status) => run.finish(status, None, now),
            RunStep::ReleaseStragglers => run.stragglers_waiting = false,
            RunStep::Sweep => {
                for t in targets.iter_mut() {
                    if matches!(t.status, TargetStatus::Pending | TargetStatus::Waiting) {
                        let tally = run.skip(t);
                        t.status = TargetStatus::Skipped;
                        run.count(&tally);
                    }
                }
                run.sweep_pending = false;
            }
        }
    }
    panic!("the run never settled")
}

#[test]
fn twenty_devices_in_two_waves_finish_with_only_the_failing_one_stopped() {
    let p = pipeline();
    let mut run = start(
        r#"{"targets": {"thingGroup": "fleet"}, "waves": [1],
            "gates": {"install": {"minSuccessPercentage": 90}}}"#,
        at("2026-11-28T10:00"),
    );
    let targets = drive(&mut run, &p, things(20), false);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.wave_sizes, [1, 19]);
    let failed: Vec<&str> = targets
        .iter()
        .filter(|t| t.status != TargetStatus::Succeeded)
        .map(|t| t.thing_name.as_str())
        .collect();
    assert_eq!(failed, ["dev-07"]);
    let dev7 = targets
        .iter()
        .find(|t| t.thing_name.as_str() == "dev-07")
        .unwrap();
    assert_eq!(
        (dev7.status, dev7.stage, dev7.history.len()),
        (TargetStatus::Failed, 1, 2)
    );
    let install = run.stage_totals(1);
    assert_eq!(
        (install.entered, install.succeeded, install.failed),
        (20, 19, 1)
    );
    assert_eq!(run.stage_totals(2).entered, 19);
    assert_eq!(run.targets_ended, 20);
}

#[test]
fn a_manual_gate_holds_every_wave_until_resumed() {
    let p = pipeline();
    let mut run = start(
        r#"{"targets": {"thingGroup": "fleet"}, "waves": [1],
            "gates": {"download": {"manualApproval": true}}}"#,
        at("2026-11-28T10:00"),
    );
    let body = run.clone();
    drive(&mut run, &p, things(4), false);
    assert_eq!(run.status, RunStatus::Held);
    assert_eq!((run.wave, run.stage), (0, 0));
    let mut run = body;
    drive(&mut run, &p, things(4), true);
    assert_eq!(run.status, RunStatus::Completed);
    let held: Vec<(u32, u32)> = run.resumed.iter().map(|r| (r.wave, r.stage)).collect();
    assert_eq!(held, [(0, 0), (1, 0)]);
}

#[test]
fn a_failure_threshold_aborts_a_run_and_nothing_new_starts() {
    let p = pipeline();
    let mut run = start(
        r#"{"targets": {"thingGroup": "fleet"},
            "gates": {"install": {"abort": {"failedCount": 1}}}}"#,
        at("2026-11-28T10:00"),
    );
    let targets = drive(&mut run, &p, things(20), false);
    assert_eq!(run.status, RunStatus::Aborted);
    assert!(!run.sweep_pending, "the devices that waited were swept");
    assert!(
        targets.iter().all(|t| matches!(
            t.status,
            TargetStatus::Failed | TargetStatus::Canceled | TargetStatus::Skipped
        )),
        "devices that settled after the abort did not go on: {targets:?}"
    );
    assert!(
        targets.iter().all(|t| t.stage <= 1),
        "no device started verify after the abort"
    );
}

#[test]
fn a_runs_execution_reads_the_same_through_serde_and_the_browser_codec() {
    use courier_core::codec::ToJson;
    use courier_core::CommandExecution;
    let p = pipeline();
    let run = start(
        r#"{"targets": {"thingGroup": "fleet"}}"#,
        at("2026-11-28T10:00"),
    );
    let definition: CommandDefinition = serde_json::from_str(r#"{"commandId": "reboot"}"#).unwrap();
    let at_op = RunOperation {
        stage: 1,
        operation: 1,
        stage_deadline: at("2026-11-28T10:05"),
        failed_in_stage: true,
    };
    let execution = run
        .operation_execution(
            &p,
            &definition.validator().unwrap(),
            at_op,
            ThingName::parse("dev-1").unwrap(),
            ExecutionId::parse("e-1").unwrap(),
            at("2026-11-28T10:00"),
        )
        .unwrap();
    assert_eq!(execution.run_operation, Some(at_op));
    assert_eq!(
        execution.complete_by,
        at("2026-11-28T10:05"),
        "done by the stage's deadline"
    );
    let by_serde = serde_json::to_value(&execution).unwrap();
    assert_eq!(serde_json::to_value(execution.to_json()).unwrap(), by_serde);
    assert_eq!(
        CommandExecution::from_json(&execution.to_json()).unwrap(),
        execution
    );
}

#[test]
fn a_run_left_to_sweep_wakes_the_sweeper_a_minute_later_until_swept() {
    let p = pipeline();
    let now = at("2026-11-28T10:00");
    let mut run = start(r#"{"targets": {"thingGroup": "fleet"}}"#, now);
    run.assign_waves(3, p.stages.len(), now);
    run.finish(RunStatus::Canceled, None, now);
    assert!(run.sweep_pending);
    assert_eq!(run.wake_at(now), Some(at("2026-11-28T10:01")));
    assert_eq!(run.next_step(at("2026-11-28T10:01")), RunStep::Sweep);
    run.sweep_pending = false;
    assert_eq!(run.wake_at(now), None);
}

#[test]
fn a_recount_from_the_devices_records_gives_the_counts_their_tallies_give() {
    let p = pipeline();
    let now = at("2026-11-28T10:00");
    let mut run = start(r#"{"targets": {"thingGroup": "fleet"}, "waves": [2]}"#, now);
    run.assign_waves(4, p.stages.len(), now);
    run.released = true;
    let device = |wave: u32, outcomes: &str, status: TargetStatus| {
        let mut t = TargetRun::new(ThingName::parse("d").unwrap(), wave);
        t.outcomes = outcomes.into();
        t.status = status;
        t
    };
    let targets = [
        device(0, "S", TargetStatus::Waiting),
        device(0, "F", TargetStatus::Failed),
        device(1, "", TargetStatus::Pending),
        device(1, "", TargetStatus::Pending),
    ];
    // The same through tallies, one of them counted twice.
    let mut counted = run.clone();
    for t in &targets[..2] {
        let outcome = StageOutcome::from_letter(t.outcomes.chars().next().unwrap());
        let tally = courier_core::pipeline_run::Tally {
            wave: 0,
            stage: 0,
            outcome,
            went_on: t.status == TargetStatus::Waiting,
            ended: t.status.is_terminal(),
        };
        counted.count(&tally);
        counted.count(&tally);
    }
    counted.derive_entered();
    assert_eq!(counted.counts_at(0, 0).succeeded, 2, "counted twice");
    run.recount(&targets);
    let exact = run.counts_at(0, 0);
    assert_eq!(
        (exact.entered, exact.succeeded, exact.failed, exact.went_on),
        (2, 1, 1, 1)
    );
    assert_eq!(run.targets_ended, 1);
    assert!(RunStep::Advance { wave: 0, stage: 0 }.decided_by_counts());
    // Counted twice, the wave looks one device short of settled: near a
    // decision, so the step is chosen on a recount.
    counted.released = true;
    assert!(counted.near_decision());
    assert!(!RunStep::Release { wave: 0, stage: 0 }.decided_by_counts());
}
