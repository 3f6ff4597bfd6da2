//! A PIPELINE RUN'S RULES: the run request (targets, waves, gates,
//! scheduling with maintenance windows and an end behaviour), how targets
//! are put into waves, what a device does when one of its executions ends,
//! when a wave's gate passes, holds or aborts the run, and — given the
//! stored run and the time — the one next step the run takes. Pure, no
//! I/O: `functions` performs the step chosen here and stores the result,
//! as it does for jobs ([`crate::job_run`]).
//!
//! Semantics:
//! - Waves go one after the other: wave `w + 1` starts when wave `w` has
//!   passed the gate of the last stage. Sizes are counts or percentages of
//!   the targets, rounded up (at least one target); targets left over after
//!   the listed waves form one last wave. Targets are ordered by a hash of
//!   the run id and the thing name, so the same run always puts a device in
//!   the same wave.
//! - Within a wave, each device runs a stage's operations in order, the
//!   next only after the previous SUCCEEDED. An operation that ends FAILED,
//!   REJECTED or TIMED_OUT (after its retries) stops that device
//!   (`onFailure: STOP`, the default) or lets it go on while counting it as
//!   failed for the stage (`CONTINUE`). A canceled execution stops the
//!   device. A device that has not settled a stage within the stage's
//!   `timeoutSeconds` counts as timed out and stops.
//! - The gate of stage `k` is evaluated for a wave once every device of the
//!   wave that entered stage `k` has settled it; it passes early as soon as
//!   enough devices succeeded that it can no longer be missed. Percentages
//!   are over the wave's devices that entered the stage. A gate that does
//!   not pass holds the run (HELD) until an operator resumes it (recorded
//!   with who did) or cancels it; a manual-approval gate holds it the same
//!   way once its thresholds are met. A gate's failure threshold aborts the
//!   run as soon as it is reached: it counts devices (not attempts) that
//!   failed or timed out at that stage, over every wave so far.
//! - Outside every maintenance window no device starts a stage; a device
//!   that has started one finishes it. At the end time, STOP_ROLLOUT stops
//!   new stages, CANCEL also cancels executions not yet started,
//!   FORCE_CANCEL every execution.

use crate::cron::{Cron, Window, Windows, MAX_WINDOW_MINUTES};
use crate::error::{ValidationCode, ValidationErrors};
use crate::execution::{CommandExecution, RunOperation, StartExecution};
use crate::ids::{ClientToken, ExecutionId, PipelineId, RunId, StageName, ThingName};
use crate::job::{number, object, parse_targets, scheduling_times, unknown_fields, whole, Targets};
use crate::job_run::JobTargets;
use crate::json::Json;
use crate::pipeline::{OnFailure, Pipeline};
use crate::reason::StatusReason;
use crate::schema::Validator;
use crate::status::ExecutionStatus;
use crate::text::{json_kind, msg, quote, shown};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// At most this many waves in a run.
pub const MAX_WAVES: usize = 20;
/// At most this many targets in a run (an explicit list, or what a thing
/// group holds when the run starts).
pub const MAX_RUN_TARGETS: usize = 10_000;
/// At most this many maintenance windows.
pub const MAX_WINDOWS: usize = 10;
/// A run waiting on its devices is looked at again (recounted) this often.
pub const COUNT_CHECK_SECONDS: i64 = 300;
/// A run left to sweep is looked at again by the sweeper this long after.
pub const SWEEP_RETRY_SECONDS: i64 = 60;

/// A run's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Waiting for its start time.
    Scheduled,
    InProgress,
    /// A gate did not pass, or waits for a manual approval: resume or cancel.
    Held,
    /// Canceled without force: started operations are finishing.
    Canceling,
    Canceled,
    /// Every device ended.
    Completed,
    /// A failure threshold was reached.
    Aborted,
    /// The end time came with STOP_ROLLOUT.
    Stopped,
}

impl RunStatus {
    pub const ALL: [Self; 8] = [
        Self::Scheduled,
        Self::InProgress,
        Self::Held,
        Self::Canceling,
        Self::Canceled,
        Self::Completed,
        Self::Aborted,
        Self::Stopped,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::InProgress => "IN_PROGRESS",
            Self::Held => "HELD",
            Self::Canceling => "CANCELING",
            Self::Canceled => "CANCELED",
            Self::Completed => "COMPLETED",
            Self::Aborted => "ABORTED",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Nothing new starts and the status never changes again.
    pub const fn is_terminal(self) -> bool {
        match self {
            Self::Scheduled | Self::InProgress | Self::Held | Self::Canceling => false,
            Self::Canceled | Self::Completed | Self::Aborted | Self::Stopped => true,
        }
    }
}

/// What happens at the run's end time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndBehavior {
    /// No new stage starts; started work finishes. The run is STOPPED.
    #[default]
    StopRollout,
    /// Also cancel executions not yet started. The run is CANCELED.
    Cancel,
    /// Also cancel started executions. The run is CANCELED.
    ForceCancel,
}

impl EndBehavior {
    pub const ALL: [Self; 3] = [Self::StopRollout, Self::Cancel, Self::ForceCancel];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StopRollout => "STOP_ROLLOUT",
            Self::Cancel => "CANCEL",
            Self::ForceCancel => "FORCE_CANCEL",
        }
    }
}

/// One wave's size as requested.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaveSize {
    /// This many targets.
    Count(u64),
    /// This percentage of all the run's targets, rounded up (hundredths).
    Percent(f64),
}

/// The sizes of the waves `spec` makes of `total` targets: each at least
/// one target, rounded up, the last taking what is left; no empty wave.
pub fn wave_sizes(spec: &[WaveSize], total: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut left = total;
    for size in spec {
        if left == 0 {
            break;
        }
        let wanted = match *size {
            WaveSize::Count(n) => n,
            WaveSize::Percent(p) => {
                // In hundredths of a percent, so `12.5%` of 8 is exactly 1.
                let hundredths = (p * 100.0).round() as u64;
                (u128::from(hundredths) * u128::from(total)).div_ceil(10_000) as u64
            }
        };
        let size = wanted.clamp(1, left);
        sizes.push(size);
        left -= size;
    }
    if left > 0 {
        sizes.push(left);
    }
    sizes
}

/// The run's targets in wave order: by a hash of the run id and the thing
/// name (then the name), so a run always orders the same fleet the same
/// way, and two runs order it differently.
pub fn wave_order(run_id: &RunId, mut things: Vec<ThingName>) -> Vec<ThingName> {
    things.sort_by_cached_key(|thing| (order_hash(run_id, thing), thing.clone()));
    things.dedup();
    things
}

