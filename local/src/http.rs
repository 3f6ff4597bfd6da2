//! HTTP on loopback, on hyper: the calls the tools and tests make to the
//! functions under `cargo lambda watch` (Lambda's Invoke API and the HTTP
//! API), bounded in time so that a server that never answers fails the
//! caller instead of hanging it. Does I/O.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// How long a call may take before it counts as unanswered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A pooled HTTP/1.1 client. Build one per task (or per runtime): its
/// connections belong to the runtime that made them.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    // Without TCP_NODELAY a request written in two segments waits for the
    // server's delayed ACK (40 ms on Linux): that was most of the update
    // path's latency through the rules stand-in.
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// `method url` with `body` (JSON): the status and the whole body.
pub async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
    let reply = exchange(client, method, url, body).await?;
    Ok((reply.status, reply.body))
}

/// An HTTP answer: status, the `Server-Timing` header if any, the body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub server_timing: Option<String>,
    pub body: Vec<u8>,
}

/// [`request`], keeping the `Server-Timing` header.
pub async fn exchange(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> Result<Reply, String> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let call = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let server_timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status,
            server_timing,
            body: body.to_vec(),
        })
    };
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| format!("{method} {url}: no complete answer within {CALL_TIMEOUT:?}"))?
}

/// Invokes `function` under `cargo lambda watch` through the Lambda Invoke
/// API it emulates (`invoke_url` is `http://127.0.0.1:PORT`). The function's
/// result, or its error payload as `Err`.
pub async fn invoke(invoke_url: &str, function: &str, event: &Value) -> Result<Value, String> {
    invoke_with(&client(), invoke_url, function, event).await
}

/// [`invoke`] on a client of the caller's.
pub async fn invoke_with(
    client: &HttpClient,
    invoke_url: &str,
    function: &str,
    event: &Value,
) -> Result<Value, String> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        invoke_url.trim_end_matches('/')
    );
    let (status, body) = request(client, "POST", &url, event.to_string().into_bytes())
        .await
        .map_err(|e| format!("invoke {function}: {e}"))?;
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    if status >= 300 || value.get("errorType").is_some() {
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
    call_api_with(&client(), base, method, path, body).await
}

/// [`call_api`] on a client of the caller's.
pub async fn call_api_with(
    client: &HttpClient,
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let (status, bytes) = request(client, method, &url, body.into_bytes()).await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// One part of a `Server-Timing` header (`name;dur=ms`), in milliseconds.
pub fn server_timing_ms(header: &str, name: &str) -> Option<f64> {
    header.split(',').find_map(|part| {
        let mut fields = part.trim().split(';');
        (fields.next()? == name)
            .then(|| fields.find_map(|f| f.trim().strip_prefix("dur=")?.parse().ok()))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_timing_part_is_read_by_name() {
        let header = "handler;dur=4.50, dynamodb;dur=3.25;desc=\"2 calls\", publish;dur=0.50";
        assert_eq!(server_timing_ms(header, "handler"), Some(4.5));
        assert_eq!(server_timing_ms(header, "dynamodb"), Some(3.25));
        assert_eq!(server_timing_ms(header, "publish"), Some(0.5));
        assert_eq!(server_timing_ms(header, "broker"), None);
    }
}
