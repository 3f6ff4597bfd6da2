//! Jobs in the table: the DynamoDB implementation of [`JobStore`]. Does I/O.
//!
//! Keys are tenant-scoped (`T#…#` is `T#{tenant}#`, see `dynamodb.rs`):
//!
//! | item            | pk              | sk                | gsi1 (byTarget)          | gsi4 (due, sparse) |
//! |-----------------|-----------------|-------------------|--------------------------|--------------------|
//! | job             | `T#…#JOB#{id}`  | `JOB`             | `T#…#JOBS` / `{created}#{id}` | `DUEJOB` / `{wakeAt}#{id}` while it has a wake time |
//! | target page     | `T#…#JOB#{id}`  | `TARGETS#{n:06}`  | –                        | – |
//! | counter shard   | `T#…#JOB#{id}`  | `STATS#{k}`       | –                        | – |
//! | batch marker    | `T#…#JOB#{id}`  | `BATCH#{eventId}` | –                        | – (TTL 2 days) |
//!
//! A job's executions are ordinary execution items whose gsi2 partition is
//! `T#…#JOB#{jobId}` (not `T#…#CMD#{commandId}`), so the job's executions are
//! one Query and a job execution costs exactly what a single one does.
//!
//! STATISTICS: the dispatcher (the table stream) adds each batch of
//! execution changes to one of [`STATISTICS_SHARDS`] counter items with
//! `ADD`, in a transaction with a marker named by the batch's first stream
//! record. A redelivered batch finds its marker and adds only what follows
//! the marker's last record, so counts are exact under Lambda's retries. No
//! item is hot: a counter takes one write per stream batch (not per change),
//! spread over the shards; reading them is one Query together with the job.

use super::{
    backoff, classify, internal, key, split_scoped, string_attr, DynamoStore, Item,
    BY_COMMAND_INDEX, BY_TARGET_INDEX, DUE_INDEX, TTL_ATTRIBUTE,
};
use crate::store::{CreateJobOutcome, JobStore, Page, PageRequest, StatisticsOutcome, StoreError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use courier_core::job_run::{Job, StatisticsDelta, TARGET_PAGE};
use courier_core::{
    CommandExecution, ExecutionStatus, JobId, JobStatistics, TenantId, ThingName, Timestamp,
};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;
use std::collections::BTreeMap;

const JOB_SK: &str = "JOB";
const JOBS_PK: &str = "JOBS";
const JOB_DUE_PK: &str = "DUEJOB";
const REQUEST_HASH: &str = "requestHash";
/// Counter items per job.
pub const STATISTICS_SHARDS: u32 = 8;
/// BatchWriteItem takes at most 25 items.
const BATCH_WRITE_MAX: usize = 25;
/// Markers outlive the stream's 24-hour retention, so any redelivery finds them.
const MARKER_TTL_SECONDS: i64 = 2 * 86_400;
/// Attempts at a batch's unprocessed items before giving up (retryable).
const BATCH_WRITE_ATTEMPTS: u32 = 10;

impl DynamoStore {
    fn job_pk(&self, id: &JobId) -> String {
        self.scoped(format!("JOB#{id}"))
    }

    fn job_to_item(&self, job: &Job, request_hash: &str) -> Result<Item, StoreError> {
        let mut item = dynamo::to_item(job).map_err(internal)?;
        item.retain(|_, v| !matches!(v, AttributeValue::M(m) if m.is_empty()));
        let mut put = |k: &str, v: String| {
            item.insert(k.to_owned(), AttributeValue::S(v));
        };
        put("pk", self.job_pk(&job.job_id));
        put("sk", JOB_SK.into());
        put(&format!("{BY_TARGET_INDEX}pk"), self.scoped(JOBS_PK));
        put(
            &format!("{BY_TARGET_INDEX}sk"),
            format!("{:015}#{}", job.created_at.millis().max(0), job.job_id),
        );
        if let Some(wake) = job.wake_at(job.last_updated_at) {
            put(&format!("{DUE_INDEX}pk"), JOB_DUE_PK.into());
            put(
                &format!("{DUE_INDEX}sk"),
                format!("{:015}#{}", wake.millis().max(0), job.job_id),
            );
        }
        put(REQUEST_HASH, request_hash.to_owned());
        item.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(job.time_to_live.epoch_secs().to_string()),
        );
        Ok(item)
    }
}

fn job_from_item(item: Item) -> Result<Job, StoreError> {
    dynamo::from_item(item).map_err(|e| StoreError::Internal(format!("malformed job item: {e}")))
}

/// Decodes a job item from a stream image, with its tenant (`None` if the
/// item is not a job).
pub fn job_from_image(item: &Item) -> Result<Option<(TenantId, Job)>, StoreError> {
    let pk = string_attr(item, "pk").unwrap_or_default();
    let Some((tenant, rest)) = split_scoped(&pk) else {
        return Ok(None);
    };
    if !rest.starts_with("JOB#") || string_attr(item, "sk").as_deref() != Some(JOB_SK) {
        return Ok(None);
    }
    job_from_item(item.clone()).map(|job| Some((tenant, job)))
}

fn counter_name(status: ExecutionStatus) -> String {
    format!("d_{}", status.as_str())
}

