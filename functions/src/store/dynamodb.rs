//! THE TABLE LAYOUT, and the DynamoDB implementation of [`Store`]. Does I/O.
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
//! DynamoDB deletes expired items late (and DynamoDB Local never), so every
//! read drops items whose `timeToLive` has passed, and writes treat them as
//! absent.

use super::{
    CreateOutcome, Cursor, ExecutionQuery, ExecutionsOf, Page, PageRequest, PutOutcome, Store,
    StoreError, TransitionOutcome,
};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use courier_core::{
    CommandDefinition, CommandExecution, CommandId, ExecutionId, ExecutionStatus, LateResult,
    TenantId, ThingName, Timestamp, TransitionPlan,
};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

mod jobs;
pub use jobs::{job_from_image, STATISTICS_SHARDS};

type Item = HashMap<String, AttributeValue>;

pub const TTL_ATTRIBUTE: &str = "ttl";
pub const BY_TARGET_INDEX: &str = "gsi1";
pub const BY_COMMAND_INDEX: &str = "gsi2";
pub const PENDING_INDEX: &str = "gsi3";
pub const DUE_INDEX: &str = "gsi4";
/// Partitions of the due index.
pub const DUE_SHARDS: u32 = 4;
const COMMANDS_PK: &str = "COMMANDS";
const EXECUTION_SK: &str = "EXEC";
const OWNER_SK: &str = "OWNER";
/// Thing owners remembered per warm function (ownership never changes).
const OWNER_CACHE_MAX: usize = 100_000;
/// Attributes the store adds to an execution item beside the record itself.
const REQUEST_HASH: &str = "requestHash";
const LAST_UPDATE_TOKEN: &str = "lastUpdateToken";
/// When IoT Core received the last device message applied (epoch ms): an
/// older one is stale (`TransitionPlan::message_at`).
const LAST_MESSAGE_AT: &str = "lastMessageAt";
/// The status before the latest change, so a caller learns whether the change
/// moved the status (not just reported progress) without a read.
const PREVIOUS_STATUS: &str = "previousStatus";
/// The attempt (`executionNumber`) before the latest change: the stream tells
/// a new attempt from its image alone (job statistics count attempts).
const PREVIOUS_ATTEMPT: &str = "previousExecutionNumber";
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;

/// Capacity units consumed, summed over every call (table and indexes), for
/// benchmarks. Reads and writes are kept in hundredths of a unit.
#[derive(Debug, Default)]
pub struct CapacityMeter {
    read_centi_units: AtomicU64,
    write_centi_units: AtomicU64,
}

impl CapacityMeter {
    pub fn read_units(&self) -> f64 {
        self.read_centi_units.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn write_units(&self) -> f64 {
        self.write_centi_units.load(Ordering::Relaxed) as f64 / 100.0
    }
    pub fn reset(&self) {
        self.read_centi_units.store(0, Ordering::Relaxed);
        self.write_centi_units.store(0, Ordering::Relaxed);
    }
    /// `capacity_units` is the call's total: the table and, with
    /// ReturnConsumedCapacity INDEXES, every index it wrote.
    fn record_read(&self, capacity: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        if let Some(units) = capacity.and_then(|c| c.capacity_units()) {
            self.read_centi_units
                .fetch_add((units * 100.0).round() as u64, Ordering::Relaxed);
        }
    }
    fn record_write(&self, capacity: Option<&aws_sdk_dynamodb::types::ConsumedCapacity>) {
        if let Some(units) = capacity.and_then(|c| c.capacity_units()) {
            self.write_centi_units
                .fetch_add((units * 100.0).round() as u64, Ordering::Relaxed);
        }
    }
}

/// One tenant's view of the table (see [`Store::for_tenant`]).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    tenant: TenantId,
    /// Thing -> owning tenant, shared by every view.
    owners: Arc<Mutex<HashMap<ThingName, TenantId>>>,
    meter: Arc<CapacityMeter>,
    /// BatchWriteItem calls made (benchmarks).
    batch_writes: Arc<AtomicU64>,
}

