//! ENTRY POINT of the `dispatcher` Lambda: batches of the table's DynamoDB
//! stream (new images), typed as `aws_lambda_events` models them, answered
//! with the batch-item-failures response. Does I/O through the operations
//! and the publisher.
//!
//! For each record: a QUEUED execution that is due is dispatched
//! (`Courier::dispatch`: conditional claim, then publish); one that ended
//! without its device (CANCELED, TIMED_OUT), or was taken from the device for
//! a new attempt, is announced to the device. A job record runs the job's
//! next step (`Courier::run_job`: the fan-out continues chunk by chunk this
//! way); so does a pipeline run's record (`Courier::run_pipeline`), and the
//! end of a run's execution moves its device on
//! (`Courier::run_execution_ended`). Anything else is ignored.
//!
//! RUN COUNTS are kept the same way as job statistics: the tallies of the
//! devices that settled a stage in this batch are added to their run's
//! counters once, then the run takes its next step (a gate may have
//! passed). A record that cannot be decoded (a poison
//! record) is logged and skipped, so it never blocks the shard; a transient
//! failure reports that record in `batchItemFailures` (the event source
//! mapping has ReportBatchItemFailures on) and Lambda retries from there —
//! which is safe, since every step is conditional or idempotent.
//!
//! JOB STATISTICS are kept here: the changes of a job's executions handled in
//! this batch are added to its counters once (see `store::jobs`),
//! then the job takes a step (it may have completed, or met its abort rule).
//! If adding fails, the whole batch is reported failed: Lambda redelivers it
//! from its first record, and the per-batch markers skip what was added.

use crate::ops::delivery::DispatchOutcome;
use crate::ops::Courier;
use crate::platform::publisher::Publisher;
use crate::platform::thing_groups::ThingGroups;
use crate::store::pipeline_store::PipelineStore;
use crate::store::stream::{self, StreamChange, StreamRecord};
use crate::store::StatisticsOutcome;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use courier_core::job_run::StatisticsDelta;
use courier_core::pipeline_run::Tally;
use courier_core::protocol::TopicRoot;
use courier_core::{ExecutionId, ExecutionStatus, JobId, RunId, TenantId, Timestamp};
use lambda_runtime::LambdaEvent;
use serde::Serialize;
use std::collections::BTreeMap;

/// One counted change of a job's execution: the move it made.
struct Counted {
    from: Option<ExecutionStatus>,
    to: ExecutionStatus,
    new_attempt: bool,
}

/// What the dispatcher answers: the batch-item-failures response Lambda
/// reads, and what each record did (for logs and tests; Lambda ignores it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchOutcome {
    #[serde(flatten)]
    pub response: DynamoDbEventResponse,
    pub handled: Vec<Handled>,
}

/// What one record did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Handled {
    pub execution_id: ExecutionId,
    pub did: &'static str,
}

