//! JOBS in the table: the DynamoDB implementation of [`JobStore`]. Does I/O.
//! The items (job, target pages, counter shards, batch markers) are in
//! `layout`.
//!
//! STATISTICS: the dispatcher (the table stream) adds each batch of
//! execution changes to one of `layout::STATISTICS_SHARDS` counter items
//! with `ADD`, in a transaction with a marker named by the batch's first
//! stream record. A redelivered batch finds its marker and adds only what
//! follows the marker's last record, so counts are exact under Lambda's
//! retries. No item is hot: a counter takes one write per stream batch (not
//! per change), spread over the shards; reading them is one Query together
//! with the job.

use super::dynamodb::DynamoStore;
use super::errors::{backoff, classify, internal, is_conditional_failure};
use super::layout::{
    batch_marker_key, counter_name, job_from_item, job_item, job_pk, jobs_pk, key, split_scoped,
    statistics_from, statistics_key, string_attr, target_page_item, target_page_key,
    BY_COMMAND_INDEX, BY_TARGET_INDEX, DUE_INDEX, JOB_DUE_PK, JOB_SK, REQUEST_HASH, TTL_ATTRIBUTE,
};
use super::{CreateJobOutcome, Item, JobStore, Page, PageRequest, StatisticsOutcome, StoreError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use courier_core::job_run::{Job, StatisticsDelta, TARGET_PAGE};
use courier_core::{CommandExecution, JobId, JobStatistics, TenantId, ThingName, Timestamp};
use std::collections::HashMap;

/// BatchWriteItem takes at most 25 items.
pub(super) const BATCH_WRITE_MAX: usize = 25;
/// Markers outlive the stream's 24-hour retention, so any redelivery finds them.
const MARKER_TTL_SECONDS: i64 = 2 * 86_400;
/// Attempts at a batch's unprocessed items before giving up (retryable).
const BATCH_WRITE_ATTEMPTS: u32 = 10;

impl DynamoStore {
    /// Adds `adds` (attribute, amount) to the counter item `counter`, once
    /// per stream batch: in one transaction with `marker` (named after the
    /// batch's first record, holding its `last`), which must not exist. A
    /// redelivered batch finds the marker and learns how far it went.
    pub(super) async fn add_once(
        &self,
        mut marker: Item,
        counter: Item,
        adds: &[(String, i64)],
        last: &str,
        now: Timestamp,
    ) -> Result<StatisticsOutcome, StoreError> {
        if adds.is_empty() {
            return Ok(StatisticsOutcome::Added);
        }
        marker.insert("last".into(), AttributeValue::S(last.to_owned()));
        let expires = now.plus_secs(MARKER_TTL_SECONDS);
        marker.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(expires.epoch_secs().to_string()),
        );
        let mut terms = Vec::new();
        let mut names = HashMap::new();
        let mut values = Item::new();
        for (i, (name, n)) in adds.iter().enumerate() {
            terms.push(format!("#c{i} :c{i}"));
            names.insert(format!("#c{i}"), name.clone());
            values.insert(format!(":c{i}"), AttributeValue::N(n.to_string()));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(marker))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(internal)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(counter))
            .update_expression(format!("ADD {}", terms.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(internal)?;
        for attempt in 1..=8u32 {
            let out = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(put.clone()).build())
                .transact_items(TransactWriteItem::builder().update(update.clone()).build())
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await;
            let err = match out {
                Ok(out) => {
                    for c in out.consumed_capacity() {
                        self.meter.record_write(Some(c));
                    }
                    return Ok(StatisticsOutcome::Added);
                }
                Err(err) => err,
            };
            let reasons = match err.as_service_error() {
                Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e)) => e.cancellation_reasons().to_vec(),
                _ => return Err(classify(err)),
            };
            if let Some(old) = reasons
                .first()
                .filter(|r| r.code() == Some("ConditionalCheckFailed"))
                .and_then(|r| r.item())
            {
                let last = string_attr(old, "last").unwrap_or_default();
                return Ok(StatisticsOutcome::AlreadyAdded { last });
            }
            // TransactionConflict with a concurrent writer of the same
            // counter, or throttling: back off and try again.
            tracing::info!(attempt, ?reasons, "counter transaction canceled; retrying");
            backoff(attempt).await;
        }
        Err(StoreError::Throttled(
            "a counter transaction kept conflicting".into(),
        ))
    }

    pub(super) async fn batch_write(
        &self,
        mut requests: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut attempt = 0;
        while !requests.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut requests))
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await
                .map_err(classify)?;
            self.batch_writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for c in out.consumed_capacity() {
                self.meter.record_write(Some(c));
            }
            if let Some(rest) = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .filter(|r| !r.is_empty())
            {
                attempt += 1;
                if attempt >= BATCH_WRITE_ATTEMPTS {
                    return Err(StoreError::Throttled(format!(
                        "BatchWriteItem left {} items unprocessed after {attempt} attempts",
                        rest.len()
                    )));
                }
                tracing::info!(
                    left = rest.len(),
                    attempt,
                    "BatchWriteItem unprocessed items; backing off"
                );
                backoff(attempt).await;
                requests = rest;
            }
        }
        Ok(())
    }

    pub(super) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
        Ok(WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(internal)?,
            )
            .build())
    }
}

