//! THE JOB RUNNER: one step of a job at a time, chosen by
//! `courier_core::job_run` (`Job::next_step`) and performed here: start,
//! fan out a chunk (claim, write, commit), finish (completed after a
//! recount, aborted, end time reached), cancel what remains. I/O through
//! the store and the thing-group resolver.
//!
//! Who runs steps: the dispatcher, for every change of a job record on the
//! table stream (so each committed chunk triggers the next: the fan-out
//! continues through the stream in chunks, each far inside a function's time
//! limit) and after it adds a batch's statistics (completion, abort); the
//! sweeper, for jobs whose wake time came (start time, end time, the next
//! rollout minute, an abandoned chunk's lease).

use super::Courier;
use crate::error::ServiceError;
use crate::platform::ids;
use crate::platform::thing_groups::ThingGroups;
use crate::store::{Cursor, JobStore, PageRequest, StoreError, TransitionOutcome};
use courier_core::job_run::{CancelSweep, Claim, JobTargets, StatisticsDelta};
use courier_core::{
    CommandExecution, ExecutionStatus, Job, JobId, JobStatistics, JobStatus, JobStep, StatusReason,
    StatusUpdate, Timestamp, TransitionError, TransitionPlan,
};

/// What one step did (logged, and returned to tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepReport {
    Idle,
    Started,
    FannedOut {
        written: usize,
        resumed: bool,
    },
    Finished(JobStatus),
    Canceled {
        executions: usize,
        done: bool,
    },
    /// The counters said the job was done; the recount corrected them.
    Recounted,
    /// Another writer changed the job first; its change starts the next step.
    Raced,
    Gone,
}

/// Executions canceled per step of a cancel sweep.
const CANCEL_PAGE: u32 = 100;

impl<S: JobStore> Courier<S> {
    /// Runs the job's next step (see `Job::next_step`).
    pub async fn run_job<G: ThingGroups>(
        &self,
        groups: &G,
        id: &JobId,
        now: Timestamp,
    ) -> Result<StepReport, ServiceError> {
        let Some((job, stats)) = self.store().get_job(id, now).await? else {
            return Ok(StepReport::Gone);
        };
        let step = job.next_step(&stats, now);
        let report = match step {
            JobStep::Idle => StepReport::Idle,
            JobStep::Start => {
                let mut started = job.clone();
                started.status = JobStatus::InProgress;
                started.touch(now);
                self.replace(&started, job.version, StepReport::Started)
                    .await?
            }
            JobStep::FanOut { claim, resume } => {
                self.fan_out(groups, &job, claim, resume, now).await?
            }
            JobStep::Finish {
                status: JobStatus::Completed,
                reason,
                cancel_rest,
            } => {
                self.complete(&job, &stats, reason, cancel_rest, now)
                    .await?
            }
            JobStep::Finish {
                status,
                reason,
                cancel_rest,
            } => {
                let finished = job.finish(status, reason, cancel_rest, now);
                self.replace(&finished, job.version, StepReport::Finished(status))
                    .await?
            }
            JobStep::CancelRest(sweep) => self.cancel_rest(&job, sweep, now).await?,
        };
        if report != StepReport::Idle {
            tracing::info!(job_id = %id, ?report, "job step");
        }
        Ok(report)
    }

    async fn replace(
        &self,
        job: &Job,
        expected_version: u64,
        report: StepReport,
    ) -> Result<StepReport, ServiceError> {
        match self.store().put_job(job, expected_version).await {
            Ok(()) => Ok(report),
            Err(StoreError::Conflict(_)) => Ok(StepReport::Raced),
            Err(other) => Err(other.into()),
        }
    }

