//! DEVICE PRESENCE: AWS IoT's lifecycle events
//! (`$aws/events/presence/connected/{clientId}` and `.../disconnected/...`),
//! parsed, and what the service keeps of them. Pure, no I/O.
//!
//! AWS publishes one on every connect and disconnect; an IoT rule hands them
//! to `device-events` (locally, the simulator publishes them, the broker
//! publishing its disconnect as the MQTT will). The client id is taken as
//! the thing name, as AWS recommends devices connect. Events may arrive out
//! of order, so each carries its `timestamp` and only a newer one replaces
//! what is kept.

use crate::ids::ThingName;
use crate::json::{Json, Object};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The lifecycle events' topic prefix.
pub const PRESENCE_PREFIX: &str = "$aws/events/presence/";

/// What is known of a device's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub connected: bool,
    /// When it connected (or disconnected): the event's `timestamp`.
    pub since: Timestamp,
    /// AWS's `disconnectReason` (e.g. `CLIENT_INITIATED_DISCONNECT`,
    /// `MQTT_KEEP_ALIVE_TIMEOUT`) on a disconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<String>,
}

/// A lifecycle event about `thing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    pub thing: ThingName,
    pub presence: Presence,
}

/// Why a message on a presence topic is not a usable event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceError {
    /// Not a lifecycle topic: someone else's message.
    NotPresence,
    /// A lifecycle event that cannot be used (the client id is not a thing
    /// name, or the payload is malformed): why.
    Unusable(String),
}

/// Parses a message on `topic` as a lifecycle event; `now` stands in for a
/// missing `timestamp`.
pub fn parse_event(
    topic: &str,
    payload: &Json,
    now: Timestamp,
) -> Result<PresenceEvent, PresenceError> {
    let rest = topic
        .strip_prefix(PRESENCE_PREFIX)
        .ok_or(PresenceError::NotPresence)?;
    let (kind, client_id) = rest.split_once('/').ok_or(PresenceError::NotPresence)?;
    let connected = match kind {
        "connected" => true,
        "disconnected" => false,
        _ => return Err(PresenceError::NotPresence),
    };
    let thing = ThingName::parse(client_id).map_err(|_| {
        PresenceError::Unusable(crate::text::msg![
            "client id ",
            crate::text::quote(client_id),
            " is not a thing name"
        ])
    })?;
    let empty = Object::new();
    let fields = match payload {
        Json::Object(map) => map,
        _ => &empty,
    };
    let since = fields
        .get("timestamp")
        .and_then(Json::as_f64)
        .and_then(|ms| Timestamp::from_secs_f64(ms / 1000.0))
        .unwrap_or(now);
    let disconnect_reason = fields
        .get("disconnectReason")
        .and_then(Json::as_str)
        .filter(|_| !connected)
        .map(str::to_owned);
    Ok(PresenceEvent {
        thing,
        presence: Presence {
            connected,
            since,
            disconnect_reason,
        },
    })
}

/// The lifecycle topics an IoT rule selects.
pub const PRESENCE_FILTER: &str = "$aws/events/presence/+/+";
