//! EXECUTIONS (and commands and thing owners) in the table: the [`Store`]
//! methods on DynamoDB. Does I/O. Every status change is one conditional
//! UpdateItem built from the core's plan (`update`); its refusal returns the
//! record as it was, from the failed condition, with no second read.

use super::dynamodb::{DynamoStore, BATCH_GET_MAX};
use super::errors::{classify, conditional_failure_item, internal, is_conditional_failure};
use super::layout::{
    command_from_item, command_item, commands_pk, due_key, due_partitions, execution_from_item,
    execution_item, execution_key, key, number, number_attr, owned_thing, owner_item, owner_key,
    owner_of_item, string_attr, BY_COMMAND_INDEX, BY_TARGET_INDEX, DUE_INDEX, LAST_MESSAGE_AT,
    LAST_UPDATE_TOKEN, PENDING_INDEX, PREVIOUS_STATUS, REQUEST_HASH, TOLD_NEXT, TOLD_VERSION,
};
use super::update::UpdateBuilder;
use super::{
    CreateOutcome, Deleted, ExecutionQuery, ExecutionsOf, KeyedCreate, Page, PageRequest,
    PutOutcome, RequestHash, Store, StoreError, ToldNext, TransitionOutcome,
};
use crate::platform::metrics;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use courier_core::presence::Presence;
use courier_core::{
    CommandDefinition, CommandExecution, CommandId, DedupeKey, ExecutionId, ExecutionStatus,
    LateResult, TenantId, ThingName, Timestamp, TransitionPlan,
};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;

impl Store for DynamoStore {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn for_tenant(&self, tenant: &TenantId) -> Self {
        self.view_of(tenant)
    }

    async fn thing_owner(&self, thing: &ThingName) -> Result<Option<TenantId>, StoreError> {
        if let Some(owner) = self.cached_owner(thing) {
            return Ok(Some(owner));
        }
        // Consistent: a device asking right after its first execution was
        // created must find the claim that creation made.
        let item = self.get(owner_key(thing), true).await?;
        let owner = item.as_ref().and_then(owner_of_item);
        if let Some(owner) = &owner {
            self.remember_owner(thing, owner);
        }
        Ok(owner)
    }

