//! `courier-device`: a simulated fleet speaking the AWS IoT Jobs device
//! protocol over MQTT. Each thing connects as itself, takes its next
//! execution (start-next), reports progress with expectedVersion, and ends
//! it — or misbehaves, to exercise every status:
//!
//!   courier-device --broker 127.0.0.1:1883 --things 5 --prefix dev- --mode ok
//!
//! Modes: ok (SUCCEEDED), slow (ok, 10x slower), fail (FAILED), reject
//! (REJECTED), silent (takes it with a 1-minute step timer, then says
//! nothing: the sweeper times it out), disconnect (drops off mid-execution),
//! mixed (each execution picks one of the above by its id).
//!
//! `--protocol commands` speaks the AWS IoT commands device protocol
//! instead (root `--root`, default `courier/commands/things/{thingName}`):
//! each request published to the thing is answered on its response topic,
//! IN_PROGRESS with a result, then the mode's final status, several at once.

use courier_local::mqtt::MqttDevice;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Options {
    broker: String,
    things: Vec<String>,
    mode: String,
    steps: u32,
    step_ms: u64,
    root: String,
    commands: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        broker: "127.0.0.1:1883".into(),
        things: Vec::new(),
        mode: "ok".into(),
        steps: 3,
        step_ms: 300,
        root: String::new(),
        commands: false,
    };
    let (mut count, mut prefix) = (1u32, "dev-".to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--broker" => o.broker = value()?,
            "--thing" => o.things.push(value()?),
            "--things" => count = value()?.parse().map_err(|e| format!("--things: {e}"))?,
            "--prefix" => prefix = value()?,
            "--mode" => o.mode = value()?,
            "--steps" => o.steps = value()?.parse().map_err(|e| format!("--steps: {e}"))?,
            "--step-ms" => o.step_ms = value()?.parse().map_err(|e| format!("--step-ms: {e}"))?,
            "--root" => o.root = value()?,
            "--protocol" => {
                o.commands = match value()?.as_str() {
                    "jobs" => false,
                    "commands" => true,
                    other => return Err(format!("--protocol is jobs or commands, got {other}")),
                }
            }
            other => {
                return Err(format!(
                    "unknown flag {other}; see the header of src/bin/courier_device.rs"
                ))
            }
        }
    }
    if o.things.is_empty() {
        o.things = (1..=count).map(|i| format!("{prefix}{i}")).collect();
    }
    if o.root.is_empty() {
        o.root = if o.commands {
            courier_core::commands::DEFAULT_ROOT.into()
        } else {
            courier_core::protocol::DEFAULT_ROOT.into()
        };
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let o = options()?;
    let mut tasks = Vec::new();
    for thing in o.things.clone() {
        let o = o.clone();
        tasks.push(tokio::spawn(async move {
            let run = if o.commands {
                run_commands_thing(&o, &thing).await
            } else {
                run_thing(&o, &thing).await
            };
            if let Err(e) = run {
                eprintln!("{thing}: {e}");
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

async fn run_thing(o: &Options, thing: &str) -> Result<(), String> {
    let mut device = MqttDevice::connect_announced(&o.broker, thing, &o.root).await?;
    println!("{thing}: connected");
    loop {
        let next = match device
            .request("start-next", json!({"stepTimeoutInMinutes": 5}))
            .await
        {
            Ok(next) => next,
            Err(e) => {
                // Throttled, an internal error, or no answer yet: ask again.
                println!("{thing}: start-next: {}; retrying", e["code"]);
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        let Some(execution) = next.get("execution").cloned() else {
            // Nothing pending: wait for notify-next to name one.
            device.clear();
            loop {
                if let Some(n) = device
                    .expect("notify-next", Duration::from_secs(3600))
                    .await
                {
                    if n.get("execution").is_some() {
                        break;
                    }
                }
            }
            continue;
        };
        let id = execution["jobId"].as_str().unwrap_or_default().to_owned();
        let mode = match o.mode.as_str() {
            "mixed" => ["ok", "ok", "ok", "fail", "reject", "slow"]
                [id.bytes().map(usize::from).sum::<usize>() % 6],
            other => other,
        };
        println!(
            "{thing}: took {id} ({}) as {mode}",
            execution["jobDocument"]["commandId"]
        );
        let mut version = execution["versionNumber"].as_u64().unwrap_or(0);
        let pause = Duration::from_millis(if mode == "slow" {
            o.step_ms * 10
        } else {
            o.step_ms
        });
        match mode {
            "silent" => {
                device
                    .request(&format!("{id}/update"), json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1, "expectedVersion": version}))
                    .await
                    .map_err(|e| format!("update rejected: {e}"))?;
                println!("{thing}: going silent on {id}");
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return Ok(());
            }
            "disconnect" => {
                println!("{thing}: disconnecting mid-execution");
                device.disconnect().await;
                return Ok(());
            }
            _ => {}
        }
        for step in 1..=o.steps {
            tokio::time::sleep(pause).await;
            let reply = device
                .request(
                    &format!("{id}/update"),
                    json!({"status": "IN_PROGRESS", "expectedVersion": version, "includeJobExecutionState": true,
                           "statusDetails": {"progress": format!("{step}/{}", o.steps)}}),
                )
                .await;
            match reply {
                Ok(r) => {
                    version = r["executionState"]["versionNumber"]
                        .as_u64()
                        .unwrap_or(version + 1)
                }
                Err(e) => {
                    // Canceled or timed out under us: drop it, take the next.
                    println!("{thing}: {id} ended under us: {}", e["code"]);
                    break;
                }
            }
        }
        let last: Value = match mode {
            "fail" => {
                json!({"status": "FAILED", "statusReason": {"reasonCode": "SIMULATED_FAILURE", "reasonDescription": "courier-device --mode fail"}})
            }
            "reject" => {
                json!({"status": "REJECTED", "statusReason": {"reasonCode": "NOT_SUPPORTED"}})
            }
            _ => {
                json!({"status": "SUCCEEDED", "result": {"ok": {"B": true}, "steps": {"I": o.steps}}})
            }
        };
        let mut last = last;
        last["expectedVersion"] = json!(version);
        match device.request(&format!("{id}/update"), last).await {
            Ok(_) => println!("{thing}: {id} done"),
            Err(e) => println!("{thing}: {id} final update rejected: {}", e["code"]),
        }
        device.clear();
    }
}

/// The mode an execution is run in (`mixed` picks one by its id).
fn mode_for<'a>(o: &'a Options, id: &str) -> &'a str {
    match o.mode.as_str() {
        "mixed" => ["ok", "ok", "ok", "fail", "reject", "slow"]
            [id.bytes().map(usize::from).sum::<usize>() % 6],
        other => other,
    }
}

/// The execution a commands request topic names: `{root}/executions/{id}/`
/// then `request/json`, `request/cbor` or the format-less `request` (a
/// static payload of another type).
fn requested_execution(root: &str, topic: &str) -> Option<String> {
    let rest = topic.strip_prefix(root)?.strip_prefix("/executions/")?;
    let (id, format) = rest.split_once('/')?;
    matches!(format, "request" | "request/json" | "request/cbor").then(|| id.to_owned())
}

/// A thing speaking the AWS IoT commands protocol: every request on
/// `{root}/executions/{id}/request/json` (or `.../request/cbor`, or
/// `.../request`) is answered on its response topic, in JSON.
async fn run_commands_thing(o: &Options, thing: &str) -> Result<(), String> {
    let mut device = MqttDevice::connect_announced(&o.broker, thing, &o.root).await?;
    println!("{thing}: connected (commands)");
    let root = device.root.clone();
    loop {
        let Some((topic, request, _)) = device
            .wait_for(Duration::from_secs(3600), |(topic, _, _)| {
                requested_execution(&root, topic).is_some()
            })
            .await
        else {
            continue;
        };
        let Some(id) = requested_execution(&root, &topic) else {
            continue;
        };
        let mode = mode_for(o, &id);
        let what = match &request {
            Value::Object(document) if document.contains_key("commandId") => {
                document["commandId"].to_string()
            }
            _ => format!("{} payload", topic.rsplit('/').next().unwrap_or("request")),
        };
        println!("{thing}: request {id} ({what}) as {mode}");
        let response = format!("executions/{id}/response/json");
        match mode {
            "silent" => continue,
            "disconnect" => {
                device.disconnect().await;
                return Ok(());
            }
            _ => {}
        }
        let pause = Duration::from_millis(if mode == "slow" {
            o.step_ms * 10
        } else {
            o.step_ms
        });
        let updates = [
            json!({"status": "IN_PROGRESS", "statusReason": {"reasonCode": "STARTED"},
                   "result": {"progress": {"s": "started"}}}),
            match mode {
                "fail" => {
                    json!({"status": "FAILED", "statusReason": {"reasonCode": "SIMULATED_FAILURE",
                                 "reasonDescription": "courier-device --mode fail"}})
                }
                "reject" => {
                    json!({"status": "REJECTED", "statusReason": {"reasonCode": "NOT_SUPPORTED"}})
                }
                _ => json!({"status": "SUCCEEDED", "result": {"ok": {"b": true}}}),
            },
        ];
        for update in updates {
            tokio::time::sleep(pause).await;
            device.publish(&response, &update).await?;
            let answer = device
                .wait_for(Duration::from_secs(15), |(topic, _, _)| {
                    topic.ends_with(&format!("{id}/response/accepted/json"))
                        || topic.ends_with(&format!("{id}/response/rejected/json"))
                })
                .await;
            match answer {
                Some((topic, _, _)) if topic.ends_with("/accepted/json") => {}
                Some((_, body, _)) => {
                    println!("{thing}: {id} rejected: {}", body["error"]);
                    break;
                }
                None => {
                    println!("{thing}: {id}: no answer within 15 s");
                    break;
                }
            }
        }
        println!("{thing}: {id} done");
    }
}

#[cfg(test)]
mod tests {
    use super::requested_execution;

    #[test]
    fn every_request_format_names_its_execution() {
        let root = "courier/commands/things/lamp-1";
        for format in ["request", "request/json", "request/cbor"] {
            let topic = format!("{root}/executions/e-1/{format}");
            assert_eq!(
                requested_execution(root, &topic).as_deref(),
                Some("e-1"),
                "{topic}"
            );
        }
        for other in ["response/accepted/json", "request/xml", "response/json"] {
            let topic = format!("{root}/executions/e-1/{other}");
            assert_eq!(requested_execution(root, &topic), None, "{topic}");
        }
    }
}
