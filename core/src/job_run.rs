//! THE JOB RUNNER'S RULES: the stored job record and, given it, its
//! statistics and the time, the one next step a job takes — fan out a chunk
//! of executions, start, finish (completed, aborted, end time reached), or
//! cancel the executions that remain. Pure, no I/O: `functions` performs the
//! step chosen here and stores the result.
//!
//! Fan-out is resumable by construction. A step first *claims* a chunk (the
//! claim is stored in the job with a lease), then writes the chunk's
//! executions, then *commits* (advances `created`, drops the claim). A claim
//! found expired means its writer died part-way: the chunk is written again
//! with conditional puts, so executions that made it are not written twice
//! and the rest are written once. Execution ids are derived from the job id
//! and the thing name, so a resumed chunk lands on the same items.

use crate::device_protocol::DeviceProtocol;
use crate::execution::CommandExecution;
use crate::ids::{ClientToken, CommandId, ExecutionId, JobId, ParameterName, ThingName};
use crate::job::{
    AbortCriterion, CreateJob, FailureType, JobStatistics, JobStatus, RetryCriterion,
    RolloutConfig, Scheduling, Targets,
};
use crate::map::StatusDetails;
use crate::reason::StatusReason;
use crate::retry::RetryPolicy;
use crate::schema::{CommandDefinition, Parameters};
use crate::status::ExecutionStatus;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Executions written by one fan-out step at most (40 BatchWriteItem calls).
pub const FAN_OUT_CHUNK: u32 = 1000;
/// Explicit targets stored per target-list item (~20-130 KB).
pub const TARGET_PAGE: u64 = 1000;
/// A thing group is read this many things per ListThingsInThingGroup page.
pub const GROUP_PAGE: u32 = 250;
/// How long a claimed chunk is its writer's. Longer than any function's
/// timeout, so a claim that outlives it was abandoned.
pub const CLAIM_LEASE_SECONDS: i64 = 180;
/// A running job is looked at by the sweeper at least this often.
pub const RECHECK_SECONDS: i64 = 300;
/// A finished job's record is kept this long (its executions keep their own).
pub const JOB_RETENTION_SECONDS: i64 = 90 * 86_400;

/// Which devices, as stored: an explicit list is kept apart from the job
/// record (in pages of [`TARGET_PAGE`]), so the record stays small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobTargets {
    Things {
        count: u64,
    },
    ThingGroup {
        name: String,
        recursive: bool,
    },
    /// Read page by page from the fleet index as the job fans out.
    Query {
        // camelCase like every other field; read under the first release's
        // snake_case too.
        #[serde(rename = "queryString", alias = "query_string")]
        query_string: String,
    },
}

impl JobTargets {
    /// Requested targets as stored: an explicit list apart (returned), its
    /// count in the record.
    pub fn stored(targets: Targets) -> (Self, Option<Vec<ThingName>>) {
        match targets {
            Targets::Things(things) => (
                Self::Things {
                    count: things.len() as u64,
                },
                Some(things),
            ),
            Targets::ThingGroup { name, recursive } => (Self::ThingGroup { name, recursive }, None),
            Targets::Query { query_string } => (Self::Query { query_string }, None),
        }
    }
}

/// A chunk a fan-out step is writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// Index of the chunk's first target (explicit lists).
    pub from: u64,
    pub count: u32,
    /// The thing-group page token the chunk was read with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    pub expires_at: Timestamp,
}

/// Fan-out progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOut {
    /// Executions written and committed.
    pub created: u64,
    /// Targets given no execution because another tenant owns the thing
    /// (a thing belongs to the first tenant that targets it).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub skipped: u64,
    /// Every target has its execution.
    pub done: bool,
    /// The thing-group page to read next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// The rollout's current minute and how many were started in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start: Option<Timestamp>,
    #[serde(default)]
    pub window_created: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
const fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl FanOut {
    /// Targets dealt with so far (with an execution or skipped): where the
    /// next chunk starts in the target list.
    pub fn position(&self) -> u64 {
        self.created + self.skipped
    }
}

