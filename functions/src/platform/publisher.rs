//! PUBLISHING to devices: one MQTT message ([`Message`]), the [`Publisher`]
//! trait the operations are generic over, its implementation on the AWS
//! IoT data plane (`Publish`, QoS 1), and which optional messages a
//! deployment publishes ([`OptionalMessages`]). Does I/O.
//!
//! Locally the same code talks to the local stand-in for the data plane
//! (`courier-local bridge`, which forwards to mosquitto): the SDK's own
//! `AWS_ENDPOINT_URL_IOT_DATA_PLANE` variable points it there.

use aws_sdk_iotdataplane::primitives::Blob;
use courier_core::json::Json;
use std::future::Future;

/// The messages a deployment may turn off to save their price: AWS IoT
/// Core bills each message Courier publishes, whether anyone subscribed to
/// its topic or not. Each is `true` (published) by default, as AWS IoT
/// publishes them. Devices that act on `notify-next` (or on the commands
/// protocol's requests) and backends that read the API work the same
/// without either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalMessages {
    /// AWS IoT Jobs' ListNotification (`{root}/notify`, the pending list)
    /// whenever a device's pending list changes (`LIST_NOTIFICATIONS`).
    pub list_notifications: bool,
    /// AWS IoT commands' status events (`{events}/{commandId}/{status}`)
    /// on every change of a commands-protocol execution
    /// (`COMMAND_STATUS_EVENTS`).
    pub command_status_events: bool,
}

impl Default for OptionalMessages {
    fn default() -> Self {
        Self {
            list_notifications: true,
            command_status_events: true,
        }
    }
}

/// One MQTT message to publish, QoS 1: JSON with the MQTT 5 content type
/// `application/json`, or bytes of their own content type.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    pub topic: String,
    pub payload: Payload,
    /// MQTT 5's message expiry interval, in seconds: the broker drops the
    /// message from a session it waited in longer (an AWS IoT commands
    /// request, which expires with its execution). `None`: it never does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry_seconds: Option<u32>,
}

impl Message {
    /// A JSON message that does not expire.
    pub fn new(topic: String, payload: Json) -> Self {
        Self {
            topic,
            payload: Payload::Json(payload),
            message_expiry_seconds: None,
        }
    }
}

/// What a message carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Everything Courier writes itself.
    Json(Json),
    /// Bytes sent as they are: an AWS IoT commands request from a static
    /// payload, or one whose command's output format is CBOR.
    Bytes {
        content: Vec<u8>,
        content_type: String,
    },
}

impl Payload {
    /// Bytes of this content type, sent as they are.
    pub fn bytes(content: Vec<u8>, content_type: &str) -> Self {
        Self::Bytes {
            content,
            content_type: content_type.to_owned(),
        }
    }

    /// The JSON, or `Json::Null` for bytes.
    pub fn json(&self) -> &Json {
        const NULL: &Json = &Json::Null;
        match self {
            Self::Json(json) => json,
            Self::Bytes { .. } => NULL,
        }
    }

    /// The bytes published and their MQTT 5 content type.
    pub fn encoded(&self) -> Result<(Vec<u8>, &str), serde_json::Error> {
        match self {
            Self::Json(json) => Ok((serde_json::to_vec(json)?, CONTENT_TYPE)),
            Self::Bytes {
                content,
                content_type,
            } => Ok((content.clone(), content_type)),
        }
    }
}

/// JSON as itself; bytes as `{"content": base64, "contentType"}`, as
/// AWS's API shows a blob (for logs and tests).
impl serde::Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Json(json) => json.serialize(serializer),
            Self::Bytes {
                content,
                content_type,
            } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("content", &courier_core::base64::encode(content))?;
                map.serialize_entry("contentType", content_type)?;
                map.end()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("publishing to {topic} failed: {message}")]
pub struct PublishError {
    pub topic: String,
    pub message: String,
}

pub trait Publisher: Send + Sync {
    fn publish(&self, message: &Message) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// Publishes every message, in order; stops at the first failure.
pub async fn publish_all<P: Publisher>(
    publisher: &P,
    messages: &[Message],
) -> Result<(), PublishError> {
    for message in messages {
        publisher.publish(message).await?;
    }
    Ok(())
}

/// The content type of every payload Courier writes (JSON); MQTT 5
/// devices (the AWS IoT Device SDK's commands client reads it) see it.
pub const CONTENT_TYPE: &str = "application/json";

/// The AWS IoT data plane.
#[derive(Debug, Clone)]
pub struct IotDataPublisher {
    client: aws_sdk_iotdataplane::Client,
}

impl IotDataPublisher {
    pub fn new(client: aws_sdk_iotdataplane::Client) -> Self {
        Self { client }
    }
}

impl Publisher for IotDataPublisher {
    async fn publish(&self, message: &Message) -> Result<(), PublishError> {
        let topic = message.topic.as_str();
        let (bytes, content_type) = message.payload.encoded().map_err(|e| PublishError {
            topic: topic.to_owned(),
            message: e.to_string(),
        })?;
        // AWS IoT meters the topic with the payload; a failed publish is not billed.
        let metered = bytes.len() + topic.len();
        self.client
            .publish()
            .topic(topic)
            .qos(1)
            .content_type(content_type)
            .set_message_expiry(message.message_expiry_seconds.map(i64::from))
            .payload(Blob::new(bytes))
            .send()
            .await
            .map(|_| crate::platform::usage::record_message(metered))
            .map_err(|e| PublishError {
                topic: topic.to_owned(),
                message: aws_sdk_iotdataplane::error::DisplayErrorContext(&e).to_string(),
            })
    }
}
