//! The `device-events` Lambda: AWS IoT Jobs requests from devices, through
//! IoT rules (see `courier_functions::device_events`).

use courier_functions::{config, device_events, logging, Config};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

// Lambda hands an execution environment one event at a time: one thread
// serves it, and no worker threads are started at init (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, publisher) = config.courier_and_publisher();
    let (courier, publisher, root) = (&courier, &publisher, &config.topic_root);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        device_events::handle(courier, root, publisher, event, config::now()).await
    }))
    .await
}
