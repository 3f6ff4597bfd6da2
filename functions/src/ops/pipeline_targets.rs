//! A DEVICE'S MOVES IN A PIPELINE RUN: when one of its executions ends
//! (its next operation, or the end of its stage), when its run stops
//! moving (a device that has not started its next stage is skipped, a
//! running one's execution canceled), and how a device is shown. Rules from
//! `courier_core::pipeline_run` (`TargetRun::resume`, `after_execution_at`,
//! `PipelineRun::settle`); I/O through the store.
//!
//! Where a device stands is split in two (see `store::pipeline_layout`):
//! its target run record, written when the run starts and when it settles
//! a stage, and — while it runs a stage — its executions, each carrying
//! its operation (`runOperation`). The next operation is one conditional
//! put of its execution; settling a stage is one write of the record,
//! conditioned on its version, with the tally the stream counts. So
//! repeated news changes nothing, and nothing is written per operation
//! but the execution itself.

use super::pipelines::reason;
use super::Courier;
use crate::error::ServiceError;
use crate::platform::ids;
use crate::store::pipeline_store::PipelineStore;
use courier_core::pipeline::Pipeline;
use courier_core::pipeline_run::{
    PipelineRun, RunStatus, StageOutcome, Tally, TargetRun, TargetStatus, TargetStep,
};
use courier_core::{
    CommandExecution, DeviceProtocol, ExecutionId, ExecutionStatus, RunId, StatusUpdate, ThingName,
    Timestamp, TransitionPlan,
};
use std::collections::HashMap;

/// The executions of a stage's operations (`protocols`, in order) for `thing`.
fn ids_of(
    run: &RunId,
    thing: &ThingName,
    stage: u32,
    protocols: &[DeviceProtocol],
) -> Vec<ExecutionId> {
    protocols
        .iter()
        .enumerate()
        .map(|(op, protocol)| ids::run_execution_id(run, thing, stage, op as u32, *protocol))
        .collect()
}

impl<S: PipelineStore> Courier<S> {
    /// The device protocol of each operation of `stage` (its command's).
    async fn stage_protocols(
        &self,
        pipeline: &Pipeline,
        stage: u32,
    ) -> Result<Vec<DeviceProtocol>, ServiceError> {
        let mut protocols = Vec::new();
        if let Some(stage) = pipeline.stages.get(stage as usize) {
            for op in &stage.operations {
                let validator = self.validator(op.command_id.as_str()).await?;
                protocols.push(validator.definition().protocol);
            }
        }
        Ok(protocols)
    }

    /// The executions of `stage`'s operations for `thing`, in order.
    async fn stage_ids(
        &self,
        run: &RunId,
        pipeline: &Pipeline,
        thing: &ThingName,
        stage: u32,
    ) -> Result<Vec<ExecutionId>, ServiceError> {
        Ok(ids_of(
            run,
            thing,
            stage,
            &self.stage_protocols(pipeline, stage).await?,
        ))
    }