impl JobStore for DynamoStore {
    async fn create_job(
        &self,
        job: &Job,
        targets: Option<&[ThingName]>,
        request_hash: &str,
    ) -> Result<CreateJobOutcome, StoreError> {
        let pk = job_pk(&self.tenant, &job.job_id);
        // An existing job is never touched: its target pages stay as they are.
        if let Some(old) = self.get(key(pk.clone(), JOB_SK.into()), true).await? {
            let same_request = string_attr(&old, REQUEST_HASH).as_deref() == Some(request_hash);
            return Ok(CreateJobOutcome::Existing {
                job: job_from_item(old)?,
                same_request,
            });
        }
        // Target pages first: once the job item exists, the stream starts
        // the fan-out, which reads them.
        if let Some(targets) = targets {
            let page_len = usize::try_from(TARGET_PAGE).unwrap_or(1000);
            let mut requests = Vec::new();
            for (n, page) in targets.chunks(page_len).enumerate() {
                let item = target_page_item(&self.tenant, job, n as u64, page);
                requests.push(Self::put_request(item)?);
            }
            for chunk in requests.chunks(BATCH_WRITE_MAX) {
                self.batch_write(chunk.to_vec()).await?;
            }
        }
        match self
            .put_if_absent(job_item(&self.tenant, job, request_hash)?, None)
            .await?
        {
            None => Ok(CreateJobOutcome::Created(job.clone())),
            Some(old) => {
                let same_request = string_attr(&old, REQUEST_HASH).as_deref() == Some(request_hash);
                Ok(CreateJobOutcome::Existing {
                    job: job_from_item(old)?,
                    same_request,
                })
            }
        }
    }

    async fn get_job(
        &self,
        id: &JobId,
        now: Timestamp,
    ) -> Result<Option<(Job, JobStatistics)>, StoreError> {
        // "JOB" sorts before "STATS#…": the job and its counters in one Query.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :job AND :stats")
            .expression_attribute_values(":pk", AttributeValue::S(job_pk(&self.tenant, id)))
            .expression_attribute_values(":job", AttributeValue::S(JOB_SK.into()))
            .expression_attribute_values(":stats", AttributeValue::S("STATS#~".into()))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.meter.record_read(out.consumed_capacity());
        let mut items = out.items.unwrap_or_default();
        let Some(at) = items
            .iter()
            .position(|i| string_attr(i, "sk").as_deref() == Some(JOB_SK))
        else {
            return Ok(None);
        };
        let job = job_from_item(items.remove(at))?;
        if job.time_to_live <= now {
            return Ok(None);
        }
        Ok(Some((job, statistics_from(&items))))
    }

    async fn list_jobs(&self, page: PageRequest, now: Timestamp) -> Result<Page<Job>, StoreError> {
        let keys = self
            .query_page(Some(BY_TARGET_INDEX), jobs_pk(&self.tenant), false, page)
            .await?;
        let mut jobs = Vec::with_capacity(keys.items.len());
        for k in keys.items {
            let (Some(pk), Some(sk)) = (string_attr(&k, "pk"), string_attr(&k, "sk")) else {
                continue;
            };
            if let Some(item) = self.get(key(pk, sk), false).await? {
                let job = job_from_item(item)?;
                if job.time_to_live > now {
                    jobs.push(job);
                }
            }
        }
        Ok(Page {
            items: jobs,
            next: keys.next,
        })
    }

