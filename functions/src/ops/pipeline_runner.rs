//! THE PIPELINE RUNNER: a run's steps, chosen by
//! `courier_core::pipeline_run` (`PipelineRun::next_step`) and performed
//! here — start (resolve the targets, put them in waves), release a stage
//! to a wave's devices, advance past a gate, hold, abort, end, sweep. (A
//! device's moves are in `pipeline_targets`.) I/O through the store and
//! the thing-group resolver.
//!
//! Who calls: the dispatcher, for every change of a run record and every
//! batch of its devices' tallies on the table stream; the sweeper, for
//! runs whose wake time came (start and end times, windows, the periodic
//! recount of a run waiting on its devices). Every write is conditional
//! (the run on its version, an execution on its absence), so a redelivered
//! event or a racing caller changes nothing twice.

use super::pipelines::reason;
use super::Courier;
use crate::error::ServiceError;
use crate::platform::ids;
use crate::platform::thing_groups::ThingGroups;
use crate::store::pipeline_store::PipelineStore;
use crate::store::{PageRequest, StoreError};
use courier_core::job_run::{JobTargets, GROUP_PAGE};
use courier_core::pipeline::{Pipeline, MAX_STAGES};
use courier_core::pipeline_run::{
    stage_deadline, wave_order, EndBehavior, PipelineRun, RunStatus, RunStep, TargetRun,
    TargetStatus, MAX_RUN_TARGETS,
};
use courier_core::{CommandExecution, RunId, RunOperation, ThingName, Timestamp};

/// What one step did (logged, and returned to tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunReport {
    Idle,
    Started {
        targets: usize,
    },
    Released {
        wave: u32,
        stage: u32,
        started: usize,
    },
    Advanced,
    Held,
    Ended(RunStatus),
    Swept {
        skipped: usize,
        canceled: usize,
    },
    StragglersReleased {
        started: usize,
    },
    /// Another writer changed the run first; its change starts the next step.
    Raced,
    Gone,
}

/// Steps one event may take a run through before leaving the rest to the
/// next event (each step is one conditional write of the run).
const MAX_STEPS: usize = 8;
/// Target runs read per page while releasing or sweeping.
const TARGET_PAGE: u32 = 100;

impl<S: PipelineStore> Courier<S> {
    /// The run and its pipeline (counts sized to its stages).
    pub(super) async fn run_and_pipeline(
        &self,
        id: &RunId,
        now: Timestamp,
    ) -> Result<Option<(PipelineRun, Pipeline)>, ServiceError> {
        let Some(mut run) = self.store().get_run(id, MAX_STAGES, now).await? else {
            return Ok(None);
        };
        let Some(pipeline) = self.store().get_pipeline(&run.pipeline_id).await? else {
            return Err(ServiceError::Internal(format!(
                "run {id} names pipeline {}, which does not exist",
                run.pipeline_id
            )));
        };
        for wave in &mut run.counts {
            wave.truncate(pipeline.stages.len());
        }
        Ok(Some((run, pipeline)))
    }

    /// Takes the run's next steps until it is idle, raced, or has taken
    /// [`MAX_STEPS`]; returns the last step's report.
    pub async fn run_pipeline<G: ThingGroups>(
        &self,
        groups: &G,
        id: &RunId,
        now: Timestamp,
    ) -> Result<RunReport, ServiceError> {
        self.run_pipeline_with(groups, id, now, false).await
    }

    /// [`Self::run_pipeline`]; with `recount`, the first step is chosen on
    /// counts recounted from the devices' records whatever it is (the
    /// sweeper's periodic look at a run waiting on its devices).
    pub async fn run_pipeline_with<G: ThingGroups>(
        &self,
        groups: &G,
        id: &RunId,
        now: Timestamp,
        mut recount: bool,
    ) -> Result<RunReport, ServiceError> {
        let mut last = RunReport::Idle;
        for _ in 0..MAX_STEPS {
            let report = Box::pin(self.run_step(groups, id, now, recount)).await?;
            recount = false;
            if report != RunReport::Idle {
                tracing::info!(run_id = %id, ?report, "run step");
            }
            match report {
                RunReport::Idle | RunReport::Raced | RunReport::Gone => {
                    return Ok(if last == RunReport::Idle {
                        report
                    } else {
                        last
                    })
                }
                other => last = other,
            }
        }
        Ok(last)
    }

