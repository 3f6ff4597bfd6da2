//! LOCAL-ONLY stand-ins for the AWS services around the functions, so that
//! `make run` and the end-to-end tests run the real functions under
//! `cargo lambda watch` against real local parts (`courier-local bridge`).
//! Does I/O. None of this is deployed: on AWS, IoT rules, the IoT data
//! plane, the DynamoDB stream event source mapping and EventBridge Scheduler
//! do these jobs.
//!
//! - [`run_rules`], the IoT rules: subscribes to the Jobs request topics,
//!   the commands response topics and the lifecycle events
//!   (`$aws/events/presence/+/+`, which the simulator publishes) on mosquitto and invokes `device-events`
//!   with the event the rule's SELECT
//!   delivers (`{"payload": base64, "topic": ..., "receivedAt": epoch ms}`),
//!   asynchronously, as IoT rules invoke Lambda.
//! - [`run_data_plane`], the IoT data plane's Publish API (`POST
//!   /topics/{topic}?qos=1&contentType=...&messageExpiry=...`, what the SDK
//!   calls), forwarded to mosquitto over MQTT 5 with those properties; the
//!   functions reach it through `AWS_ENDPOINT_URL_IOT_DATA_PLANE`.
//! - [`run_event_source`], the stream's event source mapping: polls the
//!   table's stream and invokes `dispatcher` with each batch, retrying from
//!   a reported `batchItemFailures` record.
//! - [`run_scheduler`], EventBridge Scheduler: invokes `sweeper` with the
//!   scheduled event the template configures.

use crate::http::{self, HttpClient};
use crate::stream::{StartAt, StreamPoller};
use base64::Engine as _;
use bytes::Bytes;
use courier_core::commands;
use courier_core::presence::PRESENCE_FILTER;
use courier_core::protocol::TopicRoot;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rumqttc::{v5, AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

/// Lambda's default batch size for a DynamoDB stream.
const BATCH_SIZE: usize = 100;

/// An MQTT client of the bridge's, on `broker` (`host:port`).
fn mqtt_client(broker: &str, client_id: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let (host, port) = crate::mqtt::parse_broker(broker);
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(256 * 1024, 256 * 1024);
    crate::mqtt::new_client(options, 1024)
}

/// The request topics each rule selects.
const REQUEST_TOPICS: [&str; 4] = ["get", "start-next", "+/get", "+/update"];

/// The IoT rules: every request message becomes a `device-events`
/// invocation.
pub async fn run_rules(
    broker: &str,
    invoke_url: &str,
    root: &TopicRoot,
    commands_root: &TopicRoot,
) {
    let (client, mut eventloop) = mqtt_client(broker, "courier-local-rules");
    let http = http::client();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let event = rule_event(&p.topic, &p.payload);
                let (http, invoke_url) = (http.clone(), invoke_url.to_owned());
                tokio::spawn(async move {
                    if let Err(e) =
                        http::invoke_with(&http, &invoke_url, "device-events", &event).await
                    {
                        eprintln!("rules: {e}");
                    }
                });
            }
            // (Re-)subscribe on every connection (clean session).
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let jobs = REQUEST_TOPICS.iter().map(|suffix| root.filter(suffix));
                let commands = commands::response_filters(commands_root);
                let presence = std::iter::once(PRESENCE_FILTER.to_owned());
                for filter in jobs.chain(commands).chain(presence) {
                    if let Err(e) = client.try_subscribe(&filter, QoS::AtLeastOnce) {
                        eprintln!("rules: subscribe {filter}: {e}");
                    }
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

/// What the rule delivers for a message: the payload base64-encoded, the
/// topic, and when the broker handed it over (the rule's `timestamp()`).
fn rule_event(topic: &str, payload: &[u8]) -> Value {
    json!({
        "topic": topic,
        "payload": base64::engine::general_purpose::STANDARD.encode(payload),
        "receivedAt": courier_functions::platform::clock::now().millis(),
    })
}

/// The IoT data plane's Publish API, forwarded to the broker over MQTT 5,
/// so that the `contentType` and `messageExpiry` the functions set reach
/// MQTT 5 devices as properties, as they do through AWS IoT Core.
pub async fn run_data_plane(listener: TcpListener, broker: &str) {
    let (host, port) = crate::mqtt::parse_broker(broker);
    let mut options = v5::MqttOptions::new("courier-local-data-plane", host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(Some(256 * 1024));
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut eventloop) = v5::AsyncClient::new(options, 1024);
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
            let service = service_fn(move |request| publish(request, client.clone()));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("data plane: {e}");
            }
        });
    }
}

