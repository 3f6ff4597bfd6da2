//! THE TABLE LAYOUT: every item's keys and attributes and the indexes (the
//! table's definition, from these names, is `table`). Building and reading
//! items is pure, no I/O. The calls that read and write these items are in
//! `dynamodb`, `executions` and `jobs`.
//!
//! One table, string keys `pk`/`sk`, TTL on the number attribute `ttl`:
//!
//! Every key of a tenant's item begins `T#{tenant}#` (written `T#…#` below):
//! the tenant comes from the caller's verified token, so a request can only
//! ever name its own tenant's items.
//!
//! | item        | pk                 | sk           | gsi1 (byTarget)                  | gsi2 (byCommand)               | gsi3 (pending, sparse)           | gsi4 (due, sparse) |
//! |-------------|--------------------|--------------|----------------------------------|--------------------------------|----------------------------------|--------------------|
//! | command     | `T#…#COMMANDS`     | `{commandId}`| –                                | –                              | –                                | – |
//! | execution   | `T#…#EXEC#{executionId}`| `EXEC`  | `T#…#THING#{target}` / `{created}#{id}` | `T#…#CMD#{commandId}` / `{created}#{id}` | `T#…#PENDING#{target}` / `{created}#{id}`, only while not terminal | `DUE#{shard}` / `{wakeAt}#{id}`, only while not terminal |
//! | thing owner | `THING#{thingName}`| `OWNER`      | –                                | –                              | –                                | – |
//! | presence    | `THING#{thingName}`| `PRESENCE`   | –                                | –                                | –                                | – |
//! | dedupe guard| `T#…#DEDUPE#{thing}#{dedupeKey}` | `DEDUPE` | – | – | – | – |
//!
//! A dedupe guard names the execution holding a `dedupeKey` on a device; it
//! is written in one transaction with that execution (and with the cancel of
//! the one it supersedes), conditioned on still naming the holder that was
//! read, so two concurrent requests with one key cannot both create (see
//! `dedupe`). It expires with its execution.
//!
//! A thing belongs to the first tenant that targets it (a conditional put of
//! its owner item); a device's requests find their tenant there, and another
//! tenant's executions for it are refused at creation. The due index is the
//! one cross-tenant partition: the sweeper serves every tenant, and reads
//! each item's tenant from its key.
//!
//! `{created}` is `createdAt` in epoch milliseconds, zero-padded to 15 digits,
//! so index order is creation order. All indexes project KEYS_ONLY. The keys
//! of gsi1-3 never change while an execution lives, so a status change
//! writes none of them, except the last one, which removes the pending
//! entry. Listings hydrate index keys with one BatchGetItem.
//!
//! gsi4 is the sweeper's timer: `{wakeAt}` (epoch ms, 15 digits) is when the
//! execution's next deadline fires or its hold ends (`CommandExecution::
//! wake_at`). The partition is spread over [`DUE_SHARDS`] shards by id, so no
//! single partition takes every timer write; the sweeper Queries each shard
//! for `sk <= now`. A change that moves the wake time rewrites the key in a
//! second, version-conditioned UpdateItem (most changes do not move it).
//!
//! Deadlines are enforced by the write itself: a device's update carries a
//! condition on the item's own `completeBy`, `deliverBy`, `stepDeadline` and
//! `notBefore`, so no update slips in after a deadline whatever the sweeper's
//! delay.
//!
//! Access patterns, none a Scan:
//! - get a command / an execution: GetItem
//! - list commands: Query `pk = COMMANDS`
//! - a device's executions newest first: Query gsi1 (by status: non-terminal
//!   statuses Query gsi3 instead; terminal ones filter the hydrated page)
//! - a command's executions: Query gsi2
//! - a device's pending executions (and so its next one): Query gsi3 oldest
//!   first, hydrate
//!
//! JOBS (`T#…#JOB#{id}` partitions):
//!
//! | item            | pk              | sk                | gsi1                     | gsi4 (due, sparse) |
//! |-----------------|-----------------|-------------------|--------------------------|--------------------|
//! | job             | `T#…#JOB#{id}`  | `JOB`             | `T#…#JOBS` / `{created}#{id}` | `DUEJOB` / `{wakeAt}#{id}` while it has a wake time |
//! | target page     | `T#…#JOB#{id}`  | `TARGETS#{n:06}`  | –                        | – |
//! | counter shard   | `T#…#JOB#{id}`  | `STATS#{k}`       | –                        | – |
//! | batch marker    | `T#…#JOB#{id}`  | `BATCH#{eventId}` | –                        | – (TTL 2 days) |
//!
//! A job's executions are ordinary execution items whose gsi2 partition is
//! `T#…#JOB#{jobId}` (not `T#…#CMD#{commandId}`), so the job's executions are
//! one Query and a job execution costs exactly what a single one does. How
//! the counters stay exact under redelivery is in `jobs`.
//!
//! PIPELINES (pipelines, runs, their counters and target runs): see
//! `pipeline_layout`.
//!
//! DynamoDB deletes expired items late (and DynamoDB Local never), so every
//! read drops items whose `timeToLive` has passed, and writes treat them as
//! absent.