/// FNV-1a of the run id, a separator and the thing name.
fn order_hash(run_id: &RunId, thing: &ThingName) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = run_id
        .as_str()
        .bytes()
        .chain([0xff])
        .chain(thing.as_str().bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// When a stage's failures abort the whole run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbortThreshold {
    /// Abort once this many devices failed or timed out at the stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_count: Option<u32>,
    /// Abort once this percentage of the devices that settled the stage
    /// failed or timed out…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_percentage: Option<f64>,
    /// …counted once at least this many settled it (default 1).
    #[serde(default = "one")]
    pub min_settled: u32,
}

const fn one() -> u32 {
    1
}

const fn max_run_targets() -> u64 {
    MAX_RUN_TARGETS as u64
}

/// What a wave must achieve at a stage before it goes on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// Percentage of the wave's devices that entered the stage that must
    /// succeed (0–100; default 0).
    #[serde(default)]
    pub min_success_percentage: f64,
    /// At least this many must succeed (default 0).
    #[serde(default)]
    pub min_success_count: u32,
    /// Hold the run here until an operator resumes it.
    #[serde(default)]
    pub manual_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortThreshold>,
}

/// How the devices of a wave (or of the run, summed) fared at one stage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageCounts {
    /// Devices that started the stage, or were let into it and wait for a
    /// window: derived when the run is read ([`PipelineRun::derive_entered`]),
    /// never counted.
    #[serde(default)]
    pub entered: u64,
    #[serde(default)]
    pub succeeded: u64,
    /// Failed, including devices that went on with `CONTINUE`.
    #[serde(default)]
    pub failed: u64,
    #[serde(default)]
    pub timed_out: u64,
    #[serde(default)]
    pub canceled: u64,
    /// Devices that settled the stage and go on to the next one.
    #[serde(default)]
    pub went_on: u64,
}

impl StageCounts {
    pub const fn settled(&self) -> u64 {
        self.succeeded + self.failed + self.timed_out + self.canceled
    }

    /// Entered and not settled.
    pub const fn running(&self) -> u64 {
        self.entered.saturating_sub(self.settled())
    }

    pub fn add(&mut self, other: &Self) {
        self.entered += other.entered;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.timed_out += other.timed_out;
        self.canceled += other.canceled;
        self.went_on += other.went_on;
    }

    /// One device settling with `outcome`.
    pub fn record(&mut self, outcome: StageOutcome) {
        match outcome {
            StageOutcome::Succeeded => self.succeeded += 1,
            StageOutcome::Failed => self.failed += 1,
            StageOutcome::TimedOut => self.timed_out += 1,
            StageOutcome::Canceled => self.canceled += 1,
        }
    }
}

/// A gate's answer for one wave at one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateVerdict {
    /// Devices are still running the stage and the threshold is not met yet.
    Waiting,
    Passed,
    /// The wave's devices settled and too few succeeded.
    Missed {
        succeeded: u64,
        required: u64,
    },
    /// The thresholds are met; an operator must approve.
    AwaitingApproval,
}

impl Gate {
    /// Successes the gate needs from `entered` devices.
    pub fn required(&self, entered: u64) -> u64 {
        let hundredths = (self.min_success_percentage * 100.0).round() as u64;
        let by_share = (u128::from(hundredths) * u128::from(entered)).div_ceil(10_000) as u64;
        by_share.max(u64::from(self.min_success_count))
    }

    pub fn verdict(&self, counts: &StageCounts) -> GateVerdict {
        let required = self.required(counts.entered);
        // Without a threshold there is nothing to pass early on: the wave
        // waits for every device.
        let decided = counts.running() == 0 || required > 0;
        if counts.succeeded >= required && decided {
            if self.manual_approval {
                GateVerdict::AwaitingApproval
            } else {
                GateVerdict::Passed
            }
        } else if counts.running() == 0 {
            GateVerdict::Missed {
                succeeded: counts.succeeded,
                required,
            }
        } else {
            GateVerdict::Waiting
        }
    }

    /// Whether `so_far` (the stage's counts over every wave so far) reaches
    /// the failure threshold.
    pub fn aborts(&self, so_far: &StageCounts) -> bool {
        let Some(threshold) = &self.abort else {
            return false;
        };
        let failed = so_far.failed + so_far.timed_out;
        let settled = so_far.settled();
        let by_count = threshold
            .failed_count
            .is_some_and(|n| failed >= u64::from(n));
        let by_share = threshold.failed_percentage.is_some_and(|p| {
            settled >= u64::from(threshold.min_settled.max(1))
                && (failed as f64) * 100.0 >= p * (settled as f64)
        });
        by_count || by_share
    }
}

/// How one device ended a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageOutcome {
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
}

/// A device's part in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetStatus {
    /// Its wave (or its window) has not come yet.
    Pending,
    /// Running `stage`, waiting on an execution.
    Running,
    /// Settled a stage; waits for the wave's gate (or a window).
    Waiting,
    Succeeded,
    Failed,
    TimedOut,
    Canceled,
    /// The run ended before this device started (or went on).
    Skipped,
}

impl TargetStatus {
    pub const ALL: [Self; 8] = [
        Self::Pending,
        Self::Running,
        Self::Waiting,
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Canceled,
        Self::Skipped,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Waiting => "WAITING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::TimedOut => "TIMED_OUT",
            Self::Canceled => "CANCELED",
            Self::Skipped => "SKIPPED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub const fn is_terminal(self) -> bool {
        match self {
            Self::Pending | Self::Running | Self::Waiting => false,
            Self::Succeeded | Self::Failed | Self::TimedOut | Self::Canceled | Self::Skipped => {
                true
            }
        }
    }
}

/// One execution a device ran for the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationRecord {
    pub stage: u32,
    pub operation: u32,
    pub execution_id: ExecutionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExecutionStatus>,
}

/// A device in a run ("target run"), as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRun {
    pub thing_name: ThingName,
    pub wave: u32,
    /// The stage it runs, or last settled.
    pub stage: u32,
    pub operation: u32,
    pub status: TargetStatus,
    /// A `CONTINUE` failure in the current stage.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed_in_stage: bool,
    /// A `CONTINUE` failure in an earlier stage: it ends FAILED.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed_before: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_deadline: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<OperationRecord>,
    /// Its outcome at each stage it settled (or was counted out of), in
    /// order, one letter each (`StageOutcome::letter`): what its run's
    /// counts are recounted from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outcomes: String,
    /// Bumped by every change; each write is conditioned on it.
    #[serde(default)]
    pub version: u64,
}

/// What a device does after one of its executions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetStep {
    /// Start the stage's next operation.
    Next { operation: u32 },
    /// The device settled its stage with `outcome`; with `goes_on`, it
    /// waits to start the next stage, else it ended in `status`.
    Settled {
        outcome: StageOutcome,
        goes_on: bool,
        status: TargetStatus,
    },
}

