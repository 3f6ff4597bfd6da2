//! The `device-events` Lambda: every AWS IoT Jobs request a device publishes
//! (`get`, `start-next`, `{jobId}/get`, `{jobId}/update`), delivered by IoT
//! rules, answered on `.../accepted` or `.../rejected` with notifications
//! after. I/O through the service and the publisher.
//!
//! The event is what each rule delivers (infra/template.yaml), e.g.
//! `SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS receivedAt FROM 'courier/things/+/jobs/+/update'`:
//! the payload untouched (so invalid JSON can be answered `InvalidJson`),
//! the topic, from which alone the thing name is taken, and when IoT Core
//! received the message (an update older than one already applied is a
//! redelivery and changes nothing).
//!
//! Every request gets its answer on `.../accepted` or `.../rejected`, except
//! while storage is unavailable or throttled: then, as when publishing the
//! answer fails, the handler returns an error so that Lambda retries the
//! event (twice, then the dead-letter queue). A retry carries the same
//! request id, the dedupe token of updates without a clientToken, so they
//! are applied once.

use crate::publisher::{publish_all, Publisher};
use crate::service::{Courier, Delivery};
use crate::store::Store;
use base64::Engine as _;
use courier_core::protocol::TopicRoot;
use courier_core::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// Handles one device request; `Ok` lists what was published, for logs and
/// tests.
pub async fn handle<S: Store, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    event: LambdaEvent<Value>,
    now: Timestamp,
) -> Result<Value, Diagnostic> {
    let topic = event
        .payload
        .get("topic")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let payload = match event.payload.get("payload") {
        Some(Value::String(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|_| encoded.clone().into_bytes()),
        _ => Vec::new(),
    };
    let delivery = Delivery {
        request_id: &event.context.request_id,
        received_at: event
            .payload
            .get("receivedAt")
            .and_then(Value::as_i64)
            .map(Timestamp::from_millis),
    };
    // Boxed: the answer's future is deep enough to exceed the compiler's
    // layout recursion limit when inlined into the runtime's.
    let messages =
        match Box::pin(courier.device_message(root, topic, &payload, delivery, now)).await {
            Ok(messages) => messages,
            // Storage unavailable or throttled: Lambda retries the event (the
            // same request id, so an update is still applied once).
            Err(err) => return Err(Diagnostic::from(err)),
        };
    if let Err(err) = publish_all(publisher, &messages).await {
        tracing::error!(error = %err, %topic, "publishing the answer failed; returning the error so the request is retried");
        return Err(Diagnostic {
            error_type: "PublishFailed".into(),
            error_message: err.to_string(),
        });
    }
    Ok(json!({
        "published": messages.iter().map(|m| json!({"topic": m.topic, "payload": m.payload})).collect::<Vec<_>>()
    }))
}
