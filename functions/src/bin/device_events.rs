//! The `device-events` Lambda: AWS IoT Jobs requests from devices, through
//! IoT rules (`courier_functions::entry::device_events`).

use courier_functions::app;
use courier_functions::entry::device_events::{self, IotRuleEvent};
use courier_functions::platform::{clock, config::Config, logging, usage::UsageReport};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// One event at a time per environment: a current-thread runtime (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, publisher) = &app::device_events(&config);
    let root = &config.topic_root;
    let usage = UsageReport::new("device-events", config.usage_report);
    run(service_fn(
        move |event: LambdaEvent<IotRuleEvent>| async move {
            let handled = device_events::handle(courier, root, publisher, event, clock::now());
            usage.around(courier.store().meter(), handled).await
        },
    ))
    .await
}