    async fn job_executions(
        &self,
        id: &JobId,
        page: PageRequest,
        now: Timestamp,
    ) -> Result<Page<CommandExecution>, StoreError> {
        self.query_index(BY_COMMAND_INDEX, job_pk(&self.tenant, id), false, page, now)
            .await
    }

    async fn put_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        // The request hash stays what creation stored.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(job_pk(&self.tenant, &job.job_id), JOB_SK.into())))
            .projection_expression(REQUEST_HASH)
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let hash = out
            .item
            .as_ref()
            .and_then(|i| string_attr(i, REQUEST_HASH))
            .ok_or(StoreError::NotFound)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(job_item(&self.tenant, job, &hash)?))
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
                    "job {} changed since version {expected_version}",
                    job.job_id
                )))
            }
            Err(err) => Err(classify(err)),
        }
    }

    async fn job_targets(
        &self,
        job: &Job,
        from: u64,
        count: u32,
    ) -> Result<Vec<ThingName>, StoreError> {
        let page = from / TARGET_PAGE;
        let page_key = target_page_key(&self.tenant, &job.job_id, page);
        let item = self.get(page_key, true).await?;
        let Some(AttributeValue::L(things)) = item.and_then(|mut i| i.remove("things")) else {
            return Err(StoreError::Internal(format!(
                "job {} has no target page {page}",
                job.job_id
            )));
        };
        let start = usize::try_from(from % TARGET_PAGE).unwrap_or(0);
        things
            .into_iter()
            .skip(start)
            .take(count as usize)
            .map(|v| match v {
                AttributeValue::S(s) => ThingName::parse(&s).map_err(internal),
                _ => Err(StoreError::Internal("a target is not a string".into())),
            })
            .collect()
    }

    async fn write_executions(
        &self,
        executions: &[CommandExecution],
        only_missing: bool,
    ) -> Result<usize, StoreError> {
        if only_missing {
            let mut written = 0;
            for execution in executions {
                let item = super::layout::execution_item(&self.tenant, execution, None)?;
                if self.put_if_absent(item, None).await?.is_none() {
                    crate::platform::metrics::created(execution);
                    written += 1;
                }
            }
            return Ok(written);
        }
        for chunk in executions.chunks(BATCH_WRITE_MAX) {
            let requests = chunk
                .iter()
                .map(|e| {
                    super::layout::execution_item(&self.tenant, e, None).and_then(Self::put_request)
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.batch_write(requests).await?;
        }
        executions
            .iter()
            .for_each(crate::platform::metrics::created);
        Ok(executions.len())
    }

    async fn add_statistics(
        &self,
        job: &JobId,
        delta: &StatisticsDelta,
        first: &str,
        last: &str,
        now: Timestamp,
    ) -> Result<StatisticsOutcome, StoreError> {
        if delta.is_empty() {
            return Ok(StatisticsOutcome::Added);
        }
        let mut adds: Vec<(String, i64)> = delta
            .devices
            .iter()
            .map(|(status, n)| (counter_name(*status), *n))
            .collect();
        if delta.attempts != 0 {
            adds.push(("attempts".into(), delta.attempts));
        }
        self.add_once(
            batch_marker_key(&self.tenant, job, first),
            statistics_key(&self.tenant, job, first),
            &adds,
            last,
            now,
        )
        .await
    }

    async fn due_jobs(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<(TenantId, Job)>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("gsi4pk = :pk AND gsi4sk <= :upper")
            .expression_attribute_values(":pk", AttributeValue::S(JOB_DUE_PK.into()))
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
        let mut jobs = Vec::new();
        for k in out.items.unwrap_or_default() {
            let Some(pk) = string_attr(&k, "pk") else {
                continue;
            };
            let Some((tenant, _)) = split_scoped(&pk) else {
                continue;
            };
            if let Some(item) = self.get(key(pk, JOB_SK.into()), true).await? {
                jobs.push((tenant, job_from_item(item)?));
            }
        }
        Ok(jobs)
    }
}
