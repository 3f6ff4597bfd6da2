//! THE REPLY of an HTTP request: JSON bodies, CORS headers, the request
//! id, and the one place a [`ServiceError`] becomes a response (status and
//! code from core's table, `Retry-After` where retrying helps, `Allow`
//! on a 405). Request
//! bodies are read here too (size limit, JSON). No I/O.

use crate::error::ServiceError;
use courier_core::json::Json;
use courier_core::ValidationCode;
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// Request bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// Cross-origin settings, so browser dashboards on another origin can call.
#[derive(Debug, Clone)]
pub struct Cors {
    pub allow_origin: String,
}

/// The body as JSON: `null` when empty; 413 when too large; 400 when not JSON.
pub fn json_body(request: &Request) -> Result<Json, ServiceError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => return Ok(Json::Null),
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Ok(Json::Null),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ServiceError::validation(
            "",
            ValidationCode::PayloadTooLarge,
            format!(
                "the body is {} bytes; the limit is {MAX_BODY_BYTES}",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ServiceError::validation(
            "",
            ValidationCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// A response under construction.
#[derive(Debug)]
pub struct Reply {
    status: u16,
    body: Body,
    location: Option<String>,
    retry_after: Option<u32>,
    /// A 405's `Allow` header: the methods the path has (RFC 9110).
    allow: Option<&'static str>,
}

impl Reply {
    /// The response to a refused or failed request, logged (at error level
    /// when the fault is ours).
    pub fn error(err: &ServiceError, method: &Method, path: &str) -> Self {
        let code = err.code().as_str();
        if err.status() >= 500 {
            tracing::error!(code, error = %err, detail = ?err, %method, %path, "request failed");
        } else {
            tracing::warn!(code, message = %err, %method, %path, "request refused");
        }
        let mut reply = Self::json(err.status(), &err.body());
        reply.retry_after = err.retry_after();
        if let ServiceError::MethodNotAllowed { allow, .. } = err {
            reply.allow = Some(allow);
        }
        reply
    }

    pub fn json(status: u16, value: &impl Serialize) -> Self {
        let text = serde_json::to_string(value).unwrap_or_else(|_| r#"{"code":"InternalServerException","message":"unserializable response","details":{}}"#.into());
        Self::with_body(status, Body::Text(text))
    }

    /// A body that is JSON already (the OpenAPI document).
    pub fn raw_json(status: u16, text: &'static str) -> Self {
        Self::with_body(status, Body::Text(text.to_owned()))
    }

    pub fn empty(status: StatusCode) -> Self {
        Self::with_body(status.as_u16(), Body::Empty)
    }

    /// A reply with no extra headers yet.
    fn with_body(status: u16, body: Body) -> Self {
        Self {
            status,
            body,
            location: None,
            retry_after: None,
            allow: None,
        }
    }

    pub fn location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    pub fn finish(self, cors: &Cors, request_id: &str) -> Response<Body> {
        let mut response = Response::new(self.body);
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        let mut set = |name: header::HeaderName, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        set(header::CONTENT_TYPE, "application/json");
        set(header::ACCESS_CONTROL_ALLOW_ORIGIN, &cors.allow_origin);
        set(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            "GET, POST, DELETE, OPTIONS",
        );
        set(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, authorization, x-amz-date, x-amz-security-token, x-api-key",
        );
        set(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            "location, x-request-id, retry-after",
        );
        set(header::ACCESS_CONTROL_MAX_AGE, "600");
        if cors.allow_origin != "*" {
            set(header::VARY, "origin");
        }
        if !request_id.is_empty() {
            set(header::HeaderName::from_static("x-request-id"), request_id);
        }
        if let Some(location) = &self.location {
            set(header::LOCATION, location);
        }
        if let Some(seconds) = self.retry_after {
            set(header::RETRY_AFTER, &seconds.to_string());
        }
        if let Some(allow) = self.allow {
            set(header::ALLOW, allow);
        }
        response
    }
}