    async fn delete_execution(
        &self,
        id: &ExecutionId,
        now: Timestamp,
    ) -> Result<Deleted, StoreError> {
        let terminal: Vec<&str> = ExecutionStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(&self.tenant, id)))
            .condition_expression(format!(
                "attribute_exists(pk) AND timeToLive > :now AND attribute_not_exists(jobId) AND #status IN ({})",
                (0..terminal.len()).map(|i| format!(":s{i}")).collect::<Vec<_>>().join(", ")
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", number(now.as_secs_f64()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (i, status) in terminal.iter().enumerate() {
            request = request.expression_attribute_values(
                format!(":s{i}"),
                AttributeValue::S((*status).to_owned()),
            );
        }
        match request.send().await {
            Ok(out) => {
                self.meter.record_write(out.consumed_capacity());
                Ok(Deleted::Deleted)
            }
            Err(err) if is_conditional_failure(&err) => match conditional_failure_item(&err) {
                Some(old) => {
                    self.meter.record_failed_write();
                    let execution = execution_from_item(old)?;
                    if execution.is_expired(now) {
                        Ok(Deleted::NotFound)
                    } else {
                        Ok(Deleted::Refused(Box::new(execution)))
                    }
                }
                None => Ok(Deleted::NotFound),
            },
            Err(err) => Err(classify(err)),
        }
    }

    async fn told_next(&self, thing: &ThingName) -> Result<ToldNext, StoreError> {
        Ok(match self.get(owner_key(thing), true).await? {
            Some(item) => ToldNext {
                version: number_attr(&item, TOLD_VERSION).unwrap_or(0),
                next: string_attr(&item, TOLD_NEXT),
            },
            None => ToldNext::default(),
        })
    }

    async fn record_told_next(
        &self,
        thing: &ThingName,
        seen: &ToldNext,
        next: Option<&str>,
    ) -> Result<bool, StoreError> {
        // Never create the owner item here: one without its owner would
        // make the thing nobody's.
        let unchanged = if seen.version == 0 {
            "attribute_exists(pk) AND attribute_not_exists(#version)"
        } else {
            "attribute_exists(pk) AND #version = :seen"
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(owner_key(thing)))
            .condition_expression(unchanged)
            .expression_attribute_names("#version", TOLD_VERSION)
            .expression_attribute_values(":new", AttributeValue::N((seen.version + 1).to_string()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if seen.version != 0 {
            request = request
                .expression_attribute_values(":seen", AttributeValue::N(seen.version.to_string()));
        }
        request = match next {
            Some(next) => request
                .update_expression("SET #version = :new, #next = :next")
                .expression_attribute_names("#next", TOLD_NEXT)
                .expression_attribute_values(":next", AttributeValue::S(next.to_owned())),
            None => request
                .update_expression("SET #version = :new REMOVE #next")
                .expression_attribute_names("#next", TOLD_NEXT),
        };
        self.conditional_write(
            request
                .send()
                .await
                .map(|out| out.consumed_capacity().cloned()),
        )
    }

    async fn claim_things(&self, things: &[ThingName]) -> Result<Vec<bool>, StoreError> {
        let mut owners: Vec<Option<TenantId>> =
            things.iter().map(|t| self.cached_owner(t)).collect();
        // Unknown ones: one BatchGetItem per 100, then a conditional put for
        // each that nobody owns yet (the put, not the read, decides a race).
        let unknown: Vec<usize> = (0..things.len()).filter(|&i| owners[i].is_none()).collect();
        for chunk in unknown.chunks(BATCH_GET_MAX) {
            let keys = chunk.iter().map(|&i| owner_key(&things[i])).collect();
            for item in self.batch_get(keys, false).await? {
                let (Some(pk), Some(owner)) = (string_attr(&item, "pk"), owner_of_item(&item))
                else {
                    continue;
                };
                for &i in chunk {
                    if owned_thing(&pk) == Some(things[i].as_str()) {
                        owners[i] = Some(owner.clone());
                    }
                }
            }
        }
        for (i, thing) in things.iter().enumerate() {
            if owners[i].is_some() {
                continue;
            }
            let item = owner_item(thing, &self.tenant);
            owners[i] = match self.put_if_absent(item, None).await? {
                None => Some(self.tenant.clone()),
                Some(existing) => owner_of_item(&existing),
            };
        }
        Ok(things
            .iter()
            .zip(owners)
            .map(|(thing, owner)| match owner {
                Some(owner) => {
                    self.remember_owner(thing, &owner);
                    owner == self.tenant
                }
                None => false,
            })
            .collect())
    }

    async fn put_command(
        &self,
        definition: &CommandDefinition,
    ) -> Result<PutOutcome<CommandDefinition>, StoreError> {
        let item = command_item(&self.tenant, definition)?;
        match self.put_if_absent(item, None).await? {
            None => Ok(PutOutcome::Created(definition.clone())),
            Some(old) => Ok(PutOutcome::Existing(command_from_item(old)?)),
        }
    }

    async fn get_command(&self, id: &CommandId) -> Result<Option<CommandDefinition>, StoreError> {
        // Definitions never change: an eventually consistent read will do.
        self.get(key(commands_pk(&self.tenant), id.to_string()), false)
            .await?
            .map(command_from_item)
            .transpose()
    }

    async fn list_commands(
        &self,
        page: PageRequest,
    ) -> Result<Page<CommandDefinition>, StoreError> {
        let raw = self
            .query_page(None, commands_pk(&self.tenant), true, page)
            .await?;
        let items = raw
            .items
            .into_iter()
            .map(command_from_item)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next: raw.next,
        })
    }

    async fn create_execution(
        &self,
        execution: &CommandExecution,
        request_hash: &RequestHash,
    ) -> Result<CreateOutcome, StoreError> {
        let item = execution_item(&self.tenant, execution, Some(&request_hash.current))?;
        // An expired record with the same id is as good as absent.
        match self.put_if_absent(item, Some(execution.created_at)).await? {
            None => {
                metrics::created(execution);
                Ok(CreateOutcome::Created(execution.clone()))
            }
            Some(old) => {
                let same_request = request_hash.matches(string_attr(&old, REQUEST_HASH).as_deref());
                Ok(CreateOutcome::Existing {
                    execution: execution_from_item(old)?,
                    same_request,
                })
            }
        }
    }

    async fn record_presence(
        &self,
        thing: &ThingName,
        presence: &Presence,
    ) -> Result<bool, StoreError> {
        self.write_presence(thing, presence).await
    }

    async fn presence(&self, thing: &ThingName) -> Result<Option<Presence>, StoreError> {
        self.read_presence(thing).await
    }

    async fn dedupe_holder(
        &self,
        thing: &ThingName,
        key: &DedupeKey,
    ) -> Result<Option<ExecutionId>, StoreError> {
        self.read_dedupe_holder(thing, key).await
    }

    async fn create_keyed(
        &self,
        execution: &CommandExecution,
        request_hash: &RequestHash,
        holder: Option<&ExecutionId>,
        superseding: Option<(&ExecutionId, &TransitionPlan)>,
    ) -> Result<KeyedCreate, StoreError> {
        self.create_keyed_in_transaction(execution, request_hash, holder, superseding)
            .await
    }

    async fn get_execution(
        &self,
        id: &ExecutionId,
        now: Timestamp,
    ) -> Result<Option<CommandExecution>, StoreError> {
        match self.get(execution_key(&self.tenant, id), true).await? {
            Some(item) => Ok(Some(execution_from_item(item)?).filter(|e| !e.is_expired(now))),
            None => Ok(None),
        }
    }

    async fn list_executions(
        &self,
        query: &ExecutionQuery,
        page: PageRequest,
        now: Timestamp,
    ) -> Result<Page<CommandExecution>, StoreError> {
        let (index, partition) = match (&query.of, query.status) {
            // Pending statuses of one device: the small sparse index.
            (ExecutionsOf::Target(t), Some(s)) if !s.is_terminal() => {
                (PENDING_INDEX, self.scoped(format!("PENDING#{t}")))
            }
            (ExecutionsOf::Target(t), _) => (BY_TARGET_INDEX, self.scoped(format!("THING#{t}"))),
            (ExecutionsOf::Command(c), _) => (BY_COMMAND_INDEX, self.scoped(format!("CMD#{c}"))),
        };
        let mut page = self
            .query_index(index, partition, !query.oldest_first, page, now)
            .await?;
        if let Some(status) = query.status {
            page.items.retain(|e| e.status == status);
        }
        if let Some(filter) = &query.time {
            page.items.retain(|e| filter.admits(e));
        }
        Ok(page)
    }

    async fn pending_executions(
        &self,
        target: &ThingName,
        now: Timestamp,
    ) -> Result<Vec<CommandExecution>, StoreError> {
        let mut pending = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .query_index(
                    PENDING_INDEX,
                    self.scoped(format!("PENDING#{target}")),
                    false,
                    PageRequest { limit: 100, start },
                    now,
                )
                .await?;
            // A just-ended execution whose index entry is not yet gone is skipped.
            pending.extend(page.items.into_iter().filter(|e| !e.status.is_terminal()));
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(pending),
            }
        }
    }

    async fn apply_transition(
        &self,
        id: &ExecutionId,
        plan: &TransitionPlan,
        dedupe_token: &str,
    ) -> Result<TransitionOutcome, StoreError> {
        let update = UpdateBuilder::from_plan(plan, dedupe_token)?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(&self.tenant, id)))
            .update_expression(update.expression())
            .condition_expression(update.condition.join(" AND "))
            .set_expression_attribute_names(Some(update.names))
            .set_expression_attribute_values(Some(update.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.meter.record_write(out.consumed_capacity());
                let item = out.attributes.ok_or_else(|| {
                    StoreError::Internal("UpdateItem returned no attributes".into())
                })?;
                let previous = string_attr(&item, PREVIOUS_STATUS)
                    .and_then(|s| ExecutionStatus::parse(&s))
                    .ok_or_else(|| {
                        StoreError::Internal("UpdateItem returned no previousStatus".into())
                    })?;
                let stored_due = string_attr(&item, "gsi4sk");
                let execution = execution_from_item(item)?;
                if due_key(&execution).map(|(_, sk)| sk) != stored_due {
                    self.reschedule(&execution).await?;
                }
                metrics::changed(&execution, previous);
                Ok(TransitionOutcome::Applied {
                    execution,
                    previous,
                })
            }
            Err(err) => {
                let Some(old) = conditional_failure_item(&err) else {
                    return match err.as_service_error().map(ProvideErrorMetadata::code) {
                        // No item at all: nothing came back from the check.
                        Some(Some("ConditionalCheckFailedException")) => Err(StoreError::NotFound),
                        _ => Err(classify(err)),
                    };
                };
                self.meter.record_failed_write();
                let last_token = string_attr(&old, LAST_UPDATE_TOKEN);
                let last_message_at = match old.get(LAST_MESSAGE_AT) {
                    Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
                    _ => None,
                };
                let current = execution_from_item(old)?;
                if current.is_expired(plan.now) {
                    return Err(StoreError::NotFound);
                }
                // A redelivery only of the same target's own request: another
                // device reusing the token must not see this record.
                let own = plan
                    .expected_target
                    .as_ref()
                    .is_none_or(|t| *t == current.target);
                if own && last_token.as_deref() == Some(dedupe_token) {
                    return Ok(TransitionOutcome::Duplicate(current));
                }
                // A message older than one already applied: a redelivery
                // overtaken by newer reports. Applying it would undo them.
                let stale = plan
                    .message_at
                    .zip(last_message_at)
                    .is_some_and(|(at, last)| at.millis() < last);
                if own && stale {
                    return Ok(TransitionOutcome::Duplicate(current));
                }
                match plan.check(&current) {
                    Err(error) => Err(StoreError::Rejected {
                        error,
                        current: Box::new(current),
                    }),
                    // The condition failed yet the rules pass: the item was
                    // changed between check and write. Safe to retry.
                    Ok(()) => Err(StoreError::Unavailable("concurrent update; retry".into())),
                }
            }
        }
    }

    async fn reschedule(&self, execution: &CommandExecution) -> Result<(), StoreError> {
        self.write_due_key(execution).await
    }

    async fn due_executions(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(TenantId, CommandExecution)>, StoreError> {
        let (partitions, upper) = due_partitions(now);
        let mut due = Vec::new();
        for partition in partitions {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("gsi4pk = :pk AND gsi4sk <= :upper")
                .expression_attribute_values(":pk", AttributeValue::S(partition))
                .expression_attribute_values(":upper", AttributeValue::S(upper.clone()))
                .limit(i32::try_from(limit).unwrap_or(100))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(classify)?;
            self.meter.record_read(out.consumed_capacity());
            let keys = out.items.unwrap_or_default();
            due.extend(self.hydrate(keys, now).await?);
        }
        Ok(due)
    }

    async fn record_late_result(
        &self,
        id: &ExecutionId,
        target: &ThingName,
        late: &LateResult,
        now: Timestamp,
    ) -> Result<Option<CommandExecution>, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(&self.tenant, id)))
            .update_expression("SET lateResult = :late, version = version + :one, lastUpdatedAt = :now REMOVE previousStatus")
            .condition_expression(
                "#status = :timedOut AND target = :target AND attribute_not_exists(lateResult) AND timeToLive > :now",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":late", dynamo::to_attribute_value(late).map_err(internal)?)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", number(now.as_secs_f64()))
            .expression_attribute_values(
                ":timedOut",
                AttributeValue::S(ExecutionStatus::TimedOut.as_str().into()),
            )
            .expression_attribute_values(":target", AttributeValue::S(target.to_string()))
            .return_values(ReturnValue::AllNew)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.meter.record_write(out.consumed_capacity());
                out.attributes.map(execution_from_item).transpose()
            }
            Err(err) if is_conditional_failure(&err) => {
                self.meter.record_failed_write();
                Ok(None)
            }
            Err(err) => Err(classify(err)),
        }
    }
}

impl DynamoStore {
    /// Points the due-index entry at the execution's wake time, unless the
    /// item has changed since (its writer does the same).
    async fn write_due_key(&self, execution: &CommandExecution) -> Result<(), StoreError> {
        let Some((pk, sk)) = due_key(execution) else {
            return Ok(());
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(&self.tenant, &execution.execution_id)))
            // Not a status change: no previousStatus in this image, so the
            // stream's readers (job statistics) do not count it.
            .update_expression("SET gsi4pk = :pk, gsi4sk = :sk REMOVE previousStatus")
            .condition_expression("version = :v")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":sk", AttributeValue::S(sk))
            .expression_attribute_values(":v", AttributeValue::N(execution.version.to_string()))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match out {
            Ok(out) => {
                self.meter.record_write(out.consumed_capacity());
                Ok(())
            }
            Err(err) if is_conditional_failure(&err) => {
                self.meter.record_failed_write();
                Ok(())
            }
            Err(err) => Err(classify(err)),
        }
    }
}
