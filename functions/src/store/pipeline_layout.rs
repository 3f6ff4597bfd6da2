//! THE TABLE LAYOUT OF PIPELINES: the keys and attributes of pipelines,
//! runs, their counters, target lists and target runs (the rest of the
//! table is in `layout`). Building and reading items is pure, no I/O; the
//! calls are in `pipelines`.
//!
//! | item          | pk                  | sk                | gsi1                                   | gsi4 (due, sparse) |
//! |---------------|---------------------|-------------------|----------------------------------------|--------------------|
//! | pipeline      | `T#…#PIPELINES`     | `{pipelineId}`    | –                                      | – |
//! | run           | `T#…#RUN#{runId}`   | `RUN`             | `T#…#RUNS#{pipelineId}` / `{created}#{runId}` | `DUERUN` / `{wakeAt}#{runId}` while it has a wake time |
//! | counter shard | `T#…#RUN#{runId}`   | `COUNTS#{k}`      | –                                      | – |
//! | batch marker  | `T#…#RUN#{runId}`   | `BATCH#{eventId}` | –                                      | – |
//! | target list   | `T#…#RUN#{runId}`   | `TLIST#{n:06}`    | –                                      | – |
//! | target run    | `T#…#RUN#{runId}`   | `TARGET#{thing}`  | –                                      | – |
//!
//! WHAT IS WRITTEN PER DEVICE, AND WHEN. A run's executions are ordinary
//! execution items with `runId` and `runOperation` (stage, operation, the
//! stage's deadline, a `CONTINUE` failure so far) set; their ids derive
//! from the run, the thing, the stage and the operation, so a redelivered
//! step writes the same item (once, conditionally). The target run item is
//! written when the run starts and then once per stage, when the device
//! settles it (a plain put conditioned on its version), never per
//! operation: while it runs a stage, where it stands is read from its
//! executions. The write that settles a stage carries `tally` — what it
//! adds to the counts — which the table's stream brings to the dispatcher;
//! the dispatcher adds a batch's tallies of a run to one counter shard
//! with one `ADD`, in a transaction with a marker named after the batch's
//! first record (as job statistics are kept), so counts are exact under
//! redelivery and cost one transaction per batch, not one per device.
//!
//! A counter shard holds, per wave `w` and stage `k`, numbers
//! `w{w}s{k}_{field}` (succeeded, failed, timedOut, canceled, wentOn) and
//! `ended`; `entered` is derived when the run is read. The run item never
//! holds counts: the runner's version-conditioned puts cannot overwrite
//! them.

use super::errors::internal;
use super::layout::{
    key, put_s, scoped, string_attr, ttl_of, BY_TARGET_INDEX, DUE_INDEX, REQUEST_HASH,
};
use super::{Item, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use courier_core::pipeline::Pipeline;
use courier_core::pipeline_run::{
    PipelineRun, RunStatus, StageCounts, StageOutcome, Tally, TargetRun,
};
use courier_core::{RunId, TenantId, ThingName, Timestamp};
use serde_dynamo::aws_sdk_dynamodb_1 as dynamo;

pub(super) const RUN_SK: &str = "RUN";
pub(super) const RUN_DUE_PK: &str = "DUERUN";
pub(super) const TARGET_PREFIX: &str = "TARGET#";
pub(super) const COUNTS_PREFIX: &str = "COUNTS#";
/// Counter shards per run.
pub const COUNT_SHARDS: u32 = 8;
/// Things per stored target-list page.
pub const LIST_PAGE: usize = 1000;
/// A run's items are kept this long after it ended.
pub const RUN_RETENTION_SECONDS: i64 = 90 * 86_400;
/// …and this long after creation while it has not ended.
const LIVE_RUN_SECONDS: i64 = 400 * 86_400;

/// The attribute of a target run's write that says what it adds to the
/// counts (read from the stream).
pub const TALLY: &str = "tally";

pub(super) fn pipelines_pk(tenant: &TenantId) -> String {
    scoped(tenant, "PIPELINES")
}

pub(super) fn run_pk(tenant: &TenantId, run: &RunId) -> String {
    scoped(tenant, format!("RUN#{run}"))
}

pub(super) fn runs_pk(tenant: &TenantId, pipeline: &str) -> String {
    scoped(tenant, format!("RUNS#{pipeline}"))
}

pub(super) fn run_key(tenant: &TenantId, run: &RunId) -> Item {
    key(run_pk(tenant, run), RUN_SK.into())
}

/// The tenant's count of runs that have not ended (`active`).
pub(super) fn active_runs_key(tenant: &TenantId) -> Item {
    key(scoped(tenant, "LIMITS"), "RUNS".into())
}

pub(super) fn target_key(tenant: &TenantId, run: &RunId, thing: &ThingName) -> Item {
    key(run_pk(tenant, run), format!("{TARGET_PREFIX}{thing}"))
}

pub(super) fn list_key(tenant: &TenantId, run: &RunId, n: usize) -> Item {
    key(run_pk(tenant, run), format!("TLIST#{n:06}"))
}

/// The counter shard a batch's tallies go to (named by its first record).
pub(super) fn counts_key(tenant: &TenantId, run: &RunId, batch: &str) -> Item {
    let shard = batch
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % COUNT_SHARDS;
    key(run_pk(tenant, run), format!("{COUNTS_PREFIX}{shard}"))
}

/// The marker of a stream batch's tallies of a run.
pub(super) fn run_marker_key(tenant: &TenantId, run: &RunId, batch: &str) -> Item {
    key(run_pk(tenant, run), format!("BATCH#{batch}"))
}

/// The attribute counting `field` of `stage` in `wave`.
pub fn count_attr(wave: u32, stage: u32, field: &str) -> String {
    format!("w{wave}s{stage}_{field}")
}

/// A tally as stored: `{wave}/{stage}/{outcome field or -}/{wentOn}/{ended}`.
fn tally_text(tally: &Tally) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        tally.wave,
        tally.stage,
        tally.outcome.map_or("-", StageOutcome::field),
        u8::from(tally.went_on),
        u8::from(tally.ended)
    )
}

