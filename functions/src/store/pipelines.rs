//! PIPELINES in the table: the DynamoDB implementation of
//! [`PipelineStore`]. Does I/O. The items, and what is written per device
//! and when, are in `pipeline_layout`.
//!
//! No write here is a transaction per device: a run's execution is one
//! conditional put (absent), a target run's settled stage one put
//! conditioned on its version; a stream batch's tallies of a run are one
//! transaction (marker and counter shard) for the whole batch.

use super::dynamodb::DynamoStore;
use super::errors::{backoff, classify, internal, is_conditional_failure};
use super::jobs::BATCH_WRITE_MAX;
use super::layout::{
    execution_key, key, number_attr, split_scoped, string_attr, DUE_INDEX, REQUEST_HASH,
};
use super::pipeline_layout::{
    active_runs_key, add_counts, count_attr, counts_key, list_item, list_key, pipeline_from_item,
    pipeline_item, pipelines_pk, run_from_item, run_item, run_key, run_marker_key, run_pk, runs_pk,
    target_from_item, target_item, target_key, COUNTS_PREFIX, LIST_PAGE, RUN_DUE_PK, RUN_SK,
    TARGET_PREFIX,
};
use super::pipeline_store::{CreateRunOutcome, PipelineStore};
use super::{Item, JobStore, Page, PageRequest, PutOutcome, StatisticsOutcome, StoreError};
use crate::store::layout::{cursor_to_key, key_to_cursor};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnConsumedCapacity, TransactWriteItem, Update,
};
use courier_core::pipeline::Pipeline;
use courier_core::pipeline_run::{PipelineRun, RunStatus, Tally, TargetRun, TargetStatus};
use courier_core::{
    CommandExecution, ExecutionId, PipelineId, RunId, TenantId, ThingName, Timestamp,
};
use std::collections::BTreeMap;

/// Target runs written at once while a run starts.
const PUT_CONCURRENCY: usize = 16;

impl DynamoStore {
    async fn put_target_if_absent(
        &self,
        run: &PipelineRun,
        target: &TargetRun,
    ) -> Result<bool, StoreError> {
        let item = target_item(&self.tenant, run, target, None)?;
        Ok(self.put_if_absent(item, None).await?.is_none())
    }

    /// Runs a transaction, again after a conflict with another one (or
    /// throttling); `Err(reasons)` inside when a condition failed.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
    ) -> Result<Result<(), Vec<CancellationReason>>, StoreError> {
        for attempt in 1..=8u32 {
            let out = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await;
            let err = match out {
                Ok(out) => {
                    for c in out.consumed_capacity() {
                        self.meter.record_write(Some(c));
                    }
                    return Ok(Ok(()));
                }
                Err(err) => err,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    e.cancellation_reasons().to_vec()
                }
                _ => return Err(classify(err)),
            };
            if reasons
                .iter()
                .any(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                self.meter.record_failed_write();
                return Ok(Err(reasons));
            }
            // A concurrent transaction on the same item (a counter shard),
            // or throttling: back off and try again.
            tracing::info!(attempt, ?reasons, what, "transaction canceled; retrying");
            backoff(attempt).await;
        }
        Err(StoreError::Throttled(format!("{what} kept conflicting")))
    }

    /// The run item's request hash (kept as creation stored it).
    async fn run_hash(&self, run: &RunId) -> Result<String, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(run_key(&self.tenant, run)))
            .projection_expression(REQUEST_HASH)
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?
            .item
            .as_ref()
            .and_then(|i| string_attr(i, REQUEST_HASH))
            .ok_or(StoreError::NotFound)
    }

    async fn query_due(
        &self,
        partition: &str,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("gsi4pk = :pk AND gsi4sk <= :upper")
            .expression_attribute_values(":pk", AttributeValue::S(partition.to_owned()))
            .expression_attribute_values(
                ":upper",
                AttributeValue::S(format!("{:015}#~", now.millis().max(0))),
            )
            .limit(i32::try_from(limit).unwrap_or(100))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.meter.record_read(out.consumed_capacity());
        Ok(out.items.unwrap_or_default())
    }
}

