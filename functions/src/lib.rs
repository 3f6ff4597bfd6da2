//! courier-functions: Courier's Lambda functions. The folders are the
//! architecture, top to bottom; a layer imports only those below it
//! (checked by `scripts/check-layout.py` in `make test`):
//!
//! - [`entry`]: THE LAMBDA ENTRY POINTS, one per trigger — [`entry::api`]
//!   (THE ROUTES), [`entry::device_events`], [`entry::dispatcher`],
//!   [`entry::sweeper`]
//! - [`ops`]: THE OPERATIONS, one file per capability — commands,
//!   executions, the device API (`ops::device_jobs`: a device update's whole
//!   path), delivery and deadlines, jobs and the job runner; [`error`] is
//!   their one error type
//! - [`store`]: THE STORE — the traits, and DynamoDB (`store::layout`: THE
//!   TABLE LAYOUT)
//! - [`platform`]: configuration, AWS clients, logging, the clock, ids,
//!   publishing to devices, thing groups
//!
//! [`app`] wires them for the binaries in `src/bin/`, which only read the
//! configuration and start the runtime. The status machine and every rule
//! are in courier-core. This root only declares the modules (no I/O).

pub mod app;
pub mod entry;
pub mod error;
pub mod ops;
pub mod platform;
pub mod store;
