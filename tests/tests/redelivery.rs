//! At-least-once delivery, black-box over DynamoDB Local: the same scenario
//! (API creates and cancels with clientTokens, IoT rule events from devices,
//! the table's stream batches) is played once with every event delivered
//! once, and again with every event delivered 2 to 5 times, the extra copies
//! at random later positions (as Lambda retries and redeliveries do). The
//! two tables must end in exactly the same state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};
use courier_core::{CommandExecution, Timestamp};
use courier_functions::entry::api::routes::ApiSettings;
use courier_functions::entry::device_events;
use courier_functions::ops::jobs::JobView;
use courier_functions::ops::Courier;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::stream::{StartAt, StreamPoller};
use courier_tests::lambda_event;
use courier_tests::{
    all_job_executions, api_settings, context, fresh_courier, http_event, iot_rule_event_at,
    send_to_api, send_to_dispatcher, thing_groups, RecordingPublisher,
};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;

/// One event of the scenario.
#[derive(Debug, Clone)]
enum Event {
    /// An API request (creates and cancels carry a clientToken).
    Api {
        method: &'static str,
        path: String,
        body: Value,
    },
    /// A device's message as the IoT rule delivers it: the Lambda request
    /// id and the receive time stay the same on every delivery.
    Device {
        topic: String,
        payload: Value,
        request_id: String,
        received_ms: i64,
    },
    /// Read the stream's new records and deliver them as one batch.
    Stream,
}

/// A delivery: the event's index, and the batch it read when it is a
/// redelivered stream event.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    event: usize,
    copy: bool,
}

/// The scenario: three devices take direct executions (one reports its
/// progress twice, one is canceled), two devices work through a job.
fn scenario(ids: &Ids) -> Vec<Event> {
    let api = |method, path: &str, body: Value| Event::Api {
        method,
        path: path.to_owned(),
        body,
    };
    let mut n = 0;
    let mut device = |thing: &str, suffix: &str, payload: Value| {
        n += 1;
        Event::Device {
            topic: format!("courier/things/{thing}/jobs/{suffix}"),
            payload,
            request_id: format!("req-{thing}-{n}"),
            received_ms: (NOW + 100 + n) * 1000,
        }
    };
    vec![
        api(
            "POST",
            "/commands",
            json!({"commandId": "reboot", "executionTimeoutSeconds": 3600}),
        ),
        api(
            "POST",
            "/commands/reboot/executions",
            json!({"target": "dev-1", "clientToken": "t1"}),
        ),
        api(
            "POST",
            "/commands/reboot/executions",
            json!({"target": "dev-2", "clientToken": "t2"}),
        ),
        api(
            "POST",
            "/commands/reboot/executions",
            json!({"target": "dev-5", "clientToken": "t5"}),
        ),
        api(
            "POST",
            "/jobs",
            json!({"commandId": "reboot", "targets": {"things": ["dev-3", "dev-4"]}, "clientToken": "j1"}),
        ),
        Event::Stream,
        Event::Stream,
        api(
            "POST",
            &format!("/executions/{}/cancel", ids.dev5),
            json!({"clientToken": "c5", "statusReason": {"reasonCode": "NOT_NEEDED"}}),
        ),
        device("dev-1", "start-next", json!({})),
        device(
            "dev-1",
            &format!("{}/update", ids.dev1),
            json!({"status": "IN_PROGRESS", "statusDetails": {"step": "1/2"}}),
        ),
        device(
            "dev-1",
            &format!("{}/update", ids.dev1),
            json!({"status": "IN_PROGRESS", "statusDetails": {"step": "2/2"}}),
        ),
        device(
            "dev-1",
            &format!("{}/update", ids.dev1),
            json!({"status": "SUCCEEDED", "result": {"uptime": {"L": 7}}}),
        ),
        device(
            "dev-2",
            &format!("{}/update", ids.dev2),
            json!({"status": "REJECTED", "statusReason": {"reasonCode": "LOW_BATTERY"}}),
        ),
        Event::Stream,
        device("dev-3", "start-next", json!({})),
        device(
            "dev-3",
            &format!("{}/update", ids.dev3),
            json!({"status": "SUCCEEDED"}),
        ),
        device(
            "dev-4",
            &format!("{}/update", ids.dev4),
            json!({"status": "FAILED", "statusReason": {"reasonCode": "DISK_FULL"}}),
        ),
        Event::Stream,
        Event::Stream,
    ]
}

