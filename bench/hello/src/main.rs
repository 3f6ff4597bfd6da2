//! A minimal lambda_runtime function as the templates write it (multi-thread
//! tokio): echoes its event. The yardstick for
//! Courier's cold starts (`make bench`, `bench-coldstart`), built with the
//! same release profile. No I/O beyond the Lambda runtime API.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
