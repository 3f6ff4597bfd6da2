//! courier-core: Courier's domain, with no I/O.
//!
//! - [`status`]: THE STATUS MACHINE — statuses, actors, the transition table.
//! - [`deadline`]: THE DEADLINE MODEL — notBefore, deliverBy, completeBy,
//!   step timers, retries, late results.
//! - [`dedupe`]: a start request's `dedupeKey`: return, refuse or
//!   supersede the execution pending under it.
//! - [`job`]: JOBS — one command to a fleet: targets, rollout, abort,
//!   retries, scheduling, statistics.
//! - [`job_run`]: THE JOB RUNNER'S RULES — the job record and its next step
//!   (fan-out chunks, start, finish, abort, cancel the rest).
//! - [`pipeline`]: PIPELINES — ordered stages of operations (commands with
//!   typed parameters), what a failure means, retries;
//!   [`pipeline_run`]: A RUN'S RULES — waves, gates, holds, aborts, a
//!   device's steps through the stages, and the run's next step;
//!   [`cron`]: maintenance windows (Unix cron in UTC plus a duration).
//! - [`update`]: status change requests, parsed (a device's update and
//!   start-next, an operator's cancel).
//! - [`transition`]: planning and applying a status change (what the store's
//!   conditional writes are built from).
//! - [`protocol`]: THE DEVICE PROTOCOL (AWS IoT Jobs MQTT topics and payloads);
//!   [`commands`]: the AWS IoT commands device protocol;
//!   [`command_payload`]: its static payloads, output formats and CBOR.
//! - [`presence`]: AWS IoT lifecycle events (connected, disconnected).
//! - [`schema`]: command definitions, typed parameter schemas, validation;
//!   [`artifact`]: S3 placeholders in string parameters, replaced by
//!   presigned URLs when a document goes to a device.
//! - [`pattern`]: the pattern subset string parameters use, its matcher and
//!   its JavaScript translation.
//! - [`json`]: the JSON model every request is read from; [`codec`]: the
//!   records to and from it.
//! - [`value`]: typed values in the AWS IoT commands wire format.
//! - [`execution`]: the execution record and start-execution requests.
//! - [`facade`]: JSON-in/JSON-out operations shared with the WASM module.
//! - [`retry`]: THE RETRY POLICY — attempts, backoff, retried outcomes,
//!   and a device's "not now" (deferral).
//! - [`reason`]: why an execution is in its status (`statusReason`).
//! - [`ids`], [`time`], [`error`], [`text`]: newtypes, timestamps, errors and
//!   their codes (with the HTTP status of each), how refused values are quoted.
//!
//! Time and ids are always arguments, so this crate runs unchanged in Lambda
//! and, compiled to wasm32, in the browser.

pub mod artifact;
pub mod base64;
pub mod codec;
pub mod codegen;
pub mod command_payload;
pub mod commands;
pub mod conditions;
pub mod cron;
pub mod deadline;
pub mod dedupe;
pub mod device_protocol;
pub mod error;
pub mod execution;
pub mod facade;
/// Entry points of the fuzz targets; only with the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod ids;
pub mod job;
pub mod job_run;
pub mod json;
pub mod map;
pub mod pattern;
pub mod payload_template;
pub mod pipeline;
pub mod pipeline_run;
pub mod presence;
pub mod protocol;
pub mod queue;
pub mod reason;
pub mod requeue;
pub mod retry;
pub mod schema;
pub mod status;
pub mod text;
pub mod time;
pub mod transition;
pub mod update;
pub mod value;

pub use deadline::{Deadline, LateResult, OnTimeout};
pub use device_protocol::DeviceProtocol;
pub use error::{ErrorCode, ValidationCode, ValidationError, ValidationErrors};
pub use execution::{CommandExecution, RunOperation, StartExecution};
pub use ids::{
    ClientToken, CommandId, DedupeKey, ExecutionId, JobId, ParameterName, PipelineId, RunId,
    StageName, TenantId, ThingName,
};
pub use job::{CreateJob, JobStatistics, JobStatus};
pub use job_run::{Job, JobStep};
pub use map::{SortedMap, StatusDetails};
pub use reason::StatusReason;
pub use schema::{CommandDefinition, ParameterSpec, Parameters, Validator};
pub use status::{Actor, ExecutionStatus};
pub use time::Timestamp;
pub use transition::{transition, TransitionError, TransitionPlan};
pub use update::{CancelExecution, CancelJob, StatusUpdate};
pub use value::{TypedValue, ValueType};

/// This crate's version, shown by the API and the dashboard.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
