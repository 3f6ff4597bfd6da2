//! LAMBDA EVENTS as the platform delivers them to each function, for the
//! local stand-ins (which send them as JSON), the tests and the benchmarks
//! (which hand them to the handlers typed). No I/O.

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::dynamodb::Event;
use base64::Engine as _;
use courier_core::Timestamp;
use courier_functions::entry::device_events::IotRuleEvent;
use serde_json::{json, Value};

/// A Lambda invocation context with the given request id.
pub fn context(request_id: &str) -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = request_id.to_owned();
    context
}

/// What an IoT rule delivers to `device-events` for `payload` on `topic`
/// (the payload base64-encoded), received at `received_at`.
pub fn iot_rule_event(topic: &str, payload: &[u8], received_at: Option<Timestamp>) -> IotRuleEvent {
    IotRuleEvent {
        topic: topic.to_owned(),
        payload: Some(base64::engine::general_purpose::STANDARD.encode(payload)),
        received_at: received_at.map(Timestamp::millis),
    }
}

/// A batch of the table's stream records (in the JSON Lambda sends, as
/// `stream::StreamPoller` returns them) as the `dispatcher` receives it.
pub fn stream_event(records: &[Value]) -> Result<Event, String> {
    serde_json::from_value(json!({ "Records": records }))
        .map_err(|e| format!("not a DynamoDB stream event: {e}"))
}

/// The scheduled event EventBridge Scheduler sends the sweeper at `at` (the
/// template's `Input`, with its context attributes filled in), as JSON.
pub fn scheduled_event_json(at: Timestamp) -> Value {
    let time = chrono::DateTime::from_timestamp_millis(at.millis()).unwrap_or_default();
    json!({
        "version": "0", "id": format!("courier-local-{}", at.millis()),
        "detail-type": "Scheduled Event", "source": "aws.scheduler",
        "account": "000000000000", "region": "us-east-1",
        "time": time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "resources": ["arn:aws:scheduler:us-east-1:000000000000:schedule/default/courier-sweeper"],
        "detail": {}
    })
}

/// [`scheduled_event_json`], typed.
pub fn scheduled_event(at: Timestamp) -> CloudWatchEvent {
    serde_json::from_value(scheduled_event_json(at)).unwrap_or_default()
}
