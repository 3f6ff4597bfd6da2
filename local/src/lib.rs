//! courier-local: LOCAL-ONLY development tools, never deployed. The
//! stand-ins for the AWS services around the functions (`courier-local
//! bridge`), the simulated fleet (`courier-device`), the benchmarks
//! (`bench*`), and what the test suite shares with them. Does I/O.
//!
//! - [`accounting`]: the functions' usage lines and the broker's PUBLISH
//!   log, read for the latency and cost benchmarks
//! - [`aws`]: clients for DynamoDB Local, its streams and moto; a fresh table
//! - [`bridge`]: IoT rules, the IoT data plane, the stream's event source
//!   mapping and the scheduler, around functions under `cargo lambda watch`
//! - [`stream`]: THE stream poller (bridge, tests and benchmarks)
//! - [`filter`]: the stream's event filter, read from the template
//! - [`events`]: Lambda events as the platform delivers them
//! - [`http`]: calls to the functions (Invoke API, HTTP API) on hyper
//! - [`mqtt`]: a device over MQTT (rumqttc), speaking the Jobs protocol
//! - [`chaos`]: a fault-injecting proxy in front of DynamoDB Local

pub mod accounting;
pub mod aws;
pub mod bridge;
pub mod chaos;
pub mod events;
pub mod filter;
pub mod http;
pub mod mqtt;
pub mod stream;