    /// The run's next step (see `PipelineRun::next_step`). A step that
    /// follows from the counts (a gate, the failure threshold, the end), or
    /// any step while the counts are near a decision or with `recount`, is
    /// chosen on counts recounted from the devices' records: the counters
    /// can count a device twice after a stream batch is delivered again
    /// along other boundaries.
    pub async fn run_step<G: ThingGroups>(
        &self,
        groups: &G,
        id: &RunId,
        now: Timestamp,
        recount: bool,
    ) -> Result<RunReport, ServiceError> {
        let Some((mut run, pipeline)) = self.run_and_pipeline(id, now).await? else {
            return Ok(RunReport::Gone);
        };
        let mut step = run.next_step(now);
        if recount || step.decided_by_counts() || run.near_decision() {
            let targets = self.all_targets(&run.run_id, None, None).await?;
            run.recount(&targets);
            step = run.next_step(now);
        }
        let stages = pipeline.stages.len();
        let mut next = run.clone();
        let report = match step {
            RunStep::Idle => return Ok(RunReport::Idle),
            RunStep::Start => return self.start(groups, &run, &pipeline, now).await,
            RunStep::Release { wave, stage } => {
                let started = self.release(&run, &pipeline, wave, stage, now).await?;
                next.released = true;
                next.last_updated_at = now;
                RunReport::Released {
                    wave,
                    stage,
                    started,
                }
            }
            RunStep::Advance { wave, stage } => {
                next.advance(wave, stage, stages, now);
                RunReport::Advanced
            }
            RunStep::Hold(hold) => {
                next.hold(hold, now);
                RunReport::Held
            }
            RunStep::Abort { stage } => {
                let name = pipeline
                    .stages
                    .get(stage as usize)
                    .map_or("", |s| s.name.as_str());
                let why = format!("the failure threshold of stage {name} was reached");
                next.finish(
                    RunStatus::Aborted,
                    Some(reason("FAILURE_THRESHOLD", why)),
                    now,
                );
                RunReport::Ended(RunStatus::Aborted)
            }
            RunStep::End(behavior) => {
                let status = match behavior {
                    EndBehavior::StopRollout => RunStatus::Stopped,
                    EndBehavior::Cancel | EndBehavior::ForceCancel => RunStatus::Canceled,
                };
                next.cancel_force = behavior == EndBehavior::ForceCancel;
                let why = format!("the end time came ({})", behavior.as_str());
                next.finish(status, Some(reason("END_TIME", why)), now);
                RunReport::Ended(status)
            }
            RunStep::Finish(status) => {
                let kept = next.status_reason.take();
                next.finish(status, kept, now);
                // Everything ended by itself (or a cancel finished): nothing
                // is left to sweep that the cancel did not already sweep.
                next.sweep_pending = false;
                RunReport::Ended(status)
            }
            RunStep::ReleaseStragglers => {
                let started = self.release_stragglers(&run, &pipeline, now).await?;
                next.stragglers_waiting = false;
                next.last_updated_at = now;
                RunReport::StragglersReleased { started }
            }
            RunStep::Sweep => {
                let (skipped, canceled) = self.sweep_run(&run, &pipeline, now).await?;
                next.sweep_pending = false;
                next.last_updated_at = now;
                RunReport::Swept { skipped, canceled }
            }
        };
        match self.save_run(&next, &run).await {
            Ok(()) => Ok(report),
            Err(StoreError::Conflict(_)) => Ok(RunReport::Raced),
            Err(other) => Err(other.into()),
        }
    }

