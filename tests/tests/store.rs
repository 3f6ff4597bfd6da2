//! The DynamoDB store against DynamoDB Local, one fresh table per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::*;
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::store::{
    CreateOutcome, ExecutionQuery, ExecutionsOf, PageRequest, RequestHash, Store, StoreError,
    TransitionOutcome,
};
use courier_tests::fresh_store;
use serde_json::json;

const T0: i64 = 1_800_000_000;

fn validator() -> Validator {
    serde_json::from_value::<CommandDefinition>(json!({
        "commandId": "set-config",
        "parameters": [{"name": "rate", "type": "I", "min": 1, "max": 100, "default": {"I": 10}}],
        "executionTimeoutSeconds": 60,
        "retentionSeconds": 3600
    }))
    .unwrap()
    .validator()
    .unwrap()
}

fn new_execution(id: &str, target: &str, created: i64) -> CommandExecution {
    let now = Timestamp::from_secs(created);
    StartExecution::parse(&json!({"target": target}).into(), &validator(), now)
        .unwrap()
        .into_execution(ExecutionId::parse(id).unwrap(), &validator(), "tester", now)
}

fn device(status: ExecutionStatus, thing: &str, at: i64) -> TransitionPlan {
    TransitionPlan::new(
        StatusUpdate::to(status),
        status,
        Actor::Device,
        Timestamp::from_secs(at),
    )
    .unwrap()
    .for_target(ThingName::parse(thing).unwrap())
}

async fn next_of(
    store: &DynamoStore,
    thing: &ThingName,
    now: Timestamp,
) -> Option<CommandExecution> {
    let pending = store.pending_executions(thing, now).await.unwrap();
    protocol::next_pending(&pending).cloned()
}

async fn create(store: &DynamoStore, exec: &CommandExecution) {
    assert!(matches!(
        store
            .create_execution(exec, &RequestHash::new("hash"))
            .await
            .unwrap(),
        CreateOutcome::Created(_)
    ));
}

#[tokio::test]
async fn lifecycle_is_one_conditional_write_per_change_and_no_reads() {
    // GIVEN a queued execution
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    store.meter().reset();
    // WHEN the device reports IN_PROGRESS then SUCCEEDED with a result
    let started = store
        .apply_transition(
            &exec.execution_id,
            &device(ExecutionStatus::InProgress, "dev-1", T0 + 1),
            "u1",
        )
        .await
        .unwrap();
    let mut done_plan = device(ExecutionStatus::Succeeded, "dev-1", T0 + 2);
    done_plan.result = Some([("uptime".to_string(), TypedValue::L(42))].into());
    done_plan.status_reason = Some(StatusReason {
        reason_code: "OK".into(),
        reason_description: None,
    });
    let done = store
        .apply_transition(&exec.execution_id, &done_plan, "u2")
        .await
        .unwrap();
    // THEN each write returned the new record, no read was made, and the
    // stored record equals what core computes in memory
    let TransitionOutcome::Applied {
        execution: started,
        previous: ExecutionStatus::Queued,
    } = started
    else {
        panic!("applied expected")
    };
    let TransitionOutcome::Applied {
        execution: done,
        previous: ExecutionStatus::InProgress,
    } = done
    else {
        panic!("applied expected")
    };
    assert_eq!(store.meter().read_units(), 0.0);
    assert_eq!(started.started_at, Some(Timestamp::from_secs(T0 + 1)));
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.version, 3);
    assert_eq!(done.completed_at, Some(Timestamp::from_secs(T0 + 2)));
    assert_eq!(done.time_to_live, Timestamp::from_secs(T0 + 2 + 3600));
    let in_memory = done_plan
        .apply(
            &device(ExecutionStatus::InProgress, "dev-1", T0 + 1)
                .apply(&exec)
                .unwrap(),
        )
        .unwrap();
    assert_eq!(done, in_memory);
    let read = store
        .get_execution(&exec.execution_id, Timestamp::from_secs(T0 + 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, done);
}

#[tokio::test]
async fn stale_expected_version_is_rejected_and_nothing_is_written() {
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    let mut plan = device(ExecutionStatus::InProgress, "dev-1", T0 + 1);
    plan.expected_version = Some(7);
    let err = store
        .apply_transition(&exec.execution_id, &plan, "u1")
        .await
        .unwrap_err();
    let StoreError::Rejected { error, current } = err else {
        panic!("rejected expected, got {err:?}")
    };
    assert_eq!(
        error,
        TransitionError::VersionMismatch {
            expected: 7,
            actual: 1
        }
    );
    assert_eq!(*current, exec);
    assert_eq!(
        store
            .get_execution(&exec.execution_id, Timestamp::from_secs(T0 + 1))
            .await
            .unwrap()
            .unwrap(),
        exec
    );
}

