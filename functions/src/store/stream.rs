//! THE TABLE'S STREAM, decoded: what a record's new image says changed
//! (an execution, with its status before the change and whether a new
//! attempt began; a job; a pipeline run; or a device of a run settling a
//! stage, with what that adds to the run's counts). Pure, no I/O: the
//! dispatcher hands records in.

use super::layout::{
    execution_from_item, execution_tenant, job_from_image, string_attr, PREVIOUS_ATTEMPT,
    PREVIOUS_STATUS,
};
use super::pipeline_layout::tally_of;
use super::{Item, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use courier_core::pipeline_run::Tally;
use courier_core::{CommandExecution, ExecutionStatus, RunId, TenantId};

/// An execution's new image from the table's stream, and its status before
/// the change (`None` for a new execution).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChange {
    /// Whose execution it is (from its key).
    pub tenant: TenantId,
    pub execution: CommandExecution,
    pub previous: Option<ExecutionStatus>,
    /// The change started a new attempt (`executionNumber` went up).
    pub new_attempt: bool,
    /// A creation or a status change (not a re-filing in the due index or a
    /// late result kept): what job statistics count.
    pub counts: bool,
}

/// What a stream record is about.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamRecord {
    Execution(Box<StreamChange>),
    Job(TenantId, Box<courier_core::Job>),
    /// A pipeline run's record changed.
    Run(TenantId, RunId),
    /// A device of a run settled a stage (or was skipped): its tally.
    Tally(TenantId, RunId, Tally),
}

/// Decodes one record of the table's stream: its event name (`INSERT`,
/// `MODIFY`, `REMOVE`) and new image. `None` for records about anything
/// else (commands, counters, removals).
pub fn decode(event_name: &str, new_image: Item) -> Result<Option<StreamRecord>, StoreError> {
    if event_name != "INSERT" && event_name != "MODIFY" {
        return Ok(None);
    }
    let item = new_image;
    if let Some((tenant, job)) = job_from_image(&item)? {
        return Ok(Some(StreamRecord::Job(tenant, Box::new(job))));
    }
    let pk = string_attr(&item, "pk").unwrap_or_default();
    let sk = string_attr(&item, "sk").unwrap_or_default();
    if sk.starts_with(super::pipeline_layout::TARGET_PREFIX) {
        let tally = tally_of(&item).and_then(|tally| {
            let (tenant, rest) = super::layout::split_scoped(&pk)?;
            let id = RunId::parse(rest.strip_prefix("RUN#")?).ok()?;
            Some(StreamRecord::Tally(tenant, id, tally))
        });
        return Ok(tally);
    }
    if sk == super::pipeline_layout::RUN_SK {
        let run = super::layout::split_scoped(&pk).and_then(|(tenant, rest)| {
            let id = RunId::parse(rest.strip_prefix("RUN#")?).ok()?;
            Some(StreamRecord::Run(tenant, id))
        });
        return Ok(run);
    }
    let Some(tenant) = execution_tenant(&pk) else {
        return Ok(None);
    };
    let inserted = event_name == "INSERT";
    let counts = inserted || item.contains_key(PREVIOUS_STATUS);
    let (previous, previous_attempt) = if inserted {
        (None, None)
    } else {
        (
            string_attr(&item, PREVIOUS_STATUS).and_then(|s| ExecutionStatus::parse(&s)),
            match item.get(PREVIOUS_ATTEMPT) {
                Some(AttributeValue::N(n)) => n.parse::<u32>().ok(),
                _ => None,
            },
        )
    };
    let execution = execution_from_item(item)?;
    let new_attempt = previous_attempt.is_some_and(|n| execution.execution_number > n);
    Ok(Some(StreamRecord::Execution(Box::new(StreamChange {
        tenant,
        execution,
        previous,
        new_attempt,
        counts,
    }))))
}
