//! The `dispatcher` Lambda: the table's DynamoDB stream: delivery and
//! device notifications (see `courier_functions::dispatcher`).

use courier_functions::{config, dispatcher, logging, Config};
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
        dispatcher::handle(courier, root, publisher, groups, event, config::now()).await
    }))
    .await
}
