//! THE STREAM POLLER: reads the table's stream in DynamoDB Local, shard by
//! shard, and hands back the new records as Lambda's DynamoDB event records
//! (`aws_lambda_events`' model, serialized as Lambda sends them). One
//! poller serves the event-source-mapping stand-in (`bridge`), the tests
//! and the benchmarks. Does I/O.
//!
//! Where it starts: [`StartAt::Beginning`] reads every shard from its first
//! record (TRIM_HORIZON: what a replay delivers); [`StartAt::Now`] reads the
//! shards open when it starts from their end (LATEST, as a mapping created
//! now would) and shards opened later from their first record. A failed
//! read resumes after the last record returned.

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord};
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde_json::Value;
use std::collections::HashMap;

/// Where a new poller starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    Now,
}

/// Where the poller is in one shard.
#[derive(Debug, Default)]
struct Shard {
    iterator: Option<String>,
    /// The last sequence number returned, to resume after a failed read.
    last: Option<String>,
    /// Closed and read to its end.
    done: bool,
}

#[derive(Debug)]
pub struct StreamPoller {
    streams: Client,
    arn: String,
    shards: HashMap<String, Shard>,
    start: StartAt,
    /// No shard has been seen yet (`StartAt::Now` reads those from LATEST).
    first: bool,
}

impl StreamPoller {
    /// A poller of `table`'s stream in DynamoDB Local (`DYNAMODB_ENDPOINT`).
    pub async fn new(table: &str, start: StartAt) -> Result<Self, String> {
        let ddb = crate::aws::client().await;
        let arn = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(text)?
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| format!("table {table} has no stream"))?;
        Ok(Self {
            streams: crate::aws::streams_client().await,
            arn,
            shards: HashMap::new(),
            start,
            first: true,
        })
    }

    /// Every record written since the last call (the first call: since the
    /// start), shard by shard, as Lambda event records.
    pub async fn poll(&mut self) -> Result<Vec<Value>, String> {
        self.open_shards().await?;
        let mut out = Vec::new();
        for shard in self.shards.values_mut() {
            while let Some(iterator) = shard.iterator.clone() {
                let page = match self
                    .streams
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        // Resumed after its last record at the next poll.
                        shard.iterator = None;
                        return Err(text(err));
                    }
                };
                shard.iterator = page.next_shard_iterator.clone();
                shard.done = shard.iterator.is_none();
                if let Some(seq) = page
                    .records()
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|d| d.sequence_number())
                {
                    shard.last = Some(seq.to_owned());
                }
                if page.records().is_empty() {
                    break;
                }
                for record in page.records() {
                    out.push(lambda_record(record, &self.arn)?);
                }
            }
        }
        Ok(out)
    }

    /// Gets an iterator for every shard that has none (new ones, and ones
    /// whose read failed).
    async fn open_shards(&mut self) -> Result<(), String> {
        let described = self
            .streams
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .map_err(text)?;
        let ids: Vec<String> = described
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.shard_id().map(str::to_owned))
            .collect();
        let from_end = self.first && self.start == StartAt::Now;
        self.first = false;
        for id in ids {
            let shard = self.shards.entry(id.clone()).or_default();
            if shard.iterator.is_some() || shard.done {
                continue;
            }
            let request = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(&id);
            let request = match (&shard.last, from_end) {
                (Some(seq), _) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                (None, true) => request.shard_iterator_type(ShardIteratorType::Latest),
                (None, false) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            shard.iterator = request.send().await.map_err(text)?.shard_iterator;
        }
        Ok(())
    }
}

/// Every record of `table`'s stream from the start: what a replay delivers.
pub async fn replay(table: &str) -> Result<Vec<Value>, String> {
    StreamPoller::new(table, StartAt::Beginning)
        .await?
        .poll()
        .await
}

/// One stream record as the Lambda DynamoDB event carries it.
fn lambda_record(record: &Record, arn: &str) -> Result<Value, String> {
    let image = |image: Option<
        &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >| { serde_dynamo::Item::from(image.cloned().unwrap_or_default()) };
    let d = record.dynamodb();
    let mut change = StreamRecord::default();
    change.keys = image(d.and_then(|d| d.keys()));
    change.new_image = image(d.and_then(|d| d.new_image()));
    change.sequence_number = d.and_then(|d| d.sequence_number()).map(str::to_owned);
    change.size_bytes = d.and_then(|d| d.size_bytes()).unwrap_or_default();
    if let Some(at) = d.and_then(|d| d.approximate_creation_date_time()) {
        change.approximate_creation_date_time =
            chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos()).unwrap_or_default();
    }
    let mut out = EventRecord::default();
    out.aws_region = "us-east-1".into();
    out.change = change;
    out.event_id = record.event_id().unwrap_or_default().to_owned();
    out.event_name = record
        .event_name()
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    out.event_source = Some("aws:dynamodb".into());
    out.event_version = Some("1.1".into());
    out.event_source_arn = Some(arn.to_owned());
    serde_json::to_value(out).map_err(|e| e.to_string())
}

fn text(err: impl std::error::Error + Send + Sync + 'static) -> String {
    aws_sdk_dynamodbstreams::error::DisplayErrorContext(err).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, StreamRecord as Change};

    #[test]
    fn a_polled_record_is_the_event_the_dispatcher_reads() {
        let image = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S("T#default#EXEC#e1".into()),
            ),
            ("version".to_owned(), AttributeValue::N("3".into())),
            ("details".to_owned(), AttributeValue::M(HashMap::new())),
        ]);
        let record = Record::builder()
            .event_id("e-1")
            .event_name(OperationType::Modify)
            .dynamodb(
                Change::builder()
                    .set_keys(Some(image.clone()))
                    .set_new_image(Some(image))
                    .sequence_number("42")
                    .size_bytes(120)
                    .build(),
            )
            .build();
        let json = lambda_record(&record, "arn:stream").unwrap();
        let event = crate::events::stream_event(&[json]).unwrap();
        let read = &event.records[0];
        assert_eq!(
            (read.event_id.as_str(), read.event_name.as_str()),
            ("e-1", "MODIFY")
        );
        assert_eq!(read.change.sequence_number.as_deref(), Some("42"));
        let new_image: HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            read.change.new_image.clone().into();
        assert_eq!(
            new_image["pk"],
            aws_sdk_dynamodb::types::AttributeValue::S("T#default#EXEC#e1".into())
        );
        assert_eq!(
            new_image["version"],
            aws_sdk_dynamodb::types::AttributeValue::N("3".into())
        );
    }
}
