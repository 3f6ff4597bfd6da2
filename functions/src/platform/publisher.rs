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

/// One MQTT message to publish: JSON, QoS 1, with the MQTT 5 content type
/// `application/json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Message {
    pub topic: String,
    pub payload: Json,
    /// MQTT 5's message expiry interval, in seconds: the broker drops the
    /// message from a session it waited in longer (an AWS IoT commands
    /// request, which expires with its execution). `None`: it never does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry_seconds: Option<u32>,
}

impl Message {
    /// A message that does not expire.
    pub fn new(topic: String, payload: Json) -> Self {
        Self {
            topic,
            payload,
            message_expiry_seconds: None,
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

/// Every payload Courier publishes is JSON; MQTT 5 devices (the AWS IoT
/// Device SDK's commands client reads it) see it as the content type.
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
        let bytes = serde_json::to_vec(&message.payload).map_err(|e| PublishError {
            topic: topic.to_owned(),
            message: e.to_string(),
        })?;
        // AWS IoT meters the topic with the payload; a failed publish is not billed.
        let metered = bytes.len() + topic.len();
        self.client
            .publish()
            .topic(topic)
            .qos(1)
            .content_type(CONTENT_TYPE)
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
