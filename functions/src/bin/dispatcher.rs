//! The `dispatcher` Lambda: the table's DynamoDB stream, delivery and
//! device notifications (`courier_functions::entry::dispatcher`).

use aws_lambda_events::event::dynamodb::Event;
use courier_functions::app;
use courier_functions::entry::dispatcher;
use courier_functions::platform::{clock, config::Config, logging, usage::UsageReport};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// One event at a time per environment: a current-thread runtime (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, publisher, groups) = &app::job_runner(&config);
    let root = &config.topic_root;
    let usage = UsageReport::new("dispatcher", config.usage_report);
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        let handled = dispatcher::handle(courier, root, publisher, groups, event, clock::now());
        usage.around(courier.store().meter(), handled).await
    }))
    .await
}