impl TargetRun {
    pub fn new(thing_name: ThingName, wave: u32) -> Self {
        Self {
            thing_name,
            wave,
            stage: 0,
            operation: 0,
            status: TargetStatus::Pending,
            failed_in_stage: false,
            failed_before: false,
            stage_deadline: None,
            history: Vec::new(),
            outcomes: String::new(),
            version: 1,
        }
    }

    /// The execution it waits on.
    pub fn waiting_on(&self) -> Option<&ExecutionId> {
        match self.status {
            TargetStatus::Running => self.history.last().map(|r| &r.execution_id),
            TargetStatus::Pending
            | TargetStatus::Waiting
            | TargetStatus::Succeeded
            | TargetStatus::Failed
            | TargetStatus::TimedOut
            | TargetStatus::Canceled
            | TargetStatus::Skipped => None,
        }
    }

    /// The stage it starts next: 0 while pending, the following one once
    /// it settled a stage and goes on.
    pub fn next_stage(&self) -> u32 {
        match self.status {
            TargetStatus::Pending => 0,
            _ => self.stage + 1,
        }
    }

    /// Starts `stage` at `now` with its first operation's execution `id`.
    pub fn start_stage(
        &mut self,
        pipeline: &Pipeline,
        stage: u32,
        id: ExecutionId,
        now: Timestamp,
    ) {
        self.failed_before |= self.failed_in_stage;
        self.failed_in_stage = false;
        self.stage = stage;
        self.status = TargetStatus::Running;
        self.stage_deadline = Some(stage_deadline(pipeline, stage, now));
        self.start_operation(0, id);
    }

    /// Where it stands in its stage, for the execution of its current
    /// operation to carry; `None` unless it runs a stage.
    pub fn run_operation(&self) -> Option<RunOperation> {
        (self.status == TargetStatus::Running).then_some(RunOperation {
            stage: self.stage,
            operation: self.operation,
            stage_deadline: self.stage_deadline?,
            failed_in_stage: self.failed_in_stage,
        })
    }

    /// The device as it stands while running the operation `at` carries:
    /// the stored record (written only when it settles a stage) moved into
    /// that stage and operation. `ids` are the executions of the stage's
    /// operations up to `at`'s, in order. `None` if the stored record is
    /// not the one just before that stage (it settled it already, or the
    /// news is stale).
    pub fn resume(
        &self,
        pipeline: &Pipeline,
        at: RunOperation,
        ids: &[ExecutionId],
    ) -> Option<Self> {
        let before = match self.status {
            TargetStatus::Pending => at.stage == 0,
            TargetStatus::Waiting => self.stage + 1 == at.stage,
            TargetStatus::Running
            | TargetStatus::Succeeded
            | TargetStatus::Failed
            | TargetStatus::TimedOut
            | TargetStatus::Canceled
            | TargetStatus::Skipped => false,
        };
        if !before || ids.len() != at.operation as usize + 1 {
            return None;
        }
        let mut running = self.clone();
        let (first, rest) = ids.split_first()?;
        running.start_stage(pipeline, at.stage, first.clone(), at.stage_deadline);
        for (i, id) in rest.iter().enumerate() {
            running.start_operation(i as u32 + 1, id.clone());
        }
        running.stage_deadline = Some(at.stage_deadline);
        running.failed_in_stage = at.failed_in_stage;
        Some(running)
    }

    /// Records the execution `id` started for `operation` of its stage.
    pub fn start_operation(&mut self, operation: u32, id: ExecutionId) {
        self.operation = operation;
        self.history.push(OperationRecord {
            stage: self.stage,
            operation,
            execution_id: id,
            status: None,
        });
    }

    /// [`Self::after_execution`] for an execution that ended at `ended_at`:
    /// once the stage's deadline has come, the device has timed out its
    /// stage (it stops, counted TIMED_OUT) unless it just finished it.
    pub fn after_execution_at(
        &self,
        pipeline: &Pipeline,
        status: ExecutionStatus,
        ended_at: Timestamp,
    ) -> Option<TargetStep> {
        let step = self.after_execution(pipeline, status)?;
        let time_up = self.stage_deadline.is_some_and(|d| d <= ended_at);
        let finished = matches!(
            step,
            TargetStep::Settled {
                outcome: StageOutcome::Succeeded | StageOutcome::Canceled,
                ..
            }
        );
        Some(if time_up && !finished {
            TargetStep::Settled {
                outcome: StageOutcome::TimedOut,
                goes_on: false,
                status: TargetStatus::TimedOut,
            }
        } else {
            step
        })
    }

    /// What follows the execution it waits on ending in `status`; `None`
    /// if it waits on no execution or `status` is not an end.
    pub fn after_execution(
        &self,
        pipeline: &Pipeline,
        status: ExecutionStatus,
    ) -> Option<TargetStep> {
        self.waiting_on()?;
        let stage = pipeline.stages.get(self.stage as usize)?;
        let operation = stage.operations.get(self.operation as usize)?;
        let last_operation = self.operation as usize + 1 == stage.operations.len();
        let last_stage = self.stage as usize + 1 == pipeline.stages.len();
        let failed = match status {
            ExecutionStatus::Queued | ExecutionStatus::Sent | ExecutionStatus::InProgress => {
                return None
            }
            ExecutionStatus::Succeeded => false,
            ExecutionStatus::Failed | ExecutionStatus::Rejected | ExecutionStatus::TimedOut => true,
            ExecutionStatus::Canceled => {
                return Some(TargetStep::Settled {
                    outcome: StageOutcome::Canceled,
                    goes_on: false,
                    status: TargetStatus::Canceled,
                })
            }
        };
        if failed && operation.on_failure == OnFailure::Stop {
            return Some(TargetStep::Settled {
                outcome: StageOutcome::Failed,
                goes_on: false,
                status: TargetStatus::Failed,
            });
        }
        if !last_operation {
            return Some(TargetStep::Next {
                operation: self.operation + 1,
            });
        }
        let failed_stage = failed || self.failed_in_stage;
        let outcome = if failed_stage {
            StageOutcome::Failed
        } else {
            StageOutcome::Succeeded
        };
        let status = match (last_stage, failed_stage || self.failed_before) {
            (false, _) => TargetStatus::Waiting,
            (true, false) => TargetStatus::Succeeded,
            (true, true) => TargetStatus::Failed,
        };
        Some(TargetStep::Settled {
            outcome,
            goes_on: !last_stage,
            status,
        })
    }

    /// Applies `step` for the execution that ended in `status`.
    pub fn apply(&mut self, step: TargetStep, status: ExecutionStatus) {
        if let Some(last) = self.history.last_mut() {
            last.status = Some(status);
        }
        if status != ExecutionStatus::Succeeded {
            self.failed_in_stage = true;
        }
        match step {
            // The next operation's execution is recorded by start_operation.
            TargetStep::Next { .. } => {}
            TargetStep::Settled { status, .. } => {
                self.status = status;
                self.stage_deadline = None;
            }
        }
    }
}