impl DynamoStore {
    /// The table, viewed as the default tenant ([`crate::auth::DEFAULT_TENANT`]);
    /// scope it with [`Store::for_tenant`].
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            tenant: crate::auth::default_tenant(),
            owners: Arc::new(Mutex::new(HashMap::new())),
            meter: Arc::new(CapacityMeter::default()),
            batch_writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// `key` inside this view's tenant: `T#{tenant}#{key}`.
    fn scoped(&self, key: impl std::fmt::Display) -> String {
        format!("{TENANT_PREFIX}{}#{key}", self.tenant)
    }

    /// The partition key of this tenant's execution `id` (for tools that read
    /// the table or its stream directly).
    pub fn execution_pk(&self, id: &ExecutionId) -> String {
        self.scoped(format!("EXEC#{id}"))
    }

    fn execution_key(&self, id: &ExecutionId) -> Item {
        key(self.execution_pk(id), EXECUTION_SK.into())
    }

    fn remember_owner(&self, thing: &ThingName, owner: &TenantId) {
        if let Ok(mut owners) = self.owners.lock() {
            if owners.len() >= OWNER_CACHE_MAX {
                owners.clear();
            }
            owners.insert(thing.clone(), owner.clone());
        }
    }

    fn cached_owner(&self, thing: &ThingName) -> Option<TenantId> {
        self.owners.lock().ok()?.get(thing).cloned()
    }

    /// BatchWriteItem calls made so far (benchmarks).
    pub fn batch_write_calls(&self) -> u64 {
        self.batch_writes.load(Ordering::Relaxed)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Capacity consumed by this store's calls so far.
    pub fn meter(&self) -> &CapacityMeter {
        &self.meter
    }

    /// The table definition (keys, indexes, stream, on-demand billing);
    /// `infra/template.yaml` declares the same for AWS.
    pub fn create_table_request(client: &Client, table: &str) -> CreateTableFluentBuilder {
        let string_attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set")
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .expect("name and type are set")
        };
        let index = |name: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(&format!("{name}pk"), KeyType::Hash))
                .key_schema(key(&format!("{name}sk"), KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .expect("name, keys and projection are set")
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string_attr("pk"))
            .attribute_definitions(string_attr("sk"))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            // The dispatcher reads new images from the table's stream.
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()
                    .expect("enabled is set"),
            );
        for name in [BY_TARGET_INDEX, BY_COMMAND_INDEX, PENDING_INDEX, DUE_INDEX] {
            request = request
                .attribute_definitions(string_attr(&format!("{name}pk")))
                .attribute_definitions(string_attr(&format!("{name}sk")))
                .global_secondary_indexes(index(name));
        }
        request
    }

    /// Creates the table and enables TTL on `ttl` (tests and `make run`).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        Self::create_table_request(client, table)
            .send()
            .await
            .map_err(classify)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(internal)?,
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Reads full items for index keys, in the keys' order, with consistent
    /// reads. Each comes with its tenant (from its key): the due index holds
    /// every tenant's.
    async fn hydrate(
        &self,
        keys: Vec<Item>,
        now: Timestamp,
    ) -> Result<Vec<(TenantId, CommandExecution)>, StoreError> {
        let order: Vec<String> = keys.iter().filter_map(|k| string_attr(k, "pk")).collect();
        let keys = order
            .iter()
            .map(|pk| key(pk.clone(), EXECUTION_SK.into()))
            .collect();
        let mut found: HashMap<String, (TenantId, CommandExecution)> = HashMap::new();
        for item in self.batch_get(keys, true).await? {
            let pk = string_attr(&item, "pk").unwrap_or_default();
            let Some((tenant, _)) = split_scoped(&pk) else {
                continue;
            };
            let execution = execution_from_item(item)?;
            if !execution.is_expired(now) {
                found.insert(pk, (tenant, execution));
            }
        }
        Ok(order
            .into_iter()
            .filter_map(|pk| found.remove(&pk))
            .collect())
    }

    /// One GetItem, its read capacity counted.
    async fn get(&self, key: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.meter.record_read(out.consumed_capacity());
        Ok(out.item)
    }

    /// BatchGetItem over any number of keys (100 per call), retrying
    /// unprocessed keys with backoff; items come back in no particular order.
    async fn batch_get(&self, keys: Vec<Item>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(consistent)
                    .build()
                    .map_err(internal)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(classify)?;
                for c in out.consumed_capacity() {
                    self.meter.record_read(Some(c));
                }
                items.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                if let Some(rest) = out
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(&self.table))
                    .filter(|rest| !rest.keys.is_empty())
                {
                    pending = rest.keys;
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::Throttled(
                            "BatchGetItem left keys unprocessed after 8 attempts".into(),
                        ));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(items)
    }

    /// One page of a Query on the table (`index: None`, partition key `pk`)
    /// or on an index (partition key `{index}pk`): raw items and the cursor.
    async fn query_page(
        &self,
        index: Option<&str>,
        partition: String,
        forward: bool,
        page: PageRequest,
    ) -> Result<Page<Item>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names(
                "#pk",
                index.map_or_else(|| "pk".to_owned(), |i| format!("{i}pk")),
            )
            .expression_attribute_values(":pk", AttributeValue::S(partition))
            .scan_index_forward(forward)
            .limit(i32::try_from(page.limit).unwrap_or(100))
            .set_exclusive_start_key(page.start.map(cursor_to_key))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.meter.record_read(out.consumed_capacity());
        let next = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .map(key_to_cursor);
        Ok(Page {
            items: out.items.unwrap_or_default(),
            next,
        })
    }

    /// Puts `item` unless an item with its key exists (and, with
    /// `expired_before`, has not expired by then). `None` when written, else
    /// the existing item, from the failed condition (no second read).
    async fn put_if_absent(
        &self,
        item: Item,
        expired_before: Option<Timestamp>,
    ) -> Result<Option<Item>, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        let request = match expired_before {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(now) => request
                .condition_expression("attribute_not_exists(pk) OR timeToLive <= :now")
                .expression_attribute_values(":now", number(now.as_secs_f64())),
        };
        match request.send().await {
            Ok(out) => {
                self.meter.record_write(out.consumed_capacity());
                Ok(None)
            }
            Err(err) => match conditional_failure_item(&err) {
                Some(old) => Ok(Some(old)),
                None => Err(classify(err)),
            },
        }
    }

    /// Queries one keys-only index and hydrates the page.
    async fn query_index(
        &self,
        index: &str,
        partition: String,
        newest_first: bool,
        page: PageRequest,
        now: Timestamp,
    ) -> Result<Page<CommandExecution>, StoreError> {
        let keys = self
            .query_page(Some(index), partition, !newest_first, page)
            .await?;
        let items = self.hydrate(keys.items, now).await?;
        Ok(Page {
            items: items.into_iter().map(|(_, e)| e).collect(),
            next: keys.next,
        })
    }
}

