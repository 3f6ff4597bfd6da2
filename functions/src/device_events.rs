//! The `device-events` Lambda: device status reports delivered by an IoT
//! rule. I/O only through the service.
//!
//! The event is what this rule delivers (topic → fields):
//! `SELECT *, topic(3) AS thingName, topic(5) AS executionId FROM 'courier/things/+/jobs/+/update'`
//! i.e. the device's UpdateJobExecution payload (status, statusDetails,
//! statusReason, result, expectedVersion, clientToken) plus the thing and the
//! execution named by the topic. The thing name comes from the topic only.
//!
//! Permanent failures (bad input, unknown execution, refused transition) are
//! logged and acknowledged: retrying cannot help, so the rule must not retry
//! forever. Transient failures are returned as errors so Lambda retries the
//! invocation; the retry carries the same request id, which is the update's
//! dedupe token when it has no clientToken, so it is applied once.

use crate::error::ServiceError;
use crate::service::{Courier, DeviceUpdateOutcome};
use crate::store::Store;
use courier_core::Timestamp;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};

/// Handles one device event; `Ok` carries what was done, for logs and tests.
pub async fn handle<S: Store>(
    courier: &Courier<S>,
    event: LambdaEvent<Value>,
    now: Timestamp,
) -> Result<Value, ServiceError> {
    let payload = event.payload;
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (thing, execution_id) = (field("thingName"), field("executionId"));
    match courier
        .device_update(
            &thing,
            &execution_id,
            &payload,
            &event.context.request_id,
            now,
        )
        .await
    {
        Ok(DeviceUpdateOutcome::Applied { execution: e, .. }) => Ok(json!({
            "outcome": "applied", "executionId": e.execution_id, "status": e.status, "version": e.version
        })),
        Ok(DeviceUpdateOutcome::Duplicate(e)) => Ok(json!({
            "outcome": "duplicate", "executionId": e.execution_id, "status": e.status, "version": e.version
        })),
        Err(err) if err.is_retryable() => {
            tracing::error!(code = err.code(), error = ?err, %thing, %execution_id, "device update failed; returning the error so it is retried");
            Err(err)
        }
        Err(err) => {
            tracing::warn!(code = err.code(), message = %err, %thing, %execution_id, "device update rejected");
            Ok(json!({ "outcome": "rejected", "executionId": execution_id, "error": err.body() }))
        }
    }
}
