//! Writers racing on one execution over DynamoDB Local: 32 devices' updates
//! with `expectedVersion` (read, write, re-read on VersionMismatch) and an
//! operator's forced cancel in the middle of them. Every version is won
//! exactly once, losers learn the current state, nothing is lost, and once
//! the execution has ended nothing changes it again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::{ExecutionStatus, Timestamp, TransitionError};
use courier_functions::error::ServiceError;
use courier_functions::ops::device_updates::{Delivery, DeviceUpdateOutcome};
use courier_tests::fresh_courier;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const NOW: i64 = 1_800_000_000;
const WRITERS: usize = 32;
const WRITES_EACH: usize = 3;

#[derive(Debug)]
enum Refusal {
    /// Lost a race: the current version and status came with it.
    Stale { current_version: u64 },
    /// The execution had ended (canceled) when it arrived.
    Ended { current_version: u64 },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_writers_each_win_a_distinct_version_and_nothing_is_lost() {
    let now = Timestamp::from_secs(NOW);
    let courier = Arc::new(fresh_courier().await);
    courier
        .create_command(
            &json!({"commandId": "tune", "executionTimeoutSeconds": 3600}).into(),
            now,
        )
        .await
        .unwrap();
    let (execution, _) = courier
        .start_execution("tune", &json!({"target": "dev-race"}).into(), "tester", now)
        .await
        .unwrap();
    let id = execution.execution_id.to_string();
    let start = courier
        .device_update(
            "dev-race",
            &id,
            &json!({"status": "IN_PROGRESS"}).into(),
            Delivery::new("start"),
            now,
        )
        .await
        .unwrap();
    let DeviceUpdateOutcome::Applied {
        execution: started, ..
    } = start
    else {
        panic!("started")
    };
    let first_version = started.version;

    // Each applied write: version -> (writer, write number).
    let won: Arc<Mutex<BTreeMap<u64, (usize, usize)>>> = Arc::default();
    let refusals: Arc<Mutex<Vec<Refusal>>> = Arc::default();
    let applied = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (courier, id, won, refusals, applied) = (
            Arc::clone(&courier),
            id.clone(),
            Arc::clone(&won),
            Arc::clone(&refusals),
            Arc::clone(&applied),
        );
        tasks.push(tokio::spawn(async move {
            let mut written = 0;
            let mut attempt = 0;
            let mut version = courier.get_execution(&id, now).await.unwrap().version;
            while written < WRITES_EACH {
                attempt += 1;
                let request = format!("w{writer}-{attempt}");
                let update = json!({
                    "status": "IN_PROGRESS",
                    "expectedVersion": version,
                    "statusDetails": {"writer": writer.to_string(), "write": written.to_string()}
                });
                match courier
                    .device_update(
                        "dev-race",
                        &id,
                        &courier_core::json::Json::from(update.clone()),
                        Delivery::new(&request),
                        now,
                    )
                    .await
                {
                    Ok(DeviceUpdateOutcome::Applied { execution, .. }) => {
                        let previous = won
                            .lock()
                            .unwrap()
                            .insert(execution.version, (writer, written));
                        assert!(
                            previous.is_none(),
                            "version {} won twice",
                            execution.version
                        );
                        written += 1;
                        applied.fetch_add(1, Ordering::SeqCst);
                        version = execution.version;
                    }
                    Ok(DeviceUpdateOutcome::Duplicate(_)) => {
                        panic!("a fresh request is no duplicate")
                    }
                    Err(ServiceError::Transition { error, current }) => {
                        let current = current.expect("a refusal carries the current state");
                        match error {
                            TransitionError::VersionMismatch { .. } => {
                                refusals.lock().unwrap().push(Refusal::Stale {
                                    current_version: current.version,
                                });
                                version = current.version;
                            }
                            TransitionError::TerminalStateReached { .. }
                            | TransitionError::InvalidStateTransition { .. } => {
                                assert_eq!(current.status, ExecutionStatus::Canceled);
                                refusals.lock().unwrap().push(Refusal::Ended {
                                    current_version: current.version,
                                });
                                return;
                            }
                            other => panic!("unexpected refusal {other:?}"),
                        }
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
        }));
    }
    // The operator cancels (force) once a third of the writes are in.
    let canceller = {
        let (courier, id, applied) = (Arc::clone(&courier), id.clone(), Arc::clone(&applied));
        tokio::spawn(async move {
            while applied.load(Ordering::SeqCst) < WRITERS * WRITES_EACH / 3 {
                tokio::task::yield_now().await;
            }
            loop {
                match courier
                    .cancel_execution(&id, &json!({"force": true}).into(), "ops", now, "cancel-1")
                    .await
                {
                    Ok(canceled) => return canceled,
                    // Lost a race too: a cancel without expectedVersion
                    // applies to whatever is current, so it only retries
                    // when the item moved under it.
                    Err(ServiceError::Unavailable(_) | ServiceError::Throttled(_)) => {}
                    Err(other) => panic!("cancel failed: {other:?}"),
                }
            }
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    let canceled = canceller.await.unwrap();

    // THEN each version from the start to the cancel was won exactly once
    let won = won.lock().unwrap().clone();
    let final_record = courier.get_execution(&id, now).await.unwrap();
    assert_eq!(final_record.status, ExecutionStatus::Canceled);
    assert_eq!(final_record.version, canceled.version);
    assert_eq!(
        final_record.version,
        first_version + won.len() as u64 + 1,
        "the final version counts every successful write and the cancel"
    );
    let expected: Vec<u64> = (first_version + 1..canceled.version).collect();
    assert_eq!(
        won.keys().copied().collect::<Vec<_>>(),
        expected,
        "no gaps, no repeats"
    );
    assert!(won.len() >= WRITERS * WRITES_EACH / 3);
    // ... the record holds the last write before the cancel (nothing lost)
    let (writer, write) = won[&(canceled.version - 1)];
    assert_eq!(
        final_record.status_details.get("writer"),
        Some(&writer.to_string())
    );
    assert_eq!(
        final_record.status_details.get("write"),
        Some(&write.to_string())
    );
    // ... and every loser was told a current state no older than its own
    let refusals: Vec<Refusal> = std::mem::take(&mut *refusals.lock().unwrap());
    assert!(
        refusals.len() >= WRITERS,
        "the race had losers: {}",
        refusals.len()
    );
    for refusal in refusals.iter() {
        match refusal {
            Refusal::Stale { current_version } => assert!(*current_version > first_version),
            Refusal::Ended { current_version } => assert!(*current_version >= canceled.version),
        }
    }
    // ... and a writer stopped short exactly when it was told the execution ended
    let finished = (0..WRITERS)
        .filter(|w| won.values().filter(|(writer, _)| writer == w).count() == WRITES_EACH)
        .count();
    let ended = refusals
        .iter()
        .filter(|r| matches!(r, Refusal::Ended { .. }))
        .count();
    assert_eq!(ended, WRITERS - finished);

    // AND the ended execution never changes again
    let late = courier
        .device_update(
            "dev-race",
            &id,
            &json!({"status": "SUCCEEDED"}).into(),
            Delivery::new("late"),
            now,
        )
        .await;
    assert!(
        matches!(late, Err(ServiceError::Transition { .. })),
        "{late:?}"
    );
    let again = courier
        .cancel_execution(&id, &json!({"force": true}).into(), "ops", now, "cancel-2")
        .await
        .unwrap();
    assert_eq!(again.version, canceled.version);
    assert_eq!(courier.get_execution(&id, now).await.unwrap(), final_record);
}