use super::errors::internal;
use super::{Cursor, Item, RequestHash, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use courier_core::job_run::Job;
use courier_core::retry::RetryPolicy;
use courier_core::{
    CommandDefinition, CommandExecution, ExecutionId, ExecutionStatus, JobId, JobStatistics,
    TenantId, ThingName,
};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;
use std::collections::BTreeMap;

pub const TTL_ATTRIBUTE: &str = "ttl";
pub const BY_TARGET_INDEX: &str = "gsi1";
pub const BY_COMMAND_INDEX: &str = "gsi2";
pub const PENDING_INDEX: &str = "gsi3";
pub const DUE_INDEX: &str = "gsi4";
/// Partitions of the due index.
pub const DUE_SHARDS: u32 = 4;
/// Counter items per job.
pub const STATISTICS_SHARDS: u32 = 8;

/// Tenant-scoped keys begin with this, then the tenant and `#`.
const TENANT_PREFIX: &str = "T#";
const THING_PREFIX: &str = "THING#";
const COMMANDS_PK: &str = "COMMANDS";
const EXECUTION_SK: &str = "EXEC";
const OWNER_SK: &str = "OWNER";
pub(super) const JOB_SK: &str = "JOB";
const JOBS_PK: &str = "JOBS";
pub(super) const JOB_DUE_PK: &str = "DUEJOB";

// Attributes the store keeps beside the record itself.
/// The fingerprint of the request that created an execution or a job: an
/// idempotent retry carries the same one.
pub(super) const REQUEST_HASH: &str = "requestHash";
/// A Jobs-protocol command's job-document template, carried by its
/// executions and jobs (`CommandExecution::document_template`).
pub(super) const DOCUMENT_TEMPLATE: &str = "documentTemplate";
/// The record's per-status actors, stored as `changedBy.{STATUS}` attributes.
pub(super) const CHANGED_BY: &str = "changedBy";
/// The dedupe token of the last change applied: a redelivery carries it.
pub(super) const LAST_UPDATE_TOKEN: &str = "lastUpdateToken";
/// On a thing's owner item: what notify-next last told the device is its
/// next execution (`protocol::next_identity`), and a count of those records
/// that each publisher's conditional write checks.
pub(super) const TOLD_NEXT: &str = "toldNext";
pub(super) const TOLD_VERSION: &str = "toldVersion";
/// When IoT Core received the last device message applied (epoch ms): an
/// older one is stale (`TransitionPlan::message_at`).
pub(super) const LAST_MESSAGE_AT: &str = "lastMessageAt";
/// The status before the latest change, so a caller learns whether the change
/// moved the status (not just reported progress) without a read.
pub(super) const PREVIOUS_STATUS: &str = "previousStatus";
/// The attempt (`executionNumber`) before the latest change: the stream tells
/// a new attempt from its image alone (job statistics count attempts).
pub(super) const PREVIOUS_ATTEMPT: &str = "previousExecutionNumber";

// ---------------------------------------------------------------- keys

/// `key` inside `tenant`: `T#{tenant}#{key}`.
pub fn scoped(tenant: &TenantId, key: impl std::fmt::Display) -> String {
    format!("{TENANT_PREFIX}{tenant}#{key}")
}

/// `T#{tenant}#{rest}` -> the tenant and `rest`.
pub(super) fn split_scoped(key: &str) -> Option<(TenantId, &str)> {
    let (tenant, rest) = key.strip_prefix(TENANT_PREFIX)?.split_once('#')?;
    Some((TenantId::parse(tenant).ok()?, rest))
}

/// An item's primary key.
pub(super) fn key(pk: String, sk: String) -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

/// The partition key of `tenant`'s execution `id` (for tools that read the
/// table or its stream directly).
pub fn execution_pk(tenant: &TenantId, id: &ExecutionId) -> String {
    scoped(tenant, format!("EXEC#{id}"))
}

pub(super) fn execution_key(tenant: &TenantId, id: &ExecutionId) -> Item {
    key(execution_pk(tenant, id), EXECUTION_SK.into())
}

pub(super) fn commands_pk(tenant: &TenantId) -> String {
    scoped(tenant, COMMANDS_PK)
}

pub(super) fn owner_key(thing: &ThingName) -> Item {
    key(format!("{THING_PREFIX}{thing}"), OWNER_SK.into())
}

/// A device's presence (its latest lifecycle event), beside its owner item.
pub(super) fn presence_key(thing: &ThingName) -> Item {
    key(format!("{THING_PREFIX}{thing}"), "PRESENCE".into())
}

/// The thing an owner item's partition key names.
pub(super) fn owned_thing(pk: &str) -> Option<&str> {
    pk.strip_prefix(THING_PREFIX)
}

pub(super) fn job_pk(tenant: &TenantId, id: &JobId) -> String {
    scoped(tenant, format!("JOB#{id}"))
}

/// A job's explicit target page `n`.
pub(super) fn target_page_key(tenant: &TenantId, id: &JobId, n: u64) -> Item {
    key(job_pk(tenant, id), format!("TARGETS#{n:06}"))
}

/// Index sort key: creation order, then id for uniqueness.
fn created_key(execution: &CommandExecution) -> String {
    format!(
        "{:015}#{}",
        execution.created_at.millis().max(0),
        execution.execution_id
    )
}

/// The due-index key of an execution: its shard and wake time, `None` once
/// it has nothing left to wait for.
pub(super) fn due_key(execution: &CommandExecution) -> Option<(String, String)> {
    let wake = execution.wake_at()?;
    let shard = hash(execution.execution_id.as_str()) % DUE_SHARDS;
    Some((
        format!("DUE#{shard}"),
        format!("{:015}#{}", wake.millis().max(0), execution.execution_id),
    ))
}

/// The due-index partitions, and the upper bound of keys due at `now`.
pub(super) fn due_partitions(now: courier_core::Timestamp) -> (Vec<String>, String) {
    (
        (0..DUE_SHARDS)
            .map(|shard| format!("DUE#{shard}"))
            .collect(),
        format!("{:015}#~", now.millis().max(0)),
    )
}

/// The counter shard a stream batch (named by its first record) adds to.
pub(super) fn statistics_key(tenant: &TenantId, job: &JobId, batch: &str) -> Item {
    key(
        job_pk(tenant, job),
        format!("STATS#{}", hash(batch) % STATISTICS_SHARDS),
    )
}

/// The marker of a stream batch added to a job's counters.
pub(super) fn batch_marker_key(tenant: &TenantId, job: &JobId, batch: &str) -> Item {
    key(job_pk(tenant, job), format!("BATCH#{batch}"))
}

fn hash(text: &str) -> u32 {
    text.bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
}

// ---------------------------------------------------------------- items

/// An item without empty maps: DynamoDB Local's stream renders `{"M": {}}`
/// as `{}`, which no SDK can read back (the record reads it as absent).
fn item_of<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    let mut item: Item = dynamo::to_item(value).map_err(internal)?;
    item.retain(|_, v| !matches!(v, AttributeValue::M(m) if m.is_empty()));
    Ok(item)
}

