//! courier-functions: the Lambda functions and what they share.
//!
//! - [`api`]: THE ROUTES (HTTP API, `api` binary)
//! - [`device_events`]: device requests from IoT rules (`device-events` binary)
//! - [`device_protocol`]: the answers to AWS IoT Jobs request topics
//! - [`dispatcher`]: the table stream: delivery and device notifications (`dispatcher` binary)
//! - [`sweeper`]: deadlines and scheduled releases, on a schedule (`sweeper` binary)
//! - [`delivery`]: dispatch, announcements and sweeps (used by both)
//! - [`jobs`]: JOBS — create, read, cancel, and the job runner's steps
//! - [`thing_groups`]: thing-group resolution (AWS IoT control plane)
//! - [`publisher`]: MQTT publishing (AWS IoT data plane)
//! - [`service`]: the operations, generic over [`store::Store`]
//! - [`store::dynamodb`]: THE TABLE LAYOUT and the DynamoDB store
//! - [`error`]: the one error type and its HTTP mapping
//! - [`config`], [`ids`], [`page_token`]: environment, id generation, nextToken sealing
//! - [`logging`]: the functions' log lines and what each level may show
//!
//! Each binary in `src/bin/` only wires these together.

pub mod api;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod device_events;
pub mod device_protocol;
pub mod dispatcher;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod logging;
pub mod page_token;
pub mod publisher;
pub mod service;
pub mod store;
pub mod sweeper;
pub mod thing_groups;

pub use config::Config;
pub use error::ServiceError;
pub use service::Courier;