/// `POST /topics/{topic}?contentType=...&messageExpiry=...`: the body
/// published on the topic, QoS 1, with those MQTT 5 properties.
async fn publish(
    request: Request<Incoming>,
    client: v5::AsyncClient,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let properties = publish_properties(request.uri().query().unwrap_or(""));
    let topic = (request.method() == Method::POST)
        .then(|| request.uri().path().strip_prefix("/topics/"))
        .flatten()
        .map(|encoded| {
            percent_encoding::percent_decode_str(encoded)
                .decode_utf8_lossy()
                .into_owned()
        });
    let reply = |status: StatusCode, body: Value| {
        let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
        *response.status_mut() = status;
        Ok(response)
    };
    let Some(topic) = topic else {
        return reply(
            StatusCode::NOT_FOUND,
            json!({ "message": "only POST /topics/{topic}" }),
        );
    };
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, json!({ "message": e.to_string() })),
    };
    let qos = v5::mqttbytes::QoS::AtLeastOnce;
    match client
        .publish_with_properties(topic, qos, false, body, properties)
        .await
    {
        Ok(()) => reply(StatusCode::OK, json!({})),
        Err(e) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "message": e.to_string() }),
        ),
    }
}

/// The Publish API's query parameters that are MQTT 5 properties.
fn publish_properties(query: &str) -> v5::mqttbytes::v5::PublishProperties {
    let mut properties = v5::mqttbytes::v5::PublishProperties::default();
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        match name {
            "contentType" => properties.content_type = Some(value.into_owned()),
            "messageExpiry" => properties.message_expiry_interval = value.parse().ok(),
            _ => {}
        }
    }
    properties
}

/// The event source mapping: polls the table's stream and invokes
/// `dispatcher` with each batch of the records its filter passes
/// (`filters`, the template's patterns), in order.
pub async fn run_event_source(table: &str, invoke_url: &str, filters: &[Value]) {
    let mut poller = loop {
        match StreamPoller::new(table, StartAt::Now).await {
            Ok(poller) => break poller,
            Err(e) => {
                eprintln!("stream: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let http = http::client();
    loop {
        let records = match poller.poll().await {
            Ok(records) => records,
            Err(e) => {
                eprintln!("stream: {e}; resuming after the last record");
                Vec::new()
            }
        };
        if records.is_empty() {
            // AWS polls each shard about four times a second; a little
            // faster here keeps local runs snappy.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let records: Vec<Value> = records
            .into_iter()
            .filter(|r| crate::filter::passes(filters, r))
            .collect();
        for batch in records.chunks(BATCH_SIZE) {
            deliver_batch(&http, invoke_url, batch.to_vec()).await;
        }
    }
}

/// Invokes `dispatcher`; on reported failures, retries from the first failed
/// record (as ReportBatchItemFailures does), a bounded number of times.
async fn deliver_batch(http: &HttpClient, invoke_url: &str, mut records: Vec<Value>) {
    for attempt in 0..5u32 {
        let event = json!({ "Records": records });
        match http::invoke_with(http, invoke_url, "dispatcher", &event).await {
            Ok(result) => {
                let Some(failed) = result["batchItemFailures"]
                    .as_array()
                    .and_then(|f| f.first())
                    .and_then(|f| f["itemIdentifier"].as_str())
                else {
                    return;
                };
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
    let http = http::client();
    loop {
        tokio::time::sleep(every).await;
        let event = crate::events::scheduled_event_json(courier_functions::platform::clock::now());
        if let Err(e) = http::invoke_with(&http, invoke_url, "sweeper", &event).await {
            eprintln!("scheduler: {e}");
        }
    }
}