/// The tally a target run's stream image carries, if any.
pub fn tally_of(item: &Item) -> Option<Tally> {
    let text = string_attr(item, TALLY)?;
    let mut parts = text.split('/');
    let wave = parts.next()?.parse().ok()?;
    let stage = parts.next()?.parse().ok()?;
    let outcome = match parts.next()? {
        "-" => None,
        field => Some(StageOutcome::ALL.into_iter().find(|o| o.field() == field)?),
    };
    let went_on = parts.next()? == "1";
    let ended = parts.next()? == "1";
    Some(Tally {
        wave,
        stage,
        outcome,
        went_on,
        ended,
    })
}

/// When a run's items expire: long after creation while it lives, a
/// retention after it ended.
pub(super) fn run_expiry(run: &PipelineRun) -> Timestamp {
    match run.completed_at {
        Some(ended) => ended.plus_secs(RUN_RETENTION_SECONDS),
        None => run.created_at.plus_secs(LIVE_RUN_SECONDS),
    }
}

/// An item without empty maps at any depth: DynamoDB Local's stream renders
/// `{"M": {}}` as `{}`, which no SDK can read back.
fn item_of<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    let mut item: Item = dynamo::to_item(value).map_err(internal)?;
    drop_empty_maps(&mut item);
    Ok(item)
}

fn drop_empty_maps(map: &mut std::collections::HashMap<String, AttributeValue>) {
    for value in map.values_mut() {
        drop_empty_in(value);
    }
    map.retain(|_, v| !matches!(v, AttributeValue::M(m) if m.is_empty()));
}

fn drop_empty_in(value: &mut AttributeValue) {
    match value {
        AttributeValue::M(inner) => drop_empty_maps(inner),
        AttributeValue::L(items) => items.iter_mut().for_each(drop_empty_in),
        _ => {}
    }
}

pub(super) fn pipeline_item(tenant: &TenantId, pipeline: &Pipeline) -> Result<Item, StoreError> {
    let mut item = item_of(pipeline)?;
    put_s(&mut item, "pk", pipelines_pk(tenant));
    put_s(&mut item, "sk", pipeline.pipeline_id.to_string());
    Ok(item)
}

pub(super) fn pipeline_from_item(mut item: Item) -> Result<Pipeline, StoreError> {
    item.remove("pk");
    item.remove("sk");
    dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed pipeline item: {e}")))
}

