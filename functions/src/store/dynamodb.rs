//! THE DYNAMODB STORE: one tenant's view of the table ([`DynamoStore`]) and
//! the calls every part of it uses: GetItem, BatchGetItem with retries of
//! unprocessed keys, a page of a Query, a put that only creates, the
//! hydration of a keys-only index page. Does I/O. The [`Store`] methods are
//! in `executions`, the [`JobStore`](super::JobStore) methods in `jobs`; the
//! keys and items in `layout`.

use super::errors::{backoff, classify, conditional_failure_item, internal};
use super::layout::{
    self, cursor_to_key, execution_from_item, execution_tenant, key, key_to_cursor, number,
    string_attr,
};
use super::{Item, Page, PageRequest, StoreError};
use crate::platform::capacity::CapacityMeter;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use courier_core::{CommandExecution, ExecutionId, TenantId, ThingName, Timestamp};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Thing owners remembered per warm function (ownership never changes).
const OWNER_CACHE_MAX: usize = 100_000;
/// BatchGetItem takes at most 100 keys.
pub(super) const BATCH_GET_MAX: usize = 100;

/// One tenant's view of the table (see [`Store::for_tenant`]).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) tenant: TenantId,
    /// Thing -> owning tenant, shared by every view.
    owners: Arc<Mutex<HashMap<ThingName, TenantId>>>,
    pub(super) meter: Arc<CapacityMeter>,
    /// BatchWriteItem calls made (benchmarks).
    pub(super) batch_writes: Arc<AtomicU64>,
}

impl DynamoStore {
    /// The table, viewed as `tenant`; [`Store::for_tenant`] gives the view
    /// of another.
    pub fn new(client: Client, table: impl Into<String>, tenant: TenantId) -> Self {
        Self {
            client,
            table: table.into(),
            tenant,
            owners: Arc::new(Mutex::new(HashMap::new())),
            meter: Arc::new(CapacityMeter::default()),
            batch_writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The view of `tenant` (shares the client, the owner cache and the
    /// meters).
    pub(super) fn view_of(&self, tenant: &TenantId) -> Self {
        Self {
            tenant: tenant.clone(),
            ..self.clone()
        }
    }

    /// `key` inside this view's tenant: `T#{tenant}#{key}`.
    pub(super) fn scoped(&self, key: impl std::fmt::Display) -> String {
        layout::scoped(&self.tenant, key)
    }

    /// The partition key of this tenant's execution `id` (for tools that read
    /// the table or its stream directly).
    pub fn execution_pk(&self, id: &ExecutionId) -> String {
        layout::execution_pk(&self.tenant, id)
    }

    pub(super) fn remember_owner(&self, thing: &ThingName, owner: &TenantId) {
        if let Ok(mut owners) = self.owners.lock() {
            if owners.len() >= OWNER_CACHE_MAX {
                owners.clear();
            }
            owners.insert(thing.clone(), owner.clone());
        }
    }

    pub(super) fn cached_owner(&self, thing: &ThingName) -> Option<TenantId> {
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

    /// Reads full items for index keys, in the keys' order, with consistent
    /// reads. Each comes with its tenant (from its key): the due index holds
    /// every tenant's.
    pub(super) async fn hydrate(
        &self,
        keys: Vec<Item>,
        now: Timestamp,
    ) -> Result<Vec<(TenantId, CommandExecution)>, StoreError> {
        let order: Vec<String> = keys.iter().filter_map(|k| string_attr(k, "pk")).collect();
        let keys = order
            .iter()
            .map(|pk| key(pk.clone(), "EXEC".into()))
            .collect();
        let mut found: HashMap<String, (TenantId, CommandExecution)> = HashMap::new();
        for item in self.batch_get(keys, true).await? {
            let pk = string_attr(&item, "pk").unwrap_or_default();
            let Some(tenant) = execution_tenant(&pk) else {
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

    /// A conditional write's outcome (`out`: its consumed capacity, or the
    /// error): `true` when written (its capacity counted), `false` when its
    /// condition failed (billed at the minimum, as DynamoDB bills it).
    pub(super) fn conditional_write<E, R>(
        &self,
        out: Result<
            Option<aws_sdk_dynamodb::types::ConsumedCapacity>,
            aws_sdk_dynamodb::error::SdkError<E, R>,
        >,
    ) -> Result<bool, StoreError>
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
        R: std::fmt::Debug,
    {
        match out {
            Ok(capacity) => {
                self.meter.record_write(capacity.as_ref());
                Ok(true)
            }
            Err(err) if super::errors::is_conditional_failure(&err) => {
                self.meter.record_failed_write();
                Ok(false)
            }
            Err(err) => Err(classify(err)),
        }
    }

    /// One GetItem, its read capacity counted.
    pub(super) async fn get(
        &self,
        key: Item,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
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
    pub(super) async fn batch_get(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
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
    pub(super) async fn query_page(
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
    pub(super) async fn put_if_absent(
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
                Some(old) => {
                    self.meter.record_failed_write();
                    Ok(Some(old))
                }
                None => Err(classify(err)),
            },
        }
    }

    /// Queries one keys-only index and hydrates the page.
    pub(super) async fn query_index(
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