/// Execution ids, derived from the clientTokens (and the job's).
struct Ids {
    dev1: String,
    dev2: String,
    dev3: String,
    dev4: String,
    dev5: String,
}

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Every event once, in order; with `seed`, every event 2-5 times, the
/// copies at random positions after the first delivery.
fn schedule(events: usize, seed: Option<u64>) -> Vec<Delivery> {
    let mut order: Vec<Delivery> = (0..events)
        .map(|event| Delivery { event, copy: false })
        .collect();
    let Some(seed) = seed else {
        return order;
    };
    let mut rng = Rng(seed);
    for event in 0..events {
        for _ in 0..1 + rng.below(4) {
            let first = order
                .iter()
                .position(|d| d.event == event && !d.copy)
                .unwrap();
            let at = first + 1 + rng.below(order.len() - first);
            order.insert(at, Delivery { event, copy: true });
        }
    }
    order
}

struct Run {
    courier: Courier<DynamoStore>,
    settings: ApiSettings,
    stream: StreamPoller,
    /// The batch each stream event read, for its redeliveries.
    batches: Vec<Option<Vec<Value>>>,
    replies: Vec<(usize, u16)>,
}

impl Run {
    async fn new(events: usize) -> Self {
        let courier = fresh_courier().await;
        let stream = StreamPoller::new(courier.store().table(), StartAt::Beginning)
            .await
            .unwrap();
        Self {
            courier,
            settings: api_settings(true),
            stream,
            batches: vec![None; events],
            replies: Vec::new(),
        }
    }

    async fn deliver(&mut self, events: &[Event], delivery: Delivery, step: i64) {
        let now = Timestamp::from_secs(NOW + step);
        match &events[delivery.event] {
            Event::Api { method, path, body } => {
                let event = http_event(method, path, Some(body));
                let reply = send_to_api(&self.courier, &self.settings, &event, now).await;
                let status = reply.status;
                assert!(status < 300, "{method} {path}: {status} {}", reply.body);
                if !delivery.copy {
                    self.replies.push((delivery.event, status));
                }
            }
            Event::Device {
                topic,
                payload,
                request_id,
                received_ms,
            } => {
                device_events::handle(
                    &self.courier,
                    &TopicRoot::parse(DEFAULT_ROOT).unwrap(),
                    &RecordingPublisher::default(),
                    lambda_event(
                        iot_rule_event_at(topic, payload, *received_ms),
                        context(request_id),
                    ),
                    now,
                )
                .await
                .unwrap();
            }
            Event::Stream => {
                let batch = match (&self.batches[delivery.event], delivery.copy) {
                    (Some(batch), true) => batch.clone(),
                    (None, true) => return,
                    (_, false) => {
                        let fresh = self.stream.poll().await.unwrap();
                        self.batches[delivery.event] = Some(fresh.clone());
                        fresh
                    }
                };
                if batch.is_empty() {
                    return;
                }
                let out = send_to_dispatcher(
                    &self.courier,
                    &RecordingPublisher::default(),
                    &thing_groups().await,
                    batch,
                    now,
                )
                .await;
                assert_eq!(out["batchItemFailures"], json!([]), "{out}");
            }
        }
    }

    /// Every execution and the job, as the table holds them.
    async fn state(&self, ids: &Ids, job_id: &str) -> (Vec<CommandExecution>, JobView) {
        let later = Timestamp::from_secs(NOW + 10_000);
        let mut executions = Vec::new();
        for id in [&ids.dev1, &ids.dev2, &ids.dev3, &ids.dev4, &ids.dev5] {
            executions.push(self.courier.get_execution(id, later).await.unwrap());
        }
        let job = self.courier.get_job(job_id, later).await.unwrap();
        let listed = all_job_executions(&self.courier, &job.job.job_id, later).await;
        assert_eq!(listed.len(), 2, "one execution per job target");
        (executions, job)
    }
}

/// The ids the scenario's tokens lead to, learned from a first run.
async fn ids_and_job() -> (Ids, String) {
    let courier = fresh_courier().await;
    courier
        .create_command(
            &json!({"commandId": "reboot"}).into(),
            Timestamp::from_secs(NOW),
        )
        .await
        .unwrap();
    let start = |target: &'static str, token: &'static str| {
        let courier = &courier;
        async move {
            courier
                .start_execution(
                    "reboot",
                    &json!({"target": target, "clientToken": token}).into(),
                    "tester",
                    Timestamp::from_secs(NOW),
                )
                .await
                .unwrap()
                .0
                .execution_id
                .to_string()
        }
    };
    let (dev1, dev2, dev5) = (
        start("dev-1", "t1").await,
        start("dev-2", "t2").await,
        start("dev-5", "t5").await,
    );
    let job = courier_functions::platform::ids::job_id(Some(
        &courier_core::ClientToken::parse("j1").unwrap(),
    ));
    let of_job = |thing: &str| {
        courier_functions::platform::ids::job_execution_id(
            &job,
            &courier_core::ThingName::parse(thing).unwrap(),
        )
        .to_string()
    };
    (
        Ids {
            dev1,
            dev2,
            dev3: of_job("dev-3"),
            dev4: of_job("dev-4"),
            dev5,
        },
        job.to_string(),
    )
}

