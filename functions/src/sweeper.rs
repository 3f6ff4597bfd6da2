//! The `sweeper` Lambda, on a schedule (every minute): enforces deadlines and
//! releases scheduled executions (`Courier::sweep`). Does I/O through the
//! service. Sweeps again while a pass was full, within the invocation's time.

use crate::delivery::SweepReport;
use crate::publisher::Publisher;
use crate::service::Courier;
use crate::store::Store;
use courier_core::protocol::TopicRoot;
use courier_core::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// Executions per due-index shard and pass.
pub const PASS_SIZE: u32 = 100;
/// Passes per invocation; the next schedule picks up the rest.
pub const MAX_PASSES: usize = 20;

pub async fn handle<S: Store, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    _event: LambdaEvent<Value>,
    now: impl Fn() -> Timestamp,
) -> Result<SweepReport, Diagnostic> {
    let mut total = SweepReport::default();
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