/// Handles one batch; the response names the first record that failed (and
/// so everything after it, which Lambda delivers again), if one did.
pub async fn handle<S: PipelineStore, P: Publisher, G: ThingGroups>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    groups: &G,
    event: LambdaEvent<Event>,
    now: Timestamp,
) -> Result<BatchOutcome, lambda_runtime::Diagnostic> {
    let records = event.payload.records;
    let mut outcome = BatchOutcome::default();
    // Jobs are named with their tenant: each record is handled by a service
    // scoped to the tenant in its key.
    let mut counted: BTreeMap<(TenantId, JobId), Vec<(String, Counted)>> = BTreeMap::new();
    let mut jobs_to_step: Vec<(TenantId, JobId)> = Vec::new();
    let mut runs_to_step: Vec<(TenantId, RunId)> = Vec::new();
    let mut tallied: BTreeMap<(TenantId, RunId), Vec<(String, Tally)>> = BTreeMap::new();
    for record in &records {
        let sequence = record.change.sequence_number.clone().unwrap_or_default();
        let image = record.change.new_image.clone().into();
        let change = match stream::decode(&record.event_name, image) {
            Ok(Some(StreamRecord::Execution(change))) => change,
            Ok(Some(StreamRecord::Job(tenant, job))) => {
                // A claimed chunk's own write: its commit takes the next step.
                let claimed = job
                    .fan_out
                    .claim
                    .as_ref()
                    .is_some_and(|c| c.expires_at > now);
                let key = (tenant, job.job_id.clone());
                if !claimed && !jobs_to_step.contains(&key) {
                    jobs_to_step.push(key);
                }
                continue;
            }
            Ok(Some(StreamRecord::Tally(tenant, run, tally))) => {
                tallied
                    .entry((tenant, run))
                    .or_default()
                    .push((record.event_id.clone(), tally));
                continue;
            }
            Ok(Some(StreamRecord::Run(tenant, run))) => {
                let key = (tenant, run);
                if !runs_to_step.contains(&key) {
                    runs_to_step.push(key);
                }
                continue;
            }
            Ok(None) => continue,
            Err(err) => {
                tracing::error!(error = %err, %sequence, "undecodable stream record skipped");
                continue;
            }
        };
        // Boxed to keep the future's type shallow (compiler layout limit).
        let scoped = courier.for_tenant(&change.tenant);
        match Box::pin(handle_change(&scoped, root, publisher, &change, now)).await {
            Ok(what) => {
                tracing::info!(execution_id = %change.execution.execution_id, did = what, "stream record handled");
                outcome.handled.push(Handled {
                    execution_id: change.execution.execution_id.clone(),
                    did: what,
                });
                if let Some(job) = change.execution.job_id.as_ref().filter(|_| change.counts) {
                    let key = (change.tenant.clone(), job.clone());
                    counted.entry(key).or_default().push((
                        record.event_id.clone(),
                        Counted {
                            from: change.previous,
                            to: change.execution.status,
                            new_attempt: change.new_attempt,
                        },
                    ));
                }
            }
            Err(err) => {
                tracing::error!(code = err.code().as_str(), error = %err, %sequence, "stream record failed; Lambda retries from it");
                outcome.response.batch_item_failures.push(failure(sequence));
                // Later records wait for this one (order per execution).
                break;
            }
        }
    }
    for ((tenant, job), changes) in &counted {
        let scoped = courier.for_tenant(tenant);
        let added = Box::pin(add_once(changes, |first, last, rest| {
            let mut delta = StatisticsDelta::default();
            for (_, c) in rest {
                delta.record(c.from, c.to, c.new_attempt);
            }
            let store = scoped.store().clone();
            let (first, last) = (first.to_owned(), last.to_owned());
            async move { store.add_statistics(job, &delta, &first, &last, now).await }
        }))
        .await;
        if let Err(err) = added {
            tracing::error!(job_id = %job, error = %err, "job statistics not added; the batch is retried");
            return Ok(retry_batch(&records));
        }
        let key = (tenant.clone(), job.clone());
        if !jobs_to_step.contains(&key) {
            jobs_to_step.push(key);
        }
    }
    for ((tenant, run), tallies) in &tallied {
        let scoped = courier.for_tenant(tenant);
        let added = Box::pin(add_once(tallies, |first, last, rest| {
            let tallies: Vec<Tally> = rest.iter().map(|(_, t)| *t).collect();
            let store = scoped.store().clone();
            let (first, last) = (first.to_owned(), last.to_owned());
            async move {
                store
                    .add_run_tallies(run, &tallies, &first, &last, now)
                    .await
            }
        }))
        .await;
        if let Err(err) = added {
            tracing::error!(run_id = %run, error = %err, "run counts not added; the batch is retried");
            return Ok(retry_batch(&records));
        }
        let key = (tenant.clone(), run.clone());
        if !runs_to_step.contains(&key) {
            runs_to_step.push(key);
        }
    }
    for (tenant, run) in &runs_to_step {
        // A failed step is taken again by the run's next change or wake time.
        if let Err(err) = Box::pin(courier.for_tenant(tenant).run_pipeline(groups, run, now)).await
        {
            tracing::warn!(run_id = %run, code = err.code().as_str(), error = %err, "run step failed");
        }
    }
    for (tenant, job) in &jobs_to_step {
        // A failed step is taken again by the job's next change or wake time.
        // (Each step logs what it did.)
        if let Err(err) = Box::pin(courier.for_tenant(tenant).run_job(groups, job, now)).await {
            tracing::warn!(job_id = %job, code = err.code().as_str(), error = %err, "job step failed");
        }
    }
    Ok(outcome)
}