async fn play(
    events: &[Event],
    seed: Option<u64>,
    ids: &Ids,
    job: &str,
) -> (Run, (Vec<CommandExecution>, JobView)) {
    let mut run = Run::new(events.len()).await;
    // The clock: event i first arrives at second i, in both plays; a copy
    // arrives at the time of the latest first delivery before it.
    let mut clock = 0;
    for delivery in schedule(events.len(), seed) {
        if !delivery.copy {
            clock = delivery.event as i64;
        }
        run.deliver(events, delivery, clock).await;
    }
    // Whatever a redelivery left unread on the stream is delivered too.
    loop {
        let rest = run.stream.poll().await.unwrap();
        if rest.is_empty() {
            break;
        }
        let out = send_to_dispatcher(
            &run.courier,
            &RecordingPublisher::default(),
            &thing_groups().await,
            rest,
            Timestamp::from_secs(NOW + 5_000),
        )
        .await;
        assert_eq!(out["batchItemFailures"], json!([]));
    }
    let state = run.state(ids, job).await;
    (run, state)
}

/// Fields that record when a delivery happened rather than what it did:
/// a redelivered batch runs at a later clock, so the time the job runner
/// looked at the job may differ; nothing else may.
fn comparable(job: JobView) -> Value {
    let mut value = serde_json::to_value(&job.job).unwrap();
    value.as_object_mut().unwrap().remove("lastUpdatedAt");
    json!({ "job": value, "statistics": job.statistics })
}

#[tokio::test]
async fn every_event_delivered_two_to_five_times_leaves_the_state_of_one_delivery() {
    let (ids, job) = ids_and_job().await;
    let events = scenario(&ids);
    // GIVEN the scenario played with every event delivered once
    let (once, (expected, expected_job)) = play(&events, None, &ids, &job).await;
    assert_eq!(
        expected
            .iter()
            .map(|e| e.status.as_str())
            .collect::<Vec<_>>(),
        vec!["SUCCEEDED", "REJECTED", "SUCCEEDED", "FAILED", "CANCELED"],
        "the scenario runs to its end"
    );
    assert_eq!(
        expected[0].status_details.get("step").map(String::as_str),
        Some("2/2")
    );
    assert_eq!(expected_job.job.status, courier_core::JobStatus::Completed);
    let expected_job = comparable(expected_job);
    for seed in [7, 1_234_567, 0x00C0_FFEE] {
        // WHEN it is played again with every event delivered 2-5 times
        let order = schedule(events.len(), Some(seed));
        assert!(
            order.len() >= 2 * events.len(),
            "{seed}: every event at least twice"
        );
        let (again, (actual, actual_job)) = play(&events, Some(seed), &ids, &job).await;
        // THEN every execution and the job end exactly as with one delivery
        for (a, e) in actual.iter().zip(&expected) {
            assert_eq!(a, e, "seed {seed}: execution on {}", e.target);
        }
        assert_eq!(comparable(actual_job), expected_job, "seed {seed}: the job");
        // AND every create was answered as the first time
        assert_eq!(again.replies, once.replies, "seed {seed}");
    }
}

#[tokio::test]
async fn a_progress_report_redelivered_after_a_newer_one_changes_nothing() {
    let (ids, _) = ids_and_job().await;
    let events = scenario(&ids);
    let mut run = Run::new(events.len()).await;
    // GIVEN dev-1's execution, delivered and started
    for event in [0, 1, 5, 8] {
        run.deliver(&events, Delivery { event, copy: false }, event as i64)
            .await;
    }
    // WHEN progress 1/2 then 2/2 arrive, then Lambda redelivers 1/2
    for (event, copy) in [(9, false), (10, false), (9, true)] {
        run.deliver(&events, Delivery { event, copy }, 10).await;
    }
    // THEN the newer report stands: the stale one is recognised by its
    // receive time (it is not the last token any more)
    let e = run
        .courier
        .get_execution(&ids.dev1, Timestamp::from_secs(NOW + 20))
        .await
        .unwrap();
    assert_eq!(
        e.status_details.get("step").map(String::as_str),
        Some("2/2")
    );
    assert_eq!(e.version, 5, "SENT, IN_PROGRESS by start-next, 1/2, 2/2");
}