pub(super) fn put_s(item: &mut Item, name: &str, value: String) {
    item.insert(name.to_owned(), AttributeValue::S(value));
}

pub(super) fn ttl_of(item: &mut Item, expires: courier_core::Timestamp) {
    item.insert(
        TTL_ATTRIBUTE.into(),
        AttributeValue::N(expires.epoch_secs().to_string()),
    );
}

/// The item of `tenant`'s execution, with its index keys.
pub(super) fn execution_item(
    tenant: &TenantId,
    execution: &CommandExecution,
    request_hash: Option<&str>,
) -> Result<Item, StoreError> {
    let mut item = item_of(execution)?;
    // `changedBy` is kept as one attribute per status, so a status change
    // sets its own (`changedBy.SENT`) whether or not the item has others.
    if let Some(AttributeValue::M(by)) = item.remove(CHANGED_BY) {
        for (status, who) in by {
            item.insert(format!("{CHANGED_BY}.{status}"), who);
        }
    }
    super::run_op::pack(&mut item, execution);
    let sort = created_key(execution);
    let mut put = |k: &str, v: String| put_s(&mut item, k, v);
    put("pk", execution_pk(tenant, &execution.execution_id));
    put("sk", EXECUTION_SK.into());
    put(
        "gsi1pk",
        scoped(tenant, format!("THING#{}", execution.target)),
    );
    put("gsi1sk", sort.clone());
    // A job's executions are listed under the job, a direct one under its command.
    match &execution.job_id {
        Some(job) => put("gsi2pk", job_pk(tenant, job)),
        None => put(
            "gsi2pk",
            scoped(tenant, format!("CMD#{}", execution.command_id)),
        ),
    }
    put("gsi2sk", sort.clone());
    if !execution.status.is_terminal() {
        put(
            "gsi3pk",
            scoped(tenant, format!("PENDING#{}", execution.target)),
        );
        put("gsi3sk", sort);
    }
    if let Some((pk, sk)) = due_key(execution) {
        put("gsi4pk", pk);
        put("gsi4sk", sk);
    }
    if let Some(hash) = request_hash {
        put(REQUEST_HASH, RequestHash::stored_part(hash).to_owned());
    }
    if let Some(template) = &execution.document_template {
        put(DOCUMENT_TEMPLATE, template.clone());
    }
    ttl_of(&mut item, execution.time_to_live);
    Ok(item)
}

