//! LOCAL-ONLY helpers for `make run` and `make test`:
//!
//! - `courier-local create-table TABLE`: Courier's table (TTL, indexes,
//!   stream) in DynamoDB Local, from the definition the store itself declares.
//! - `courier-local create-group GROUP THING...`: a thing group with those
//!   things in the IoT control plane (moto locally; `MOTO_ENDPOINT`), so
//!   jobs can target it.
//! - `courier-local bridge`: the stand-ins for IoT rules, the IoT data plane,
//!   the DynamoDB stream event source mapping and the scheduler
//!   (`courier_local::bridge`), around functions running under
//!   `cargo lambda watch`.
//!
//! Environment: DYNAMODB_ENDPOINT, and for `bridge` MQTT_BROKER (host:port),
//! INVOKE_URL (cargo lambda watch), PUBLISH_PORT (the data-plane stand-in),
//! TABLE_NAME, TOPIC_ROOT and COMMANDS_ROOT (optional), SWEEP_EVERY_MS
//! (default 1000).

use courier_core::commands;
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_functions::store::table;
use courier_local::{aws, bridge};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create-table", table] => {
            let client = aws::client().await;
            table::create_table(&client, table).await?;
            println!(
                "created table {table} (TTL on `ttl`, stream of new images) at {}",
                aws::endpoint()
            );
            Ok(())
        }
        ["create-group", group, things @ ..] => {
            let iot = aws::iot_client().await;
            iot.create_thing_group()
                .thing_group_name(*group)
                .send()
                .await?;
            for thing in things {
                iot.create_thing().thing_name(*thing).send().await?;
                iot.add_thing_to_thing_group()
                    .thing_group_name(*group)
                    .thing_name(*thing)
                    .send()
                    .await?;
            }
            println!("thing group {group} with {} things", things.len());
            Ok(())
        }
        ["bridge"] => bridge().await,
        _ => Err(
            "usage: courier-local create-table TABLE | create-group GROUP THING... | bridge".into(),
        ),
    }
}

/// The SAM template, whose stream event's filter the bridge applies.
const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");

async fn bridge() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let broker = var("MQTT_BROKER")?;
    let invoke = var("INVOKE_URL")?;
    let table = var("TABLE_NAME")?;
    let publish_port: u16 = var("PUBLISH_PORT")?.parse()?;
    let root =
        TopicRoot::parse(&std::env::var("TOPIC_ROOT").unwrap_or_else(|_| DEFAULT_ROOT.into()))?;
    let commands_root = TopicRoot::parse(
        &std::env::var("COMMANDS_ROOT").unwrap_or_else(|_| commands::DEFAULT_ROOT.into()),
    )?;
    let every = Duration::from_millis(
        std::env::var("SWEEP_EVERY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    // The template's stream filter, applied as Lambda applies it.
    let filters = courier_local::filter::template_patterns(TEMPLATE)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", publish_port)).await?;
    eprintln!(
        "courier-local bridge: rules {broker} -> {invoke}/device-events; data plane :{publish_port} -> {broker}; stream of {table} -> dispatcher ({} filter patterns); sweeper every {every:?}",
        filters.len()
    );
    tokio::select! {
        () = bridge::run_rules(&broker, &invoke, &root, &commands_root) => {}
        () = bridge::run_data_plane(listener, &broker) => {}
        () = bridge::run_event_source(&table, &invoke, &filters) => {}
        () = bridge::run_scheduler(&invoke, every) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