/// What one change of a device adds to its run's counts: an outcome at
/// (`wave`, `stage`), whether it went on from there, whether it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub wave: u32,
    pub stage: u32,
    pub outcome: Option<StageOutcome>,
    pub went_on: bool,
    pub ended: bool,
}

impl Tally {
    /// The counters it adds one to, as `(wave, stage, field)`; the field
    /// names are `StageCounts`' (camelCase).
    pub fn fields(&self) -> Vec<(u32, u32, &'static str)> {
        let mut fields = Vec::new();
        if let Some(outcome) = self.outcome {
            fields.push((self.wave, self.stage, outcome.field()));
        }
        if self.went_on {
            fields.push((self.wave, self.stage, "wentOn"));
        }
        fields
    }
}

impl StageOutcome {
    pub const ALL: [Self; 4] = [
        Self::Succeeded,
        Self::Failed,
        Self::TimedOut,
        Self::Canceled,
    ];

    /// Its letter in a target run's `outcomes`.
    pub const fn letter(self) -> char {
        match self {
            Self::Succeeded => 'S',
            Self::Failed => 'F',
            Self::TimedOut => 'T',
            Self::Canceled => 'C',
        }
    }

    pub fn from_letter(letter: char) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.letter() == letter)
    }

    /// Its counter in `StageCounts` (camelCase).
    pub const fn field(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timedOut",
            Self::Canceled => "canceled",
        }
    }
}

impl TargetRun {
    /// Records on the device what `tally` counts for it (its outcome).
    pub fn record(&mut self, tally: &Tally) {
        if let Some(outcome) = tally.outcome {
            self.outcomes.push(outcome.letter());
        }
    }
}

/// The deadline of a device that starts `stage` of `pipeline` at `now`.
pub fn stage_deadline(pipeline: &Pipeline, stage: u32, now: Timestamp) -> Timestamp {
    let timeout = pipeline
        .stages
        .get(stage as usize)
        .map_or(0, |s| i64::from(s.timeout_seconds));
    now.plus_secs(timeout)
}

/// `schedulingConfig` of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunScheduling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Timestamp>,
    #[serde(default)]
    pub end_behavior: EndBehavior,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance_windows: Vec<Window>,
}

impl RunScheduling {
    pub fn windows(&self) -> Windows {
        Windows(self.maintenance_windows.clone())
    }
}

/// `POST /pipelines/{id}/runs`, parsed against the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRun {
    pub run_id: Option<RunId>,
    pub targets: Targets,
    pub waves: Vec<WaveSize>,
    /// One per stage of the pipeline, defaults filled in.
    pub gates: Vec<Gate>,
    pub scheduling: RunScheduling,
    pub client_token: Option<ClientToken>,
}

const FIELDS: [&str; 6] = [
    "runId",
    "targets",
    "waves",
    "gates",
    "schedulingConfig",
    "clientToken",
];
const GATE_FIELDS: [&str; 4] = [
    "minSuccessPercentage",
    "minSuccessCount",
    "manualApproval",
    "abort",
];
const ABORT_FIELDS: [&str; 3] = ["failedCount", "failedPercentage", "minSettled"];
const SCHEDULING_FIELDS: [&str; 4] = ["startTime", "endTime", "endBehavior", "maintenanceWindows"];

impl StartRun {
    /// Parses a request body for `pipeline` at `now`, reporting every
    /// problem at once.
    pub fn parse(
        body: &Json,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Json::Object(map) = body else {
            errors.add(
                "",
                ValidationCode::InvalidJson,
                msg!["the body must be a JSON object, got ", json_kind(body)],
            );
            return Err(errors);
        };
        unknown_fields(map, "", &FIELDS, &mut errors);
        let run_id = match map.get("runId") {
            None | Some(Json::Null) => None,
            Some(Json::String(raw)) => errors.collect(RunId::parse_at(raw, "runId")),
            Some(other) => {
                errors.add(
                    "runId",
                    ValidationCode::WrongType,
                    msg!["expected a string, got ", json_kind(other)],
                );
                None
            }
        };
        let client_token = crate::ids::optional_client_token(map, &mut errors);
        let targets = parse_targets(map.get("targets"), &mut errors);
        if let Some(Targets::Things(things)) = &targets {
            if things.len() > MAX_RUN_TARGETS {
                errors.add(
                    "targets.things",
                    ValidationCode::OutOfRange,
                    msg!["a run has at most ", MAX_RUN_TARGETS, " targets"],
                );
            }
        }
        let waves = parse_waves(map.get("waves"), &mut errors);
        let gates = parse_gates(map.get("gates"), pipeline, &mut errors);
        let scheduling = parse_scheduling(map.get("schedulingConfig"), now, &mut errors);
        match targets {
            Some(targets) if errors.is_empty() => Ok(Self {
                run_id,
                targets,
                waves,
                gates,
                scheduling,
                client_token,
            }),
            _ => Err(errors),
        }
    }
}