pub(super) fn execution_from_item(mut item: Item) -> Result<CommandExecution, StoreError> {
    let document_template = string_attr(&item, DOCUMENT_TEMPLATE);
    let prefix = format!("{CHANGED_BY}.");
    let per_status: Vec<String> = item
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .cloned()
        .collect();
    if !per_status.is_empty() {
        let mut by = std::collections::HashMap::new();
        for key in per_status {
            if let Some(who) = item.remove(&key) {
                by.insert(key[prefix.len()..].to_owned(), who);
            }
        }
        item.insert(CHANGED_BY.into(), AttributeValue::M(by));
    }
    // Items written before retry policies (0.1.x) spell the policy as
    // onTimeout/maxAttempts/failureRetries and deferrals as busyCount.
    if !item.contains_key("retryPolicy") {
        let whole = |item: &Item, key: &str, default: u32| match item.get(key) {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(default),
            _ => default,
        };
        let policy = RetryPolicy::from_legacy(
            matches!(item.get("onTimeout"), Some(AttributeValue::S(s)) if s == "RETRY"),
            whole(&item, "maxAttempts", 1),
            whole(&item, "failureRetries", 0),
        );
        item.insert(
            "retryPolicy".into(),
            dynamo::to_attribute_value(&policy).map_err(internal)?,
        );
    }
    if let Some(busy) = item.remove("busyCount") {
        item.entry("deferCount".into()).or_insert(busy);
    }
    super::run_op::unpack(&mut item)?;
    let execution: CommandExecution = dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed execution item: {e}")))?;
    Ok(CommandExecution {
        document_template,
        ..execution
    })
}

