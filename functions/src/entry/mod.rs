//! THE LAMBDA ENTRY POINTS, one per trigger, each taking its event typed
//! and handing it to the operations (`crate::ops`):
//!
//! - [`api`]: API Gateway HTTP API requests (the `api` binary)
//! - [`device_events`]: device MQTT requests through IoT rules (`device-events`)
//! - [`dispatcher`]: the table's stream (`dispatcher`)
//! - [`sweeper`]: the one-minute schedule (`sweeper`)
//!
//! I/O only through the operations and the publisher.

pub mod api;
pub mod device_events;
pub mod dispatcher;
pub mod sweeper;
