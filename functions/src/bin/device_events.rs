//! The `device-events` Lambda: AWS IoT Jobs requests from devices, through
//! IoT rules (`courier_functions::entry::device_events`).

use courier_functions::app;
use courier_functions::entry::device_events::{self, IotRuleEvent};
use courier_functions::platform::{clock, config::Config, logging};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// One event at a time per environment: a current-thread runtime (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, publisher) = &app::device_events(&config);
    let root = &config.topic_root;
    run(service_fn(
        move |event: LambdaEvent<IotRuleEvent>| async move {
            device_events::handle(courier, root, publisher, event, clock::now()).await
        },
    ))
    .await
}