    /// A run's execution ended: its device's next operation, or the end of
    /// its stage (the record written with its tally; the next stage at once
    /// if its wave already passed the gate). The run's next step follows
    /// once the dispatcher has counted the tally. Stale or repeated news is
    /// ignored.
    pub async fn run_execution_ended(
        &self,
        execution: &CommandExecution,
        now: Timestamp,
    ) -> Result<&'static str, ServiceError> {
        let (Some(run_id), Some(at)) = (&execution.run_id, execution.run_operation) else {
            return Ok("not a run's execution");
        };
        if !execution.status.is_terminal() {
            return Ok("not ended");
        }
        let Some((run, pipeline)) = self.run_and_pipeline(run_id, now).await? else {
            return Ok("run gone");
        };
        let Some(stored) = self.store().get_target(run_id, &execution.target).await? else {
            return Ok("no such target run");
        };
        let all = self
            .stage_ids(run_id, &pipeline, &execution.target, at.stage)
            .await?;
        let ids = all.get(..=at.operation as usize).unwrap_or_default();
        if ids.last() != Some(&execution.execution_id) {
            return Ok("not this run's operation");
        }
        let Some(target) = stored.resume(&pipeline, at, ids) else {
            // Settled already (a redelivery): one that went on has started
            // its next stage, unless the write before that start was all
            // that happened.
            if stored.status == TargetStatus::Waiting
                && stored.stage == at.stage
                && run.may_go_on(stored.wave, stored.stage, now)
            {
                self.start_stage(&run, &pipeline, &stored, at.stage + 1, now)
                    .await?;
            }
            return Ok("already handled");
        };
        let ended_at = execution.completed_at.unwrap_or(execution.last_updated_at);
        let Some(step) = target.after_execution_at(&pipeline, execution.status, ended_at) else {
            return Ok("nothing to do");
        };
        let mut next = target.clone();
        next.apply(step, execution.status);
        match step {
            TargetStep::Next { operation } if run.continues_stages() => {
                let Some(id) = all.get(operation as usize) else {
                    return Ok("nothing to do");
                };
                next.start_operation(operation, id.clone());
                let Some(at) = next.run_operation() else {
                    return Ok("nothing to do");
                };
                let new = self
                    .operation_execution(&run, &pipeline, &target.thing_name, at, now)
                    .await?;
                Ok(if self.store().put_run_execution(&new).await? {
                    "next operation started"
                } else {
                    "already handled"
                })
            }
            TargetStep::Next { .. } => {
                // Canceled or aborted mid-stage: the device stops here.
                next.status = TargetStatus::Canceled;
                next.stage_deadline = None;
                let tally = Tally {
                    wave: target.wave,
                    stage: target.stage,
                    outcome: Some(StageOutcome::Canceled),
                    went_on: false,
                    ended: true,
                };
                next.record(&tally);
                self.settle(&run, &next, stored.version, &tally).await
            }
            TargetStep::Settled {
                outcome,
                goes_on,
                status,
            } => {
                let (status, tally) = run.settle(&target, outcome, goes_on, status);
                next.status = status;
                next.record(&tally);
                let did = self.settle(&run, &next, stored.version, &tally).await?;
                if did != "settled" || !tally.went_on {
                    return Ok(did);
                }
                if run.may_go_on(target.wave, target.stage, now) {
                    // A straggler whose wave passed the gate already.
                    self.start_stage(&run, &pipeline, &next, target.stage + 1, now)
                        .await?;
                } else if run.passed(target.wave, target.stage) {
                    // ... but no window is open: it waits for the next one,
                    // which the run is told to wake for.
                    self.mark_stragglers(run_id, now).await?;
                }
                Ok(did)
            }
        }
    }

    async fn settle(
        &self,
        run: &PipelineRun,
        next: &TargetRun,
        version: u64,
        tally: &Tally,
    ) -> Result<&'static str, ServiceError> {
        Ok(
            if self
                .store()
                .settle_target(run, next, version, tally)
                .await?
            {
                "settled"
            } else {
                "already handled"
            },
        )
    }

    /// The execution `target` runs in `stage` now (its latest operation's),
    /// if it has started that stage.
    async fn current_execution(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        target: &TargetRun,
        stage: u32,
        now: Timestamp,
    ) -> Result<Option<CommandExecution>, ServiceError> {
        let ids = self
            .stage_ids(&run.run_id, pipeline, &target.thing_name, stage)
            .await?;
        let found = self.store().run_executions(&ids, now).await?;
        Ok(found
            .into_iter()
            .max_by_key(|e| e.run_operation.map_or(0, |at| at.operation)))
    }

    /// Skips the devices of a run that stopped moving which have not
    /// started their next stage, and (unless it STOPPED) cancels the
    /// executions of those running one.
    pub(super) async fn sweep_run(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> Result<(usize, usize), ServiceError> {
        let (mut skipped, mut canceled) = (0, 0);
        for target in self.all_targets(&run.run_id, None, None).await? {
            if !matches!(target.status, TargetStatus::Pending | TargetStatus::Waiting) {
                continue;
            }
            let stage = target.next_stage();
            let current = if run.reached(target.wave, stage) {
                self.current_execution(run, pipeline, &target, stage, now)
                    .await?
            } else {
                None
            };
            match current {
                Some(execution) if execution.status.is_terminal() => {
                    // Its news settles the device (canceled, as the run no
                    // longer moves).
                }
                Some(execution) => {
                    if run.status == RunStatus::Stopped {
                        continue;
                    }
                    let why = format!("run {} {}", run.run_id, run.status.as_str().to_lowercase());
                    if self
                        .cancel_run_execution(
                            &execution.execution_id,
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
                None => {
                    let tally = run.skip(&target);
                    let mut next = target.clone();
                    next.status = TargetStatus::Skipped;
                    next.record(&tally);
                    if self
                        .store()
                        .settle_target(run, &next, target.version, &tally)
                        .await?
                    {
                        skipped += 1;
                    }
                }
            }
        }
        Ok((skipped, canceled))
    }

    /// The target runs as shown: a device whose record says it waits (or
    /// has not started) but whose next stage has an execution is RUNNING
    /// that stage, at its latest operation; every operation in a history
    /// shows its execution's status.
    pub(super) async fn present_targets(
        &self,
        run: &PipelineRun,
        pipeline: &Pipeline,
        stored: Vec<TargetRun>,
        now: Timestamp,
    ) -> Result<Vec<TargetRun>, ServiceError> {
        let mut protocols: HashMap<u32, Vec<DeviceProtocol>> = HashMap::new();
        for stage in 0..pipeline.stages.len() as u32 {
            protocols.insert(stage, self.stage_protocols(pipeline, stage).await?);
        }
        let next_ids = |target: &TargetRun| {
            let stage = target.next_stage();
            let none = Vec::new();
            ids_of(
                &run.run_id,
                &target.thing_name,
                stage,
                protocols.get(&stage).unwrap_or(&none),
            )
        };
        let mut wanted: Vec<ExecutionId> = Vec::new();
        for target in &stored {
            wanted.extend(
                target
                    .history
                    .iter()
                    .filter(|r| r.status.is_none())
                    .map(|r| r.execution_id.clone()),
            );
            let stage = target.next_stage();
            if matches!(target.status, TargetStatus::Pending | TargetStatus::Waiting)
                && run.reached(target.wave, stage)
            {
                wanted.extend(next_ids(target));
            }
        }
        let found: HashMap<ExecutionId, CommandExecution> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.store()
                .run_executions(&wanted, now)
                .await?
                .into_iter()
                .map(|e| (e.execution_id.clone(), e))
                .collect()
        };
        Ok(stored
            .into_iter()
            .map(|target| {
                let mut ids = next_ids(&target);
                let latest = ids
                    .iter()
                    .rposition(|id| found.contains_key(id))
                    .filter(|_| {
                        matches!(target.status, TargetStatus::Pending | TargetStatus::Waiting)
                    });
                let mut shown = match latest.and_then(|i| {
                    let at = found.get(&ids[i])?.run_operation?;
                    ids.truncate(i + 1);
                    target.resume(pipeline, at, &ids)
                }) {
                    Some(running) => running,
                    None => target,
                };
                for record in &mut shown.history {
                    if let Some(execution) = found.get(&record.execution_id) {
                        record.status = Some(execution.status);
                    }
                }
                shown
            })
            .collect())
    }

    /// Cancels a run's execution (with `force`, even started work); `false`
    /// if it had ended or started (without force) already.
    async fn cancel_run_execution(
        &self,
        id: &ExecutionId,
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
    async fn mark_stragglers(&self, run_id: &RunId, now: Timestamp) -> Result<(), ServiceError> {
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
