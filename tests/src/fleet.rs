//! Simulated devices for the end-to-end tests: an MQTT client that works
//! through whatever it is told of over the Jobs protocol, as firmware does
//! (notify-next → start-next → update). Does I/O (MQTT).

use courier_local::mqtt::MqttDevice;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Works through executions on `dev` until `stop` is set, reporting
/// `FAILED` for the command `fails` names and `SUCCEEDED` for the rest;
/// gives back how many it finished.
pub fn spawn_device(
    mut dev: MqttDevice,
    fails: Option<&'static str>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut done = 0;
        let topic = format!("{}/notify-next", dev.root);
        while !stop.load(Ordering::Relaxed) {
            let told = dev
                .wait_for(Duration::from_millis(500), |(t, body, _)| {
                    *t == topic && body["execution"].is_object()
                })
                .await;
            if told.is_none() {
                continue;
            }
            let Ok(claimed) = dev.request("start-next", json!({})).await else {
                continue;
            };
            let Some(id) = claimed["execution"]["jobId"].as_str().map(str::to_owned) else {
                continue;
            };
            let command = claimed["execution"]["jobDocument"]["commandId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let outcome = if fails == Some(command.as_str()) {
                "FAILED"
            } else {
                "SUCCEEDED"
            };
            if dev
                .request(&format!("{id}/update"), json!({"status": outcome}))
                .await
                .is_ok()
            {
                done += 1;
            }
        }
        dev.disconnect().await;
        done
    })
}
