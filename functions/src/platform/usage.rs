//! USAGE of one invocation, for the cost and latency benchmarks and for
//! anyone asking where a request's time went: the handler's time, the time
//! spent in DynamoDB and in the IoT data plane (an SDK interceptor on those
//! clients), the messages published with the 5 KB units AWS IoT bills them
//! in, and the capacity units the store's meter counted.
//!
//! With `USAGE_REPORT=on` each invocation ends with one JSON line on stdout,
//! `{"courierUsage": {...}}`, and the api answers with a `Server-Timing`
//! header (browsers' developer tools show it). Off by default: a deployment
//! pays CloudWatch Logs for every line. Reads the monotonic clock; no other
//! I/O besides that line.
//!
//! The counters are process-wide: Lambda hands an execution environment one
//! event at a time, so between [`UsageReport::around`]'s start and end they
//! belong to that one invocation.

use crate::platform::capacity::CapacityMeter;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// AWS IoT Core bills a message per started 5 KB of payload.
pub const BILLED_MESSAGE_BYTES: usize = 5 * 1024;

/// The AWS service a client calls, for the per-service times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    IotDataPlane,
}

#[derive(Debug, Default)]
struct Counters {
    dynamodb_calls: AtomicU64,
    dynamodb_micros: AtomicU64,
    publish_calls: AtomicU64,
    publish_micros: AtomicU64,
    /// Billed message units of what was published (5 KB each).
    message_units: AtomicU64,
}

/// The DynamoDB operations of the invocation, in order (`PutItem`, ...).
static OPERATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

static COUNTERS: Counters = Counters {
    dynamodb_calls: AtomicU64::new(0),
    dynamodb_micros: AtomicU64::new(0),
    publish_calls: AtomicU64::new(0),
    publish_micros: AtomicU64::new(0),
    message_units: AtomicU64::new(0),
};

fn take(counter: &AtomicU64) -> u64 {
    counter.swap(0, Ordering::Relaxed)
}

fn take_operations() -> Vec<String> {
    OPERATIONS
        .lock()
        .map(|mut operations| std::mem::take(&mut *operations))
        .unwrap_or_default()
}

/// Counts one message published, of `bytes` of topic and payload (the
/// publisher calls it).
pub fn record_message(bytes: usize) {
    COUNTERS
        .message_units
        .fetch_add(message_units(bytes), Ordering::Relaxed);
}

/// The billed message units of a payload of `bytes` (an empty one is one).
pub fn message_units(bytes: usize) -> u64 {
    bytes.div_ceil(BILLED_MESSAGE_BYTES).max(1) as u64
}

/// Times every call a client makes, retries included.
#[derive(Debug)]
pub struct Timing(pub Service);

#[derive(Debug, Clone, Copy)]
struct CallStarted(Instant);

impl Storable for CallStarted {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Timing {
    fn name(&self) -> &'static str {
        "CourierUsageTiming"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(CallStarted(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(CallStarted(started)) = cfg.load::<CallStarted>() {
            let micros = started.elapsed().as_micros() as u64;
            let (calls, time) = match self.0 {
                Service::DynamoDb => (&COUNTERS.dynamodb_calls, &COUNTERS.dynamodb_micros),
                Service::IotDataPlane => (&COUNTERS.publish_calls, &COUNTERS.publish_micros),
            };
            calls.fetch_add(1, Ordering::Relaxed);
            time.fetch_add(micros, Ordering::Relaxed);
            if self.0 == Service::DynamoDb {
                let name = cfg.load::<Metadata>().map(|m| m.name().to_owned());
                if let (Some(name), Ok(mut operations)) = (name, OPERATIONS.lock()) {
                    operations.push(name);
                }
            }
        }
        Ok(())
    }
}

/// What one invocation used.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub function: &'static str,
    /// The handler's time, start to answer (what Lambda bills, before its
    /// rounding up to the millisecond).
    pub handler_ms: f64,
    pub dynamodb_calls: u64,
    /// Their operations, in order.
    pub dynamodb_operations: Vec<String>,
    /// Summed over the calls (concurrent calls overlap).
    pub dynamodb_ms: f64,
    pub write_units: f64,
    pub read_units: f64,
    pub publishes: u64,
    pub publish_ms: f64,
    pub message_units: u64,
}

impl Report {
    /// The `Server-Timing` header value (milliseconds).
    pub fn server_timing(&self) -> String {
        format!(
            "handler;dur={:.2}, dynamodb;dur={:.2};desc=\"{} calls\", publish;dur={:.2};desc=\"{} messages\"",
            self.handler_ms, self.dynamodb_ms, self.dynamodb_calls, self.publish_ms, self.publishes
        )
    }
}

/// Reports a function's invocations when enabled; otherwise only runs them.
#[derive(Debug, Clone, Copy)]
pub struct UsageReport {
    function: &'static str,
    enabled: bool,
}

impl UsageReport {
    pub fn new(function: &'static str, enabled: bool) -> Self {
        Self { function, enabled }
    }