/// Progress of canceling what remains of a canceled or aborted job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelSweep {
    /// Where the last page of the job's executions ended (the store's opaque
    /// cursor); `None` before the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub done: bool,
    /// IN_PROGRESS executions are canceled too.
    pub force: bool,
}

/// A job, as stored and shown (`GET /jobs/{jobId}` adds its statistics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub job_id: JobId,
    pub command_id: CommandId,
    #[serde(default)]
    pub parameters: Parameters,
    /// Sensitive parameters left out of `parameters` in this copy (see
    /// `CommandExecution::redacted_parameters`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_parameters: Vec<ParameterName>,
    pub targets: JobTargets,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abort: Vec<AbortCriterion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<RetryCriterion>,
    /// The policy its executions get, settled at creation (`None` on jobs
    /// stored before policies: `retry` mapped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    #[serde(default)]
    pub scheduling: Scheduling,
    /// Copied from the command definition when the job was created.
    pub execution_timeout_seconds: u32,
    pub retention_seconds: u32,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<String>,
    #[serde(default)]
    pub fan_out: FanOut,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<CancelSweep>,
    /// A COMPLETED job's statistics, recounted from its executions when it
    /// completed (the live counters are then no longer read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_statistics: Option<JobStatistics>,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub time_to_live: Timestamp,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<ClientToken>,
    /// Its command's device protocol, copied at creation.
    #[serde(default, skip_serializing_if = "DeviceProtocol::is_jobs")]
    pub protocol: DeviceProtocol,
    /// Its command's job-document template, copied at creation (see
    /// `CommandExecution::document_template`); kept by the store beside
    /// the record, as there.
    #[serde(skip)]
    pub document_template: Option<String>,
}

/// What a job does next.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStep {
    /// Nothing now; look again at [`Job::wake_at`].
    Idle,
    /// SCHEDULED -> IN_PROGRESS: the start time came.
    Start,
    /// Write the executions of this chunk. `resume`: its first writer died,
    /// so write only what is missing.
    FanOut { claim: Claim, resume: bool },
    /// The job ends in `status`; `cancel_rest` starts canceling what remains
    /// (aborted, end time reached).
    Finish {
        status: JobStatus,
        reason: Option<StatusReason>,
        cancel_rest: Option<CancelSweep>,
    },
    /// Cancel the next page of the job's remaining executions.
    CancelRest(CancelSweep),
}

fn reason(code: &str, description: String) -> Option<StatusReason> {
    Some(StatusReason {
        reason_code: code.to_owned(),
        reason_description: Some(description),
    })
}

impl CreateJob {
    /// The new job record (version 1), and the explicit target list to store
    /// beside it, if any.
    pub fn into_job(
        self,
        job_id: JobId,
        definition: &CommandDefinition,
        client_token: Option<ClientToken>,
        now: Timestamp,
    ) -> (Job, Option<Vec<ThingName>>) {
        let (targets, list) = JobTargets::stored(self.targets);
        let status = if self.scheduling.start_time.is_some_and(|t| t > now) {
            JobStatus::Scheduled
        } else {
            JobStatus::InProgress
        };
        let job = Job {
            job_id,
            command_id: definition.command_id.clone(),
            parameters: self.parameters,
            redacted_parameters: Vec::new(),
            targets,
            rollout: self.rollout,
            abort: self.abort,
            retry_policy: Some(match self.retry_policy {
                Some(policy) => policy,
                None if !self.retry.is_empty() => crate::job::retry_policy_of(&self.retry),
                None => definition.retry_policy.clone(),
            }),
            retry: self.retry,
            scheduling: self.scheduling,
            execution_timeout_seconds: definition.execution_timeout_seconds,
            retention_seconds: definition.retention_seconds,
            status,
            status_reason: None,
            canceled_by: None,
            fan_out: FanOut::default(),
            cancel: None,
            final_statistics: None,
            created_at: now,
            last_updated_at: now,
            completed_at: None,
            time_to_live: now.plus_secs(JOB_RETENTION_SECONDS),
            version: 1,
            client_token,
            protocol: definition.protocol,
            document_template: definition.document_template(),
        };
        (job, list)
    }
}

