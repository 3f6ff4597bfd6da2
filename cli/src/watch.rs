//! `jobs watch` and `runs watch`: poll a job or a run and draw its progress
//! (indicatif) until it ends. [`job_progress`] and [`run_progress`] read
//! the API's JSON and are pure; [`follow`] polls and draws (I/O).

use crate::api::{Api, ApiError};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::time::Duration;

/// How a job or run ended, as the exit code tells scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every device succeeded.
    Succeeded,
    /// It ended, but not every device succeeded.
    SomeFailed,
    /// Aborted, canceled or stopped.
    Stopped,
}

/// What one poll showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Devices that ended (their last execution, or their run, is over).
    pub done: u64,
    /// Devices in all, as far as known (a thing group's grow as it fans out).
    pub total: u64,
    /// One line: status and counts.
    pub message: String,
    /// Set once it ended.
    pub outcome: Option<Outcome>,
}

const ENDED: [&str; 5] = ["SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED"];

fn count(value: &Value) -> u64 {
    value.as_u64().unwrap_or_default()
}

/// A job's progress from `GET /jobs/{id}`: devices per status in its
/// statistics.
pub fn job_progress(job: &Value) -> Progress {
    let status = job["status"].as_str().unwrap_or("?");
    let devices = job["statistics"]["devices"].as_object();
    let of = |s: &str| devices.and_then(|d| d.get(s)).map(count).unwrap_or(0);
    let seen: u64 = devices.map(|d| d.values().map(count).sum()).unwrap_or(0);
    let total = job["targets"]["things"]["count"]
        .as_u64()
        .unwrap_or(seen)
        .max(seen);
    let done: u64 = ENDED.iter().map(|s| of(s)).sum();
    let mut parts = vec![status.to_owned()];
    for s in ["QUEUED", "SENT", "IN_PROGRESS"].iter().chain(&ENDED) {
        if of(s) > 0 {
            parts.push(format!("{} {}", of(s), s.to_lowercase().replace('_', " ")));
        }
    }
    let outcome = match status {
        "COMPLETED" if of("SUCCEEDED") == seen => Some(Outcome::Succeeded),
        "COMPLETED" => Some(Outcome::SomeFailed),
        "CANCELED" | "ABORTED" => Some(Outcome::Stopped),
        _ => None,
    };
    Progress {
        done,
        total,
        message: parts.join(" · "),
        outcome,
    }
}