    /// Claim, write, commit (see `courier_core::job_run`).
    async fn fan_out<G: ThingGroups>(
        &self,
        groups: &G,
        job: &Job,
        claim: Claim,
        resume: bool,
        now: Timestamp,
    ) -> Result<StepReport, ServiceError> {
        let mut claimed = job.clone();
        claimed.fan_out.claim = Some(claim.clone());
        claimed.touch(now);
        match self.store().put_job(&claimed, job.version).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(StepReport::Raced),
            Err(other) => return Err(other.into()),
        }
        let (things, next_token) = match &job.targets {
            JobTargets::Things { .. } => (
                self.store()
                    .job_targets(job, claim.from, claim.count)
                    .await?,
                None,
            ),
            JobTargets::ThingGroup { .. } | JobTargets::Query { .. } => {
                let page = super::targets::targets_page(
                    groups,
                    &job.targets,
                    claim.page_token.as_deref(),
                    claim.count,
                )
                .await?;
                (page.things, page.next_token)
            }
        };
        // Things another tenant owns get no execution (see `Store::claim_things`).
        let ours = self.store().claim_things(&things).await?;
        let skipped = u32::try_from(ours.iter().filter(|o| !**o).count()).unwrap_or(u32::MAX);
        if skipped > 0 {
            tracing::warn!(job_id = %job.job_id, skipped, "targets owned by another tenant were skipped");
        }
        let executions: Vec<CommandExecution> = things
            .into_iter()
            .zip(ours)
            .filter(|(_, ours)| *ours)
            .map(|(thing, _)| {
                let id = ids::job_execution_id(&job.job_id, &thing);
                claimed.execution_for(id, thing, now)
            })
            .collect();
        let written = self.store().write_executions(&executions, resume).await?;
        let count = u32::try_from(executions.len()).unwrap_or(u32::MAX);
        // Commit against whatever the job is now (a cancel may have come in
        // meanwhile), as long as the claim is still ours.
        for _ in 0..5 {
            let Some((current, _)) = self.store().get_job(&job.job_id, now).await? else {
                return Ok(StepReport::Gone);
            };
            if current.fan_out.claim.as_ref() != Some(&claim) {
                return Ok(StepReport::Raced);
            }
            let committed = current.commit(&claim, count, skipped, next_token.clone(), now);
            match self.store().put_job(&committed, current.version).await {
                Ok(()) => {
                    return Ok(StepReport::FannedOut {
                        written,
                        resumed: resume,
                    })
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Throttled(format!(
            "job {} kept changing while a chunk was committed",
            job.job_id
        )))
    }

    /// The counters say every execution ended: recount from the executions
    /// themselves before believing it. The live counters are exact under
    /// Lambda's retries (see `store::dynamodb::jobs`); the recount makes the
    /// final figures exact whatever happened, and corrects the counters if
    /// they were off.
    async fn complete(
        &self,
        job: &Job,
        live: &JobStatistics,
        reason: Option<StatusReason>,
        cancel_rest: Option<CancelSweep>,
        now: Timestamp,
    ) -> Result<StepReport, ServiceError> {
        let actual = self.recount(&job.job_id, now).await?;
        let created = job.fan_out.created;
        if actual.total() == created && actual.ended() == created {
            let mut finished = job.finish(JobStatus::Completed, reason, cancel_rest, now);
            finished.final_statistics = Some(actual);
            return self
                .replace(
                    &finished,
                    job.version,
                    StepReport::Finished(JobStatus::Completed),
                )
                .await;
        }
        let correction = StatisticsDelta::correction(live, &actual);
        tracing::warn!(job_id = %job.job_id, ?correction, "job counters corrected by a recount");
        let marker = format!("recount-{}-{}", job.version, now.millis());
        self.store()
            .add_statistics(&job.job_id, &correction, &marker, &marker, now)
            .await?;
        Ok(StepReport::Recounted)
    }

    /// Statistics counted from the job's executions, page by page.
    pub async fn recount(&self, id: &JobId, now: Timestamp) -> Result<JobStatistics, ServiceError> {
        let mut stats = JobStatistics::default();
        let mut start = None;
        loop {
            let page = self
                .store()
                .job_executions(id, PageRequest { limit: 100, start }, now)
                .await?;
            for e in &page.items {
                *stats.devices.entry(e.status).or_default() += 1;
                stats.attempts += u64::from(e.execution_number);
            }
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(stats),
            }
        }
    }

