//! ENTRY POINT of the `sweeper` Lambda, on a schedule (every minute; the
//! event is EventBridge Scheduler's, typed as `aws_lambda_events` models a
//! scheduled event): steps the jobs and pipeline runs whose wake time came
//! (`Courier::sweep_jobs`, `Courier::sweep_runs`), enforces deadlines and
//! releases scheduled executions (`Courier::sweep`; a pipeline stage's
//! timeout is its executions' `completeBy`, so it is enforced there too).
//! Does I/O through the service. Sweeps again while a pass was full,
//! within the invocation's time.

use crate::ops::delivery::SweepReport;
use crate::ops::Courier;
use crate::platform::publisher::Publisher;
use crate::platform::thing_groups::ThingGroups;
use crate::store::pipeline_store::PipelineStore;
use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use courier_core::protocol::TopicRoot;
use courier_core::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent};

/// Executions per due-index shard and pass.
pub const PASS_SIZE: u32 = 100;
/// Passes per invocation; the next schedule picks up the rest.
pub const MAX_PASSES: usize = 20;

pub async fn handle<S: PipelineStore, P: Publisher, G: ThingGroups>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    groups: &G,
    _event: LambdaEvent<CloudWatchEvent>,
    now: impl Fn() -> Timestamp,
) -> Result<SweepReport, Diagnostic> {
    // Jobs first: a start or end time, a rollout minute, an abandoned chunk.
    let mut total = SweepReport {
        jobs: Box::pin(courier.sweep_jobs(groups, now()))
            .await
            .map_err(Diagnostic::from)?,
        ..SweepReport::default()
    };
    // Pipeline runs: start and end times, windows opening.
    total.runs = Box::pin(courier.sweep_runs(groups, now()))
        .await
        .map_err(Diagnostic::from)?;
    for pass in 0..MAX_PASSES {
        // Boxed to keep the future's type shallow (compiler layout limit).
        let report = Box::pin(courier.sweep(root, publisher, now(), PASS_SIZE))
            .await
            .map_err(Diagnostic::from)?;
        tracing::info!(pass, ?report, "sweep pass");
        let full = report.due >= PASS_SIZE as usize;
        total.due += report.due;
        total.timed_out += report.timed_out;
        total.requeued += report.requeued;
        total.dispatched += report.dispatched;
        total.rescheduled += report.rescheduled;
        total.skipped += report.skipped;
        if !full {
            break;
        }
    }
    Ok(total)
}