fn parse_waves(value: Option<&Json>, errors: &mut ValidationErrors) -> Vec<WaveSize> {
    let list = match value {
        None | Some(Json::Null) => return Vec::new(),
        Some(Json::Array(list)) if list.len() <= MAX_WAVES => list,
        Some(other) => {
            errors.add(
                "waves",
                ValidationCode::WrongType,
                msg![
                    "expected a list of at most ",
                    MAX_WAVES,
                    " wave sizes (a count such as 1, or a percentage such as \"10%\"), got ",
                    shown(other)
                ],
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = msg!["waves[", i, "]"];
        let percent = item
            .as_str()
            .and_then(|s| s.strip_suffix('%'))
            .filter(|digits| {
                !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    && digits
                        .split('.')
                        .nth(1)
                        .is_none_or(|d| !d.is_empty() && d.len() <= 2)
            })
            .and_then(crate::json::parse_double);
        match (item.as_u64(), percent) {
            (Some(n), _) if n >= 1 => out.push(WaveSize::Count(n)),
            (_, Some(p)) if p > 0.0 && p <= 100.0 => out.push(WaveSize::Percent(p)),
            _ => errors.add(
                path,
                ValidationCode::InvalidValue,
                msg![
                    "a wave is a count of targets (1 or more) or a percentage of them (\"0.01%\" to \"100%\"), got ",
                    shown(item)
                ],
            ),
        }
    }
    out
}

fn parse_gates(
    value: Option<&Json>,
    pipeline: &Pipeline,
    errors: &mut ValidationErrors,
) -> Vec<Gate> {
    let mut gates = vec![Gate::default(); pipeline.stages.len()];
    let Some(map) = value
        .filter(|v| !v.is_null())
        .and_then(|v| object(v, "gates", errors))
    else {
        return gates;
    };
    for (name, gate) in map.iter() {
        let path = msg!["gates.", name];
        let position = StageName::parse(name)
            .ok()
            .and_then(|name| pipeline.stages.iter().position(|s| s.name == name));
        let Some(index) = position else {
            let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
            errors.add(
                &path,
                ValidationCode::InvalidValue,
                msg![
                    quote(name),
                    " is not a stage of pipeline ",
                    pipeline.pipeline_id.as_str(),
                    "; its stages: ",
                    names.join(", ")
                ],
            );
            continue;
        };
        if let Some(parsed) = parse_gate(gate, &path, errors) {
            gates[index] = parsed;
        }
    }
    gates
}

fn parse_gate(value: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Gate> {
    let map = object(value, path, errors)?;
    unknown_fields(map, path, &GATE_FIELDS, errors);
    let before = errors.len();
    let mut gate = Gate::default();
    if map
        .get("minSuccessPercentage")
        .is_some_and(|v| !v.is_null())
    {
        gate.min_success_percentage =
            number(map, "minSuccessPercentage", path, (0.0, 100.0), errors).unwrap_or(0.0);
    }
    if map.get("minSuccessCount").is_some_and(|v| !v.is_null()) {
        gate.min_success_count =
            whole(map, "minSuccessCount", path, (0, 1_000_000), errors).unwrap_or(0);
    }
    match map.get("manualApproval") {
        None | Some(Json::Null) => {}
        Some(Json::Bool(b)) => gate.manual_approval = *b,
        Some(other) => errors.add(
            msg![path, ".manualApproval"],
            ValidationCode::WrongType,
            msg!["expected true or false, got ", json_kind(other)],
        ),
    }
    if let Some(abort) = map.get("abort").filter(|v| !v.is_null()) {
        let at = msg![path, ".abort"];
        if let Some(a) = object(abort, &at, errors) {
            unknown_fields(a, &at, &ABORT_FIELDS, errors);
            let mut threshold = AbortThreshold {
                min_settled: 1,
                ..AbortThreshold::default()
            };
            if a.get("failedCount").is_some_and(|v| !v.is_null()) {
                threshold.failed_count = whole(a, "failedCount", &at, (1, 1_000_000), errors);
            }
            if a.get("failedPercentage").is_some_and(|v| !v.is_null()) {
                threshold.failed_percentage =
                    number(a, "failedPercentage", &at, (0.01, 100.0), errors);
            }
            if a.get("minSettled").is_some_and(|v| !v.is_null()) {
                threshold.min_settled =
                    whole(a, "minSettled", &at, (1, 1_000_000), errors).unwrap_or(1);
            }
            if a.get("failedCount").is_none() && a.get("failedPercentage").is_none() {
                errors.add(
                    &at,
                    ValidationCode::MissingRequired,
                    "give failedCount, failedPercentage or both",
                );
            }
            gate.abort = Some(threshold);
        }
    }
    (errors.len() == before).then_some(gate)
}

fn parse_scheduling(
    value: Option<&Json>,
    now: Timestamp,
    errors: &mut ValidationErrors,
) -> RunScheduling {
    let mut scheduling = RunScheduling::default();
    let path = "schedulingConfig";
    let Some(map) = value
        .filter(|v| !v.is_null())
        .and_then(|v| object(v, path, errors))
    else {
        return scheduling;
    };
    unknown_fields(map, path, &SCHEDULING_FIELDS, errors);
    (scheduling.start_time, scheduling.end_time) = scheduling_times(map, now, errors);
    match map.get("endBehavior") {
        None | Some(Json::Null) => {}
        Some(v) => match EndBehavior::ALL
            .into_iter()
            .find(|b| v.as_str() == Some(b.as_str()))
        {
            Some(b) => scheduling.end_behavior = b,
            None => errors.add(
                "schedulingConfig.endBehavior",
                ValidationCode::InvalidValue,
                "endBehavior is STOP_ROLLOUT (the default), CANCEL or FORCE_CANCEL",
            ),
        },
    }
    match map.get("maintenanceWindows") {
        None | Some(Json::Null) => {}
        Some(Json::Array(list)) if list.len() <= MAX_WINDOWS => {
            for (i, item) in list.iter().enumerate() {
                let at = msg![path, ".maintenanceWindows[", i, "]"];
                if let Some(window) = parse_window(item, &at, errors) {
                    scheduling.maintenance_windows.push(window);
                }
            }
        }
        Some(other) => errors.add(
            "schedulingConfig.maintenanceWindows",
            ValidationCode::WrongType,
            msg![
                "expected a list of at most ",
                MAX_WINDOWS,
                " windows, got ",
                shown(other)
            ],
        ),
    }
    scheduling
}

fn parse_window(value: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Window> {
    let map = object(value, path, errors)?;
    unknown_fields(map, path, &["startTime", "durationInMinutes"], errors);
    let start = match map.get("startTime") {
        Some(Json::String(text)) => match Cron::parse(text) {
            Ok(cron) => Some(cron),
            Err(problem) => {
                errors.add(
                    msg![path, ".startTime"],
                    ValidationCode::InvalidValue,
                    problem,
                );
                None
            }
        },
        _ => {
            errors.add(
                msg![path, ".startTime"],
                ValidationCode::MissingRequired,
                "startTime is a cron expression in UTC, e.g. \"0 2 * * SUN\" (02:00 every Sunday)",
            );
            None
        }
    };
    let duration = whole(
        map,
        "durationInMinutes",
        path,
        (1, u64::from(MAX_WINDOW_MINUTES)),
        errors,
    );
    Some(Window {
        start: start?,
        duration_minutes: duration?,
    })
}

/// An operator's override of a gate: who resumed the run, where, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resumed {
    pub wave: u32,
    pub stage: u32,
    pub by: String,
    pub at: Timestamp,
}

/// Why a run is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub wave: u32,
    pub stage: u32,
    /// Too few succeeded (with the figures), or a manual approval.
    pub succeeded: u64,
    pub required: u64,
    pub manual_approval: bool,
}

/// A run, as stored and shown (`GET` adds nothing: the counts are in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRun {
    pub run_id: RunId,
    pub pipeline_id: PipelineId,
    /// An explicit list is stored apart from the record (its count here).
    pub targets: JobTargets,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<WaveSize>,
    pub gates: Vec<Gate>,
    #[serde(default)]
    pub scheduling: RunScheduling,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    /// The most targets the run may resolve (the tenant's limit when it was
    /// created); a thing group holding more ends it CANCELED.
    #[serde(default = "max_run_targets")]
    pub max_targets: u64,
    /// The wave sizes, settled when the run started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wave_sizes: Vec<u64>,
    /// The wave the run is at, and the stage whose gate that wave is at.
    #[serde(default)]
    pub wave: u32,
    #[serde(default)]
    pub stage: u32,
    /// Whether that stage was started for the wave's waiting devices.
    #[serde(default)]
    pub released: bool,
    /// Per wave and stage (`counts[w][k]`).
    #[serde(default)]
    pub counts: Vec<Vec<StageCounts>>,
    /// Devices that ended (any terminal target status).
    #[serde(default)]
    pub targets_ended: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed: Vec<Resumed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<String>,
    /// The cancel (or end behaviour) also cancels started executions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_force: bool,
    /// A device settled a stage its wave had already passed while no
    /// window was open: it waits for the next window
    /// ([`RunStep::ReleaseStragglers`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stragglers_waiting: bool,
    /// The run stopped moving and its devices have not all been told:
    /// waiting ones are to be skipped, running ones' executions canceled
    /// (unless it STOPPED, which lets started work finish).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sweep_pending: bool,
    pub created_at: Timestamp,
    /// When the targets were resolved and put into waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    pub last_updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<ClientToken>,
}

/// What a run does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStep {
    /// Nothing now; look again at [`PipelineRun::wake_at`].
    Idle,
    /// SCHEDULED -> IN_PROGRESS: resolve the targets and put them in waves.
    Start,
    /// Start `stage` for the wave's devices waiting for it.
    Release { wave: u32, stage: u32 },
    /// The wave passed the gate of `stage`: move on.
    Advance { wave: u32, stage: u32 },
    /// HELD at this gate.
    Hold(Hold),
    /// The failure threshold of `stage` was reached: ABORTED, executions
    /// not started canceled.
    Abort { stage: u32 },
    /// The end time came.
    End(EndBehavior),
    /// The run ends in `status` (every device ended, or a cancel finished).
    Finish(RunStatus),
    /// Skip the devices that wait, and (unless STOPPED) cancel the
    /// executions of those running; then clear `sweep_pending`.
    Sweep,
    /// Start the next stage of every waiting device whose wave already
    /// passed that stage's gate (stragglers held by a closed window).
    ReleaseStragglers,
}

