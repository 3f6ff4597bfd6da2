//! LOCAL-ONLY stand-ins for the AWS services around the functions, so that
//! `make run` and the end-to-end tests run the real functions under
//! `cargo lambda watch` against real local parts. Does I/O. None of this is
//! deployed: on AWS, IoT rules, the IoT data plane, the DynamoDB stream event
//! source mapping and EventBridge Scheduler do these jobs.
//!
//! - rules engine: subscribes to the four Jobs request topics on mosquitto and
//!   invokes `device-events` with the event the IoT rule delivers
//!   (`{"payload": base64, "topic": ..., "receivedAt": epoch ms}`).
//! - IoT data plane: `POST /topics/{topic}?qos=1` (the Publish API the SDK
//!   calls) forwarded to mosquitto; the functions reach it through
//!   `AWS_ENDPOINT_URL_IOT_DATA_PLANE`.
//! - event source mapping: reads DynamoDB Local's stream of the table and
//!   invokes `dispatcher` with DynamoDB stream event JSON, retrying from a
//!   reported `batchItemFailures` record.
//! - scheduler: invokes `sweeper` every few seconds.

use crate::iot_rule_event;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use courier_core::protocol::TopicRoot;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Invokes a function under `cargo lambda watch` through the Lambda Invoke
/// API it emulates (`invoke` is `http://127.0.0.1:PORT`). Returns the
/// function's result, or its error payload as `Err`.
pub async fn invoke(invoke: &str, function: &str, event: &Value) -> Result<Value, String> {
    let address = invoke.trim_start_matches("http://").trim_end_matches('/');
    let path = format!("/2015-03-31/functions/{function}/invocations");
    let (status, body) = http_request(address, "POST", &path, event.to_string().as_bytes())
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let failed = status >= 300 || value.get("errorType").is_some();
    if failed {
        Err(format!("{function} failed ({status}): {value}"))
    } else {
        Ok(value)
    }
}

/// `METHOD path` on the HTTP API under `cargo lambda watch`; `base` is
/// `http://127.0.0.1:PORT/lambda-url/api`. The body parsed as JSON (`null`
/// when it is not).
pub async fn call_api(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let rest = base.trim_start_matches("http://");
    let (address, prefix) = rest.split_once('/').ok_or("API base URL without a path")?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, bytes) = http_request(
        address,
        method,
        &format!("/{prefix}{path}"),
        body.as_bytes(),
    )
    .await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// A minimal HTTP/1.1 client for loopback calls (`Connection: close`),
/// bounded to a minute so that a server holding the connection open fails
/// the caller instead of hanging it.
pub async fn http_request(
    address: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    tokio::time::timeout(
        Duration::from_secs(60),
        http_request_unbounded(address, method, path, body),
    )
    .await
    .map_err(|_| format!("{method} {path}: no complete answer within 60 s"))?
}

async fn http_request_unbounded(
    address: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect {address}: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
    stream
        .write_all(body)
        .await
        .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
    // Until the server closes, or the body's Content-Length is in.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if let Some(split) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]);
            if content_length(&head).is_some_and(|len| raw.len() >= split + 4 + len) {
                break;
            }
        }
    }
    let split = find(&raw, b"\r\n\r\n").ok_or("no HTTP header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status")?;
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, body))
}

/// The `Content-Length` of an HTTP head (any case), if it has a readable one.
fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..line_end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let end = (start + size).min(raw.len());
        out.extend_from_slice(&raw[start..end]);
        raw = raw.get(end + 2..).unwrap_or_default();
    }
    out
}

fn mqtt_client(broker: &str, client_id: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let (host, port) = crate::mqtt::parse_broker(broker);
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(256 * 1024, 256 * 1024);
    AsyncClient::new(options, 1024)
}

