//! THE PLATFORM PIECES: what the rest runs on, none of it Courier's rules.
//! Configuration from the environment, the AWS clients (with the TLS trust
//! store), logging, the wall clock, id generation, publishing to devices
//! (IoT data plane), thing groups (IoT control plane), the accounting of
//! what an invocation used (capacity units, time per service, messages) and
//! the business metrics it writes (EMF), presigned S3 URLs for artifacts.
//! Each module says
//! whether it does I/O; none imports anything above this layer.

pub mod aws;
pub mod capacity;
pub mod clock;
pub mod config;
pub mod ids;
pub mod logging;
pub mod metrics;
pub mod presign;
pub mod publisher;
pub mod thing_groups;
pub mod usage;