impl Job {
    /// How the job's executions are retried: its `retryPolicy`, its
    /// `jobExecutionsRetryConfig` mapped (see `retry`), or its command's.
    pub fn execution_retry_policy(&self) -> RetryPolicy {
        self.retry_policy
            .clone()
            .unwrap_or_else(|| crate::job::retry_policy_of(&self.retry))
    }

    /// The execution this job gives `target`: QUEUED, version 1, held until
    /// the job's start time.
    pub fn execution_for(
        &self,
        execution_id: ExecutionId,
        target: ThingName,
        now: Timestamp,
    ) -> CommandExecution {
        let not_before = self.scheduling.start_time.filter(|t| *t > now);
        let due = not_before.unwrap_or(now);
        let complete_by = due.plus_secs(i64::from(self.execution_timeout_seconds));
        CommandExecution {
            execution_id,
            command_id: self.command_id.clone(),
            target,
            job_id: Some(self.job_id.clone()),
            run_id: None,
            run_operation: None,
            status: ExecutionStatus::Queued,
            status_reason: None,
            status_details: StatusDetails::new(),
            parameters: self.parameters.clone(),
            redacted_parameters: Vec::new(),
            result: Parameters::new(),
            execution_timeout_seconds: self.execution_timeout_seconds,
            not_before,
            delivery_timeout_seconds: None,
            deliver_by: None,
            complete_by,
            step_deadline: None,
            retry_policy: self.execution_retry_policy(),
            defer_count: 0,
            last_deferred_at: None,
            late_result: None,
            dedupe_key: None,
            supersedes: None,
            superseded_by: None,
            created_by: Some(crate::text::msg!["job/", self.job_id.as_str()]),
            canceled_by: None,
            last_updated_by: None,
            changed_by: StatusDetails::new(),
            sent_at: None,
            acknowledged_at: None,
            retention_seconds: self.retention_seconds,
            created_at: now,
            last_updated_at: now,
            started_at: None,
            completed_at: None,
            time_to_live: complete_by.plus_secs(i64::from(self.retention_seconds)),
            version: 1,
            execution_number: 1,
            client_token: None,
            protocol: self.protocol,
            document_template: self.document_template.clone(),
        }
    }

    fn claim_is_live(&self, now: Timestamp) -> bool {
        self.fan_out
            .claim
            .as_ref()
            .is_some_and(|c| c.expires_at > now)
    }

    /// How many executions the rollout lets this step start.
    fn allowance(&self, stats: &JobStatistics, now: Timestamp) -> u32 {
        let Some(rollout) = &self.rollout else {
            return FAN_OUT_CHUNK;
        };
        let notified = self.fan_out.created;
        let rate = rollout.rate_per_minute(notified, stats.count(ExecutionStatus::Succeeded));
        let used = match self.fan_out.window_start {
            Some(start) if now < start.plus_secs(60) => self.fan_out.window_created,
            _ => 0,
        };
        rate.saturating_sub(used).min(FAN_OUT_CHUNK)
    }

    /// The next chunk to claim, given the allowance.
    fn next_chunk(&self, allowance: u32, now: Timestamp) -> Option<Claim> {
        let count = match &self.targets {
            JobTargets::Things { count } => {
                let position = self.fan_out.position();
                let left = count.saturating_sub(position);
                // Never cross a stored page, so a chunk is one read.
                let in_page = TARGET_PAGE - position % TARGET_PAGE;
                u32::try_from(left.min(in_page)).unwrap_or(FAN_OUT_CHUNK)
            }
            JobTargets::ThingGroup { .. } | JobTargets::Query { .. } => GROUP_PAGE,
        }
        .min(allowance);
        (count > 0).then(|| Claim {
            from: self.fan_out.position(),
            count,
            page_token: self.fan_out.next_token.clone(),
            expires_at: now.plus_secs(CLAIM_LEASE_SECONDS),
        })
    }