/// The partition key of an execution item, if `pk` is one: its tenant.
pub(super) fn execution_tenant(pk: &str) -> Option<TenantId> {
    split_scoped(pk)
        .filter(|(_, rest)| rest.starts_with("EXEC#"))
        .map(|(tenant, _)| tenant)
}

pub(super) fn command_item(
    tenant: &TenantId,
    definition: &CommandDefinition,
) -> Result<Item, StoreError> {
    let mut item = item_of(definition)?;
    put_s(&mut item, "pk", commands_pk(tenant));
    put_s(&mut item, "sk", definition.command_id.to_string());
    Ok(item)
}

pub(super) fn command_from_item(mut item: Item) -> Result<CommandDefinition, StoreError> {
    item.remove("pk");
    item.remove("sk");
    dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed command item: {e}")))
}

pub(super) fn owner_item(thing: &ThingName, tenant: &TenantId) -> Item {
    let mut item = owner_key(thing);
    put_s(&mut item, "tenant", tenant.to_string());
    item
}

pub(super) fn owner_of_item(item: &Item) -> Option<TenantId> {
    string_attr(item, "tenant").and_then(|t| TenantId::parse(&t).ok())
}

pub(super) fn job_item(
    tenant: &TenantId,
    job: &Job,
    request_hash: &str,
) -> Result<Item, StoreError> {
    let mut item = item_of(job)?;
    let mut put = |k: &str, v: String| put_s(&mut item, k, v);
    put("pk", job_pk(tenant, &job.job_id));
    put("sk", JOB_SK.into());
    put(&format!("{BY_TARGET_INDEX}pk"), scoped(tenant, JOBS_PK));
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
    if let Some(template) = &job.document_template {
        put(DOCUMENT_TEMPLATE, template.clone());
    }
    ttl_of(&mut item, job.time_to_live);
    Ok(item)
}

pub(super) fn jobs_pk(tenant: &TenantId) -> String {
    scoped(tenant, JOBS_PK)
}

pub(super) fn job_from_item(item: Item) -> Result<Job, StoreError> {
    let document_template = string_attr(&item, DOCUMENT_TEMPLATE);
    let job: Job = dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed job item: {e}")))?;
    Ok(Job {
        document_template,
        ..job
    })
}

/// Decodes a job item (from a stream image), with its tenant; `None` if the
/// item is not a job.
pub(super) fn job_from_image(item: &Item) -> Result<Option<(TenantId, Job)>, StoreError> {
    let pk = string_attr(item, "pk").unwrap_or_default();
    let Some((tenant, rest)) = split_scoped(&pk) else {
        return Ok(None);
    };
    if !rest.starts_with("JOB#") || string_attr(item, "sk").as_deref() != Some(JOB_SK) {
        return Ok(None);
    }
    job_from_item(item.clone()).map(|job| Some((tenant, job)))
}

/// A job's explicit target page.
pub(super) fn target_page_item(tenant: &TenantId, job: &Job, n: u64, things: &[ThingName]) -> Item {
    let mut item = target_page_key(tenant, &job.job_id, n);
    item.insert(
        "things".into(),
        AttributeValue::L(
            things
                .iter()
                .map(|t| AttributeValue::S(t.to_string()))
                .collect(),
        ),
    );
    ttl_of(&mut item, job.time_to_live);
    item
}

/// The counter attribute of a status in a counter shard.
pub(super) fn counter_name(status: ExecutionStatus) -> String {
    format!("d_{}", status.as_str())
}

/// Sums the counter shards. A shard alone may be negative (a change counted
/// in one shard, its creation in another); the sum is not.
pub(super) fn statistics_from(items: &[Item]) -> JobStatistics {
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

pub(super) fn string_attr(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn number_attr(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

pub(super) fn number(value: f64) -> AttributeValue {
    AttributeValue::N(format!("{value}"))
}

pub(super) fn key_to_cursor(key: Item) -> Cursor {
    key.into_iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
        .collect()
}

pub(super) fn cursor_to_key(cursor: Cursor) -> Item {
    cursor
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect()
}