#[tokio::test]
async fn a_device_cannot_touch_another_devices_execution() {
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    let err = store
        .apply_transition(
            &exec.execution_id,
            &device(ExecutionStatus::Succeeded, "dev-2", T0 + 1),
            "u1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Rejected {
                error: TransitionError::TargetMismatch,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        store
            .get_execution(&exec.execution_id, Timestamp::from_secs(T0 + 1))
            .await
            .unwrap()
            .unwrap(),
        exec
    );
}

#[tokio::test]
async fn refused_transitions_explain_themselves_from_the_failed_condition() {
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    // system may not move QUEUED -> QUEUED; device may not after a cancel
    let cancel = TransitionPlan::new(
        StatusUpdate::default(),
        ExecutionStatus::Canceled,
        Actor::Operator,
        Timestamp::from_secs(T0 + 1),
    )
    .unwrap();
    store
        .apply_transition(&exec.execution_id, &cancel, "op")
        .await
        .unwrap();
    let err = store
        .apply_transition(
            &exec.execution_id,
            &device(ExecutionStatus::InProgress, "dev-1", T0 + 2),
            "u1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StoreError::Rejected {
                error: TransitionError::TerminalStateReached {
                    status: ExecutionStatus::Canceled
                },
                ..
            }
        ),
        "{err:?}"
    );
    let missing = store
        .apply_transition(
            &ExecutionId::parse("nope").unwrap(),
            &device(ExecutionStatus::InProgress, "dev-1", T0),
            "u",
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound), "{missing:?}");
}

#[tokio::test]
async fn a_redelivered_update_is_applied_once() {
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    let plan = device(ExecutionStatus::InProgress, "dev-1", T0 + 1);
    let first = store
        .apply_transition(&exec.execution_id, &plan, "same-token")
        .await
        .unwrap();
    let again = store
        .apply_transition(&exec.execution_id, &plan, "same-token")
        .await
        .unwrap();
    let TransitionOutcome::Applied {
        execution: first, ..
    } = first
    else {
        panic!()
    };
    assert_eq!(again, TransitionOutcome::Duplicate(first.clone()));
    assert_eq!(first.version, 2);
    // a different update (new token) is applied
    let third = store
        .apply_transition(&exec.execution_id, &plan, "other-token")
        .await
        .unwrap();
    assert!(
        matches!(third, TransitionOutcome::Applied { execution: e, previous: ExecutionStatus::InProgress } if e.version == 3)
    );
}

#[tokio::test]
async fn a_create_retried_returns_the_existing_execution_and_tells_if_it_matches() {
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    assert!(matches!(
        store
            .create_execution(&exec, &RequestHash::new("h1"))
            .await
            .unwrap(),
        CreateOutcome::Created(_)
    ));
    let retry = store
        .create_execution(&exec, &RequestHash::new("h1"))
        .await
        .unwrap();
    assert_eq!(
        retry,
        CreateOutcome::Existing {
            execution: exec.clone(),
            same_request: true
        }
    );
    let other = store
        .create_execution(
            &new_execution("e1", "dev-9", T0 + 5),
            &RequestHash::new("h2"),
        )
        .await
        .unwrap();
    assert_eq!(
        other,
        CreateOutcome::Existing {
            execution: exec,
            same_request: false
        }
    );
}