/// The IoT rules: every request message becomes a `device-events`
/// invocation (asynchronous, as IoT rules invoke Lambda).
pub async fn run_rules(broker: &str, invoke_url: &str, root: &TopicRoot) {
    let (client, mut eventloop) = mqtt_client(broker, "courier-local-rules");
    for suffix in ["get", "start-next", "+/get", "+/update"] {
        if let Err(e) = client
            .subscribe(root.filter(suffix), QoS::AtLeastOnce)
            .await
        {
            eprintln!("rules: subscribe {suffix}: {e}");
        }
    }
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let event = rule_event_bytes(&p.topic, &p.payload);
                let invoke_url = invoke_url.to_owned();
                tokio::spawn(async move {
                    if let Err(e) = invoke(&invoke_url, "device-events", &event).await {
                        eprintln!("rules: {e}");
                    }
                });
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // Re-subscribe after a reconnect (clean session).
                for suffix in ["get", "start-next", "+/get", "+/update"] {
                    let _ = client.try_subscribe(root.filter(suffix), QoS::AtLeastOnce);
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("rules: broker connection: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn rule_event_bytes(topic: &str, payload: &[u8]) -> Value {
    let mut event = iot_rule_event(topic, &Value::Null);
    event["payload"] = json!(base64::engine::general_purpose::STANDARD.encode(payload));
    // The rule's `timestamp()`: when the broker handed the message over.
    event["receivedAt"] = json!(courier_functions::config::now().millis());
    event
}

/// The IoT data plane's Publish API, forwarded to the broker.
pub async fn run_publish_endpoint(listener: TcpListener, broker: &str) {
    let (client, mut eventloop) = mqtt_client(broker, "courier-local-data-plane");
    tokio::spawn(async move {
        loop {
            if let Err(e) = eventloop.poll().await {
                eprintln!("data plane: broker connection: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_publish(stream, &client).await {
                eprintln!("data plane: {e}");
            }
        });
    }
}

async fn serve_publish(mut stream: TcpStream, client: &AsyncClient) -> Result<(), String> {
    loop {
        let Some((method, target, body)) = read_request(&mut stream).await? else {
            return Ok(());
        };
        let path = target.split('?').next().unwrap_or_default();
        let (status, reply) = match (method.as_str(), path.strip_prefix("/topics/")) {
            ("POST", Some(encoded)) => {
                let topic = percent_decode(encoded);
                match client.publish(topic, QoS::AtLeastOnce, false, body).await {
                    Ok(()) => (200, "{}".to_owned()),
                    Err(e) => (503, json!({ "message": e.to_string() }).to_string()),
                }
            }
            _ => (
                404,
                json!({ "message": "only POST /topics/{topic}" }).to_string(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        stream
            .write_all(response.as_bytes())
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
    }
}

/// One HTTP/1.1 request (keep-alive), or `None` at end of stream.
async fn read_request(stream: &mut TcpStream) -> Result<Option<(String, String, Vec<u8>)>, String> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let split = loop {
        if let Some(split) = find(&raw, b"\r\n\r\n") {
            break split;
        }
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
        if n == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();
    let length = content_length(&head).unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    while body.len() < length {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(Some((method, target, body)))
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&raw[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A stream record's attribute value in the JSON wire format Lambda events use.
pub fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |b: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(b));
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => {
            json!({ "BS": v.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(v) => json!({ "L": v.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": image_json(m) }),
        _ => json!({ "NULL": true }),
    }
}

fn image_json(image: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        image
            .iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// One stream record as the Lambda DynamoDB event carries it.
pub fn stream_record_json(record: &Record, stream_arn: &str) -> Value {
    let d = record.dynamodb();
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str().to_owned()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "ApproximateCreationDateTime": d.and_then(|d| d.approximate_creation_date_time()).map(|t| t.secs()),
            "Keys": d.and_then(|d| d.keys()).map(image_json),
            "NewImage": d.and_then(|d| d.new_image()).map(image_json),
            "SequenceNumber": d.and_then(|d| d.sequence_number()),
            "SizeBytes": d.and_then(|d| d.size_bytes()),
            "StreamViewType": "NEW_IMAGE",
        }
    })
}

pub async fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&crate::local_sdk_config(endpoint.to_owned()).await)
}

/// Every record of the table's stream from the start (TRIM_HORIZON), as
/// Lambda event records: what a replay would deliver.
pub async fn read_stream(ddb_endpoint: &str, table: &str) -> Result<Vec<Value>, String> {
    let streams = streams_client(ddb_endpoint).await;
    let ddb = crate::client().await;
    let arn = stream_arn(&ddb, table).await?;
    let mut out = Vec::new();
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
    for shard in shards
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?
            .shard_iterator;
        while let Some(it) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?;
            if page.records().is_empty() {
                break;
            }
            out.extend(page.records().iter().map(|r| stream_record_json(r, &arn)));
            iterator = page.next_shard_iterator;
        }
    }
    Ok(out)
}

/// Reads a table's stream incrementally: each [`StreamTail::read`] returns
/// the records written since the last one, as Lambda event records (for
/// tests and benchmarks that play the event source mapping themselves).
#[derive(Debug)]
pub struct StreamTail {
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    /// Per shard, the last sequence number returned.
    last: HashMap<String, String>,
}

impl StreamTail {
    pub async fn new(ddb_endpoint: &str, table: &str) -> Result<Self, String> {
        let ddb = crate::client().await;
        Ok(Self {
            streams: streams_client(ddb_endpoint).await,
            arn: stream_arn(&ddb, table).await?,
            last: HashMap::new(),
        })
    }

    pub async fn read(&mut self) -> Result<Vec<Value>, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        let described = self
            .streams
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .map_err(|e| text(&aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
        let mut out = Vec::new();
        for shard in described
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let id = shard.shard_id().unwrap_or_default().to_owned();
            let request = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(&id);
            let request = match self.last.get(&id) {
                Some(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let mut iterator = request
                .send()
                .await
                .map_err(|e| text(&aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?
                .shard_iterator;
            while let Some(it) = iterator {
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(it)
                    .send()
                    .await
                    .map_err(|e| text(&aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)))?;
                if page.records().is_empty() {
                    break;
                }
                if let Some(seq) = page
                    .records()
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|d| d.sequence_number())
                {
                    self.last.insert(id.clone(), seq.to_owned());
                }
                out.extend(
                    page.records()
                        .iter()
                        .map(|r| stream_record_json(r, &self.arn)),
                );
                iterator = page.next_shard_iterator;
            }
        }
        Ok(out)
    }
}

async fn stream_arn(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<String, String> {
    ddb.describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e).to_string())?
        .table()
        .and_then(|t| t.latest_stream_arn())
        .map(str::to_owned)
        .ok_or_else(|| format!("table {table} has no stream"))
}

/// The event source mapping: polls every shard of the table's stream and
/// invokes `dispatcher` with each batch, retrying from a reported failure.
pub async fn run_stream(ddb_endpoint: &str, table: &str, invoke_url: &str) {
    let streams = streams_client(ddb_endpoint).await;
    let ddb = crate::client().await;
    let arn = loop {
        match stream_arn(&ddb, table).await {
            Ok(arn) => break arn,
            Err(e) => {
                eprintln!("stream: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    // Shards open at start-up are read from LATEST (as a mapping created now
    // would), later ones from TRIM_HORIZON; a shard whose read failed is
    // picked up again after its last record.
    let mut shards: HashMap<String, ShardReader> = HashMap::new();
    let mut first = true;
    loop {
        if let Ok(described) = streams.describe_stream().stream_arn(&arn).send().await {
            for shard in described
                .stream_description()
                .map(|d| d.shards())
                .unwrap_or_default()
            {
                let id = shard.shard_id().unwrap_or_default().to_owned();
                let reader = shards.entry(id.clone()).or_insert(ShardReader {
                    iterator: None,
                    last: None,
                    done: false,
                    new: true,
                });
                if reader.iterator.is_some() || reader.done {
                    continue;
                }
                let request = streams.get_shard_iterator().stream_arn(&arn).shard_id(&id);
                let request = match (&reader.last, reader.new && first) {
                    (Some(seq), _) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(seq),
                    (None, true) => request.shard_iterator_type(ShardIteratorType::Latest),
                    (None, false) => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                reader.new = false;
                reader.iterator = request.send().await.ok().and_then(|o| o.shard_iterator);
            }
        }
        first = false;
        let mut idle = true;
        for reader in shards.values_mut() {
            let Some(it) = reader.iterator.clone() else {
                continue;
            };
            match streams.get_records().shard_iterator(it).send().await {
                Ok(page) => {
                    reader.iterator = page.next_shard_iterator.clone();
                    reader.done = reader.iterator.is_none();
                    if let Some(seq) = page
                        .records()
                        .last()
                        .and_then(|r| r.dynamodb())
                        .and_then(|d| d.sequence_number())
                    {
                        reader.last = Some(seq.to_owned());
                    }
                    let records: Vec<Value> = page
                        .records()
                        .iter()
                        .map(|r| stream_record_json(r, &arn))
                        .collect();
                    if !records.is_empty() {
                        idle = false;
                        deliver_batch(invoke_url, records).await;
                    }
                }
                Err(e) => {
                    eprintln!(
                        "stream: get_records: {}; resuming after the last record",
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)
                    );
                    reader.iterator = None;
                }
            }
        }
        if idle {
            // AWS polls each shard about four times a second; a little faster
            // here keeps local runs snappy.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Where the event source mapping stand-in is in one shard.
#[derive(Debug)]
struct ShardReader {
    iterator: Option<String>,
    /// The last sequence number delivered, to resume after a failed read.
    last: Option<String>,
    /// Closed and read to its end.
    done: bool,
    /// Not yet read at all.
    new: bool,
}

/// Invokes `dispatcher`; on reported failures, retries from the first failed
/// record (as ReportBatchItemFailures does), a bounded number of times.
async fn deliver_batch(invoke_url: &str, mut records: Vec<Value>) {
    for attempt in 0..5u32 {
        let event = json!({ "Records": records });
        match invoke(invoke_url, "dispatcher", &event).await {
            Ok(result) => {
                let failed = result["batchItemFailures"]
                    .as_array()
                    .and_then(|f| f.first())
                    .and_then(|f| f["itemIdentifier"].as_str())
                    .map(str::to_owned);
                let Some(failed) = failed else { return };
                let from = records
                    .iter()
                    .position(|r| r["dynamodb"]["SequenceNumber"] == json!(failed))
                    .unwrap_or(0);
                records.drain(..from);
            }
            Err(e) => eprintln!("stream: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
    }
    eprintln!("stream: gave up on a batch after 5 attempts (on AWS: bisect, then the DLQ)");
}

/// EventBridge Scheduler: invokes `sweeper` every `every`.
pub async fn run_scheduler(invoke_url: &str, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let event = json!({
            "version": "0", "id": "courier-local", "detail-type": "Scheduled Event",
            "source": "aws.scheduler", "account": "000000000000", "region": "us-east-1",
            "resources": [], "detail": {}
        });
        if let Err(e) = invoke(invoke_url, "sweeper", &event).await {
            eprintln!("scheduler: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_data_plane_stand_in_decodes_topics_as_the_sdk_encodes_them() {
        assert_eq!(
            percent_decode("courier%2Fthings%2Fdev-1%2Fjobs%2Fnotify-next"),
            "courier/things/dev-1/jobs/notify-next"
        );
        assert_eq!(
            percent_decode("%24aws%2Fthings%2Fd%2Fjobs"),
            "$aws/things/d/jobs"
        );
        assert_eq!(
            percent_decode("plain%2"),
            "plain%2",
            "a cut escape is kept as is"
        );
    }

    #[test]
    fn chunked_bodies_are_reassembled() {
        assert_eq!(
            dechunk(b"4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"),
            b"{\"a\":1}"
        );
        assert_eq!(dechunk(b"0\r\n\r\n"), b"");
    }

    #[test]
    fn stream_images_use_the_lambda_event_wire_format() {
        let image = HashMap::from([
            ("s".to_owned(), AttributeValue::S("x".into())),
            ("n".to_owned(), AttributeValue::N("1.5".into())),
            ("m".to_owned(), AttributeValue::M(HashMap::new())),
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::Bool(true), AttributeValue::Null(true)]),
            ),
        ]);
        assert_eq!(
            image_json(&image),
            json!({"s": {"S": "x"}, "n": {"N": "1.5"}, "m": {"M": {}}, "l": {"L": [{"BOOL": true}, {"NULL": true}]}})
        );
    }
}
