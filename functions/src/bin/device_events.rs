//! The `device-events` Lambda: device status reports from an IoT rule (see
//! `courier_functions::device_events`).

use courier_functions::{config, device_events, Config};
use lambda_runtime::{run, service_fn, tracing, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let courier = Config::from_env()?.courier().await;
    let courier = &courier;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        device_events::handle(courier, event, config::now()).await
    }))
    .await
}