impl RunStep {
    /// Whether the step follows from the counts (a gate's verdict, the
    /// failure threshold, every device ended): taken only on counts
    /// recounted from the devices' records ([`PipelineRun::recount`]).
    pub const fn decided_by_counts(&self) -> bool {
        match self {
            Self::Advance { .. } | Self::Hold(_) | Self::Abort { .. } | Self::Finish(_) => true,
            Self::Idle
            | Self::Start
            | Self::Release { .. }
            | Self::End(_)
            | Self::Sweep
            | Self::ReleaseStragglers => false,
        }
    }
}

/// What an operator's cancel of a run in a status does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCancel {
    /// Forced, or nothing started is running: CANCELED now.
    Canceled,
    /// CANCELING until started operations end.
    Canceling,
    /// Already canceled (a retry): returned as it is.
    AlreadyCanceled,
    /// Completed, aborted or stopped: refused (409).
    Ended,
}

impl PipelineRun {
    /// The new run record (version 1) for `request` of `pipeline`, and
    /// the explicit target list to store beside it.
    pub fn new(
        request: StartRun,
        run_id: RunId,
        pipeline: &Pipeline,
        now: Timestamp,
    ) -> (Self, Option<Vec<ThingName>>) {
        let scheduled = request.scheduling.start_time.is_some_and(|t| t > now);
        let (targets, list) = JobTargets::stored(request.targets);
        let run = Self {
            run_id,
            pipeline_id: pipeline.pipeline_id.clone(),
            targets,
            waves: request.waves,
            gates: request.gates,
            scheduling: request.scheduling,
            status: if scheduled {
                RunStatus::Scheduled
            } else {
                RunStatus::InProgress
            },
            status_reason: None,
            max_targets: max_run_targets(),
            wave_sizes: Vec::new(),
            wave: 0,
            stage: 0,
            released: false,
            counts: Vec::new(),
            targets_ended: 0,
            hold: None,
            resumed: Vec::new(),
            canceled_by: None,
            cancel_force: false,
            stragglers_waiting: false,
            sweep_pending: false,
            created_at: now,
            started_at: None,
            last_updated_at: now,
            completed_at: None,
            version: 1,
            client_token: request.client_token,
        };
        (run, list)
    }

    /// The execution of the operation `at` names for `target`: an
    /// ordinary QUEUED execution of the operation's command (its timeout
    /// and retention, the operation's retry policy or the command's),
    /// marked with the run and `at`, and done by the stage's deadline at
    /// the latest. `validator` is that command's.
    pub fn operation_execution(
        &self,
        pipeline: &Pipeline,
        validator: &Validator,
        at: RunOperation,
        target: ThingName,
        id: ExecutionId,
        now: Timestamp,
    ) -> Option<CommandExecution> {
        let op = pipeline.operation(at.stage as usize, at.operation as usize)?;
        let definition = validator.definition();
        let request = StartExecution {
            target,
            parameters: op.parameters.clone(),
            execution_timeout_seconds: definition.execution_timeout_seconds,
            time_to_live: None,
            client_token: None,
            not_before: None,
            delivery_timeout_seconds: None,
            retry_policy: op.retry_policy.clone(),
            dedupe_key: None,
            supersede: false,
            force: false,
        };
        let created_by = msg!["run/", self.run_id.as_str()];
        let mut execution = request.into_execution(id, validator, &created_by, now);
        execution.run_id = Some(self.run_id.clone());
        execution.run_operation = Some(at);
        execution.complete_by = execution.complete_by.min(at.stage_deadline);
        Some(execution)
    }

    /// A device (`running`, in its stage) settles that stage with
    /// `outcome`: the status it is left in — it goes on (`WAITING`) only
    /// while the run moves; a STOPPED run skips it, a canceled or aborted
    /// one cancels it — and what that adds to the counts.
    pub fn settle(
        &self,
        running: &TargetRun,
        outcome: StageOutcome,
        goes_on: bool,
        status: TargetStatus,
    ) -> (TargetStatus, Tally) {
        let moving = matches!(self.status, RunStatus::InProgress | RunStatus::Held);
        let status = match self.status {
            RunStatus::Stopped if goes_on => TargetStatus::Skipped,
            _ if goes_on && !moving => TargetStatus::Canceled,
            _ => status,
        };
        let tally = Tally {
            wave: running.wave,
            stage: running.stage,
            outcome: Some(outcome),
            went_on: status == TargetStatus::Waiting,
            ended: status.is_terminal(),
        };
        (status, tally)
    }

    /// A device that had not started its next stage is skipped by a run
    /// that stopped moving: counted canceled in that stage if the run had
    /// let it in (so the stage's `entered` is matched), and ended.
    pub fn skip(&self, waiting: &TargetRun) -> Tally {
        let stage = waiting.next_stage();
        Tally {
            wave: waiting.wave,
            stage,
            outcome: self
                .reached(waiting.wave, stage)
                .then_some(StageOutcome::Canceled),
            went_on: false,
            ended: true,
        }
    }

