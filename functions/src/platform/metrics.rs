//! BUSINESS METRICS in CloudWatch Embedded Metric Format: what became of
//! executions (created, and each way they end), how long delivery took
//! (create → SENT), how long devices worked (start → end), and the device
//! requests refused, per code. The store and the device APIs record them as
//! they happen; each invocation ends with the EMF lines on stdout, which
//! CloudWatch Logs turns into metrics — no PutMetricData call, nothing on a
//! request's path but a counter. No I/O besides those lines.
//!
//! Metric streams are billed per name and dimension set, so there are few:
//! the totals carry no dimension; refused requests carry `Code` (a handful
//! of values); a command's id is a property Logs Insights can query, and a
//! dimension only for the commands listed in `METRICS_COMMAND_DIMENSION`.
//!
//! Like `usage`, the counters are process-wide: Lambda hands an execution
//! environment one event at a time.

use courier_core::{CommandExecution, ExecutionStatus};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Courier";
/// EMF takes at most 100 values per metric in one document.
const MAX_VALUES: usize = 100;

/// One command's share of an invocation (for its opt-in dimension).
#[derive(Debug, Default, Clone, PartialEq)]
struct Tally {
    counts: BTreeMap<&'static str, u64>,
    delivery_ms: Vec<f64>,
    device_ms: Vec<f64>,
}

impl Tally {
    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.delivery_ms.is_empty() && self.device_ms.is_empty()
    }
}

#[derive(Debug, Default)]
struct Recorded {
    total: Tally,
    by_command: BTreeMap<String, Tally>,
    rejected: BTreeMap<String, u64>,
}

static RECORDED: Mutex<Option<Recorded>> = Mutex::new(None);

/// The commands that get a `CommandId` dimension (`METRICS_COMMAND_DIMENSION`).
static COMMAND_DIMENSION: OnceLock<Vec<String>> = OnceLock::new();

/// Gives these commands (at most a few: each is billed as its own metric
/// streams) a `CommandId` dimension; set once per cold start.
pub fn configure(command_dimension: Vec<String>) {
    let _ = COMMAND_DIMENSION.set(command_dimension);
}

fn with(record: impl FnOnce(&mut Recorded)) {
    if let Ok(mut recorded) = RECORDED.lock() {
        record(recorded.get_or_insert_with(Recorded::default));
    }
}

/// The metric an execution ending in `status` counts in.
pub const fn ended_metric(status: ExecutionStatus) -> Option<&'static str> {
    match status {
        ExecutionStatus::Succeeded => Some("ExecutionsSucceeded"),
        ExecutionStatus::Failed => Some("ExecutionsFailed"),
        ExecutionStatus::Rejected => Some("ExecutionsRejected"),
        ExecutionStatus::TimedOut => Some("ExecutionsTimedOut"),
        ExecutionStatus::Canceled => Some("ExecutionsCanceled"),
        ExecutionStatus::Queued | ExecutionStatus::Sent | ExecutionStatus::InProgress => None,
    }
}

fn count(execution: &CommandExecution, metric: &'static str) {
    with(|r| {
        *r.total.counts.entry(metric).or_default() += 1;
        let command = r
            .by_command
            .entry(execution.command_id.to_string())
            .or_default();
        *command.counts.entry(metric).or_default() += 1;
    });
}

/// An execution was written for the first time.
pub fn created(execution: &CommandExecution) {
    count(execution, "ExecutionsCreated");
}

/// An execution changed from `previous` to its status: an end counts, a
/// first delivery gives the delivery latency, an end after a start the
/// device's working time.
pub fn changed(execution: &CommandExecution, previous: ExecutionStatus) {
    let status = execution.status;
    if previous == ExecutionStatus::Queued && status == ExecutionStatus::Sent {
        if let Some(sent) = execution
            .sent_at
            .filter(|_| execution.execution_number == 1)
        {
            let ms = (sent.millis() - execution.created_at.millis()).max(0) as f64;
            with(|r| {
                r.total.delivery_ms.push(ms);
                let command = r
                    .by_command
                    .entry(execution.command_id.to_string())
                    .or_default();
                command.delivery_ms.push(ms);
            });
        }
    }
    if previous.is_terminal() {
        return;
    }
    let Some(metric) = ended_metric(status) else {
        return;
    };
    count(execution, metric);
    if let (Some(started), Some(ended)) = (execution.started_at, execution.completed_at) {
        let ms = (ended.millis() - started.millis()).max(0) as f64;
        with(|r| {
            r.total.device_ms.push(ms);
            let command = r
                .by_command
                .entry(execution.command_id.to_string())
                .or_default();
            command.device_ms.push(ms);
        });
    }
}