    /// The one thing to do next.
    pub fn next_step(&self, stats: &JobStatistics, now: Timestamp) -> JobStep {
        match self.status {
            JobStatus::Completed | JobStatus::Canceled | JobStatus::Aborted => {
                match &self.cancel {
                    // Wait for a live chunk to land, so the sweep sees it.
                    Some(sweep) if !sweep.done && !self.claim_is_live(now) => {
                        JobStep::CancelRest(sweep.clone())
                    }
                    Some(_) | None => JobStep::Idle,
                }
            }
            JobStatus::Scheduled | JobStatus::InProgress => {
                if let Some(end) = self.scheduling.end_time.filter(|end| *end <= now) {
                    return JobStep::Finish {
                        status: JobStatus::Canceled,
                        reason: reason(
                            "END_TIME_REACHED",
                            crate::text::msg![
                                "the job's endTime (",
                                end.epoch_secs(),
                                ") passed; executions not started were canceled"
                            ],
                        ),
                        cancel_rest: Some(CancelSweep::default()),
                    };
                }
                if self.status == JobStatus::InProgress {
                    if let Some(c) = stats.abort_criterion(&self.abort) {
                        return JobStep::Finish {
                            status: JobStatus::Aborted,
                            reason: reason(
                                "ABORT_CRITERIA_MET",
                                crate::text::msg![
                                    failure_name(c),
                                    " reached ",
                                    c.threshold_percentage,
                                    "% of ",
                                    stats.ended(),
                                    " ended executions"
                                ],
                            ),
                            cancel_rest: Some(CancelSweep::default()),
                        };
                    }
                }
                let started = self.scheduling.start_time.is_none_or(|t| t <= now);
                if self.status == JobStatus::Scheduled && started {
                    return JobStep::Start;
                }
                if !self.fan_out.done {
                    if let Some(claim) = &self.fan_out.claim {
                        return if claim.expires_at > now {
                            JobStep::Idle
                        } else {
                            JobStep::FanOut {
                                claim: Claim {
                                    expires_at: now.plus_secs(CLAIM_LEASE_SECONDS),
                                    ..claim.clone()
                                },
                                resume: true,
                            }
                        };
                    }
                    // A paced rollout starts at the start time; an unpaced
                    // one writes its executions ahead, held until then.
                    if self.rollout.is_some() && !started {
                        return JobStep::Idle;
                    }
                    return match self.next_chunk(self.allowance(stats, now), now) {
                        Some(claim) => JobStep::FanOut {
                            claim,
                            resume: false,
                        },
                        None => JobStep::Idle,
                    };
                }
                let created = self.fan_out.created;
                if self.status == JobStatus::InProgress
                    && stats.total() >= created
                    && stats.ended() >= created
                {
                    return JobStep::Finish {
                        status: JobStatus::Completed,
                        reason: None,
                        cancel_rest: None,
                    };
                }
                JobStep::Idle
            }
        }
    }

    /// When the job next needs a step though nothing changes: its start or
    /// end time, the next rollout minute, an abandoned claim's expiry.
    pub fn wake_at(&self, now: Timestamp) -> Option<Timestamp> {
        let mut wakes: Vec<Timestamp> = Vec::new();
        if let Some(claim) = &self.fan_out.claim {
            wakes.push(claim.expires_at);
        }
        match self.status {
            JobStatus::Completed | JobStatus::Canceled | JobStatus::Aborted => {
                // A sweep in progress continues through the stream; this
                // catches one whose step failed.
                if self.cancel.as_ref().is_some_and(|c| !c.done) {
                    wakes.push(now.plus_secs(60));
                }
            }
            JobStatus::Scheduled | JobStatus::InProgress => {
                if let Some(start) = self.scheduling.start_time.filter(|t| *t > now) {
                    wakes.push(start);
                }
                if let Some(end) = self.scheduling.end_time {
                    wakes.push(end);
                }
                if !self.fan_out.done && self.rollout.is_some() {
                    let window_end = self
                        .fan_out
                        .window_start
                        .map_or(now, |start| start.plus_secs(60));
                    wakes.push(window_end.max(now));
                }
                // A safety net: completion and abort are decided after each
                // batch of changes; should that step fail, this takes it.
                if self.status == JobStatus::InProgress {
                    wakes.push(now.plus_secs(RECHECK_SECONDS));
                }
            }
        }
        wakes.into_iter().min()
    }