    /// The counts from the devices' records alone (`outcomes` and
    /// status), exactly: what the counters hold unless a stream batch was
    /// delivered again along other boundaries (then they may count a
    /// device twice). Decisions that depend on the counts are taken on
    /// these.
    pub fn recount(&mut self, targets: &[TargetRun]) {
        let stages = self.counts.first().map_or(0, Vec::len);
        self.counts = vec![vec![StageCounts::default(); stages]; self.wave_sizes.len()];
        self.targets_ended = 0;
        for target in targets {
            let settled: Vec<StageOutcome> = target
                .outcomes
                .chars()
                .filter_map(StageOutcome::from_letter)
                .collect();
            for (k, outcome) in settled.iter().enumerate() {
                let went_on = k + 1 < settled.len()
                    || (k + 1 == settled.len() && target.status == TargetStatus::Waiting);
                self.count(&Tally {
                    wave: target.wave,
                    stage: k as u32,
                    outcome: Some(*outcome),
                    went_on,
                    ended: false,
                });
            }
            self.targets_ended += u64::from(target.status.is_terminal());
        }
        self.derive_entered();
    }

    /// Whether the counts are near a decision — the wave at its gate has at
    /// most one device in twenty (at least one) still running the stage, or
    /// a canceling run as few still running — so its next step is chosen
    /// on a recount: counters that counted a device twice would otherwise
    /// keep that gate waiting until the sweeper's periodic look.
    pub fn near_decision(&self) -> bool {
        let near = |c: StageCounts| c.running() <= (c.entered / 20).max(1);
        match self.status {
            RunStatus::InProgress if self.released => near(self.counts_at(self.wave, self.stage)),
            RunStatus::Canceling => {
                let mut all = StageCounts::default();
                for stage in self.counts.iter().flatten() {
                    all.add(stage);
                }
                near(all)
            }
            RunStatus::InProgress
            | RunStatus::Scheduled
            | RunStatus::Held
            | RunStatus::Canceled
            | RunStatus::Completed
            | RunStatus::Aborted
            | RunStatus::Stopped => false,
        }
    }

    /// Adds `tally` to the counts (as the store's counters do).
    pub fn count(&mut self, tally: &Tally) {
        if let Some(counts) = self
            .counts
            .get_mut(tally.wave as usize)
            .and_then(|w| w.get_mut(tally.stage as usize))
        {
            if let Some(outcome) = tally.outcome {
                counts.record(outcome);
            }
            counts.went_on += u64::from(tally.went_on);
        }
        self.targets_ended += u64::from(tally.ended);
    }

    /// Whether the run has let `wave` into `stage`: released it there, or
    /// moved past it.
    pub fn reached(&self, wave: u32, stage: u32) -> bool {
        (wave, stage) < (self.wave, self.stage)
            || ((wave, stage) == (self.wave, self.stage) && self.released)
    }

    /// Fills in each stage's `entered` from what is counted: a wave's
    /// devices enter its first stage when it is released there, and the
    /// devices that went on from stage `k - 1` enter stage `k` once the
    /// wave has reached it (a device let in while every window is closed
    /// counts as entered, so the gate waits for it).
    pub fn derive_entered(&mut self) {
        for (w, stages) in self.counts.iter_mut().enumerate() {
            let wave = w as u32;
            let size = self.wave_sizes.get(w).copied().unwrap_or(0);
            let mut went_on_before = size;
            for (k, counts) in stages.iter_mut().enumerate() {
                let stage = k as u32;
                let reached = (wave, stage) < (self.wave, self.stage)
                    || ((wave, stage) == (self.wave, self.stage) && self.released);
                counts.entered = if reached { went_on_before } else { 0 };
                went_on_before = counts.went_on;
            }
        }
    }

    /// Whether the targets were resolved and put into waves.
    pub fn started(&self) -> bool {
        self.started_at.is_some()
    }

    /// Puts `total` resolved targets into waves (`wave_sizes`) with empty
    /// counts for `stages` stages, at `now`.
    pub fn assign_waves(&mut self, total: u64, stages: usize, now: Timestamp) {
        self.started_at = Some(now);
        self.last_updated_at = now;
        self.wave_sizes = wave_sizes(&self.waves, total);
        self.counts = vec![vec![StageCounts::default(); stages]; self.wave_sizes.len()];
        if self.status == RunStatus::Scheduled {
            self.status = RunStatus::InProgress;
        }
    }

    pub fn targets_total(&self) -> u64 {
        self.wave_sizes.iter().sum()
    }

    /// The wave and stage's counts (zero for any outside the run).
    pub fn counts_at(&self, wave: u32, stage: u32) -> StageCounts {
        self.counts
            .get(wave as usize)
            .and_then(|w| w.get(stage as usize))
            .copied()
            .unwrap_or_default()
    }

    /// Stage `stage`'s counts summed over every wave.
    pub fn stage_totals(&self, stage: u32) -> StageCounts {
        let mut total = StageCounts::default();
        for wave in &self.counts {
            if let Some(c) = wave.get(stage as usize) {
                total.add(c);
            }
        }
        total
    }

    /// Devices running a stage now.
    pub fn running(&self) -> u64 {
        self.counts.iter().flatten().map(StageCounts::running).sum()
    }

    /// The one next step at `now`.
    pub fn next_step(&self, now: Timestamp) -> RunStep {
        match self.status {
            _ if self.sweep_pending => RunStep::Sweep,
            RunStatus::Canceled
            | RunStatus::Completed
            | RunStatus::Aborted
            | RunStatus::Stopped => RunStep::Idle,
            RunStatus::Canceling => {
                if self.running() == 0 {
                    RunStep::Finish(RunStatus::Canceled)
                } else {
                    RunStep::Idle
                }
            }
            RunStatus::Scheduled => {
                if self.scheduling.end_time.is_some_and(|end| end <= now) {
                    RunStep::End(self.scheduling.end_behavior)
                } else if self.scheduling.start_time.is_none_or(|t| t <= now) {
                    RunStep::Start
                } else {
                    RunStep::Idle
                }
            }
            RunStatus::Held | RunStatus::InProgress => self.in_progress_step(now),
        }
    }

