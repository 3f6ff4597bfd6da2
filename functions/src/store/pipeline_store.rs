//! THE PIPELINE STORE: the [`PipelineStore`] trait (pipelines, runs, their
//! counters and target runs) the pipeline operations are generic over, and
//! its types. Defines them only (no I/O); the DynamoDB implementation is in
//! `pipelines`, the items in `pipeline_layout`.

use super::{JobStore, Page, PageRequest, PutOutcome, StatisticsOutcome, StoreError};
use courier_core::pipeline::Pipeline;
use courier_core::pipeline_run::{PipelineRun, Tally, TargetRun, TargetStatus};
use courier_core::{
    CommandExecution, ExecutionId, PipelineId, RunId, TenantId, ThingName, Timestamp,
};
use std::future::Future;

/// What creating a run found.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateRunOutcome {
    Created(PipelineRun),
    /// A run with this id exists; whether it was created by the same request.
    Existing {
        run: PipelineRun,
        same_request: bool,
    },
    /// The tenant has this many runs that have not ended: none created.
    LimitReached {
        active: u64,
    },
}

/// Pipelines and their runs (see `pipeline_layout`).
pub trait PipelineStore: JobStore {
    /// Creates a pipeline, or returns the one with its id.
    fn put_pipeline(
        &self,
        pipeline: &Pipeline,
    ) -> impl Future<Output = Result<PutOutcome<Pipeline>, StoreError>> + Send;

    fn get_pipeline(
        &self,
        id: &PipelineId,
    ) -> impl Future<Output = Result<Option<Pipeline>, StoreError>> + Send;

    fn list_pipelines(
        &self,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Pipeline>, StoreError>> + Send;

    /// Creates a run with its explicit target list (stored in pages before
    /// the run, which the stream then starts), counting it among the
    /// tenant's active runs unless `max_active` are active already; or
    /// returns the existing one.
    fn create_run(
        &self,
        run: &PipelineRun,
        things: Option<&[ThingName]>,
        request_hash: &str,
        max_active: u32,
    ) -> impl Future<Output = Result<CreateRunOutcome, StoreError>> + Send;

    /// [`Self::put_run`] for the change that ends the run (it leaves the
    /// tenant's active runs in the same transaction).
    fn end_run(
        &self,
        run: &PipelineRun,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A run with its counts, unless absent or expired.
    fn get_run(
        &self,
        id: &RunId,
        stages: usize,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<PipelineRun>, StoreError>> + Send;

    /// Replaces the run record if it is still at `expected_version`
    /// (`Conflict` otherwise), as version `expected_version + 1`; the
    /// counts are never written here.
    fn put_run(
        &self,
        run: &PipelineRun,
        expected_version: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A pipeline's runs, newest first.
    fn list_runs(
        &self,
        pipeline: &PipelineId,
        page: PageRequest,
        now: Timestamp,
    ) -> impl Future<Output = Result<Page<PipelineRun>, StoreError>> + Send;

    /// The explicit target list a run was created with.
    fn run_things(
        &self,
        run: &PipelineRun,
    ) -> impl Future<Output = Result<Vec<ThingName>, StoreError>> + Send;

    /// Writes the target runs that do not exist yet; returns how many.
    fn put_targets(
        &self,
        run: &PipelineRun,
        targets: &[TargetRun],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    fn get_target(
        &self,
        run: &RunId,
        thing: &ThingName,
    ) -> impl Future<Output = Result<Option<TargetRun>, StoreError>> + Send;

    /// A run's target runs in thing-name order, optionally only one wave's
    /// or one status's.
    fn list_targets(
        &self,
        run: &RunId,
        wave: Option<u32>,
        status: Option<TargetStatus>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<TargetRun>, StoreError>> + Send;

    /// Writes `target` (its version one above `expected_version`, on which
    /// the write is conditioned) with `tally`, what the change adds to the
    /// run's counts (the stream brings it to the dispatcher). `false`: the
    /// target run changed meanwhile (a redelivery, or another writer),
    /// nothing written.
    fn settle_target(
        &self,
        run: &PipelineRun,
        target: &TargetRun,
        expected_version: u64,
        tally: &Tally,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Creates a run's execution unless it exists (its id names the run,
    /// the thing and the operation); `false` if it did.
    fn put_run_execution(
        &self,
        execution: &CommandExecution,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds a stream batch's tallies of one run to its counters, once (see
    /// `JobStore::add_statistics` for `first`, `last` and the marker).
    fn add_run_tallies(
        &self,
        run: &RunId,
        tallies: &[Tally],
        first: &str,
        last: &str,
        now: Timestamp,
    ) -> impl Future<Output = Result<StatisticsOutcome, StoreError>> + Send;

    /// The executions with these ids that exist (and have not expired), in
    /// no particular order.
    fn run_executions(
        &self,
        ids: &[ExecutionId],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<CommandExecution>, StoreError>> + Send;

    /// Runs whose wake time came, with their tenants.
    fn due_runs(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(TenantId, RunId)>, StoreError>> + Send;
}