#[tokio::test]
async fn expired_items_are_invisible_to_reads_and_writes() {
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    let after = exec.time_to_live.plus_secs(1);
    assert_eq!(
        store
            .get_execution(&exec.execution_id, after)
            .await
            .unwrap(),
        None
    );
    let by_target = ExecutionQuery {
        of: ExecutionsOf::Target(exec.target.clone()),
        status: None,
        oldest_first: false,
        time: None,
    };
    assert!(store
        .list_executions(
            &by_target,
            PageRequest {
                limit: 10,
                start: None
            },
            after
        )
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(store
        .pending_executions(&exec.target, after)
        .await
        .unwrap()
        .is_empty());
    let plan = TransitionPlan::new(
        StatusUpdate::default(),
        ExecutionStatus::InProgress,
        Actor::Device,
        after,
    )
    .unwrap();
    assert!(matches!(
        store.apply_transition(&exec.execution_id, &plan, "t").await,
        Err(StoreError::NotFound)
    ));
    // and an expired id may be created afresh
    let reborn = new_execution("e1", "dev-1", after.epoch_secs());
    assert!(matches!(
        store
            .create_execution(&reborn, &RequestHash::new("h"))
            .await
            .unwrap(),
        CreateOutcome::Created(_)
    ));
    // before expiry it is visible
    assert!(store
        .get_execution(&exec.execution_id, Timestamp::from_secs(T0 + 1))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn listings_are_newest_first_paginated_and_filtered() {
    let store = fresh_store().await;
    for i in 0..5 {
        create(&store, &new_execution(&format!("a{i}"), "dev-1", T0 + i)).await;
    }
    create(&store, &new_execution("b0", "dev-2", T0)).await;
    let now = Timestamp::from_secs(T0 + 10);
    store
        .apply_transition(
            &ExecutionId::parse("a1").unwrap(),
            &device(ExecutionStatus::Failed, "dev-1", T0 + 9),
            "x",
        )
        .await
        .unwrap();

    let query = ExecutionQuery {
        of: ExecutionsOf::Target(ThingName::parse("dev-1").unwrap()),
        status: None,
        oldest_first: false,
        time: None,
    };
    let first = store
        .list_executions(
            &query,
            PageRequest {
                limit: 3,
                start: None,
            },
            now,
        )
        .await
        .unwrap();
    let ids: Vec<_> = first
        .items
        .iter()
        .map(|e| e.execution_id.to_string())
        .collect();
    assert_eq!(ids, ["a4", "a3", "a2"]);
    let second = store
        .list_executions(
            &query,
            PageRequest {
                limit: 3,
                start: first.next,
            },
            now,
        )
        .await
        .unwrap();
    let ids: Vec<_> = second
        .items
        .iter()
        .map(|e| e.execution_id.to_string())
        .collect();
    assert_eq!(ids, ["a1", "a0"]);

    let failed = ExecutionQuery {
        status: Some(ExecutionStatus::Failed),
        ..query.clone()
    };
    let page = store
        .list_executions(
            &failed,
            PageRequest {
                limit: 10,
                start: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|e| e.execution_id.as_str())
            .collect::<Vec<_>>(),
        ["a1"]
    );
    let queued = ExecutionQuery {
        status: Some(ExecutionStatus::Queued),
        ..query
    };
    let page = store
        .list_executions(
            &queued,
            PageRequest {
                limit: 10,
                start: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4);

    let by_command = ExecutionQuery {
        of: ExecutionsOf::Command(CommandId::parse("set-config").unwrap()),
        status: None,
        oldest_first: false,
        time: None,
    };
    let page = store
        .list_executions(
            &by_command,
            PageRequest {
                limit: 100,
                start: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 6);
}

#[tokio::test]
async fn next_pending_is_in_progress_first_then_oldest_queued() {
    let store = fresh_store().await;
    let thing = ThingName::parse("dev-1").unwrap();
    let now = Timestamp::from_secs(T0 + 100);
    assert_eq!(next_of(&store, &thing, now).await, None);
    for (i, id) in ["old", "mid", "new"].iter().enumerate() {
        create(&store, &new_execution(id, "dev-1", T0 + i as i64)).await;
    }
    assert_eq!(
        next_of(&store, &thing, now)
            .await
            .unwrap()
            .execution_id
            .as_str(),
        "old"
    );
    store
        .apply_transition(
            &ExecutionId::parse("new").unwrap(),
            &device(ExecutionStatus::InProgress, "dev-1", T0 + 5),
            "x",
        )
        .await
        .unwrap();
    assert_eq!(
        next_of(&store, &thing, now)
            .await
            .unwrap()
            .execution_id
            .as_str(),
        "new"
    );
    store
        .apply_transition(
            &ExecutionId::parse("new").unwrap(),
            &device(ExecutionStatus::Succeeded, "dev-1", T0 + 6),
            "y",
        )
        .await
        .unwrap();
    store
        .apply_transition(
            &ExecutionId::parse("old").unwrap(),
            &device(ExecutionStatus::Rejected, "dev-1", T0 + 6),
            "z",
        )
        .await
        .unwrap();
    assert_eq!(
        next_of(&store, &thing, now)
            .await
            .unwrap()
            .execution_id
            .as_str(),
        "mid"
    );
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_update() {
    // GIVEN one execution and 8 writers doing read-modify-write with
    // expectedVersion, 5 progress reports each
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = store.clone();
        let id = exec.execution_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut applied = 0u32;
            let mut conflicts = 0u32;
            while applied < 5 {
                let now = Timestamp::from_secs(T0 + 1);
                let current = store.get_execution(&id, now).await.unwrap().unwrap();
                let mut plan = device(ExecutionStatus::InProgress, "dev-1", T0 + 1);
                plan.expected_version = Some(current.version);
                plan.status_details = Some([("writer".to_string(), writer.to_string())].into());
                match store
                    .apply_transition(&id, &plan, &format!("w{writer}-{applied}-{conflicts}"))
                    .await
                {
                    Ok(TransitionOutcome::Applied { execution: e, .. }) => {
                        assert_eq!(e.version, current.version + 1);
                        applied += 1;
                    }
                    Err(StoreError::Rejected {
                        error: TransitionError::VersionMismatch { .. },
                        ..
                    }) => conflicts += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // THEN every one of the 40 applied updates is counted in the version
    let last = store
        .get_execution(&exec.execution_id, Timestamp::from_secs(T0 + 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.version, 1 + 40);
}

#[tokio::test]
async fn commands_are_created_once_and_listed() {
    let store = fresh_store().await;
    let definition = validator().definition().clone();
    assert!(matches!(
        store.put_command(&definition).await.unwrap(),
        courier_functions::store::PutOutcome::Created(_)
    ));
    assert!(
        matches!(store.put_command(&definition).await.unwrap(), courier_functions::store::PutOutcome::Existing(d) if d == definition)
    );
    assert_eq!(
        store.get_command(&definition.command_id).await.unwrap(),
        Some(definition.clone())
    );
    assert_eq!(
        store
            .get_command(&CommandId::parse("other").unwrap())
            .await
            .unwrap(),
        None
    );
    let page = store
        .list_commands(PageRequest {
            limit: 10,
            start: None,
        })
        .await
        .unwrap();
    assert_eq!(page.items, vec![definition]);
}

#[tokio::test]
async fn another_device_reusing_a_token_is_refused_not_told_it_was_a_duplicate() {
    // GIVEN dev-1's execution, last updated with token "t"
    let store = fresh_store().await;
    let exec = new_execution("e1", "dev-1", T0);
    create(&store, &exec).await;
    store
        .apply_transition(
            &exec.execution_id,
            &device(ExecutionStatus::InProgress, "dev-1", T0 + 1),
            "t",
        )
        .await
        .unwrap();
    // WHEN dev-2 sends an update for it with the same token
    let err = store
        .apply_transition(
            &exec.execution_id,
            &device(ExecutionStatus::Succeeded, "dev-2", T0 + 2),
            "t",
        )
        .await
        .unwrap_err();
    // THEN it is refused as not its own, and learns nothing of the record
    assert!(
        matches!(
            err,
            StoreError::Rejected {
                error: TransitionError::TargetMismatch,
                ..
            }
        ),
        "{err:?}"
    );
}

fn start_with(body: serde_json::Value, id: &str, created: i64) -> CommandExecution {
    let now = Timestamp::from_secs(created);
    StartExecution::parse(&json::Json::from(body.clone()), &validator(), now)
        .unwrap()
        .into_execution(ExecutionId::parse(id).unwrap(), &validator(), "tester", now)
}

fn device_with(update: serde_json::Value, thing: &str, at: i64) -> TransitionPlan {
    let update = StatusUpdate::parse(&json::Json::from(update.clone())).unwrap();
    let to = update.status.unwrap();
    TransitionPlan::new(update, to, Actor::Device, Timestamp::from_secs(at))
        .unwrap()
        .for_target(ThingName::parse(thing).unwrap())
}

#[tokio::test]
async fn the_write_itself_refuses_a_device_update_after_a_deadline() {
    // GIVEN an execution that must be taken within 10 s
    let store = fresh_store().await;
    let exec = start_with(
        json!({"target": "dev-1", "deliveryTimeoutSeconds": 10}),
        "e-late",
        T0,
    );
    create(&store, &exec).await;
    // WHEN the device reports 11 s later, before any sweeper ran
    let err = store
        .apply_transition(
            &exec.execution_id,
            &device(ExecutionStatus::Succeeded, "dev-1", T0 + 11),
            "t1",
        )
        .await
        .unwrap_err();
    // THEN the conditional write refused it, explained from the item
    assert!(matches!(
        err,
        StoreError::Rejected {
            error: TransitionError::DeadlinePassed {
                deadline: Deadline::DeliveryTimeout
            },
            ..
        }
    ));
    assert_eq!(
        store
            .get_execution(&exec.execution_id, Timestamp::from_secs(T0 + 11))
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn the_due_index_finds_what_is_due_and_follows_the_step_timer() {
    let store = fresh_store().await;
    // completeBy T0+60; one scheduled for T0+100 (completeBy T0+160)
    let now_one = start_with(json!({"target": "dev-1"}), "e-now", T0);
    let later = start_with(
        json!({"target": "dev-2", "notBefore": T0 + 100}),
        "e-later",
        T0,
    );
    create(&store, &now_one).await;
    create(&store, &later).await;
    let due = |at: i64| {
        let store = store.clone();
        async move {
            let mut ids: Vec<String> = store
                .due_executions(Timestamp::from_secs(at), 50)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, e)| e.execution_id.to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    assert!(due(T0 + 59).await.is_empty());
    assert_eq!(due(T0 + 60).await, ["e-now"]);
    assert_eq!(due(T0 + 100).await, ["e-later", "e-now"]);
    // WHEN the device starts e-now with a 1-minute step timer at T0+10
    let started = store
        .apply_transition(
            &now_one.execution_id,
            &device_with(
                json!({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1}),
                "dev-1",
                T0 + 10,
            ),
            "s1",
        )
        .await
        .unwrap();
    let TransitionOutcome::Applied { execution, .. } = started else {
        panic!("applied")
    };
    assert_eq!(execution.step_deadline, Some(Timestamp::from_secs(T0 + 70)));
    // THEN it is due at min(completeBy, stepDeadline) = T0+60 still; after it
    // ends, never again
    assert_eq!(due(T0 + 60).await, ["e-now"]);
    store
        .apply_transition(
            &now_one.execution_id,
            &device(ExecutionStatus::Succeeded, "dev-1", T0 + 20),
            "s2",
        )
        .await
        .unwrap();
    assert_eq!(due(T0 + 1000).await, ["e-later"]);
}

#[tokio::test]
async fn store_and_memory_agree_on_retries_holds_and_late_results() {
    let store = fresh_store().await;
    let exec = start_with(
        json!({"target": "dev-1", "deliveryTimeoutSeconds": 5, "onTimeout": "RETRY", "maxAttempts": 2}),
        "e-retry",
        T0,
    );
    create(&store, &exec).await;
    let mut current = exec.clone();
    // dispatch, fail to publish, dispatch again, then let delivery time out twice
    let plans = [
        TransitionPlan::dispatch(1, Timestamp::from_secs(T0 + 1)),
        TransitionPlan::undispatch(
            2,
            Timestamp::from_secs(T0 + 2),
            Timestamp::from_secs(T0 + 1),
        ),
    ];
    for (i, plan) in plans.iter().enumerate() {
        let TransitionOutcome::Applied { execution, .. } = store
            .apply_transition(&exec.execution_id, plan, &format!("p{i}"))
            .await
            .unwrap()
        else {
            panic!("applied")
        };
        current = plan.apply(&current).unwrap();
        assert_eq!(execution, current, "plan {i}");
    }
    for (i, at) in [(2, T0 + 5), (3, T0 + 11)] {
        let plan = TransitionPlan::expire(&current, Timestamp::from_secs(at)).unwrap();
        let TransitionOutcome::Applied { execution, .. } = store
            .apply_transition(&exec.execution_id, &plan, &format!("p{i}"))
            .await
            .unwrap()
        else {
            panic!("applied")
        };
        current = plan.apply(&current).unwrap();
        assert_eq!(execution, current, "expiry {i}");
    }
    assert_eq!(
        (current.status, current.execution_number),
        (ExecutionStatus::TimedOut, 2)
    );
    // A late result is kept once, and only on the TIMED_OUT execution's own device.
    let late = LateResult {
        status: ExecutionStatus::Succeeded,
        status_reason: None,
        status_details: Default::default(),
        result: Parameters::from([("ok".to_string(), TypedValue::B(true))]),
        received_at: Timestamp::from_secs(T0 + 12),
    };
    let other = ThingName::parse("dev-2").unwrap();
    let at = Timestamp::from_secs(T0 + 12);
    assert!(store
        .record_late_result(&exec.execution_id, &other, &late, at)
        .await
        .unwrap()
        .is_none());
    let kept = store
        .record_late_result(&exec.execution_id, &exec.target, &late, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.late_result, Some(late.clone()));
    assert_eq!(kept.status, ExecutionStatus::TimedOut);
    assert!(
        store
            .record_late_result(&exec.execution_id, &exec.target, &late, at)
            .await
            .unwrap()
            .is_none(),
        "the first late result wins"
    );
}