impl PipelineStore for DynamoStore {
    async fn put_pipeline(&self, pipeline: &Pipeline) -> Result<PutOutcome<Pipeline>, StoreError> {
        let item = pipeline_item(&self.tenant, pipeline)?;
        match self.put_if_absent(item, None).await? {
            None => Ok(PutOutcome::Created(pipeline.clone())),
            Some(old) => Ok(PutOutcome::Existing(pipeline_from_item(old)?)),
        }
    }

    async fn get_pipeline(&self, id: &PipelineId) -> Result<Option<Pipeline>, StoreError> {
        // Pipelines never change: an eventually consistent read will do.
        self.get(key(pipelines_pk(&self.tenant), id.to_string()), false)
            .await?
            .map(pipeline_from_item)
            .transpose()
    }

    async fn list_pipelines(&self, page: PageRequest) -> Result<Page<Pipeline>, StoreError> {
        let raw = self
            .query_page(None, pipelines_pk(&self.tenant), true, page)
            .await?;
        let items = raw
            .items
            .into_iter()
            .map(pipeline_from_item)
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next: raw.next,
        })
    }

    async fn create_run(
        &self,
        run: &PipelineRun,
        things: Option<&[ThingName]>,
        request_hash: &str,
        max_active: u32,
    ) -> Result<CreateRunOutcome, StoreError> {
        let existing = |old: Item| -> Result<CreateRunOutcome, StoreError> {
            let same_request = string_attr(&old, REQUEST_HASH).as_deref() == Some(request_hash);
            Ok(CreateRunOutcome::Existing {
                run: run_from_item(old)?,
                same_request,
            })
        };
        // An existing run is never touched: its target list stays as it is.
        if let Some(old) = self.get(run_key(&self.tenant, &run.run_id), true).await? {
            return existing(old);
        }
        if let Some(things) = things {
            let mut requests = Vec::new();
            for (n, page) in things.chunks(LIST_PAGE).enumerate() {
                requests.push(Self::put_request(list_item(&self.tenant, run, n, page))?);
            }
            for chunk in requests.chunks(BATCH_WRITE_MAX) {
                self.batch_write(chunk.to_vec()).await?;
            }
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(run_item(&self.tenant, run, request_hash)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(internal)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(active_runs_key(&self.tenant)))
            .update_expression("ADD active :one")
            .condition_expression("attribute_not_exists(active) OR active < :max")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":max", AttributeValue::N(max_active.to_string()))
            .build()
            .map_err(internal)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(items, "a run's creation").await? {
            Ok(()) => Ok(CreateRunOutcome::Created(run.clone())),
            Err(reasons)
                if reasons.first().and_then(|r| r.code()) == Some("ConditionalCheckFailed") =>
            {
                match self.get(run_key(&self.tenant, &run.run_id), true).await? {
                    Some(old) => existing(old),
                    None => Err(StoreError::Conflict(format!(
                        "run {} was created and removed meanwhile",
                        run.run_id
                    ))),
                }
            }
            Err(_) => {
                let active = self
                    .get(active_runs_key(&self.tenant), true)
                    .await?
                    .and_then(|item| number_attr(&item, "active"))
                    .unwrap_or(u64::from(max_active));
                Ok(CreateRunOutcome::LimitReached { active })
            }
        }
    }

    async fn end_run(&self, run: &PipelineRun, expected_version: u64) -> Result<(), StoreError> {
        let hash = self.run_hash(&run.run_id).await?;
        let mut next = run.clone();
        next.version = expected_version + 1;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(run_item(&self.tenant, &next, &hash)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .build()
            .map_err(internal)?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(active_runs_key(&self.tenant)))
            .update_expression("ADD active :minus")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .build()
            .map_err(internal)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        match self.transact(items, "a run's end").await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StoreError::Conflict(format!(
                "run {} changed since version {expected_version}",
                run.run_id
            ))),
        }
    }

    async fn get_run(
        &self,
        id: &RunId,
        stages: usize,
        now: Timestamp,
    ) -> Result<Option<PipelineRun>, StoreError> {
        // "COUNTS#…" sorts before "RUN": the run and its counters in one Query.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :counts AND :run")
            .expression_attribute_values(":pk", AttributeValue::S(run_pk(&self.tenant, id)))
            .expression_attribute_values(":counts", AttributeValue::S(COUNTS_PREFIX.into()))
            .expression_attribute_values(":run", AttributeValue::S(RUN_SK.into()))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.meter.record_read(out.consumed_capacity());
        let mut items = out.items.unwrap_or_default();
        let Some(at) = items
            .iter()
            .position(|i| string_attr(i, "sk").as_deref() == Some(RUN_SK))
        else {
            return Ok(None);
        };
        let mut run = run_from_item(items.remove(at))?;
        if super::pipeline_layout::run_expiry(&run) <= now {
            return Ok(None);
        }
        if run.status != RunStatus::Completed || run.counts.is_empty() {
            add_counts(&mut run, &items, stages);
        }
        run.derive_entered();
        Ok(Some(run))
    }

    async fn put_run(&self, run: &PipelineRun, expected_version: u64) -> Result<(), StoreError> {
        let mut next = run.clone();
        next.version = expected_version + 1;
        let hash = self.run_hash(&run.run_id).await?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(run_item(&self.tenant, &next, &hash)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.meter.record_write(out.consumed_capacity());
                Ok(())
            }
            Err(err) if is_conditional_failure(&err) => {
                self.meter.record_failed_write();
                Err(StoreError::Conflict(format!(
                    "run {} changed since version {expected_version}",
                    run.run_id
                )))
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn list_runs(
        &self,
        pipeline: &PipelineId,
        page: PageRequest,
        now: Timestamp,
    ) -> Result<Page<PipelineRun>, StoreError> {
        let keys = self
            .query_page(
                Some(super::layout::BY_TARGET_INDEX),
                runs_pk(&self.tenant, pipeline.as_str()),
                false,
                page,
            )
            .await?;
        let mut runs = Vec::with_capacity(keys.items.len());
        for k in keys.items {
            let Some(pk) = string_attr(&k, "pk") else {
                continue;
            };
            if let Some(item) = self.get(key(pk, RUN_SK.into()), false).await? {
                let run = run_from_item(item)?;
                if super::pipeline_layout::run_expiry(&run) > now {
                    runs.push(run);
                }
            }
        }
        Ok(Page {
            items: runs,
            next: keys.next,
        })
    }

    async fn run_things(&self, run: &PipelineRun) -> Result<Vec<ThingName>, StoreError> {
        let mut things = Vec::new();
        for n in 0.. {
            let Some(mut item) = self
                .get(list_key(&self.tenant, &run.run_id, n), true)
                .await?
            else {
                return Ok(things);
            };
            let Some(AttributeValue::L(list)) = item.remove("things") else {
                return Ok(things);
            };
            for value in list {
                match value {
                    AttributeValue::S(s) => things.push(ThingName::parse(&s).map_err(internal)?),
                    _ => return Err(StoreError::Internal("a target is not a string".into())),
                }
            }
        }
        Ok(things)
    }

    async fn put_targets(
        &self,
        run: &PipelineRun,
        targets: &[TargetRun],
    ) -> Result<usize, StoreError> {
        let mut written = 0;
        for chunk in targets.chunks(PUT_CONCURRENCY) {
            let mut tasks = tokio::task::JoinSet::new();
            for target in chunk {
                let (store, run, target) = (self.clone(), run.clone(), target.clone());
                tasks.spawn(async move { store.put_target_if_absent(&run, &target).await });
            }
            while let Some(done) = tasks.join_next().await {
                if done.map_err(internal)?? {
                    written += 1;
                }
            }
        }
        Ok(written)
    }

    async fn get_target(
        &self,
        run: &RunId,
        thing: &ThingName,
    ) -> Result<Option<TargetRun>, StoreError> {
        self.get(target_key(&self.tenant, run, thing), true)
            .await?
            .map(target_from_item)
            .transpose()
    }

    async fn list_targets(
        &self,
        run: &RunId,
        wave: Option<u32>,
        status: Option<TargetStatus>,
        page: PageRequest,
    ) -> Result<Page<TargetRun>, StoreError> {
        let mut filters = Vec::new();
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(run_pk(&self.tenant, run)))
            .expression_attribute_values(":prefix", AttributeValue::S(TARGET_PREFIX.into()))
            .consistent_read(true)
            .limit(i32::try_from(page.limit).unwrap_or(100))
            .set_exclusive_start_key(page.start.map(cursor_to_key))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        if let Some(wave) = wave {
            filters.push("wave = :wave");
            request =
                request.expression_attribute_values(":wave", AttributeValue::N(wave.to_string()));
        }
        if let Some(status) = status {
            filters.push("#status = :status");
            request = request
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":status",
                    serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(status)
                        .map_err(internal)?,
                );
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        let out = request.send().await.map_err(classify)?;
        self.meter.record_read(out.consumed_capacity());
        let next = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .map(key_to_cursor);
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(target_from_item)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn settle_target(
        &self,
        run: &PipelineRun,
        target: &TargetRun,
        expected_version: u64,
        tally: &Tally,
    ) -> Result<bool, StoreError> {
        let mut next = target.clone();
        next.version = expected_version + 1;
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(target_item(&self.tenant, run, &next, Some(tally))?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(expected_version.to_string()))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        self.conditional_write(out.map(|out| out.consumed_capacity().cloned()))
    }

    async fn put_run_execution(&self, execution: &CommandExecution) -> Result<bool, StoreError> {
        Ok(self
            .write_executions(std::slice::from_ref(execution), true)
            .await?
            == 1)
    }

    async fn add_run_tallies(
        &self,
        run: &RunId,
        tallies: &[Tally],
        first: &str,
        last: &str,
        now: Timestamp,
    ) -> Result<StatisticsOutcome, StoreError> {
        let mut sums: BTreeMap<String, i64> = BTreeMap::new();
        for tally in tallies {
            for (wave, stage, field) in tally.fields() {
                *sums.entry(count_attr(wave, stage, field)).or_default() += 1;
            }
            if tally.ended {
                *sums.entry("ended".into()).or_default() += 1;
            }
        }
        let adds: Vec<(String, i64)> = sums.into_iter().collect();
        self.add_once(
            run_marker_key(&self.tenant, run, first),
            counts_key(&self.tenant, run, first),
            &adds,
            last,
            now,
        )
        .await
    }

    async fn run_executions(
        &self,
        ids: &[ExecutionId],
        now: Timestamp,
    ) -> Result<Vec<CommandExecution>, StoreError> {
        let keys = ids
            .iter()
            .map(|id| execution_key(&self.tenant, id))
            .collect();
        Ok(self
            .hydrate(keys, now)
            .await?
            .into_iter()
            .map(|(_, execution)| execution)
            .collect())
    }

    async fn due_runs(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(TenantId, RunId)>, StoreError> {
        let mut due = Vec::new();
        for k in self.query_due(RUN_DUE_PK, now, limit).await? {
            let Some(pk) = string_attr(&k, "pk") else {
                continue;
            };
            let Some((tenant, rest)) = split_scoped(&pk) else {
                continue;
            };
            if let Some(run) = rest.strip_prefix("RUN#").and_then(|r| RunId::parse(r).ok()) {
                due.push((tenant, run));
            }
        }
        Ok(due)
    }
}
