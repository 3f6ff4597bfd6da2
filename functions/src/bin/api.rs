//! The `api` Lambda: Courier's HTTP API (see `courier_functions::api`).

use courier_functions::{api, config, logging, Config};
use lambda_http::{run, service_fn, Error, Request};

// Lambda hands an execution environment one event at a time: one thread
// serves it, and no worker threads are started at init (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let settings = config.api_settings();
    let (courier, groups) = config.courier_and_groups();
    let (courier, groups, settings) = (&courier, &groups, &settings);
    run(service_fn(move |request: Request| async move {
        api::handle(courier, groups, settings, request, config::now()).await
    }))
    .await
}