/// A run's progress from `GET /pipelines/{id}/runs/{runId}`: devices ended
/// of the wave sizes, the stage totals, and the gate it is held at.
pub fn run_progress(run: &Value) -> Progress {
    let status = run["status"].as_str().unwrap_or("?");
    let waves = run["waveSizes"].as_array();
    let total = waves
        .map(|w| w.iter().map(count).sum())
        .or_else(|| run["targets"]["things"]["count"].as_u64())
        .unwrap_or(0);
    let stages = run["stages"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let sum = |field: &str| -> u64 { stages.iter().map(|s| count(&s[field])).sum() };
    let unsuccessful = sum("failed") + sum("timedOut") + sum("canceled");
    let all_succeeded = stages
        .last()
        .is_some_and(|last| count(&last["succeeded"]) == total)
        && unsuccessful == 0;
    let mut parts = vec![status.to_owned()];
    if let Some(waves) = waves.filter(|w| w.len() > 1) {
        // A finished run's wave is one past its last.
        let wave = (count(&run["wave"]) + 1).min(waves.len() as u64);
        parts.push(format!("wave {wave}/{}", waves.len()));
    }
    for stage in stages {
        let name = stage["name"].as_str().unwrap_or("?");
        let (ok, bad) = (
            count(&stage["succeeded"]),
            count(&stage["failed"]) + count(&stage["timedOut"]) + count(&stage["canceled"]),
        );
        if count(&stage["entered"]) > 0 {
            parts.push(format!("{name} {ok}✓ {bad}✗"));
        }
    }
    if status == "HELD" {
        let stage = run["hold"]["stage"].as_u64().unwrap_or(0) as usize;
        let name = stages
            .get(stage)
            .and_then(|s| s["name"].as_str())
            .unwrap_or("?");
        parts.push(format!("held at the {name} gate: `courier runs resume`"));
    }
    let outcome = match status {
        "COMPLETED" if all_succeeded => Some(Outcome::Succeeded),
        "COMPLETED" => Some(Outcome::SomeFailed),
        "CANCELED" | "ABORTED" | "STOPPED" => Some(Outcome::Stopped),
        _ => None,
    };
    Progress {
        done: count(&run["targetsEnded"]),
        total,
        message: parts.join(" · "),
        outcome,
    }
}

/// Polls `path` every `interval` until `progress` says it ended; draws a
/// bar on a terminal (nothing when stderr is not one). Gives up after five
/// failed polls in a row. Returns the last body and how it ended.
pub fn follow(
    api: &Api,
    path: &str,
    interval: Duration,
    progress: fn(&Value) -> Progress,
) -> Result<(Value, Outcome), ApiError> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:32}] {pos}/{len} devices ended  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut failures = 0;
    loop {
        match api.get(path) {
            Ok(body) => {
                failures = 0;
                let now = progress(&body);
                bar.set_length(now.total);
                bar.set_position(now.done);
                bar.set_message(now.message.clone());
                if let Some(outcome) = now.outcome {
                    bar.finish();
                    return Ok((body, outcome));
                }
            }
            Err(ApiError::Refused { status, .. }) if status == 429 || status >= 500 => {
                failures += 1;
            }
            Err(ApiError::Unreachable(why)) if failures < 4 => {
                bar.set_message(format!("(retrying: {why})"));
                failures += 1;
            }
            Err(err) => {
                bar.abandon();
                return Err(err);
            }
        }
        if failures > 4 {
            bar.abandon();
            return Err(ApiError::Unreachable("five polls in a row failed".into()));
        }
        bar.tick();
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_running_job_counts_ended_devices_of_its_targets() {
        let p = job_progress(
            &json!({"status": "IN_PROGRESS", "targets": {"things": {"count": 5}},
            "statistics": {"devices": {"SUCCEEDED": 2, "FAILED": 1, "IN_PROGRESS": 1}, "attempts": 4}}),
        );
        assert_eq!((p.done, p.total, p.outcome), (3, 5, None));
        assert_eq!(
            p.message,
            "IN_PROGRESS · 1 in progress · 2 succeeded · 1 failed"
        );
    }

    #[test]
    fn a_thing_group_job_counts_the_devices_seen_so_far() {
        let p = job_progress(
            &json!({"status": "IN_PROGRESS", "targets": {"thingGroup": {"name": "fleet"}},
            "statistics": {"devices": {"QUEUED": 7, "SUCCEEDED": 3}}}),
        );
        assert_eq!((p.done, p.total), (3, 10));
    }

    #[test]
    fn a_completed_job_succeeded_only_if_every_device_did() {
        let all = json!({"status": "COMPLETED", "statistics": {"devices": {"SUCCEEDED": 3}}});
        let some = json!({"status": "COMPLETED", "statistics": {"devices": {"SUCCEEDED": 2, "TIMED_OUT": 1}}});
        assert_eq!(job_progress(&all).outcome, Some(Outcome::Succeeded));
        assert_eq!(job_progress(&some).outcome, Some(Outcome::SomeFailed));
    }

    #[test]
    fn an_aborted_or_canceled_job_stopped() {
        for status in ["ABORTED", "CANCELED"] {
            let p = job_progress(&json!({"status": status, "statistics": {"devices": {}}}));
            assert_eq!(p.outcome, Some(Outcome::Stopped), "{status}");
        }
    }

    fn run(status: &str, last_stage: Value) -> Value {
        json!({"status": status, "waveSizes": [1, 3], "wave": 2, "targetsEnded": 4,
               "stages": [{"name": "install", "entered": 4, "succeeded": 4}, last_stage]})
    }

    #[test]
    fn a_run_completed_with_every_device_through_every_stage_succeeded() {
        let p = run_progress(&run(
            "COMPLETED",
            json!({"name": "verify", "entered": 4, "succeeded": 4}),
        ));
        assert_eq!((p.done, p.total), (4, 4));
        assert_eq!(p.outcome, Some(Outcome::Succeeded));
        assert_eq!(
            p.message,
            "COMPLETED · wave 2/2 · install 4✓ 0✗ · verify 4✓ 0✗"
        );
    }

    #[test]
    fn a_run_with_a_failed_device_completed_with_failures() {
        let p = run_progress(&run(
            "COMPLETED",
            json!({"name": "verify", "entered": 4, "succeeded": 3, "failed": 1}),
        ));
        assert_eq!(p.outcome, Some(Outcome::SomeFailed));
    }

    #[test]
    fn a_held_run_names_its_gate_and_goes_on_being_watched() {
        let mut held = run("HELD", json!({"name": "verify", "entered": 0}));
        held["hold"] = json!({"wave": 0, "stage": 1});
        let p = run_progress(&held);
        assert_eq!(p.outcome, None);
        assert!(p
            .message
            .ends_with("held at the verify gate: `courier runs resume`"));
    }

    #[test]
    fn an_aborted_canceled_or_stopped_run_stopped() {
        for status in ["ABORTED", "CANCELED", "STOPPED"] {
            let p = run_progress(&run(status, json!({"name": "verify"})));
            assert_eq!(p.outcome, Some(Outcome::Stopped), "{status}");
        }
    }
}