impl Store for DynamoStore {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn for_tenant(&self, tenant: &TenantId) -> Self {
        Self {
            tenant: tenant.clone(),
            ..self.clone()
        }
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
                    if pk.strip_prefix(THING_PREFIX) == Some(things[i].as_str()) {
                        owners[i] = Some(owner.clone());
                    }
                }
            }
        }
        for (i, thing) in things.iter().enumerate() {
            if owners[i].is_some() {
                continue;
            }
            let mut item = owner_key(thing);
            item.insert("tenant".into(), AttributeValue::S(self.tenant.to_string()));
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
        let mut item = dynamo::to_item(definition).map_err(internal)?;
        item.insert("pk".into(), AttributeValue::S(self.scoped(COMMANDS_PK)));
        item.insert(
            "sk".into(),
            AttributeValue::S(definition.command_id.to_string()),
        );
        match self.put_if_absent(item, None).await? {
            None => Ok(PutOutcome::Created(definition.clone())),
            Some(old) => Ok(PutOutcome::Existing(command_from_item(old)?)),
        }
    }

    async fn get_command(&self, id: &CommandId) -> Result<Option<CommandDefinition>, StoreError> {
        // Definitions never change: an eventually consistent read will do.
        self.get(key(self.scoped(COMMANDS_PK), id.to_string()), false)
            .await?
            .map(command_from_item)
            .transpose()
    }

    async fn list_commands(
        &self,
        page: PageRequest,
    ) -> Result<Page<CommandDefinition>, StoreError> {
        let raw = self
            .query_page(None, self.scoped(COMMANDS_PK), true, page)
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
        request_hash: &str,
    ) -> Result<CreateOutcome, StoreError> {
        let item = self.execution_item(execution, Some(request_hash))?;
        // An expired record with the same id is as good as absent.
        match self.put_if_absent(item, Some(execution.created_at)).await? {
            None => Ok(CreateOutcome::Created(execution.clone())),
            Some(old) => {
                let same_request = string_attr(&old, REQUEST_HASH).as_deref() == Some(request_hash);
                Ok(CreateOutcome::Existing {
                    execution: execution_from_item(old)?,
                    same_request,
                })
            }
        }
    }

    async fn get_execution(
        &self,
        id: &ExecutionId,
        now: Timestamp,
    ) -> Result<Option<CommandExecution>, StoreError> {
        match self.get(self.execution_key(id), true).await? {
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
        let mut page = self.query_index(index, partition, true, page, now).await?;
        if let Some(status) = query.status {
            page.items.retain(|e| e.status == status);
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
            .set_key(Some(self.execution_key(id)))
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
        let upper = format!("{:015}#~", now.millis().max(0));
        let mut due = Vec::new();
        for shard in 0..DUE_SHARDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("gsi4pk = :pk AND gsi4sk <= :upper")
                .expression_attribute_values(":pk", AttributeValue::S(format!("DUE#{shard}")))
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
            .set_key(Some(self.execution_key(id)))
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
            Err(err) if is_conditional_failure(&err) => Ok(None),
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
            .set_key(Some(self.execution_key(&execution.execution_id)))
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
            Err(err) if is_conditional_failure(&err) => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }
}

/// An UpdateItem built from a transition plan: the same rules `plan.apply()`
/// runs in memory, as a condition and update expression.
struct UpdateBuilder {
    set: Vec<String>,
    remove: Vec<String>,
    condition: Vec<String>,
    names: HashMap<String, String>,
    values: Item,
}

impl UpdateBuilder {
    fn from_plan(plan: &TransitionPlan, dedupe_token: &str) -> Result<Self, StoreError> {
        let mut b = Self {
            set: Vec::new(),
            remove: Vec::new(),
            condition: Vec::new(),
            names: HashMap::new(),
            values: Item::new(),
        };
        b.names.insert("#status".into(), "status".into());
        b.values
            .insert(":to".into(), AttributeValue::S(plan.to.as_str().into()));
        b.values
            .insert(":now".into(), number(plan.now.as_secs_f64()));
        b.values
            .insert(":one".into(), AttributeValue::N("1".into()));
        b.values
            .insert(":token".into(), AttributeValue::S(dedupe_token.into()));

        // Condition: exists, not expired, a status the table allows from, the
        // expected version and target, and not a redelivery of the last update.
        b.condition.push("attribute_exists(pk)".into());
        b.condition.push("timeToLive > :now".into());
        let mut from = Vec::new();
        for (i, status) in plan.allowed_from.iter().enumerate() {
            let key = format!(":from{i}");
            b.values
                .insert(key.clone(), AttributeValue::S(status.as_str().into()));
            from.push(key);
        }
        b.condition
            .push(format!("#status IN ({})", from.join(", ")));
        if let Some(expected) = plan.expected_version {
            b.values
                .insert(":expected".into(), AttributeValue::N(expected.to_string()));
            b.condition.push("version = :expected".into());
        }
        if let Some(target) = &plan.expected_target {
            b.values
                .insert(":target".into(), AttributeValue::S(target.to_string()));
            b.condition.push("target = :target".into());
        }
        b.names
            .insert("#lastToken".into(), LAST_UPDATE_TOKEN.into());
        b.condition
            .push("(attribute_not_exists(#lastToken) OR #lastToken <> :token)".into());
        if let Some(at) = plan.message_at {
            // Not older than the last device message applied; the same
            // message again is caught by the token above.
            b.names
                .insert("#lastMessageAt".into(), LAST_MESSAGE_AT.into());
            b.values.insert(
                ":messageAt".into(),
                AttributeValue::N(at.millis().to_string()),
            );
            b.condition.push(
                "(attribute_not_exists(#lastMessageAt) OR #lastMessageAt <= :messageAt)".into(),
            );
            b.set.push("#lastMessageAt = :messageAt".into());
        }
        if let Some(number) = plan.expected_execution_number {
            b.values
                .insert(":attempt".into(), AttributeValue::N(number.to_string()));
            b.condition.push("executionNumber = :attempt".into());
        }
        if plan.respects_hold() || plan.enforce_deadlines {
            b.values.insert(
                ":queued".into(),
                AttributeValue::S(ExecutionStatus::Queued.as_str().into()),
            );
        }
        if plan.respects_hold() {
            b.condition.push(
                "(#status <> :queued OR attribute_not_exists(notBefore) OR notBefore <= :now)"
                    .into(),
            );
        }
        if plan.enforce_deadlines {
            // The same deadlines as `CommandExecution::expiry`, read from the
            // item itself.
            b.values.insert(
                ":sent".into(),
                AttributeValue::S(ExecutionStatus::Sent.as_str().into()),
            );
            b.values.insert(
                ":inProgress".into(),
                AttributeValue::S(ExecutionStatus::InProgress.as_str().into()),
            );
            b.condition.push("completeBy > :now".into());
            b.condition.push("(NOT (#status IN (:queued, :sent)) OR attribute_not_exists(deliverBy) OR deliverBy > :now)".into());
            b.condition.push("(#status <> :inProgress OR attribute_not_exists(stepDeadline) OR stepDeadline > :now)".into());
        }

        // The right-hand side reads the value before this update.
        b.names
            .insert("#previousStatus".into(), PREVIOUS_STATUS.into());
        b.set.push("#previousStatus = #status".into());
        b.names
            .insert("#previousAttempt".into(), PREVIOUS_ATTEMPT.into());
        b.set.push("#previousAttempt = executionNumber".into());
        b.set.push("#status = :to".into());
        b.set.push("lastUpdatedAt = :now".into());
        b.set.push("version = version + :one".into());
        b.set.push("#lastToken = :token".into());
        b.set_or_remove("statusReason", plan.status_reason.as_ref())?;
        // `None` keeps details and result; an empty map removes them (the
        // record omits empty maps, so the item does too).
        if let Some(details) = &plan.status_details {
            b.set_or_remove("statusDetails", Some(details).filter(|d| !d.is_empty()))?;
        }
        if let Some(result) = &plan.result {
            b.set_or_remove("result", Some(result).filter(|r| !r.is_empty()))?;
        }
        if let Some(attempt) = plan.new_attempt {
            // A new attempt starts afresh (as `TransitionPlan::apply` does).
            b.set
                .push("executionNumber = executionNumber + :one".into());
            b.set_or_remove("deliverBy", attempt.deliver_by.as_ref())?;
            b.remove.push("startedAt".into());
            if plan.status_details.is_none() {
                b.remove.push("#statusDetails".into());
                b.names
                    .insert("#statusDetails".into(), "statusDetails".into());
            }
            if plan.result.is_none() {
                b.remove.push("#result".into());
                b.names.insert("#result".into(), "result".into());
            }
        } else if plan.starts() {
            b.set
                .push("startedAt = if_not_exists(startedAt, :now)".into());
        }
        if plan.to != ExecutionStatus::InProgress {
            b.remove.push("stepDeadline".into());
        } else if let Some(minutes) = plan.step_timeout_in_minutes {
            let deadline = plan.now.plus_secs(i64::from(minutes) * 60);
            b.values
                .insert(":stepDeadline".into(), number(deadline.as_secs_f64()));
            b.set.push("stepDeadline = :stepDeadline".into());
        }
        if let Some(at) = plan.hold_until {
            b.values
                .insert(":holdUntil".into(), number(at.as_secs_f64()));
            b.set.push("notBefore = :holdUntil".into());
        }
        if let Some(by) = &plan.canceled_by {
            b.values
                .insert(":canceledBy".into(), AttributeValue::S(by.clone()));
            b.set.push("canceledBy = :canceledBy".into());
        }
        if let Some(late) = &plan.late_result {
            b.set_or_remove("lateResult", Some(late))?;
        }
        if plan.busy {
            b.values
                .insert(":zero".into(), AttributeValue::N("0".into()));
            b.set
                .push("busyCount = if_not_exists(busyCount, :zero) + :one".into());
        }
        if plan.completes() {
            // TTL moves to completion + the execution's own retention, computed
            // by DynamoDB from the item so the write needs no read.
            b.names.insert("#ttl".into(), TTL_ATTRIBUTE.into());
            b.values.insert(
                ":nowSecs".into(),
                AttributeValue::N(plan.now.epoch_secs().to_string()),
            );
            b.set.push("completedAt = :now".into());
            b.set.push("timeToLive = retentionSeconds + :now".into());
            b.set.push("#ttl = retentionSeconds + :nowSecs".into());
            for key in ["gsi3pk", "gsi3sk", "gsi4pk", "gsi4sk"] {
                b.remove.push(key.into());
            }
        }
        Ok(b)
    }

    /// SETs `attribute` to `value`, or REMOVEs it when there is none.
    fn set_or_remove<T: serde::Serialize>(
        &mut self,
        attribute: &str,
        value: Option<&T>,
    ) -> Result<(), StoreError> {
        let name = format!("#{attribute}");
        self.names.insert(name.clone(), attribute.to_owned());
        match value {
            Some(value) => {
                let placeholder = format!(":{attribute}");
                self.values.insert(
                    placeholder.clone(),
                    dynamo::to_attribute_value(value).map_err(internal)?,
                );
                self.set.push(format!("{name} = {placeholder}"));
            }
            None => self.remove.push(name),
        }
        Ok(())
    }

    fn expression(&self) -> String {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }
}

/// Tenant-scoped keys begin with this, then the tenant and `#`.
const TENANT_PREFIX: &str = "T#";
const THING_PREFIX: &str = "THING#";

/// `T#{tenant}#{rest}` -> the tenant and `rest`.
fn split_scoped(key: &str) -> Option<(TenantId, &str)> {
    let (tenant, rest) = key.strip_prefix(TENANT_PREFIX)?.split_once('#')?;
    Some((TenantId::parse(tenant).ok()?, rest))
}

/// An item's primary key.
fn key(pk: String, sk: String) -> Item {
    Item::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk)),
    ])
}

