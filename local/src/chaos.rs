//! LOCAL-ONLY fault injection for tests: an HTTP proxy (hyper) in front of
//! DynamoDB Local that can refuse connections (storage down), answer every
//! call with `ThrottlingException`, or write only half of a
//! `BatchWriteItem` and hand the rest back as `UnprocessedItems`, as
//! DynamoDB does under load. Counts the calls it sees. Does I/O.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the proxy does with the next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Forward to DynamoDB Local.
    Pass = 0,
    /// Close each connection without an answer (storage unreachable).
    Down = 1,
    /// Answer `400 ThrottlingException`.
    Throttle = 2,
}

#[derive(Debug)]
struct State {
    upstream: String,
    mode: AtomicU8,
    /// BatchWriteItem calls still to answer with half their items unprocessed.
    partial_batches: AtomicU32,
    calls: AtomicU64,
    batch_writes: AtomicU64,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The running proxy; dropped with the test's runtime.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub url: String,
    state: Arc<State>,
}

/// The proxy refused to answer (a `Down` call): the connection is closed.
#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("storage down (injected)")
    }
}

impl std::error::Error for Refused {}

impl Chaos {
    /// Starts the proxy on a free loopback port in front of `upstream`
    /// (`host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            mode: AtomicU8::new(Mode::Pass as u8),
            partial_batches: AtomicU32::new(0),
            calls: AtomicU64::new(0),
            batch_writes: AtomicU64::new(0),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(request, Arc::clone(&state)));
                    // An error here is a refused call closing its connection.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(Self { url, state })
    }

    pub fn set(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// The next `calls` BatchWriteItem calls write only half their items.
    pub fn leave_unprocessed(&self, calls: u32) {
        self.state.partial_batches.store(calls, Ordering::SeqCst);
    }

    /// Calls received so far (each SDK attempt is one).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn batch_writes(&self) -> u64 {
        self.state.batch_writes.load(Ordering::SeqCst)
    }
}

type Reply = Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>>;

async fn serve(request: Request<Incoming>, state: Arc<State>) -> Reply {
    state.calls.fetch_add(1, Ordering::SeqCst);
    let batch_write = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.ends_with("BatchWriteItem"));
    if batch_write {
        state.batch_writes.fetch_add(1, Ordering::SeqCst);
    }
    match state.mode.load(Ordering::SeqCst) {
        m if m == Mode::Down as u8 => return Err(Box::new(Refused)),
        m if m == Mode::Throttle as u8 => {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput (injected)"}"#;
            let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            return Ok(response);
        }
        _ => {}
    }
    let partial = batch_write
        && state
            .partial_batches
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let (parts, body) = request.into_parts();
    let mut body = body.collect().await?.to_bytes();
    let held_back = if partial {
        let (forwarded, held_back) = split_batch(&body);
        body = forwarded;
        held_back
    } else {
        None
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = Request::builder()
        .method(parts.method)
        .uri(format!("http://{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        if name != CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let response = state
        .client
        .request(upstream.body(Full::new(body))?)
        .await?;
    let (mut parts, body) = response.into_parts();
    let mut body = body.collect().await?.to_bytes();
    if let Some((table, items)) = held_back {
        // The written half's answer, with the other half unprocessed.
        if let Ok(mut json) = serde_json::from_slice::<Value>(&body) {
            json["UnprocessedItems"] = serde_json::json!({ table: items });
            body = Bytes::from(json.to_string());
            // The SDK checks the body against the upstream's checksum.
            parts.headers.remove("x-amz-crc32");
            parts.headers.remove(CONTENT_LENGTH);
        }
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Splits a BatchWriteItem request body: the first half is forwarded, the
/// second is returned (table and items) to be reported unprocessed.
fn split_batch(body: &Bytes) -> (Bytes, Option<(String, Value)>) {
    let Ok(mut json) = serde_json::from_slice::<Value>(body) else {
        return (body.clone(), None);
    };
    let Some((table, items)) = json["RequestItems"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(t, v)| (t.clone(), v.as_array().cloned().unwrap_or_default()))
    else {
        return (body.clone(), None);
    };
    if items.len() < 2 {
        return (body.clone(), None);
    }
    let (written, rest) = items.split_at(items.len() / 2);
    json["RequestItems"][&table] = Value::Array(written.to_vec());
    (
        Bytes::from(json.to_string()),
        Some((table, Value::Array(rest.to_vec()))),
    )
}