/// The run item: the record without its counts, with its keys, its place
/// in the pipeline's listing and its wake time.
pub(super) fn run_item(
    tenant: &TenantId,
    run: &PipelineRun,
    request_hash: &str,
) -> Result<Item, StoreError> {
    let mut stored = run.clone();
    // A COMPLETED run keeps the counts it was recounted to when it ended
    // (nothing changes after): a stream batch delivered again later along
    // other boundaries cannot move them. Any other run's counts are its
    // counter shards'.
    if run.status != RunStatus::Completed {
        stored.counts = Vec::new();
        stored.targets_ended = 0;
    }
    let mut item = item_of(&stored)?;
    let mut put = |k: &str, v: String| put_s(&mut item, k, v);
    put("pk", run_pk(tenant, &run.run_id));
    put("sk", RUN_SK.into());
    put(
        &format!("{BY_TARGET_INDEX}pk"),
        runs_pk(tenant, run.pipeline_id.as_str()),
    );
    put(
        &format!("{BY_TARGET_INDEX}sk"),
        format!("{:015}#{}", run.created_at.millis().max(0), run.run_id),
    );
    if let Some(wake) = run.wake_at(run.last_updated_at) {
        put(&format!("{DUE_INDEX}pk"), RUN_DUE_PK.into());
        put(
            &format!("{DUE_INDEX}sk"),
            format!("{:015}#{}", wake.millis().max(0), run.run_id),
        );
    }
    put(REQUEST_HASH, request_hash.to_owned());
    ttl_of(&mut item, run_expiry(run));
    Ok(item)
}

pub(super) fn run_from_item(item: Item) -> Result<PipelineRun, StoreError> {
    dynamo::from_item(item).map_err(|e| StoreError::Internal(format!("malformed run item: {e}")))
}

/// Fills `run.counts` and `run.targets_ended` from its counter shards.
pub(super) fn add_counts(run: &mut PipelineRun, shards: &[Item], stages: usize) {
    let waves = run.wave_sizes.len();
    run.counts = vec![vec![StageCounts::default(); stages]; waves];
    run.targets_ended = 0;
    for shard in shards {
        for (name, value) in shard {
            let AttributeValue::N(n) = value else {
                continue;
            };
            let n: u64 = n.parse::<i64>().unwrap_or(0).max(0).unsigned_abs();
            if name == "ended" {
                run.targets_ended += n;
                continue;
            }
            let Some((place, field)) = name.strip_prefix('w').and_then(|r| r.split_once('_'))
            else {
                continue;
            };
            let Some((w, k)) = place.split_once('s') else {
                continue;
            };
            let (Ok(w), Ok(k)) = (w.parse::<usize>(), k.parse::<usize>()) else {
                continue;
            };
            let Some(counts) = run.counts.get_mut(w).and_then(|wave| wave.get_mut(k)) else {
                continue;
            };
            match field {
                "wentOn" => counts.went_on += n,
                "succeeded" => counts.succeeded += n,
                "failed" => counts.failed += n,
                "timedOut" => counts.timed_out += n,
                "canceled" => counts.canceled += n,
                _ => {}
            }
        }
    }
}

pub(super) fn list_item(
    tenant: &TenantId,
    run: &PipelineRun,
    n: usize,
    things: &[ThingName],
) -> Item {
    let mut item = list_key(tenant, &run.run_id, n);
    item.insert(
        "things".into(),
        AttributeValue::L(
            things
                .iter()
                .map(|t| AttributeValue::S(t.to_string()))
                .collect(),
        ),
    );
    ttl_of(&mut item, run_expiry(run));
    item
}

/// A target run's item; `tally`, when the write settles a stage (or
/// skips the device), is what it adds to the counts.
pub(super) fn target_item(
    tenant: &TenantId,
    run: &PipelineRun,
    target: &TargetRun,
    tally: Option<&Tally>,
) -> Result<Item, StoreError> {
    let mut item = item_of(target)?;
    put_s(&mut item, "pk", run_pk(tenant, &run.run_id));
    put_s(
        &mut item,
        "sk",
        format!("{TARGET_PREFIX}{}", target.thing_name),
    );
    if let Some(tally) = tally {
        put_s(&mut item, TALLY, tally_text(tally));
    }
    ttl_of(&mut item, run_expiry(run));
    Ok(item)
}

pub(super) fn target_from_item(mut item: Item) -> Result<TargetRun, StoreError> {
    for k in ["pk", "sk", "ttl", TALLY] {
        item.remove(k);
    }
    dynamo::from_item(item)
        .map_err(|e| StoreError::Internal(format!("malformed target run item: {e}")))
}
