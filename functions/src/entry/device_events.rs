//! ENTRY POINT of the `device-events` Lambda: every AWS IoT Jobs request a
//! device publishes (`get`, `start-next`, `{jobId}/get`, `{jobId}/update`),
//! every AWS IoT commands response, and the devices' lifecycle events
//! (`$aws/events/presence/...`, see `crate::ops::presence`), delivered by
//! IoT rules, answered (`crate::ops::device_jobs`) on
//! `.../accepted` or `.../rejected` with notifications after, and published
//! here. I/O through the operations and the publisher.
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

use crate::ops::device_jobs::DeviceAnswer;
use crate::ops::device_updates::Delivery;
use crate::ops::Courier;
use crate::platform::publisher::{publish_all, Message, Publisher};
use crate::store::Store;
use base64::Engine as _;
use courier_core::protocol::TopicRoot;
use courier_core::Timestamp;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};

/// What each IoT rule delivers (the rules' SELECT in infra/template.yaml).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IotRuleEvent {
    /// The MQTT topic: who asks (the thing) and for what.
    #[serde(default)]
    pub topic: String,
    /// The message as sent, base64 (so a payload that is not JSON reaches
    /// the function and is answered InvalidJson).
    #[serde(default)]
    pub payload: Option<String>,
    /// When IoT Core received the message: the rule's `timestamp()`, epoch ms.
    #[serde(default)]
    pub received_at: Option<i64>,
}

/// What was published, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Published {
    pub published: Vec<Message>,
}

/// Handles one device request.
pub async fn handle<S: Store, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    event: LambdaEvent<IotRuleEvent>,
    now: Timestamp,
) -> Result<Published, Diagnostic> {
    let rule = &event.payload;
    let topic = rule.topic.as_str();
    let payload = match &rule.payload {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|_| encoded.clone().into_bytes()),
        None => Vec::new(),
    };
    let delivery = Delivery {
        request_id: &event.context.request_id,
        received_at: rule.received_at.map(Timestamp::from_millis),
    };
    // Boxed: the answer's future is deep enough to exceed the compiler's
    // layout recursion limit when inlined into the runtime's.
    // A lifecycle event, a commands response, else a Jobs request.
    let answer: Result<DeviceAnswer, _> =
        match Box::pin(courier.presence_message(root, topic, &payload, now)).await {
            Some(answer) => answer.map(DeviceAnswer::from),
            None => match Box::pin(courier.command_message(topic, &payload, delivery, now)).await {
                Some(answer) => answer.map(DeviceAnswer::from),
                None => {
                    Box::pin(courier.device_message(root, topic, &payload, delivery, now)).await
                }
            },
        };
    // Storage unavailable or throttled: Lambda retries the event (the same
    // request id, so an update is still applied once).
    let answer = answer.map_err(Diagnostic::from)?;
    let mut messages = answer.replies;
    publish(courier, root, publisher, topic, &messages).await?;
    // The replies are out; the notifications after them cost a Query and a
    // read, which the device's answer does not wait for.
    if let Some(thing) = &answer.notify {
        let notices = match courier.device_notifications(root, thing, now).await {
            Ok(notices) => notices,
            Err(err) => {
                tracing::error!(error = %err, %topic, "notifications not computed; the request is retried");
                return Err(Diagnostic::from(err));
            }
        };
        publish(courier, root, publisher, topic, &notices).await?;
        messages.extend(notices);
    }
    Ok(Published {
        published: messages,
    })
}

/// Publishes `messages` in order. On a failure, what the device was told
/// did not reach it, so it is forgotten (the next publisher tells it again,
/// best effort) and the error is the answer: Lambda retries the request.
async fn publish<S: Store, P: Publisher>(
    courier: &Courier<S>,
    root: &TopicRoot,
    publisher: &P,
    topic: &str,
    messages: &[Message],
) -> Result<(), Diagnostic> {
    let Err(err) = publish_all(publisher, messages).await else {
        return Ok(());
    };
    tracing::error!(error = %err, %topic, "publishing the answer failed; returning the error so the request is retried");
    if let Some(thing) = root.thing_of(topic) {
        if let Err(forget) = courier.forget_told_next(&thing, None).await {
            tracing::warn!(error = %forget, "could not forget what the device was told");
        }
    }
    Err(Diagnostic {
        error_type: "PublishFailed".into(),
        error_message: err.to_string(),
    })
}
