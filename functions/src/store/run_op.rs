//! A RUN'S EXECUTION, as stored: its run and operation in one string
//! attribute, `runOp` = `{runId}/{stage}/{operation}/{stageDeadline ms}`
//! (`/f` appended after a CONTINUE failure in the stage), standing for the
//! record's `runId` and `runOperation` — and for its `createdBy`, which is
//! `run/{runId}`. Pure, no I/O.
//!
//! Why: a write unit is 1 KB, and an execution's item holds its index
//! keys while it runs; spelled out, a run's execution crossed 1 KB and
//! paid two units for every status change. The stream's filter passes a
//! run's ended executions by this attribute (`infra/template.yaml`).

use super::errors::internal;
use super::{Item, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use courier_core::{CommandExecution, RunOperation, Timestamp};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;

/// The attribute.
pub const RUN_OPERATION: &str = "runOp";

/// Replaces `item`'s `runId`, `runOperation` and implied `createdBy` by
/// `runOp`, for a run's execution.
pub(super) fn pack(item: &mut Item, execution: &CommandExecution) {
    let (Some(run), Some(at)) = (&execution.run_id, &execution.run_operation) else {
        return;
    };
    item.remove("runId");
    item.remove("runOperation");
    if execution.created_by.as_deref() == Some(format!("run/{run}").as_str()) {
        item.remove("createdBy");
    }
    let failed = if at.failed_in_stage { "/f" } else { "" };
    let text = format!(
        "{run}/{}/{}/{}{failed}",
        at.stage,
        at.operation,
        at.stage_deadline.millis()
    );
    item.insert(RUN_OPERATION.into(), AttributeValue::S(text));
}

/// The reverse of [`pack`]: `runOp` back into the record's attributes.
pub(super) fn unpack(item: &mut Item) -> Result<(), StoreError> {
    let Some(AttributeValue::S(text)) = item.remove(RUN_OPERATION) else {
        return Ok(());
    };
    let (run, at) = parse(&text)
        .ok_or_else(|| StoreError::Internal(format!("malformed {RUN_OPERATION} {text:?}")))?;
    item.entry("createdBy".into())
        .or_insert_with(|| AttributeValue::S(format!("run/{run}")));
    item.insert("runId".into(), AttributeValue::S(run.to_owned()));
    item.insert(
        "runOperation".into(),
        dynamo::to_attribute_value(at).map_err(internal)?,
    );
    Ok(())
}

fn parse(text: &str) -> Option<(&str, RunOperation)> {
    let mut parts = text.split('/');
    let run = parts.next()?;
    let stage = parts.next()?.parse().ok()?;
    let operation = parts.next()?.parse().ok()?;
    let deadline = parts.next()?.parse().ok()?;
    let failed_in_stage = match parts.next() {
        None => false,
        Some("f") => true,
        Some(_) => return None,
    };
    Some((
        run,
        RunOperation {
            stage,
            operation,
            stage_deadline: Timestamp::from_millis(deadline),
            failed_in_stage,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_run_operation_reads_back_as_written() {
        for failed_in_stage in [false, true] {
            let at = RunOperation {
                stage: 2,
                operation: 1,
                stage_deadline: Timestamp::from_millis(1_800_000_660_123),
                failed_in_stage,
            };
            let mut item = Item::new();
            item.insert("runId".into(), AttributeValue::S("r-1".into()));
            item.insert("createdBy".into(), AttributeValue::S("run/r-1".into()));
            let execution: CommandExecution = serde_json::from_value(serde_json::json!({
                "executionId": "e-1", "commandId": "c", "target": "t", "runId": "r-1",
                "runOperation": at, "status": "QUEUED", "executionTimeoutSeconds": 60,
                "completeBy": 1, "retentionSeconds": 60, "createdAt": 1, "lastUpdatedAt": 1,
                "timeToLive": 2, "version": 1, "createdBy": "run/r-1"
            }))
            .unwrap();
            pack(&mut item, &execution);
            assert!(!item.contains_key("runId") && !item.contains_key("createdBy"));
            unpack(&mut item).unwrap();
            assert_eq!(item.get("runId"), Some(&AttributeValue::S("r-1".into())));
            assert_eq!(
                item.get("createdBy"),
                Some(&AttributeValue::S("run/r-1".into()))
            );
            let back: RunOperation =
                dynamo::from_attribute_value(item["runOperation"].clone()).unwrap();
            assert_eq!(back, at);
        }
    }

    #[test]
    fn a_malformed_run_operation_is_refused() {
        for text in ["r-1", "r-1/x/0/5", "r-1/0/0/5/g", "r-1/0/0"] {
            let mut item = Item::new();
            item.insert(RUN_OPERATION.into(), AttributeValue::S(text.into()));
            assert!(unpack(&mut item).is_err(), "{text}");
        }
    }
}
