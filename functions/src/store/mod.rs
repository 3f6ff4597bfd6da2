//! THE STORE: the [`Store`] and [`JobStore`] traits the operations are
//! generic over, and their types. This module only defines them (no I/O);
//! the one implementation is DynamoDB, read in this order:
//!
//! - [`layout`]: THE TABLE LAYOUT — every item's keys and attributes, the
//!   indexes, the table's definition
//! - [`dynamodb`]: the store type (one tenant's view) and its common calls
//! - [`executions`]: the [`Store`] methods (commands, executions, owners,
//!   the due index)
//! - [`update`]: the conditional UpdateItem of a status change
//! - [`jobs`]: the [`JobStore`] methods (jobs, target pages, statistics)
//! - [`pipeline_store`]: the [`PipelineStore`](pipeline_store::PipelineStore) trait; [`pipeline_layout`]
//!   and [`pipelines`]: its items and methods (pipelines, runs, their
//!   counters and target runs)
//! - [`stream`]: the table's stream records, decoded
//! - [`errors`]: SDK failures classified (capacity is counted by
//!   `platform::capacity`)
//!
//! Nothing here imports the layers above it (operations, entry points,
//! configuration): the tenant is given to the store, and the time to each
//! call.
//!
//! A store value is one tenant's view of the table ([`Store::tenant`]):
//! every key it reads or writes is scoped by that tenant, so no method can
//! reach another tenant's items. The few cross-tenant reads the system needs
//! (the sweeper's due index, thing ownership) return the tenant with each
//! item, and the caller scopes a view to it with [`Store::for_tenant`].

pub mod dedupe;
pub mod dynamodb;
pub mod errors;
pub mod executions;
pub mod jobs;
pub mod layout;
pub mod pipeline_layout;
pub mod pipeline_store;
pub mod pipelines;

pub mod presence;
pub mod run_op;
pub mod stream;
pub mod table;
pub mod update;

use courier_core::job_run::{Job, StatisticsDelta};
use courier_core::presence::Presence;
use courier_core::{
    CommandDefinition, CommandExecution, CommandId, DedupeKey, ExecutionId, ExecutionStatus, JobId,
    JobStatistics, LateResult, TenantId, ThingName, Timestamp, TransitionError, TransitionPlan,
};
use std::collections::BTreeMap;
use std::future::Future;

/// One DynamoDB item: attribute name to value.
pub type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Where a listing stopped: the store's last evaluated key. The service seals
/// it into an opaque, tamper-checked `nextToken`; callers never see it raw.
pub type Cursor = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub start: Option<Cursor>,
}