/// A device request was refused with `code` (its protocol's rejection code).
pub fn rejected_request(code: &str) {
    with(|r| *r.rejected.entry(code.to_owned()).or_default() += 1);
}

/// The invocation's EMF documents (and forgets what was recorded): one
/// with the totals, one per refusal code, one per command listed in
/// `command_dimension`. `timestamp_ms` is the documents' time.
pub fn take_documents(
    function: &str,
    command_dimension: &[String],
    timestamp_ms: i64,
) -> Vec<Value> {
    let recorded = RECORDED
        .lock()
        .ok()
        .and_then(|mut r| r.take())
        .unwrap_or_default();
    let mut documents = Vec::new();
    let commands: Vec<&String> = recorded.by_command.keys().collect();
    if !recorded.total.is_empty() {
        let mut doc = document(timestamp_ms, &[], &recorded.total);
        doc.insert("Function".into(), json!(function));
        // Not a dimension: Logs Insights can filter on it at no metric cost.
        doc.insert("commandIds".into(), json!(commands));
        documents.push(Value::Object(doc));
    }
    for (code, n) in &recorded.rejected {
        let mut doc = emf(
            timestamp_ms,
            &["Code"],
            &[("DeviceRequestsRejected", "Count")],
        );
        doc.insert("Code".into(), json!(code));
        doc.insert("Function".into(), json!(function));
        doc.insert("DeviceRequestsRejected".into(), json!(n));
        documents.push(Value::Object(doc));
    }
    for (command, tally) in &recorded.by_command {
        if !command_dimension.contains(command) || tally.is_empty() {
            continue;
        }
        let mut doc = document(timestamp_ms, &["CommandId"], tally);
        doc.insert("CommandId".into(), json!(command));
        doc.insert("Function".into(), json!(function));
        documents.push(Value::Object(doc));
    }
    documents
}

/// A document of `tally`'s metrics under `dimensions`.
fn document(timestamp_ms: i64, dimensions: &[&str], tally: &Tally) -> Map<String, Value> {
    let mut metrics: Vec<(&str, &str)> = tally.counts.keys().map(|k| (*k, "Count")).collect();
    if !tally.delivery_ms.is_empty() {
        metrics.push(("DeliveryLatency", "Milliseconds"));
    }
    if !tally.device_ms.is_empty() {
        metrics.push(("DeviceDuration", "Milliseconds"));
    }
    let mut doc = emf(timestamp_ms, dimensions, &metrics);
    for (name, n) in &tally.counts {
        doc.insert((*name).into(), json!(n));
    }
    let values = |v: &[f64]| json!(v.iter().take(MAX_VALUES).collect::<Vec<_>>());
    if !tally.delivery_ms.is_empty() {
        doc.insert("DeliveryLatency".into(), values(&tally.delivery_ms));
    }
    if !tally.device_ms.is_empty() {
        doc.insert("DeviceDuration".into(), values(&tally.device_ms));
    }
    doc
}

/// The `_aws` metadata of a document.
fn emf(timestamp_ms: i64, dimensions: &[&str], metrics: &[(&str, &str)]) -> Map<String, Value> {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions],
                "Metrics": definitions,
            }],
        }),
    );
    doc
}

/// Prints the invocation's EMF lines (after its handler answered).
pub fn flush(function: &str, timestamp_ms: i64) {
    let commands = COMMAND_DIMENSION.get().map_or(&[][..], Vec::as_slice);
    for document in take_documents(function, commands, timestamp_ms) {
        println!("{document}");
    }
}