    /// The job after a committed chunk of `written` executions and `skipped`
    /// targets (owned by another tenant); `next_token` is the thing group's
    /// next page (`None`: it was the last).
    pub fn commit(
        &self,
        claim: &Claim,
        written: u32,
        skipped: u32,
        next_token: Option<String>,
        now: Timestamp,
    ) -> Self {
        let mut job = self.clone();
        job.fan_out.claim = None;
        // The claim started at the position before this chunk.
        job.fan_out.created = claim.from.saturating_sub(job.fan_out.skipped) + u64::from(written);
        job.fan_out.skipped += u64::from(skipped);
        job.fan_out.done = match &job.targets {
            JobTargets::Things { count } => job.fan_out.position() >= *count,
            JobTargets::ThingGroup { .. } | JobTargets::Query { .. } => next_token.is_none(),
        };
        job.fan_out.next_token = next_token;
        match job.fan_out.window_start {
            Some(start) if now < start.plus_secs(60) => job.fan_out.window_created += written,
            _ => {
                job.fan_out.window_start = Some(now);
                job.fan_out.window_created = written;
            }
        }
        job.touch(now);
        job
    }

    /// The job ended (by a step or an operator).
    pub fn finish(
        &self,
        status: JobStatus,
        reason: Option<StatusReason>,
        cancel_rest: Option<CancelSweep>,
        now: Timestamp,
    ) -> Self {
        let mut job = self.clone();
        job.status = status;
        job.status_reason = reason;
        job.cancel = cancel_rest;
        job.completed_at = Some(now);
        job.time_to_live = now.plus_secs(JOB_RETENTION_SECONDS);
        job.touch(now);
        job
    }

    pub fn touch(&mut self, now: Timestamp) {
        self.last_updated_at = now;
        self.version += 1;
    }
}

fn failure_name(c: &AbortCriterion) -> &'static str {
    match c.failure_type {
        FailureType::Failed => "FAILED",
        FailureType::Rejected => "REJECTED",
        FailureType::TimedOut => "TIMED_OUT",
        FailureType::All => "failures",
    }
}

/// Statistics changes from a batch of execution changes, before they are
/// added to the stored counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatisticsDelta {
    pub devices: BTreeMap<ExecutionStatus, i64>,
    pub attempts: i64,
}

impl StatisticsDelta {
    /// One execution's change: `from` is `None` for a new one.
    pub fn record(
        &mut self,
        from: Option<ExecutionStatus>,
        to: ExecutionStatus,
        new_attempt: bool,
    ) {
        if from == Some(to) && !new_attempt {
            return;
        }
        if let Some(from) = from {
            *self.devices.entry(from).or_default() -= 1;
        }
        *self.devices.entry(to).or_default() += 1;
        if from.is_none() || new_attempt {
            self.attempts += 1;
        }
        self.devices.retain(|_, n| *n != 0);
    }

    /// What turns `counted` into `actual` (a recount's correction).
    pub fn correction(counted: &JobStatistics, actual: &JobStatistics) -> Self {
        let mut delta = Self::default();
        for status in ExecutionStatus::ALL {
            let diff = i64::try_from(actual.count(status)).unwrap_or(i64::MAX)
                - i64::try_from(counted.count(status)).unwrap_or(i64::MAX);
            if diff != 0 {
                delta.devices.insert(status, diff);
            }
        }
        delta.attempts = i64::try_from(actual.attempts).unwrap_or(i64::MAX)
            - i64::try_from(counted.attempts).unwrap_or(i64::MAX);
        delta
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.attempts == 0
    }

    /// Whether an execution ended in this change set.
    pub fn ends_any(&self) -> bool {
        self.devices
            .iter()
            .any(|(status, n)| status.is_terminal() && *n > 0)
    }
}

impl JobStatistics {
    /// Adds stored counters (one shard's) to these.
    pub fn add(&mut self, devices: &BTreeMap<ExecutionStatus, i64>, attempts: u64) {
        for (status, n) in devices {
            let entry = self.devices.entry(*status).or_default();
            *entry = u64::try_from(i64::try_from(*entry).unwrap_or(i64::MAX) + n).unwrap_or(0);
        }
        self.devices.retain(|_, n| *n != 0);
        self.attempts += attempts;
    }
}
