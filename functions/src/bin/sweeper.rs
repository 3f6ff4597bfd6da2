//! The `sweeper` Lambda: deadlines and scheduled releases, every minute (see
//! `courier_functions::sweeper`).

use courier_functions::{config, logging, sweeper, Config};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

// Lambda hands an execution environment one event at a time: one thread
// serves it, and no worker threads are started at init (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, publisher, groups) = config.courier_publisher_and_groups();
    let (courier, publisher, groups) = (&courier, &publisher, &groups);
    let root = &config.topic_root;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        sweeper::handle(courier, root, publisher, groups, event, config::now).await
    }))
    .await
}
