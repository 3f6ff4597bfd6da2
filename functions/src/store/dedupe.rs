//! KEYED CREATION: the guard of a start request's `dedupeKey`, and the one
//! transaction that creates a keyed execution together with its guard (and
//! the cancel of the execution it supersedes). The rules are
//! `courier_core::dedupe`; this module only makes them race-free. Does I/O.
//!
//! Write cost: a keyed create is a TransactWriteItems of the execution and
//! its guard, which DynamoDB bills at twice the units of the two puts; a
//! supersede adds the old execution's update (also doubled). Measured by
//! `make bench` (`bench/results/dedupe.md`).

use super::dynamodb::DynamoStore;
use super::errors::{classify, internal};
use super::layout::{
    execution_from_item, execution_item, execution_key, key, put_s, scoped, string_attr, ttl_of,
    REQUEST_HASH,
};
use super::update::UpdateBuilder;
use super::Item;
use super::{KeyedCreate, RequestHash, StoreError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use courier_core::{CommandExecution, DedupeKey, ExecutionId, TenantId, ThingName, TransitionPlan};

/// The guard of `key` on `thing` (see the table above).
fn dedupe_guard_key(tenant: &TenantId, thing: &ThingName, key: &DedupeKey) -> Item {
    self::key(
        scoped(tenant, format!("DEDUPE#{thing}#{key}")),
        "DEDUPE".into(),
    )
}

/// The guard naming `execution` as its key's holder, expiring with it.
fn dedupe_guard_item(tenant: &TenantId, execution: &CommandExecution) -> Option<Item> {
    let key = execution.dedupe_key.as_ref()?;
    let mut item = dedupe_guard_key(tenant, &execution.target, key);
    put_s(&mut item, "executionId", execution.execution_id.to_string());
    ttl_of(&mut item, execution.time_to_live);
    Some(item)
}

impl DynamoStore {
    pub(super) async fn read_dedupe_holder(
        &self,
        thing: &ThingName,
        key: &DedupeKey,
    ) -> Result<Option<ExecutionId>, StoreError> {
        // Consistent: a request right after another must see its guard.
        let item = self
            .get(dedupe_guard_key(&self.tenant, thing, key), true)
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| string_attr(i, "executionId"))
            .and_then(|id| ExecutionId::parse(&id).ok()))
    }

    pub(super) async fn create_keyed_in_transaction(
        &self,
        execution: &CommandExecution,
        request_hash: &RequestHash,
        holder: Option<&ExecutionId>,
        superseding: Option<(&ExecutionId, &TransitionPlan)>,
    ) -> Result<KeyedCreate, StoreError> {
        let guard = dedupe_guard_item(&self.tenant, execution)
            .ok_or_else(|| StoreError::Internal("a keyed create without a dedupeKey".into()))?;
        let create = Put::builder()
            .table_name(&self.table)
            .set_item(Some(execution_item(
                &self.tenant,
                execution,
                Some(&request_hash.current),
            )?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        // The guard still names the holder that was read (or is absent).
        let guard = Put::builder().table_name(&self.table).set_item(Some(guard));
        let guard = match holder {
            None => guard.condition_expression("attribute_not_exists(pk)"),
            Some(id) => guard
                .condition_expression("executionId = :holder")
                .expression_attribute_values(":holder", AttributeValue::S(id.to_string())),
        }
        .build()
        .map_err(internal)?;
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(create).build())
            .transact_items(TransactWriteItem::builder().put(guard).build())
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        if let Some((old, plan)) = superseding {
            let b = UpdateBuilder::from_plan(plan, execution.execution_id.as_str())?;
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(execution_key(&self.tenant, old)))
                .update_expression(b.expression())
                .condition_expression(b.condition.join(" AND "))
                .set_expression_attribute_names(Some(b.names))
                .set_expression_attribute_values(Some(b.values))
                .build()
                .map_err(internal)?;
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
        }
        let err = match request.send().await {
            Ok(out) => {
                for c in out.consumed_capacity() {
                    self.meter.record_write(Some(c));
                }
                crate::platform::metrics::created(execution);
                return Ok(KeyedCreate::Created);
            }
            Err(err) => err,
        };
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                e.cancellation_reasons().to_vec()
            }
            _ => return Err(classify(err)),
        };
        // The execution's id is taken (its clientToken was used before).
        if let Some(old) = reasons
            .first()
            .filter(|r| r.code() == Some("ConditionalCheckFailed"))
            .and_then(|r| r.item())
        {
            let same_request = request_hash.matches(string_attr(old, REQUEST_HASH).as_deref());
            return Ok(KeyedCreate::Existing {
                execution: Box::new(execution_from_item(old.clone())?),
                same_request,
            });
        }
        // The guard moved, the superseded execution changed, or a concurrent
        // transaction touched them: the caller reads again.
        tracing::info!(?reasons, "keyed create raced; reading again");
        Ok(KeyedCreate::Raced)
    }
}