/// Sums the counter shards. A shard alone may be negative (a change counted
/// in one shard, its creation in another); the sum is not.
fn statistics_from(items: &[Item]) -> JobStatistics {
    let mut devices: BTreeMap<ExecutionStatus, i64> = BTreeMap::new();
    let mut attempts = 0i64;
    for item in items {
        for status in ExecutionStatus::ALL {
            if let Some(AttributeValue::N(n)) = item.get(&counter_name(status)) {
                *devices.entry(status).or_default() += n.parse::<i64>().unwrap_or(0);
            }
        }
        if let Some(AttributeValue::N(n)) = item.get("attempts") {
            attempts += n.parse::<i64>().unwrap_or(0);
        }
    }
    let mut stats = JobStatistics::default();
    stats.add(&devices, u64::try_from(attempts).unwrap_or(0));
    stats
}

fn shard_of(name: &str) -> u32 {
    name.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % STATISTICS_SHARDS
}

impl DynamoStore {
    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
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

    fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
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
        let pk = self.job_pk(&job.job_id);
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
                let mut item = key(pk.clone(), format!("TARGETS#{n:06}"));
                item.insert(
                    "things".into(),
                    AttributeValue::L(
                        page.iter()
                            .map(|t| AttributeValue::S(t.to_string()))
                            .collect(),
                    ),
                );
                item.insert(
                    TTL_ATTRIBUTE.into(),
                    AttributeValue::N(job.time_to_live.epoch_secs().to_string()),
                );
                requests.push(Self::put_request(item)?);
            }
            for chunk in requests.chunks(BATCH_WRITE_MAX) {
                self.batch_write(chunk.to_vec()).await?;
            }
        }
        match self
            .put_if_absent(self.job_to_item(job, request_hash)?, None)
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

    async fn get_job(&self, id: &JobId) -> Result<Option<(Job, JobStatistics)>, StoreError> {
        // "JOB" sorts before "STATS#…": the job and its counters in one Query.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :job AND :stats")
            .expression_attribute_values(":pk", AttributeValue::S(self.job_pk(id)))
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
        Ok(Some((job, statistics_from(&items))))
    }

    async fn list_jobs(&self, page: PageRequest) -> Result<Page<Job>, StoreError> {
        let keys = self
            .query_page(Some(BY_TARGET_INDEX), self.scoped(JOBS_PK), false, page)
            .await?;
        let mut jobs = Vec::with_capacity(keys.items.len());
        for k in keys.items {
            let (Some(pk), Some(sk)) = (string_attr(&k, "pk"), string_attr(&k, "sk")) else {
                continue;
            };
            if let Some(item) = self.get(key(pk, sk), false).await? {
                jobs.push(job_from_item(item)?);
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
        self.query_index(BY_COMMAND_INDEX, self.job_pk(id), false, page, now)
            .await
    }

    async fn put_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        // The request hash stays what creation stored.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(self.job_pk(&job.job_id), JOB_SK.into())))
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
            .set_item(Some(self.job_to_item(job, &hash)?))
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
            Err(err) if super::is_conditional_failure(&err) => Err(StoreError::Conflict(format!(
                "job {} changed since version {expected_version}",
                job.job_id
            ))),
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
        let page_key = key(self.job_pk(&job.job_id), format!("TARGETS#{page:06}"));
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
                let item = self.execution_item(execution, None)?;
                if self.put_if_absent(item, None).await?.is_none() {
                    written += 1;
                }
            }
            return Ok(written);
        }
        for chunk in executions.chunks(BATCH_WRITE_MAX) {
            let requests = chunk
                .iter()
                .map(|e| self.execution_item(e, None).and_then(Self::put_request))
                .collect::<Result<Vec<_>, _>>()?;
            self.batch_write(requests).await?;
        }
        Ok(executions.len())
    }

    async fn add_statistics(
        &self,
        job: &JobId,
        delta: &StatisticsDelta,
        first: &str,
        last: &str,
    ) -> Result<StatisticsOutcome, StoreError> {
        if delta.is_empty() {
            return Ok(StatisticsOutcome::Added);
        }
        let pk = self.job_pk(job);
        let mut marker = key(pk.clone(), format!("BATCH#{first}"));
        marker.insert("last".into(), AttributeValue::S(last.to_owned()));
        let expires = crate::config::now().plus_secs(MARKER_TTL_SECONDS);
        marker.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(expires.epoch_secs().to_string()),
        );
        let mut adds = Vec::new();
        let mut values = Item::new();
        for (status, n) in &delta.devices {
            let placeholder = format!(":{}", status.as_str());
            adds.push(format!("{} {placeholder}", counter_name(*status)));
            values.insert(placeholder, AttributeValue::N(n.to_string()));
        }
        if delta.attempts != 0 {
            adds.push("attempts :attempts".into());
            values.insert(
                ":attempts".into(),
                AttributeValue::N(delta.attempts.to_string()),
            );
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
            .set_key(Some(key(pk, format!("STATS#{}", shard_of(first)))))
            .update_expression(format!("ADD {}", adds.join(", ")))
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
            tracing::info!(
                attempt,
                ?reasons,
                "statistics transaction canceled; retrying"
            );
            backoff(attempt).await;
        }
        Err(StoreError::Throttled(format!(
            "statistics of job {job} kept conflicting"
        )))
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