/// Which executions to list (always newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionsOf {
    Target(ThingName),
    Command(CommandId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionQuery {
    pub of: ExecutionsOf,
    pub status: Option<ExecutionStatus>,
    /// Oldest first (AWS's `sortOrder` ASCENDING); newest first otherwise.
    pub oldest_first: bool,
    /// Only executions whose `startedAt` (or `completedAt`) is in the range.
    pub time: Option<TimeFilter>,
}

/// AWS IoT's `startedTimeFilter` / `completedTimeFilter`: bounds on one of
/// an execution's times, both inclusive; an execution without that time
/// (not started, not ended) is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFilter {
    pub of: TimeOf,
    pub after: Option<Timestamp>,
    pub before: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOf {
    Started,
    Completed,
}

impl TimeFilter {
    pub fn admits(&self, execution: &CommandExecution) -> bool {
        let at = match self.of {
            TimeOf::Started => execution.started_at,
            TimeOf::Completed => execution.completed_at,
        };
        at.is_some_and(|at| {
            self.after.is_none_or(|after| at >= after)
                && self.before.is_none_or(|before| at <= before)
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome<T> {
    Created(T),
    /// Something with this key existed already; here it is.
    Existing(T),
}

/// The fingerprint of a create request, for idempotency: written with a new
/// record, and compared with an existing record's. `earlier` is the same
/// request's fingerprint under the formula a previous release used, so that
/// a retry spanning an upgrade still matches the record it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHash {
    pub current: String,
    pub earlier: Option<String>,
}

/// Hex digits of a request fingerprint kept on an execution.
const STORED_HASH_DIGITS: usize = 32;

impl RequestHash {
    pub fn new(current: impl Into<String>) -> Self {
        Self {
            current: current.into(),
            earlier: None,
        }
    }

    /// What an execution keeps of a fingerprint: its first 128 bits (32 hex
    /// digits) tell two requests apart as surely as all 256 for an
    /// idempotent retry, and keep 32 bytes off an item written several
    /// times (DynamoDB bills a write per started KB).
    pub fn stored_part(hash: &str) -> &str {
        hash.get(..STORED_HASH_DIGITS).unwrap_or(hash)
    }

    /// Whether a stored fingerprint is this request's: the whole of it, or
    /// (an execution's) its [`Self::stored_part`].
    pub fn matches(&self, stored: Option<&str>) -> bool {
        let same = |full: &str, stored: &str| {
            full == stored || (stored.len() >= STORED_HASH_DIGITS && full.starts_with(stored))
        };
        stored.is_some_and(|s| {
            same(&self.current, s) || self.earlier.as_deref().is_some_and(|e| same(e, s))
        })
    }
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq)]
pub enum Deleted {
    Deleted,
    /// Absent or expired.
    NotFound,
    /// Not ended, or a job's: the record as it is.
    Refused(Box<CommandExecution>),
}

/// What a device was last told its next execution is. `version` counts the
/// records; each is written on the condition that it is still the one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToldNext {
    pub version: u64,
    /// `None`: nothing recorded (never told, or forgotten after a publish
    /// failed); otherwise `courier_core::protocol::next_identity`'s text.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(CommandExecution),
    /// An execution with this id exists; `same_request` tells whether it was
    /// created from a request with the same fingerprint (an idempotent retry).
    Existing {
        execution: CommandExecution,
        same_request: bool,
    },
}

/// What a keyed create did (see `dedupe`).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyedCreate {
    /// The execution and its guard were written (and the superseded one
    /// canceled).
    Created,
    /// The execution's id exists (its clientToken was used before).
    Existing {
        execution: Box<CommandExecution>,
        same_request: bool,
    },
    /// The guard or the superseded execution changed since they were read.
    Raced,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TransitionOutcome {
    /// Written; `previous` is the status it had before this write.
    Applied {
        execution: CommandExecution,
        previous: ExecutionStatus,
    },
    /// The update with this dedupe token was the last one applied: a
    /// redelivery. Nothing was written.
    Duplicate(CommandExecution),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The change was refused by the rules; nothing was written. `current` is
    /// the record as it was, from the failed condition check (no extra read).
    #[error("{error}")]
    Rejected {
        error: TransitionError,
        current: Box<CommandExecution>,
    },
    /// A conditional write lost to a concurrent one; read again and retry.
    #[error("changed concurrently: {0}")]
    Conflict(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Internal(String),
}

/// Everything the handlers need from storage. Every method is one GetItem,
/// Query (plus BatchGetItem to hydrate keys-only index entries), PutItem or
/// UpdateItem; none scans.
pub trait Store: Send + Sync + Clone {
    /// The tenant whose items this view reads and writes.
    fn tenant(&self) -> &TenantId;

    /// The same store, scoped to `tenant` (cheap: shares clients and caches).
    fn for_tenant(&self, tenant: &TenantId) -> Self;

    /// The tenant a thing belongs to; `None` while no tenant has targeted it.
    fn thing_owner(
        &self,
        thing: &ThingName,
    ) -> impl Future<Output = Result<Option<TenantId>, StoreError>> + Send;

    /// Makes each thing this tenant's unless another tenant owns it (a thing
    /// belongs to the first tenant that targets it) and says, in order,
    /// whether it is this tenant's.
    fn claim_things(
        &self,
        things: &[ThingName],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Creates the definition unless one with its id exists.
    fn put_command(
        &self,
        definition: &CommandDefinition,
    ) -> impl Future<Output = Result<PutOutcome<CommandDefinition>, StoreError>> + Send;

    fn get_command(
        &self,
        id: &CommandId,
    ) -> impl Future<Output = Result<Option<CommandDefinition>, StoreError>> + Send;

    fn list_commands(
        &self,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<CommandDefinition>, StoreError>> + Send;

    /// Creates the execution unless one with its id exists (and is not
    /// expired). `request_hash` fingerprints the request for idempotency.
    fn create_execution(
        &self,
        execution: &CommandExecution,
        request_hash: &RequestHash,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// Records a device's lifecycle event unless a newer one is recorded.
    /// True when it was recorded.
    fn record_presence(
        &self,
        thing: &ThingName,
        presence: &Presence,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A device's latest recorded lifecycle event.
    fn presence(
        &self,
        thing: &ThingName,
    ) -> impl Future<Output = Result<Option<Presence>, StoreError>> + Send;

    /// The execution holding `key` on `thing`, as its guard names it (it
    /// may have ended since).
    fn dedupe_holder(
        &self,
        thing: &ThingName,
        key: &DedupeKey,
    ) -> impl Future<Output = Result<Option<ExecutionId>, StoreError>> + Send;

    /// Creates keyed `execution` in one transaction with its key's guard,
    /// provided the guard still names `holder` (`None`: absent); with
    /// `superseding`, that execution's cancel plan is applied in it too.
    fn create_keyed(
        &self,
        execution: &CommandExecution,
        request_hash: &RequestHash,
        holder: Option<&ExecutionId>,
        superseding: Option<(&ExecutionId, &TransitionPlan)>,
    ) -> impl Future<Output = Result<KeyedCreate, StoreError>> + Send;

    /// The execution, or `None` if absent or expired at `now`.
    fn get_execution(
        &self,
        id: &ExecutionId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<CommandExecution>, StoreError>> + Send;

    fn list_executions(
        &self,
        query: &ExecutionQuery,
        page: PageRequest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Page<CommandExecution>, StoreError>> + Send;

    /// Every pending (not terminal, not expired) execution of a device, oldest
    /// first. `courier_core::protocol::next_pending` picks the next one.
    fn pending_executions(
        &self,
        target: &ThingName,
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<CommandExecution>, StoreError>> + Send;

    /// Deletes a standalone execution that has ended (DeleteCommandExecution):
    /// one conditional DeleteItem, so an execution that is still running, or
    /// belongs to a job, is never removed. `Deleted::Refused` carries the
    /// record as it is.
    fn delete_execution(
        &self,
        id: &ExecutionId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Deleted, StoreError>> + Send;

    /// What `thing` was last told its next execution is (notify-next), as
    /// every publisher records it on the thing's owner item.
    fn told_next(
        &self,
        thing: &ThingName,
    ) -> impl Future<Output = Result<ToldNext, StoreError>> + Send;

    /// Records that `thing` is told `next` (`None`: forget what it was told,
    /// so the next publisher tells it again), if no publisher recorded
    /// anything since `seen` was read. `Ok(false)`: one did (read again), or
    /// the thing has no owner item (nothing to record on).
    fn record_told_next(
        &self,
        thing: &ThingName,
        seen: &ToldNext,
        next: Option<&str>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Applies `plan` in one conditional write. `dedupe_token` identifies the
    /// request: if it was the last one applied, nothing is written and the
    /// current record comes back as [`TransitionOutcome::Duplicate`].
    fn apply_transition(
        &self,
        id: &ExecutionId,
        plan: &TransitionPlan,
        dedupe_token: &str,
    ) -> impl Future<Output = Result<TransitionOutcome, StoreError>> + Send;

    /// Non-terminal executions of every tenant whose wake time
    /// (`CommandExecution::wake_at`) has come, each with its tenant: up to
    /// `limit` per due-index shard, through the sparse due index (never a
    /// Scan).
    fn due_executions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(TenantId, CommandExecution)>, StoreError>> + Send;

    /// Re-files the execution in the due index at its current wake time
    /// (unless it changed since `execution.version`).
    fn reschedule(
        &self,
        execution: &CommandExecution,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keeps a device's result that arrived after the execution TIMED_OUT.
    /// `None` when there is nothing to record it on (not TIMED_OUT, another
    /// target's, or a late result already kept: the first one wins).
    fn record_late_result(
        &self,
        id: &ExecutionId,
        target: &ThingName,
        late: &LateResult,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<CommandExecution>, StoreError>> + Send;
}

#[derive(Debug, Clone, PartialEq)]
pub enum CreateJobOutcome {
    Created(Job),
    /// A job with this id exists; `same_request`: created from a request
    /// with the same fingerprint (an idempotent retry).
    Existing {
        job: Job,
        same_request: bool,
    },
}

/// What adding a batch's statistics did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatisticsOutcome {
    Added,
    /// A batch starting at the same stream record was added before, up to
    /// and including the record `last` (a redelivery): add only what follows.
    AlreadyAdded {
        last: String,
    },
}

/// Storage of jobs: the job record, its explicit target list, its statistics
/// counters, and the fan-out's batch writes. None scans.
pub trait JobStore: Store {
    /// Creates the job (and stores `targets`, an explicit list) unless a job
    /// with its id exists.
    fn create_job(
        &self,
        job: &Job,
        targets: Option<&[ThingName]>,
        request_hash: &str,
    ) -> impl Future<Output = Result<CreateJobOutcome, StoreError>> + Send;

    /// The job and its statistics (summed over the counter shards), or
    /// `None` if absent or expired at `now` (TTL deletion lags by up to two
    /// days; an expired job is gone).
    fn get_job(
        &self,
        id: &JobId,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<(Job, JobStatistics)>, StoreError>> + Send;

    /// Jobs, newest first, without those expired at `now` (pages may come
    /// back short; follow `next`).
    fn list_jobs(
        &self,
        page: PageRequest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Page<Job>, StoreError>> + Send;

    /// A job's executions, in the order they were created.
    fn job_executions(
        &self,
        id: &JobId,
        page: PageRequest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Page<CommandExecution>, StoreError>> + Send;

    /// Replaces the job record if it is still at `expected_version`
    /// ([`StoreError::Conflict`] otherwise).
    fn put_job(
        &self,
        job: &Job,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// `count` explicit targets from index `from` (within one stored page).
    fn job_targets(
        &self,
        job: &Job,
        from: u64,
        count: u32,
    ) -> impl Future<Output = Result<Vec<ThingName>, StoreError>> + Send;

    /// Writes new executions: BatchWriteItem, 25 at a time, unprocessed
    /// items retried with backoff and jitter; with `only_missing`, one
    /// conditional put each instead, so existing ones are left alone.
    /// Returns how many were written.
    fn write_executions(
        &self,
        executions: &[CommandExecution],
        only_missing: bool,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Adds a batch of execution changes to the job's counters, once: the
    /// batch is named by its first stream record's id, `first`, and `last`
    /// is its last record's; its marker expires two days after `now`.
    fn add_statistics(
        &self,
        job: &JobId,
        delta: &StatisticsDelta,
        first: &str,
        last: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<StatisticsOutcome, StoreError>> + Send;

    /// Jobs of every tenant whose wake time (`Job::wake_at`) has come, each
    /// with its tenant.
    fn due_jobs(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(TenantId, Job)>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::RequestHash;

    const FULL: &str = "8daa495055633cc8f6d2cf8a067496d3c4b244f9c7c52c3c2c193acec45e3494";

    #[test]
    fn a_fingerprint_matches_whole_or_by_its_stored_128_bits() {
        let hash = RequestHash::new(FULL);
        assert!(hash.matches(Some(FULL)));
        assert!(hash.matches(Some(RequestHash::stored_part(FULL))));
        assert!(
            !hash.matches(Some(&FULL[..16])),
            "too short a prefix proves nothing"
        );
        assert!(!hash.matches(Some("0daa495055633cc8f6d2cf8a067496d3")));
        assert!(!hash.matches(None));
    }
}
