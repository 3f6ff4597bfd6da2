//! The `api` Lambda: Courier's HTTP API (`courier_functions::entry::api`).

use courier_functions::app;
use courier_functions::entry::api::routes;
use courier_functions::platform::{clock, config::Config, logging, usage::UsageReport};
use lambda_http::{run, service_fn, Error, Request};

// Lambda hands an execution environment one event at a time: one thread
// serves it, and no worker threads are started at init (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, groups, publisher, settings) = &app::api(&config);
    let usage = UsageReport::new("api", config.usage_report);
    run(service_fn(move |request: Request| async move {
        let handled = routes::handle(courier, groups, publisher, settings, request, clock::now());
        usage.around_http(courier.store().meter(), handled).await
    }))
    .await
}