fn owner_key(thing: &ThingName) -> Item {
    key(format!("{THING_PREFIX}{thing}"), OWNER_SK.into())
}

fn owner_of_item(item: &Item) -> Option<TenantId> {
    string_attr(item, "tenant").and_then(|t| TenantId::parse(&t).ok())
}

/// Index sort key: creation order, then id for uniqueness.
fn created_key(execution: &CommandExecution) -> String {
    format!(
        "{:015}#{}",
        execution.created_at.millis().max(0),
        execution.execution_id
    )
}

impl DynamoStore {
    /// The item of an execution of this view's tenant, with its index keys.
    fn execution_item(
        &self,
        execution: &CommandExecution,
        request_hash: Option<&str>,
    ) -> Result<Item, StoreError> {
        let mut item = dynamo::to_item(execution).map_err(internal)?;
        // No empty maps in items: DynamoDB Local's stream renders `{"M": {}}` as
        // `{}`, which no SDK can read back (the record reads it as absent).
        item.retain(|_, v| !matches!(v, AttributeValue::M(m) if m.is_empty()));
        let sort = created_key(execution);
        let mut put = |k: &str, v: String| {
            item.insert(k.to_owned(), AttributeValue::S(v));
        };
        put(
            "pk",
            self.scoped(format!("EXEC#{}", execution.execution_id)),
        );
        put("sk", EXECUTION_SK.into());
        put("gsi1pk", self.scoped(format!("THING#{}", execution.target)));
        put("gsi1sk", sort.clone());
        // A job's executions are listed under the job, a direct one under its command.
        match &execution.job_id {
            Some(job) => put("gsi2pk", self.scoped(format!("JOB#{job}"))),
            None => put(
                "gsi2pk",
                self.scoped(format!("CMD#{}", execution.command_id)),
            ),
        }
        put("gsi2sk", sort.clone());
        if !execution.status.is_terminal() {
            put(
                "gsi3pk",
                self.scoped(format!("PENDING#{}", execution.target)),
            );
            put("gsi3sk", sort);
        }
        if let Some((pk, sk)) = due_key(execution) {
            put("gsi4pk", pk);
            put("gsi4sk", sk);
        }
        if let Some(hash) = request_hash {
            put(REQUEST_HASH, hash.to_owned());
        }
        item.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(execution.time_to_live.epoch_secs().to_string()),
        );
        Ok(item)
    }
}

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
}