    /// Resolves the targets once, puts them in waves (ordered by a hash of
    /// the run and the thing), writes their target runs, then the run.
    async fn start<G: ThingGroups>(
        &self,
        groups: &G,
        run: &PipelineRun,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> Result<RunReport, ServiceError> {
        let mut things = match &run.targets {
            JobTargets::Things { .. } => self.store().run_things(run).await?,
            JobTargets::ThingGroup { .. } | JobTargets::Query { .. } => {
                let mut all: Vec<ThingName> = Vec::new();
                let mut token = None;
                loop {
                    let page = super::targets::targets_page(
                        groups,
                        &run.targets,
                        token.as_deref(),
                        GROUP_PAGE,
                    )
                    .await?;
                    all.extend(page.things);
                    token = page.next_token;
                    if token.is_none() || all.len() as u64 > run.max_targets {
                        break;
                    }
                }
                all
            }
        };
        let mut next = run.clone();
        let limit = usize::try_from(run.max_targets)
            .unwrap_or(MAX_RUN_TARGETS)
            .min(MAX_RUN_TARGETS);
        if things.len() > limit {
            let why = format!("the thing group holds more than {limit} things, the run's limit");
            next.finish(
                RunStatus::Canceled,
                Some(reason("TOO_MANY_TARGETS", why)),
                now,
            );
            return self
                .replace_run(&next, run, RunReport::Ended(RunStatus::Canceled))
                .await;
        }
        // Things another tenant owns get no execution (see `Store::claim_things`).
        let ours = self.store().claim_things(&things).await?;
        let mut owned = ours.into_iter();
        things.retain(|_| owned.next().unwrap_or(false));
        let ordered = wave_order(&run.run_id, things);
        next.assign_waves(ordered.len() as u64, pipeline.stages.len(), now);
        let mut targets = Vec::with_capacity(ordered.len());
        let mut remaining = ordered.into_iter();
        for (wave, size) in next.wave_sizes.iter().enumerate() {
            for thing in remaining.by_ref().take(usize::try_from(*size).unwrap_or(0)) {
                targets.push(TargetRun::new(thing, wave as u32));
            }
        }
        self.store().put_targets(&next, &targets).await?;
        let report = RunReport::Started {
            targets: targets.len(),
        };
        self.replace_run(&next, run, report).await
    }

    /// Writes `next` over `run` (conditioned on its version); the change
    /// that ends it also leaves the tenant's active runs.
    pub(super) async fn save_run(
        &self,
        next: &PipelineRun,
        run: &PipelineRun,
    ) -> Result<(), StoreError> {
        if next.status.is_terminal() && !run.status.is_terminal() {
            self.store().end_run(next, run.version).await
        } else {
            self.store().put_run(next, run.version).await
        }
    }

    async fn replace_run(
        &self,
        next: &PipelineRun,
        run: &PipelineRun,
        report: RunReport,
    ) -> Result<RunReport, ServiceError> {
        match self.save_run(next, run).await {
            Ok(()) => Ok(report),
            Err(StoreError::Conflict(_)) => Ok(RunReport::Raced),
            Err(other) => Err(other.into()),
        }
    }

    /// Every target run of `run` (only `wave`'s, or only those in
    /// `status`, when given), read page by page.
    pub(super) async fn all_targets(
        &self,
        run: &RunId,
        wave: Option<u32>,
        status: Option<TargetStatus>,
    ) -> Result<Vec<TargetRun>, ServiceError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .store()
                .list_targets(
                    run,
                    wave,
                    status,
                    PageRequest {
                        limit: TARGET_PAGE,
                        start,
                    },
                )
                .await?;
            all.extend(page.items);
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Starts `stage` for every device of `wave` that waits for it.
    async fn release(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        wave: u32,
        stage: u32,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let mut started = 0;
        for target in self.all_targets(&run.run_id, Some(wave), None).await? {
            let ready = match target.status {
                TargetStatus::Pending => stage == 0,
                TargetStatus::Waiting => target.next_stage() == stage,
                _ => false,
            };
            if ready && self.start_stage(run, pipeline, &target, stage, now).await? {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Starts the next stage of every waiting device whose wave already
    /// passed that stage's gate.
    async fn release_stragglers(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let mut started = 0;
        let waiting = self
            .all_targets(&run.run_id, None, Some(TargetStatus::Waiting))
            .await?;
        for target in waiting {
            if run.passed(target.wave, target.stage)
                && self
                    .start_stage(run, pipeline, &target, target.next_stage(), now)
                    .await?
            {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Starts `stage` for `target`: its first operation's execution, put
    /// once (its id names the run, the thing, the stage and the operation,
    /// so a repeated start writes nothing). Nothing else is written: the
    /// target run is written when it settles the stage. `false` if it had
    /// started it already.
    pub(super) async fn start_stage(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        target: &TargetRun,
        stage: u32,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let at = RunOperation {
            stage,
            operation: 0,
            stage_deadline: stage_deadline(pipeline, stage, now),
            failed_in_stage: false,
        };
        let execution = self
            .operation_execution(run, pipeline, &target.thing_name, at, now)
            .await?;
        Ok(self.store().put_run_execution(&execution).await?)
    }

    /// The execution of the operation `at` names, for `thing`.
    pub(super) async fn operation_execution(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        thing: &ThingName,
        at: RunOperation,
        now: Timestamp,
    ) -> Result<CommandExecution, ServiceError> {
        let missing = || {
            ServiceError::Internal(format!(
                "run {} has no operation {}.{}",
                run.run_id, at.stage, at.operation
            ))
        };
        let op = pipeline
            .operation(at.stage as usize, at.operation as usize)
            .ok_or_else(missing)?;
        let validator = self.validator(op.command_id.as_str()).await?;
        let protocol = validator.definition().protocol;
        let id = ids::run_execution_id(&run.run_id, thing, at.stage, at.operation, protocol);
        run.operation_execution(pipeline, &validator, at, thing.clone(), id, now)
            .ok_or_else(missing)
    }

    /// Steps for every run whose wake time came (the sweeper); a run with
    /// nothing to do is filed under its next wake time.
    pub async fn sweep_runs<G: ThingGroups>(
        &self,
        groups: &G,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let due = self.store().due_runs(now, 100).await?;
        let count = due.len();
        for (tenant, run_id) in due {
            let courier = self.for_tenant(&tenant);
            let report = Box::pin(courier.run_pipeline_with(groups, &run_id, now, true)).await?;
            if report == RunReport::Idle {
                if let Some((run, _)) = courier.run_and_pipeline(&run_id, now).await? {
                    let mut refiled = run.clone();
                    refiled.last_updated_at = now;
                    // Lost to a concurrent change: that change re-filed it.
                    let _ = courier.store().put_run(&refiled, run.version).await;
                }
            }
        }
        Ok(count)
    }
}
