//! The `sweeper` Lambda: deadlines, scheduled releases and job steps, every
//! minute (`courier_functions::entry::sweeper`).

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use courier_functions::app;
use courier_functions::entry::sweeper;
use courier_functions::platform::{clock, config::Config, logging, usage::UsageReport};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// One event at a time per environment: a current-thread runtime (README Benchmarks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = Config::from_env()?;
    let (courier, publisher, groups) = &app::job_runner(&config);
    let root = &config.topic_root;
    let usage = UsageReport::new("sweeper", config.usage_report);
    run(service_fn(
        move |event: LambdaEvent<CloudWatchEvent>| async move {
            let handled = sweeper::handle(courier, root, publisher, groups, event, clock::now);
            usage.around(courier.store().meter(), handled).await
        },
    ))
    .await
}
