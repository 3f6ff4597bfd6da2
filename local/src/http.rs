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
    Client::builder(TokioExecutor::new()).build_http()
}

/// `method url` with `body` (JSON): the status and the whole body.
pub async fn request(
    client: &HttpClient,
    method: &str,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), String> {
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
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?
            .to_bytes();
        Ok((status, body.to_vec()))
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