/// Decodes one DynamoDB stream record (the Lambda event's JSON). `None` for
/// records about anything else (commands, counters, removals).
pub fn stream_record(record: &serde_json::Value) -> Result<Option<StreamRecord>, StoreError> {
    let event = record["eventName"].as_str().unwrap_or_default();
    if event != "INSERT" && event != "MODIFY" {
        return Ok(None);
    }
    let image: serde_dynamo::Item = serde_json::from_value(record["dynamodb"]["NewImage"].clone())
        .map_err(|e| StoreError::Internal(format!("stream image: {e}")))?;
    let item: Item = image.into();
    if let Some((tenant, job)) = job_from_image(&item)? {
        return Ok(Some(StreamRecord::Job(tenant, Box::new(job))));
    }
    let pk = string_attr(&item, "pk").unwrap_or_default();
    let Some((tenant, rest)) = split_scoped(&pk) else {
        return Ok(None);
    };
    if !rest.starts_with("EXEC#") {
        return Ok(None);
    }
    let counts = event == "INSERT" || item.contains_key(PREVIOUS_STATUS);
    let (previous, previous_attempt) = if event == "INSERT" {
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

/// The due-index key of an execution: its shard and wake time, `None` once
/// it has nothing left to wait for.
fn due_key(execution: &CommandExecution) -> Option<(String, String)> {
    let wake = execution.wake_at()?;
    let shard = execution
        .execution_id
        .as_str()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % DUE_SHARDS;
    Some((
        format!("DUE#{shard}"),
        format!("{:015}#{}", wake.millis().max(0), execution.execution_id),
    ))
}

fn execution_from_item(item: Item) -> Result<CommandExecution, StoreError> {
    dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed execution item: {e}")))
}

fn command_from_item(mut item: Item) -> Result<CommandDefinition, StoreError> {
    item.remove("pk");
    item.remove("sk");
    dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed command item: {e}")))
}

fn string_attr(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

fn number(value: f64) -> AttributeValue {
    AttributeValue::N(format!("{value}"))
}

fn key_to_cursor(key: Item) -> Cursor {
    key.into_iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
        .collect()
}

fn cursor_to_key(cursor: Cursor) -> Item {
    cursor
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect()
}

fn is_conditional_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error().and_then(ProvideErrorMetadata::code)
        == Some("ConditionalCheckFailedException")
}

/// The item a failed condition returned (ReturnValuesOnConditionCheckFailure).
fn conditional_failure_item<E, R>(err: &SdkError<E, R>) -> Option<Item>
where
    E: ConditionalFailure,
{
    err.as_service_error()
        .and_then(ConditionalFailure::old_item)
}

trait ConditionalFailure {
    fn old_item(&self) -> Option<Item>;
}

macro_rules! conditional_failure {
    ($($error:ty),*) => {$(
        impl ConditionalFailure for $error {
            fn old_item(&self) -> Option<Item> {
                match self {
                    Self::ConditionalCheckFailedException(e) => e.item().cloned(),
                    _ => None,
                }
            }
        }
    )*};
}
conditional_failure!(
    aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemError
);

/// Sorts an SDK failure into retryable (throttled, unavailable) or not.
fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded",
            ) => StoreError::Throttled(text),
            Some("InternalServerError" | "ServiceUnavailable") => StoreError::Unavailable(text),
            _ => StoreError::Internal(text),
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable(text)
        }
        _ => StoreError::Internal(text),
    }
}

fn internal(err: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(err.to_string())
}

/// Exponential backoff with full jitter: 25 ms × 2^attempt, capped at 1 s.
async fn backoff(attempt: u32) {
    let cap = 25u64.saturating_mul(1 << attempt.min(6)).min(1000);
    let mut byte = [0u8; 2];
    let jitter = match getrandom::getrandom(&mut byte) {
        Ok(()) => u64::from(u16::from_le_bytes(byte)) % cap.max(1),
        Err(_) => cap / 2,
    };
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}
