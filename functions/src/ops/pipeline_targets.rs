//! A DEVICE'S MOVES IN A PIPELINE RUN: when one of its executions ends
//! (its next operation, or the end of its stage, counted), when its stage
//! times out, and when its run stops moving (a waiting device is skipped, a
//! running one's execution canceled). Rules from
//! `courier_core::pipeline_run` (`TargetRun::after_execution`); I/O through
//! the store. Each change is one conditional write of the target run
//! (`PipelineStore::change_target`), so repeated news changes nothing.

use super::pipelines::reason;
use super::Courier;
use crate::error::ServiceError;
use crate::platform::thing_groups::ThingGroups;
use crate::store::pipeline_layout::outcome_field;
use crate::store::pipeline_store::{CountChanges, PipelineStore};
use courier_core::pipeline_run::{PipelineRun, RunStatus, StageOutcome, TargetStatus, TargetStep};
use courier_core::{CommandExecution, ExecutionStatus, StatusUpdate, Timestamp, TransitionPlan};

impl<S: PipelineStore> Courier<S> {
    /// A run's execution ended: its device's next operation, or the end of
    /// its stage (counted; the next stage if its wave already passed the
    /// gate), then the run's next steps. Stale or repeated news is ignored.
    pub async fn run_execution_ended<G: ThingGroups>(
        &self,
        groups: &G,
        execution: &CommandExecution,
        now: Timestamp,
    ) -> Result<&'static str, ServiceError> {
        let Some(run_id) = &execution.run_id else {
            return Ok("not a run's execution");
        };
        if !execution.status.is_terminal() {
            return Ok("not ended");
        }
        let Some((run, pipeline)) = self.run_and_pipeline(run_id, now).await? else {
            return Ok("run gone");
        };
        let Some(target) = self.store().get_target(run_id, &execution.target).await? else {
            return Ok("no such target run");
        };
        if target.waiting_on() != Some(&execution.execution_id) {
            return Ok("already handled");
        }
        let Some(step) = target.after_execution(&pipeline, execution.status) else {
            return Ok("nothing to do");
        };
        let mut next = target.clone();
        next.apply(step, execution.status);
        let changed = match step {
            TargetStep::Next { operation } if run.continues_stages() => {
                let new = self
                    .operation_execution(
                        &run,
                        &pipeline,
                        &target.thing_name,
                        target.stage,
                        operation,
                        now,
                    )
                    .await?;
                next.start_operation(operation, new.execution_id.clone());
                self.store()
                    .change_target(
                        &run,
                        &next,
                        target.version,
                        &CountChanges::default(),
                        Some(&new),
                    )
                    .await?
            }
            TargetStep::Next { .. } => {
                // Canceled or aborted mid-stage: the device stops here.
                next.status = TargetStatus::Canceled;
                next.stage_deadline = None;
                let counts = CountChanges {
                    add: vec![(
                        target.wave,
                        target.stage,
                        outcome_field(StageOutcome::Canceled),
                    )],
                    ended: true,
                };
                self.store()
                    .change_target(&run, &next, target.version, &counts, None)
                    .await?
            }
            TargetStep::Settled {
                outcome,
                goes_on,
                status,
            } => {
                let moving = matches!(run.status, RunStatus::InProgress | RunStatus::Held);
                let status = match run.status {
                    // It would wait for a stage that never comes.
                    RunStatus::Stopped if goes_on => TargetStatus::Skipped,
                    _ if goes_on && !moving => TargetStatus::Canceled,
                    _ => status,
                };
                next.status = status;
                let counts = CountChanges {
                    add: vec![(target.wave, target.stage, outcome_field(outcome))],
                    ended: status.is_terminal(),
                };
                if goes_on && run.may_go_on(target.wave, target.stage, now) {
                    // A straggler whose wave passed the gate already.
                    self.start_stage(&run, &pipeline, &next, target.stage + 1, counts, now)
                        .await?
                } else if goes_on && run.passed(target.wave, target.stage) {
                    // ... but no window is open: it waits for the next one,
                    // which the run is told to wake for.
                    let waiting = self
                        .store()
                        .change_target(&run, &next, target.version, &counts, None)
                        .await?;
                    if waiting {
                        self.mark_stragglers(run_id, now).await?;
                    }
                    waiting
                } else {
                    self.store()
                        .change_target(&run, &next, target.version, &counts, None)
                        .await?
                }
            }
        };
        if !changed {
            return Ok("already handled");
        }
        self.run_pipeline(groups, run_id, now).await?;
        Ok("run advanced")
    }

    /// Devices whose stage deadline passed count as timed out and stop;
    /// their pending execution is canceled. Returns how many.
    pub async fn time_out_targets<G: ThingGroups>(
        &self,
        groups: &G,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let mut timed_out = 0;
        for (tenant, run_id, thing) in self.store().due_targets(now, 100).await? {
            let courier = self.for_tenant(&tenant);
            let Some((run, _)) = courier.run_and_pipeline(&run_id, now).await? else {
                continue;
            };
            let Some(target) = courier.store().get_target(&run_id, &thing).await? else {
                continue;
            };
            if !target.stage_timed_out(now) {
                continue;
            }
            let mut next = target.clone();
            next.status = TargetStatus::TimedOut;
            next.stage_deadline = None;
            let counts = CountChanges {
                add: vec![(
                    target.wave,
                    target.stage,
                    outcome_field(StageOutcome::TimedOut),
                )],
                ended: true,
            };
            if courier
                .store()
                .change_target(&run, &next, target.version, &counts, None)
                .await?
            {
                timed_out += 1;
                if let Some(id) = target.waiting_on() {
                    let why = format!("stage {} of run {run_id} timed out", target.stage);
                    courier
                        .cancel_run_execution(id, &run, false, "STAGE_TIMED_OUT", why, now)
                        .await?;
                }
                Box::pin(courier.run_pipeline(groups, &run_id, now)).await?;
            }
        }
        Ok(timed_out)
    }

    /// Skips the devices of a run that stopped moving which wait, and
    /// (unless it STOPPED) cancels the executions of those running.
    pub(super) async fn sweep_run(
        &self,
        run: &PipelineRun,
        now: Timestamp,
    ) -> Result<(usize, usize), ServiceError> {
        let (mut skipped, mut canceled) = (0, 0);
        for target in self.all_targets(&run.run_id, None, None).await? {
            match target.status {
                TargetStatus::Pending | TargetStatus::Waiting => {
                    let mut next = target.clone();
                    next.status = TargetStatus::Skipped;
                    let counts = CountChanges {
                        add: Vec::new(),
                        ended: true,
                    };
                    if self
                        .store()
                        .change_target(run, &next, target.version, &counts, None)
                        .await?
                    {
                        skipped += 1;
                    }
                }
                TargetStatus::Running if run.status != RunStatus::Stopped => {
                    if let Some(id) = target.waiting_on() {
                        let why =
                            format!("run {} {}", run.run_id, run.status.as_str().to_lowercase());
                        if self
                            .cancel_run_execution(
                                id,
                                run,
                                run.cancel_force,
                                "RUN_CANCELED",
                                why,
                                now,
                            )
                            .await?
                        {
                            canceled += 1;
                        }
                    }
                }
                TargetStatus::Running
                | TargetStatus::Succeeded
                | TargetStatus::Failed
                | TargetStatus::TimedOut
                | TargetStatus::Canceled
                | TargetStatus::Skipped => {}
            }
        }
        Ok((skipped, canceled))
    }

    /// Cancels a run's execution (with `force`, even started work); `false`
    /// if it had ended or started (without force) already.
    async fn cancel_run_execution(
        &self,
        id: &courier_core::ExecutionId,
        run: &PipelineRun,
        force: bool,
        code: &str,
        description: String,
        now: Timestamp,
    ) -> Result<bool, ServiceError> {
        let update = StatusUpdate {
            status: Some(ExecutionStatus::Canceled),
            status_reason: Some(reason(code, description)),
            ..StatusUpdate::default()
        };
        let by = run
            .canceled_by
            .clone()
            .unwrap_or_else(|| format!("run/{}", run.run_id));
        let plan = TransitionPlan::cancel(update, &by, force, now);
        let token = format!("run-cancel:{}:{id}", run.run_id);
        self.cancel_if_still_pending(id, &plan, &token).await
    }

    /// Tells the run a straggler waits for a window (a versioned write;
    /// another writer's change is read and the mark made on it).
    async fn mark_stragglers(
        &self,
        run_id: &courier_core::RunId,
        now: Timestamp,
    ) -> Result<(), ServiceError> {
        for _ in 0..5 {
            let Some((run, _)) = self.run_and_pipeline(run_id, now).await? else {
                return Ok(());
            };
            if run.stragglers_waiting {
                return Ok(());
            }
            let mut marked = run.clone();
            marked.stragglers_waiting = true;
            marked.last_updated_at = now;
            match self.save_run(&marked, &run).await {
                Ok(()) => return Ok(()),
                Err(crate::store::StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(format!(
            "run {run_id} kept changing while a straggler was recorded"
        )))
    }
}