    fn in_progress_step(&self, now: Timestamp) -> RunStep {
        if self.scheduling.end_time.is_some_and(|end| end <= now) {
            return RunStep::End(self.scheduling.end_behavior);
        }
        if !self.started() {
            return RunStep::Start;
        }
        for (stage, gate) in self.gates.iter().enumerate() {
            let stage = stage as u32;
            if gate.aborts(&self.stage_totals(stage)) {
                return RunStep::Abort { stage };
            }
        }
        if self.stragglers_waiting && self.scheduling.windows().is_open(now) {
            return RunStep::ReleaseStragglers;
        }
        if self.status == RunStatus::Held {
            return RunStep::Idle;
        }
        if self.wave as usize >= self.wave_sizes.len() {
            return if self.targets_ended >= self.targets_total() {
                RunStep::Finish(RunStatus::Completed)
            } else {
                RunStep::Idle
            };
        }
        let (wave, stage) = (self.wave, self.stage);
        if !self.released {
            return if self.scheduling.windows().is_open(now) {
                RunStep::Release { wave, stage }
            } else {
                RunStep::Idle
            };
        }
        let gate = self.gates.get(stage as usize).cloned().unwrap_or_default();
        match gate.verdict(&self.counts_at(wave, stage)) {
            GateVerdict::Waiting => RunStep::Idle,
            GateVerdict::Passed => RunStep::Advance { wave, stage },
            GateVerdict::Missed {
                succeeded,
                required,
            } => RunStep::Hold(Hold {
                wave,
                stage,
                succeeded,
                required,
                manual_approval: false,
            }),
            GateVerdict::AwaitingApproval => {
                let counts = self.counts_at(wave, stage);
                RunStep::Hold(Hold {
                    wave,
                    stage,
                    succeeded: counts.succeeded,
                    required: gate.required(counts.entered),
                    manual_approval: true,
                })
            }
        }
    }

    /// Past the gate of (`wave`, `stage`): the wave's next stage, or the
    /// next wave's first. A no-op unless the run is at that gate (a
    /// redelivered step).
    pub fn advance(&mut self, wave: u32, stage: u32, stages: usize, now: Timestamp) -> bool {
        if (self.wave, self.stage) != (wave, stage) || !self.released {
            return false;
        }
        if (stage as usize) + 1 < stages {
            self.stage = stage + 1;
        } else {
            self.wave = wave + 1;
            self.stage = 0;
        }
        self.released = false;
        self.last_updated_at = now;
        true
    }

    /// Whether a device of the run may start its stage's next operation:
    /// not once the run was canceled or aborted (a STOPPED run lets started
    /// stages finish).
    pub fn continues_stages(&self) -> bool {
        match self.status {
            RunStatus::InProgress | RunStatus::Held | RunStatus::Stopped => true,
            RunStatus::Scheduled
            | RunStatus::Canceling
            | RunStatus::Canceled
            | RunStatus::Completed
            | RunStatus::Aborted => false,
        }
    }

    /// Whether a device that settled `stage` of `wave` may start the next
    /// stage now, rather than wait for the wave's gate: its wave already
    /// passed that gate (it was a straggler) and a window is open.
    pub fn may_go_on(&self, wave: u32, stage: u32, now: Timestamp) -> bool {
        self.passed(wave, stage) && self.scheduling.windows().is_open(now)
    }

    /// Whether `wave` is past the gate of `stage` while the run moves: a
    /// device of that wave that settled `stage` goes on without waiting
    /// for its wave (as soon as a window is open).
    pub fn passed(&self, wave: u32, stage: u32) -> bool {
        let passed = wave < self.wave || (wave == self.wave && stage < self.stage);
        passed && matches!(self.status, RunStatus::InProgress | RunStatus::Held)
    }

    /// Holds the run at `hold`.
    pub fn hold(&mut self, hold: Hold, now: Timestamp) {
        self.status = RunStatus::Held;
        self.hold = Some(hold);
        self.last_updated_at = now;
    }

    /// An operator's resume of a HELD run: the gate it is held at counts as
    /// passed (recorded with `by`). `false` if it is not held.
    pub fn resume(&mut self, by: &str, stages: usize, now: Timestamp) -> bool {
        let Some(hold) = self.hold.filter(|_| self.status == RunStatus::Held) else {
            return false;
        };
        self.resumed.push(Resumed {
            wave: hold.wave,
            stage: hold.stage,
            by: by.to_owned(),
            at: now,
        });
        self.hold = None;
        self.status = RunStatus::InProgress;
        self.advance(hold.wave, hold.stage, stages, now);
        true
    }

    /// What an operator's cancel does now.
    pub fn cancel_effect(&self, force: bool) -> RunCancel {
        match self.status {
            RunStatus::Canceled => RunCancel::AlreadyCanceled,
            RunStatus::Completed | RunStatus::Aborted | RunStatus::Stopped => RunCancel::Ended,
            RunStatus::Canceling if !force => RunCancel::AlreadyCanceled,
            RunStatus::Scheduled
            | RunStatus::InProgress
            | RunStatus::Held
            | RunStatus::Canceling => {
                if force || self.running() == 0 {
                    RunCancel::Canceled
                } else {
                    RunCancel::Canceling
                }
            }
        }
    }

    /// Ends (or starts ending) the run in `status`; unless it completed,
    /// its waiting and running devices are then swept ([`RunStep::Sweep`]).
    pub fn finish(&mut self, status: RunStatus, reason: Option<StatusReason>, now: Timestamp) {
        self.sweep_pending = !matches!(status, RunStatus::Completed) && self.started();
        self.status = status;
        self.status_reason = reason;
        self.hold = None;
        self.last_updated_at = now;
        if status.is_terminal() {
            self.completed_at = Some(now);
        }
    }

    /// When the sweeper should look at the run again (a start time, an end
    /// time, a window opening); `None` when only events move it.
    pub fn wake_at(&self, now: Timestamp) -> Option<Timestamp> {
        if self.sweep_pending {
            // The dispatcher sweeps at once; should that step fail, nothing
            // else would ever change an ended run: the sweeper retries it.
            return Some(now.plus_secs(SWEEP_RETRY_SECONDS));
        }
        let end = self.scheduling.end_time;
        let at = match self.status {
            RunStatus::Scheduled => self.scheduling.start_time,
            RunStatus::InProgress | RunStatus::Held if self.stragglers_waiting => {
                self.scheduling.windows().next_start(now)
            }
            RunStatus::InProgress if !self.released => self.scheduling.windows().next_start(now),
            // Waiting on devices: the sweeper looks again now and then, on
            // recounted counts, in case counters that counted a device
            // twice (a stream batch delivered again along other
            // boundaries) keep a gate from ever seeing its wave settled.
            RunStatus::InProgress | RunStatus::Canceling => {
                Some(now.plus_secs(COUNT_CHECK_SECONDS))
            }
            RunStatus::Held => None,
            RunStatus::Canceled
            | RunStatus::Completed
            | RunStatus::Aborted
            | RunStatus::Stopped => return None,
        };
        match (at, end) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }
}

impl Serialize for Cron {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Cron {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Cron::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Window", 2)?;
        s.serialize_field("startTime", &self.start)?;
        s.serialize_field("durationInMinutes", &self.duration_minutes)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            start_time: Cron,
            duration_in_minutes: u32,
        }
        let stored = Stored::deserialize(deserializer)?;
        Ok(Self {
            start: stored.start_time,
            duration_minutes: stored.duration_in_minutes,
        })
    }
}