    /// Cancels one page of what remains of an ended job, then records where
    /// the sweep got to (that change starts the next page).
    async fn cancel_rest(
        &self,
        job: &Job,
        sweep: CancelSweep,
        now: Timestamp,
    ) -> Result<StepReport, ServiceError> {
        let start: Option<Cursor> = sweep
            .cursor
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        let page = self
            .store()
            .job_executions(
                &job.job_id,
                PageRequest {
                    limit: CANCEL_PAGE,
                    start,
                },
                now,
            )
            .await?;
        let reason_code = match job.status {
            JobStatus::Aborted => "JOB_ABORTED",
            JobStatus::Canceled
            | JobStatus::Completed
            | JobStatus::Scheduled
            | JobStatus::InProgress => job
                .status_reason
                .as_ref()
                .map_or("JOB_CANCELED", |r| r.reason_code.as_str()),
        };
        let by = job
            .canceled_by
            .clone()
            .unwrap_or_else(|| format!("job:{}", job.job_id));
        let mut canceled = 0;
        for execution in page.items.iter().filter(|e| !e.status.is_terminal()) {
            let update = StatusUpdate {
                status: Some(ExecutionStatus::Canceled),
                status_reason: Some(StatusReason {
                    reason_code: reason_code.to_owned(),
                    reason_description: Some(format!("job {} ended", job.job_id)),
                }),
                ..StatusUpdate::default()
            };
            let plan = TransitionPlan::cancel(update, &by, sweep.force, now);
            let token = format!("job-cancel:{}:{}", job.job_id, execution.execution_id);
            if self
                .cancel_if_still_pending(&execution.execution_id, &plan, &token)
                .await?
            {
                canceled += 1;
            }
        }
        let done = page.next.is_none();
        let mut next = job.clone();
        next.cancel = Some(CancelSweep {
            cursor: page
                .next
                .as_ref()
                .and_then(|c| serde_json::to_string(c).ok()),
            done,
            force: sweep.force,
        });
        next.touch(now);
        self.replace(
            &next,
            job.version,
            StepReport::Canceled {
                executions: canceled,
                done,
            },
        )
        .await
    }

    /// Applies the cancel `plan` of a job's or a run's execution; `false`
    /// when there is nothing to cancel: it ended meanwhile, started (without
    /// force), or a deadline passed (the sweeper ends it), or it is gone.
    pub(super) async fn cancel_if_still_pending(
        &self,
        id: &courier_core::ExecutionId,
        plan: &TransitionPlan,
        token: &str,
    ) -> Result<bool, ServiceError> {
        match self.store().apply_transition(id, plan, token).await {
            Ok(TransitionOutcome::Applied { .. }) => Ok(true),
            Ok(TransitionOutcome::Duplicate(_)) => Ok(false),
            Err(StoreError::Rejected {
                error:
                    TransitionError::TerminalStateReached { .. }
                    | TransitionError::ForceRequired
                    | TransitionError::DeadlinePassed { .. }
                    | TransitionError::InvalidStateTransition { .. }
                    | TransitionError::VersionMismatch { .. }
                    | TransitionError::TargetMismatch
                    | TransitionError::AttemptMismatch { .. }
                    | TransitionError::Held { .. },
                ..
            })
            | Err(StoreError::NotFound) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Steps for every job whose wake time came (the sweeper); a job with
    /// nothing to do is filed under its next wake time.
    pub async fn sweep_jobs<G: ThingGroups>(
        &self,
        groups: &G,
        now: Timestamp,
    ) -> Result<usize, ServiceError> {
        let due = self.store().due_jobs(now, 100).await?;
        let count = due.len();
        for (tenant, job) in due {
            let courier = self.for_tenant(&tenant);
            let report = Box::pin(courier.run_job(groups, &job.job_id, now)).await?;
            if report == StepReport::Idle {
                let mut refiled = job.clone();
                refiled.touch(now);
                // Lost to a concurrent change: that change re-filed it.
                let _ = courier.store().put_job(&refiled, job.version).await;
            }
        }
        Ok(count)
    }
}
