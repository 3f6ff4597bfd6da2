//! The HTTP calls: one blocking client (ureq over rustls), JSON in and
//! out, and the API's error body turned into a message. I/O.

use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// The API at a base URL, with the caller's token.
#[derive(Debug)]
pub struct Api {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// Why a call did not give a 2xx.
#[derive(Debug)]
pub enum ApiError {
    /// The API answered with an error: status, its `code` and `message`.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer (connection refused, timeout, not JSON …).
    Unreachable(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused {
                status,
                code,
                message,
            } => write!(f, "{code} ({status}): {message}"),
            Self::Unreachable(why) => write!(f, "the API did not answer: {why}"),
        }
    }
}

impl std::error::Error for ApiError {}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Self {
        let agent = ureq::Agent::config_builder()
            // Error statuses are answers: their JSON body says what was wrong.
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .user_agent(concat!("courier-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    pub fn get(&self, path: &str) -> Result<Value, ApiError> {
        let request = self.agent.get(format!("{}{path}", self.base));
        answer(self.authorized(request).call())
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        answer(self.authorized(request).send(body.to_string()))
    }

    /// `request` with the caller's token, if there is one.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    }
}

fn answer(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Value, ApiError> {
    let mut response = response.map_err(|e| ApiError::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|_| {
            ApiError::Unreachable(format!("a {status} answer that is not JSON: {text}"))
        })?
    };
    if (200..300).contains(&status) {
        return Ok(body);
    }
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    Err(ApiError::Refused {
        status,
        code: field("code"),
        message: field("message"),
    })
}

/// One path segment, percent-encoded (ids are plain, but a typo should
/// reach the API as the 404 or 400 it is, not as another route).
pub fn segment(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, UNRESERVED).to_string()
}

/// Left as they are: letters, digits and `-._~:` (every id's alphabet).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');

/// `?a=1&b=2` from the pairs that are set.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}