/// The whole batch reported failed: Lambda delivers it again from its
/// first record (the per-batch markers skip what was added).
fn retry_batch(records: &[aws_lambda_events::event::dynamodb::EventRecord]) -> BatchOutcome {
    let first = records
        .first()
        .and_then(|r| r.change.sequence_number.clone())
        .unwrap_or_default();
    let mut retry_all = BatchOutcome::default();
    retry_all.response.batch_item_failures.push(failure(first));
    retry_all
}

/// Adds `changes` (each with its stream record's id) through `add`
/// (given the first and last record ids and the changes between), once:
/// when a redelivered batch finds a marker, only what follows the marker's
/// last record is added.
async fn add_once<'a, C, F, Fut>(
    changes: &'a [(String, C)],
    mut add: F,
) -> Result<(), crate::store::StoreError>
where
    F: FnMut(&str, &str, &'a [(String, C)]) -> Fut,
    Fut: std::future::Future<Output = Result<StatisticsOutcome, crate::store::StoreError>>,
{
    let mut rest = changes;
    while let (Some((first, _)), Some((last, _))) = (rest.first(), rest.last()) {
        match add(first, last, rest).await? {
            StatisticsOutcome::Added => return Ok(()),
            StatisticsOutcome::AlreadyAdded { last } => {
                let Some(at) = rest.iter().position(|(id, _)| *id == last) else {
                    // The earlier delivery covered more than this one: all added.
                    return Ok(());
                };
                rest = &rest[at + 1..];
            }
        }
    }
    Ok(())
}

async fn handle_change<S: PipelineStore, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    change: &StreamChange,
    now: Timestamp,
) -> Result<&'static str, crate::error::ServiceError> {
    let execution = &change.execution;
    let ended = execution.status.is_terminal() && change.previous.is_some_and(|p| !p.is_terminal());
    if ended && execution.run_id.is_some() {
        // Its device's next operation first, then what a device is told.
        Box::pin(courier.run_execution_ended(execution, now)).await?;
    }
    courier
        .command_status_event(publisher, execution, change.previous, now)
        .await?;
    let ended_without_device = matches!(
        execution.status,
        ExecutionStatus::Canceled | ExecutionStatus::TimedOut
    ) && change.previous.is_some_and(|p| !p.is_terminal());
    if execution.status == ExecutionStatus::Queued {
        // A new attempt of work the device had started: tell it first that
        // its IN_PROGRESS attempt is over. (A re-queue from SENT needs no
        // word: the dispatch below announces the new attempt; and a failed
        // publish put back on hold must not publish again here.)
        if change.previous == Some(ExecutionStatus::InProgress) {
            courier
                .announce_change(root, publisher, execution, now)
                .await?;
        }
        let outcome = if change.previous.is_none() {
            courier
                .dispatch_created(root, publisher, execution, now)
                .await?
        } else {
            courier.dispatch(root, publisher, execution, now).await?
        };
        return Ok(match outcome {
            DispatchOutcome::Sent => "sent",
            DispatchOutcome::RetryScheduled => "publish failed, retry scheduled",
            DispatchOutcome::Skipped(why) => why,
        });
    }
    if ended_without_device {
        let told = courier
            .announce_change(root, publisher, execution, now)
            .await?;
        // AWS IoT commands has no such notification: its status event,
        // published above, is all there is.
        return Ok(if told.is_empty() {
            "status event only (commands protocol)"
        } else {
            "device notified"
        });
    }
    Ok("nothing to do")
}

/// A failed record of the batch, by its sequence number: Lambda delivers it
/// and everything after it again.
fn failure(sequence_number: String) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence_number);
    failure
}