    /// Runs one invocation and, when enabled, prints its usage line; its
    /// business metrics (EMF) are printed in any case.
    pub async fn around<F: Future>(self, meter: &CapacityMeter, work: F) -> F::Output {
        let Some(started) = self.start(meter) else {
            let output = work.await;
            self.metrics();
            return output;
        };
        let output = work.await;
        self.finish(meter, started);
        self.metrics();
        output
    }

    fn metrics(self) {
        crate::platform::metrics::flush(self.function, crate::platform::clock::now().millis());
    }

    /// [`Self::around`] for the api, adding the `Server-Timing` header.
    pub async fn around_http<E>(
        self,
        meter: &CapacityMeter,
        work: impl Future<Output = Result<lambda_http::Response<lambda_http::Body>, E>>,
    ) -> Result<lambda_http::Response<lambda_http::Body>, E> {
        let Some(started) = self.start(meter) else {
            let output = work.await;
            self.metrics();
            return output;
        };
        let mut output = work.await;
        let report = self.finish(meter, started);
        self.metrics();
        if let Ok(response) = &mut output {
            if let Ok(value) = report.server_timing().parse() {
                response.headers_mut().insert("server-timing", value);
            }
        }
        output
    }

    fn start(self, meter: &CapacityMeter) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        // Whatever init or an earlier failure left belongs to no invocation.
        meter.reset();
        take_operations();
        for counter in [
            &COUNTERS.dynamodb_calls,
            &COUNTERS.dynamodb_micros,
            &COUNTERS.publish_calls,
            &COUNTERS.publish_micros,
            &COUNTERS.message_units,
        ] {
            take(counter);
        }
        Some(Instant::now())
    }

    /// Ends an invocation's count and prints its usage line.
    fn finish(self, meter: &CapacityMeter, started: Instant) -> Report {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let report = Report {
            function: self.function,
            handler_ms: started.elapsed().as_secs_f64() * 1000.0,
            dynamodb_calls: take(&COUNTERS.dynamodb_calls),
            dynamodb_operations: take_operations(),
            dynamodb_ms: ms(take(&COUNTERS.dynamodb_micros)),
            write_units: meter.write_units(),
            read_units: meter.read_units(),
            publishes: take(&COUNTERS.publish_calls),
            publish_ms: ms(take(&COUNTERS.publish_micros)),
            message_units: take(&COUNTERS.message_units),
        };
        meter.reset();
        println!("{}", serde_json::json!({ "courierUsage": report }));
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_billed_per_started_5_kb() {
        assert_eq!(message_units(0), 1);
        assert_eq!(message_units(5 * 1024), 1);
        assert_eq!(message_units(5 * 1024 + 1), 2);
        assert_eq!(message_units(12 * 1024), 3);
    }

    #[test]
    fn the_server_timing_header_names_each_part() {
        let report = Report {
            function: "api",
            handler_ms: 4.5,
            dynamodb_calls: 2,
            dynamodb_operations: vec!["PutItem".into(), "UpdateItem".into()],
            dynamodb_ms: 3.25,
            write_units: 2.0,
            read_units: 0.0,
            publishes: 1,
            publish_ms: 0.5,
            message_units: 1,
        };
        assert_eq!(
            report.server_timing(),
            "handler;dur=4.50, dynamodb;dur=3.25;desc=\"2 calls\", publish;dur=0.50;desc=\"1 messages\""
        );
    }
}
