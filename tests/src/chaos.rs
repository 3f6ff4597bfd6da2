//! LOCAL-ONLY fault injection for tests: an HTTP/1.1 proxy in front of
//! DynamoDB Local that can refuse connections (storage down), answer every
//! call with `ThrottlingException`, or write only half of a
//! `BatchWriteItem` and hand the rest back as `UnprocessedItems`, as
//! DynamoDB does under load. Counts the calls it sees. Does I/O.

use serde_json::Value;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
}

/// The running proxy; dropped with the test's runtime.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub url: String,
    state: Arc<State>,
}

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
        });
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&shared)));
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

/// One HTTP message: the head's lines and the body.
struct Message {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn with_body(mut self, body: Vec<u8>) -> Self {
        self.head.retain(|l| {
            let name = l
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            name != "content-length" && name != "transfer-encoding" && name != "x-amz-crc32"
        });
        self.head.push(format!("Content-Length: {}", body.len()));
        self.body = body;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = self.head.join("\r\n").into_bytes();
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads one message (Content-Length or chunked body); `None` at EOF.
async fn read_message(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Message> {
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 8192];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head: Vec<String> = String::from_utf8_lossy(&buffer[..end])
        .split("\r\n")
        .map(str::to_owned)
        .collect();
    buffer.drain(..end + 4);
    let mut message = Message {
        head,
        body: Vec::new(),
    };
    if let Some(length) = message
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        while buffer.len() < length {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        message.body = buffer.drain(..length).collect();
    } else if message
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let line_end = loop {
                if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                    break at;
                }
                let mut chunk = [0u8; 8192];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            };
            let size_text = String::from_utf8_lossy(&buffer[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            while buffer.len() < line_end + 2 + size + 2 {
                let mut chunk = [0u8; 8192];
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                }
            }
            message
                .body
                .extend_from_slice(&buffer[line_end + 2..line_end + 2 + size]);
            buffer.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
        let body = std::mem::take(&mut message.body);
        message = message.with_body(body);
    }
    Some(message)
}

async fn serve(mut client: TcpStream, state: Arc<State>) {
    let mut buffer = Vec::new();
    while let Some(request) = read_message(&mut client, &mut buffer).await {
        state.calls.fetch_add(1, Ordering::SeqCst);
        let target = request
            .header("x-amz-target")
            .unwrap_or_default()
            .to_owned();
        let batch_write = target.ends_with("BatchWriteItem");
        if batch_write {
            state.batch_writes.fetch_add(1, Ordering::SeqCst);
        }
        match state.mode.load(Ordering::SeqCst) {
            m if m == Mode::Down as u8 => return,
            m if m == Mode::Throttle as u8 => {
                let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput (injected)"}"#;
                let response = Message {
                    head: vec![
                        "HTTP/1.1 400 Bad Request".to_owned(),
                        "Content-Type: application/x-amz-json-1.0".to_owned(),
                    ],
                    body: Vec::new(),
                }
                .with_body(body.to_vec());
                if client.write_all(&response.bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            _ => {}
        }
        let partial = batch_write
            && state
                .partial_batches
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let (request, held_back) = if partial {
            split_batch(request)
        } else {
            (request, None)
        };
        let Ok(mut upstream) = TcpStream::connect(&state.upstream).await else {
            return;
        };
        if upstream.write_all(&request.bytes()).await.is_err() {
            return;
        }
        let mut upstream_buffer = Vec::new();
        let Some(mut response) = read_message(&mut upstream, &mut upstream_buffer).await else {
            return;
        };
        if let Some((table, items)) = held_back {
            // The written half's answer, with the other half unprocessed.
            if let Ok(mut json) = serde_json::from_slice::<Value>(&response.body) {
                json["UnprocessedItems"] = serde_json::json!({ table: items });
                response = response.with_body(json.to_string().into_bytes());
            }
        }
        if client.write_all(&response.bytes()).await.is_err() {
            return;
        }
    }
}

/// Splits a BatchWriteItem request: the first half is forwarded, the second
/// is returned (table and items) to be reported unprocessed.
fn split_batch(request: Message) -> (Message, Option<(String, Value)>) {
    let Ok(mut json) = serde_json::from_slice::<Value>(&request.body) else {
        return (request, None);
    };
    let Some((table, items)) = json["RequestItems"]
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(t, v)| (t.clone(), v.as_array().cloned().unwrap_or_default()))
    else {
        return (request, None);
    };
    if items.len() < 2 {
        return (request, None);
    }
    let (written, rest) = items.split_at(items.len() / 2);
    json["RequestItems"][&table] = Value::Array(written.to_vec());
    let forwarded = request.with_body(json.to_string().into_bytes());
    (forwarded, Some((table, Value::Array(rest.to_vec()))))
}
