//! THE COMMANDS PROTOCOL: the AWS IoT commands device API, topic for topic
//! and field for field, under a configurable root. Parsing the device's
//! response topic and its UpdateCommandExecution payload, and building the
//! request, the replies and the status events; pure, no I/O.
//!
//! With root `courier/commands/things/{thingName}` (the default; use
//! `$aws/commands/things/{thingName}` on a broker of your own so devices
//! written for AWS work unchanged):
//!
//! | topic | who publishes | what |
//! |---|---|---|
//! | `{root}/executions/{executionId}/request/json` | Courier | the command's payload (QoS 1); `.../request/cbor` for CBOR, `.../request` for a static payload of another type (see `command_payload`) |
//! | `{root}/executions/{executionId}/response/json` | the device | UpdateCommandExecution `{status, statusReason?, result?}` |
//! | `{root}/executions/{executionId}/response/accepted/json` | Courier | `{executionId}` |
//! | `{root}/executions/{executionId}/response/rejected/json` | Courier | `{error, errorMessage, executionId}` |
//! | `{events}/{commandId}/{status}` | Courier | a status event (`$aws/events/commandExecution` on AWS) |
//!
//! Statuses as the device and the events name them: Courier's QUEUED and
//! SENT are CREATED; IN_PROGRESS, SUCCEEDED, FAILED, REJECTED and TIMED_OUT
//! are themselves; CANCELED (an operator's cancel, which AWS commands lack)
//! is CANCELED. Result values use AWS's lowercase keys `s`, `b` and `bin`.

use crate::codec::ToJson;
use crate::command_payload::RequestFormat;
pub use crate::device_protocol::DeviceProtocol;
use crate::error::{ValidationCode, ValidationErrors};
use crate::execution::CommandExecution;
use crate::ids::{ExecutionId, ThingName};
use crate::json::Json;
use crate::protocol::{RejectedCode, TopicRoot};
use crate::reason::StatusReason;
use crate::schema::Parameters;
use crate::status::ExecutionStatus;
use crate::text::{json_kind, msg, quote};
use crate::time::Timestamp;
use crate::update::StatusUpdate;
use crate::value::TypedValue;

pub const DEFAULT_ROOT: &str = "courier/commands/things/{thingName}";
pub const DEFAULT_EVENTS_ROOT: &str = "courier/events/commandExecution";
/// AWS's limits on an UpdateCommandExecution result.
pub const MAX_RESULT_NAME_CHARS: usize = 32;

/// A device's response topic, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub thing: ThingName,
    pub execution_id: ExecutionId,
    /// What the device wrote (the topic's last segment), and so what its
    /// reply is written in.
    pub format: ResponseFormat,
}

/// A response's encoding: `.../response/json` (or the format-less
/// `.../response`) or `.../response/cbor`. The reply is in the same one,
/// on `.../response/accepted/{json|cbor}` or `.../rejected/{json|cbor}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Cbor,
}

impl ResponseFormat {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Cbor => "cbor",
        }
    }
}

/// Why a topic under the root is not answered as a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicError {
    /// Not under the root, or one of Courier's own topics (a request, a
    /// reply): not answered at all.
    Ignored,
    /// Under the root and addressed to an execution, but not a response
    /// Courier serves: answered on its rejected topic.
    Rejected {
        response: Response,
        code: RejectedCode,
        message: String,
    },
}

/// The request's MQTT 5 message expiry: the whole seconds (rounded up, at
/// least 1) until the execution's first deadline at `now`, so a broker
/// drops a request that waited in a device's session past the point where
/// its answer would be refused. AWS IoT commands devices read it as the
/// execution's timeout (the Device SDK's `CommandExecutionEvent.timeout`).
/// `None` once it has no deadline left (it has ended).
pub fn request_expiry_seconds(execution: &CommandExecution, now: Timestamp) -> Option<u32> {
    let (at, _) = execution.expiry()?;
    let left_ms = at.millis().saturating_sub(now.millis()).max(1);
    let seconds = left_ms.saturating_add(999) / 1000;
    // At most the longest execution timeout (7 days), which is also AWS IoT
    // Core's longest message expiry.
    let longest = crate::schema::EXECUTION_TIMEOUT_RANGE.1;
    Some(u32::try_from(seconds).map_or(longest, |s| s.min(longest)))
}

/// The topic the command's payload is published on: `.../request/json`,
/// `.../request/cbor`, or `.../request` for any other format.
pub fn request_topic(
    root: &TopicRoot,
    thing: &ThingName,
    id: &ExecutionId,
    format: RequestFormat<'_>,
) -> String {
    msg![
        root.for_thing(thing),
        "/executions/",
        id.as_str(),
        format.topic_suffix()
    ]
}

/// Where the reply to a response goes.
pub fn reply_topic(root: &TopicRoot, response: &Response, accepted: bool) -> String {
    let outcome = if accepted { "accepted" } else { "rejected" };
    msg![
        root.for_thing(&response.thing),
        "/executions/",
        response.execution_id.as_str(),
        "/response/",
        outcome,
        "/",
        response.format.as_str()
    ]
}

/// The topic filters the device-facing rules subscribe to (`+` for the
/// thing and the execution): JSON and CBOR responses, and the format-less
/// ones.
pub fn response_filters(root: &TopicRoot) -> [String; 3] {
    [
        root.filter("executions/+/response/json"),
        root.filter("executions/+/response/cbor"),
        root.filter("executions/+/response"),
    ]
}

/// Parses a device's response topic: `{root}/executions/{id}/response/json`
/// (or `/response`, which AWS also accepts; JSON is assumed), or
/// `.../response/cbor` (read with `command_payload::json_from_cbor`). Any
/// other format is refused as `InvalidRequest`, answered in JSON.
pub fn parse_response_topic(root: &TopicRoot, topic: &str) -> Result<Response, TopicError> {
    let thing = root.thing_of(topic).ok_or(TopicError::Ignored)?;
    let prefix = msg![root.for_thing(&thing), "/"];
    let rest = topic
        .strip_prefix(prefix.as_str())
        .ok_or(TopicError::Ignored)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (id, format) = match parts.as_slice() {
        ["executions", id, "response"] => (*id, "json"),
        ["executions", id, "response", format] => (*id, *format),
        _ => return Err(TopicError::Ignored),
    };
    let Ok(execution_id) = ExecutionId::parse(id) else {
        // No execution can have that id, and no reply topic can name it.
        return Err(TopicError::Ignored);
    };
    let mut response = Response {
        thing,
        execution_id,
        format: ResponseFormat::Json,
    };
    match format {
        "json" => Ok(response),
        "cbor" => {
            response.format = ResponseFormat::Cbor;
            Ok(response)
        }
        "accepted" | "rejected" => Err(TopicError::Ignored),
        other => Err(TopicError::Rejected {
            response,
            code: RejectedCode::InvalidRequest,
            message: msg![
                "responses are JSON (.../response/json) or CBOR (.../response/cbor), not ",
                quote(other)
            ],
        }),
    }
}

/// The status a device and the status events see for a Courier status.
pub const fn command_status(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Queued | ExecutionStatus::Sent => "CREATED",
        ExecutionStatus::InProgress => "IN_PROGRESS",
        ExecutionStatus::Succeeded => "SUCCEEDED",
        ExecutionStatus::Failed => "FAILED",
        ExecutionStatus::Rejected => "REJECTED",
        ExecutionStatus::TimedOut => "TIMED_OUT",
        ExecutionStatus::Canceled => "CANCELED",
    }
}

/// Parses an UpdateCommandExecution payload: `status` (IN_PROGRESS,
/// SUCCEEDED, FAILED, REJECTED or TIMED_OUT), optional `statusReason`
/// `{reasonCode, reasonDescription?}` and `result` (at least one entry,
/// each `{"s": text}`, `{"b": bool}` or `{"bin": base64}`). `deviceId` and
/// `executionId`, which AWS's examples carry, are ignored: the topic names
/// both. So is `deviceType` (`"things"`), which the AWS IoT Device SDK's
/// commands client (Java) writes into every update; a `"clients"` device
/// type is refused, as Courier's topics address things. Every problem is
/// reported.
pub fn parse_update(body: &Json) -> Result<StatusUpdate, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let Json::Object(map) = body else {
        errors.add(
            "",
            ValidationCode::InvalidJson,
            msg!["an update must be a JSON object, got ", json_kind(body)],
        );
        return Err(errors);
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "status" | "statusReason" | "result" | "deviceId" | "executionId" | "deviceType"
        ) {
            errors.add(
                key.as_str(),
                ValidationCode::UnknownField,
                "UpdateCommandExecution takes status, statusReason and result",
            );
        }
    }
    match map.get("deviceType") {
        None | Some(Json::Null) => {}
        Some(Json::String(kind)) if kind == "things" => {}
        Some(Json::String(kind)) => errors.add(
            "deviceType",
            ValidationCode::InvalidValue,
            msg![
                "Courier's commands topics address things: deviceType is \"things\", not ",
                quote(kind)
            ],
        ),
        Some(other) => errors.add(
            "deviceType",
            ValidationCode::WrongType,
            msg!["expected the string \"things\", got ", json_kind(other)],
        ),
    }
    let status = crate::update::required_status(
        map.get("status"),
        |raw| match raw {
            "IN_PROGRESS" => Some(ExecutionStatus::InProgress),
            "SUCCEEDED" => Some(ExecutionStatus::Succeeded),
            "FAILED" => Some(ExecutionStatus::Failed),
            "REJECTED" => Some(ExecutionStatus::Rejected),
            "TIMED_OUT" => Some(ExecutionStatus::TimedOut),
            _ => None,
        },
        "IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, TIMED_OUT",
        &mut errors,
    );
    let status_reason =
        StatusReason::optional(map.get("statusReason"), "statusReason", &mut errors);
    let result = match map.get("result") {
        None | Some(Json::Null) => None,
        Some(json) => parse_result(json, &mut errors),
    };
    errors.into_result(StatusUpdate {
        status,
        status_reason,
        result,
        ..StatusUpdate::default()
    })
}

/// A result map in AWS's lowercase form, as Courier's typed values.
fn parse_result(json: &Json, errors: &mut ValidationErrors) -> Option<Parameters> {
    let Json::Object(map) = json else {
        errors.add(
            "result",
            ValidationCode::WrongType,
            msg!["expected an object of results, got ", json_kind(json)],
        );
        return None;
    };
    if map.is_empty() {
        errors.add(
            "result",
            ValidationCode::TooShort,
            "at least 1 command execution result is required",
        );
        return None;
    }
    let mut out = Parameters::new();
    for (name, value) in map {
        let path = msg!["result.", name];
        let name_ok = !name.is_empty()
            && name.chars().count() <= MAX_RESULT_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            errors.add(
                &path,
                ValidationCode::InvalidValue,
                "result names are 1 to 32 of letters, digits, '_' and '-'",
            );
            continue;
        }
        let entry = match value {
            Json::Object(entry) if entry.len() == 1 => entry.iter().next(),
            _ => None,
        };
        let typed = match entry {
            Some((key, inner)) => match key.as_str() {
                "s" => Some(Json::object([("S", inner.clone())])),
                "b" => Some(Json::object([("B", inner.clone())])),
                "bin" => Some(Json::object([("BIN", binary_result(inner))])),
                _ => None,
            },
            None => None,
        };
        let Some(typed) = typed else {
            errors.add(
                &path,
                ValidationCode::WrongType,
                "a result value is {\"s\": text}, {\"b\": true or false} or {\"bin\": base64}",
            );
            continue;
        };
        match TypedValue::from_json_at(&typed, &path) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    Some(out)
}

/// A `bin` result as base64 text. AWS documents base64; the AWS IoT Device
/// SDK for Java serialises its `byte[]` as an array of numbers (Gson's
/// default), which is read here as the bytes it names. Anything else is
/// left as it is, for the typed value's own check to refuse by name.
fn binary_result(value: &Json) -> Json {
    let Json::Array(items) = value else {
        return value.clone();
    };
    // Gson writes Java's signed bytes: -128..=127 (and 0..=255 is taken too).
    let bytes: Option<Vec<u8>> = items
        .iter()
        .map(|item| {
            let n = item.as_i64()?;
            match n {
                -128..=-1 => u8::try_from(n + 256).ok(),
                _ => u8::try_from(n).ok(),
            }
        })
        .collect();
    bytes.map_or_else(
        || value.clone(),
        |bytes| Json::from(crate::base64::encode(&bytes).as_str()),
    )
}

/// The accepted reply: `{executionId}`.
pub fn accepted(id: &ExecutionId) -> Json {
    Json::object([("executionId", Json::from(id.as_str()))])
}

/// A rejected reply: `{error, errorMessage, executionId}`.
pub fn rejected(code: RejectedCode, message: &str, id: &ExecutionId) -> Json {
    Json::object([
        ("error", Json::from(code.as_str())),
        ("errorMessage", Json::from(message)),
        ("executionId", Json::from(id.as_str())),
    ])
}

/// The ARNs AWS names a command and a thing by, for `region` and `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    pub region: String,
    pub account: String,
}

impl Arns {
    pub fn command(&self, command_id: &str) -> String {
        msg![
            "arn:aws:iot:",
            self.region.as_str(),
            ":",
            self.account.as_str(),
            ":command/",
            command_id
        ]
    }

    pub fn thing(&self, thing: &str) -> String {
        msg![
            "arn:aws:iot:",
            self.region.as_str(),
            ":",
            self.account.as_str(),
            ":thing/",
            thing
        ]
    }
}

/// Where the commands protocol lives: the device topics' root, the status
/// events' root, and the ARNs the events name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandsTopics {
    pub root: TopicRoot,
    pub events_root: String,
    pub arns: Arns,
}

impl Default for CommandsTopics {
    fn default() -> Self {
        Self {
            root: TopicRoot::parse(DEFAULT_ROOT)
                .unwrap_or_else(|_| unreachable!("the default root parses")),
            events_root: DEFAULT_EVENTS_ROOT.to_owned(),
            arns: Arns {
                region: "us-east-1".to_owned(),
                account: "000000000000".to_owned(),
            },
        }
    }
}

/// The topic a status event is published on: `{events}/{commandId}/{status}`.
pub fn event_topic(events_root: &str, execution: &CommandExecution) -> String {
    msg![
        events_root,
        "/",
        execution.command_id.as_str(),
        "/",
        command_status(execution.status)
    ]
}

/// A status event, as AWS's `$aws/events/commandExecution` sends it:
/// executionId, status, statusReason (when there is one), eventType,
/// commandArn, targetArn, timestamp (epoch milliseconds). A device's report
/// that came after the execution timed out is added as `lateResult`
/// (Courier's: AWS would let it replace TIMED_OUT).
pub fn status_event(execution: &CommandExecution, arns: &Arns, now: Timestamp) -> Json {
    let mut out = Json::object([
        ("executionId", Json::from(execution.execution_id.as_str())),
        ("status", Json::from(command_status(execution.status))),
        ("eventType", Json::from("COMMAND_EXECUTION")),
        (
            "commandArn",
            Json::from(arns.command(execution.command_id.as_str())),
        ),
        (
            "targetArn",
            Json::from(arns.thing(execution.target.as_str())),
        ),
        ("timestamp", Json::from(now.millis())),
    ]);
    if let Some(reason) = &execution.status_reason {
        out.set("statusReason", reason_json(reason));
    }
    if let Some(late) = &execution.late_result {
        out.set("lateResult", late.to_json());
    }
    out
}

fn reason_json(reason: &StatusReason) -> Json {
    let mut out = Json::object([("reasonCode", Json::from(reason.reason_code.as_str()))]);
    if let Some(description) = &reason.reason_description {
        out.set("reasonDescription", description.as_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> TopicRoot {
        TopicRoot::parse("$aws/commands/things/{thingName}").unwrap()
    }

    #[test]
    fn response_topics_name_the_thing_and_execution() {
        let id = "2bd65c51-4cfd-49e4-9310-d5cbfdbc8554";
        let topic = msg![
            "$aws/commands/things/My_Car/executions/",
            id,
            "/response/json"
        ];
        let response = parse_response_topic(&root(), &topic).unwrap();
        assert_eq!(
            (response.thing.as_str(), response.execution_id.as_str()),
            ("My_Car", id)
        );
        assert_eq!(
            reply_topic(&root(), &response, true),
            msg![
                "$aws/commands/things/My_Car/executions/",
                id,
                "/response/accepted/json"
            ]
        );
        let bare = msg!["$aws/commands/things/My_Car/executions/", id, "/response"];
        assert!(parse_response_topic(&root(), &bare).is_ok());
        let cbor = msg![
            "$aws/commands/things/My_Car/executions/",
            id,
            "/response/cbor"
        ];
        let response = parse_response_topic(&root(), &cbor).unwrap();
        assert_eq!(response.format, ResponseFormat::Cbor);
        assert_eq!(
            reply_topic(&root(), &response, false),
            msg![
                "$aws/commands/things/My_Car/executions/",
                id,
                "/response/rejected/cbor"
            ]
        );
        let xml = msg![
            "$aws/commands/things/My_Car/executions/",
            id,
            "/response/xml"
        ];
        assert!(matches!(
            parse_response_topic(&root(), &xml),
            Err(TopicError::Rejected {
                code: RejectedCode::InvalidRequest,
                response: Response {
                    format: ResponseFormat::Json,
                    ..
                },
                ..
            })
        ));
        for ignored in [
            msg![
                "$aws/commands/things/My_Car/executions/",
                id,
                "/request/json"
            ],
            msg![
                "$aws/commands/things/My_Car/executions/",
                id,
                "/response/accepted/json"
            ],
            "$aws/things/My_Car/jobs/get".to_owned(),
        ] {
            assert_eq!(
                parse_response_topic(&root(), &ignored),
                Err(TopicError::Ignored),
                "{ignored}"
            );
        }
    }

    #[test]
    fn the_aws_example_update_parses() {
        let body: Json = serde_json::from_str(
            r#"{"status": "IN_PROGRESS", "statusReason": {"reasonCode": "200", "reasonDescription": "Execution_in_progress"},
                "result": {"car_battery": {"s": "car battery at 50 percent"}}}"#,
        )
        .unwrap();
        let update = parse_update(&body).unwrap();
        assert_eq!(update.status, Some(ExecutionStatus::InProgress));
        assert_eq!(update.status_reason.unwrap().reason_code, "200");
        assert_eq!(
            update.result.unwrap().get("car_battery"),
            Some(&TypedValue::S("car battery at 50 percent".into()))
        );
    }

    #[test]
    fn bad_updates_name_every_problem() {
        let body: Json = serde_json::from_str(
            r#"{"status": "DONE", "result": {"x": {"S": "upper"}, "ok": {"b": true}}, "colour": 1}"#,
        )
        .unwrap();
        let errors = parse_update(&body).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["colour", "status", "result.x"]);
        let empty: Json = serde_json::from_str(r#"{"status": "SUCCEEDED", "result": {}}"#).unwrap();
        assert_eq!(
            parse_update(&empty)
                .unwrap_err()
                .iter()
                .next()
                .unwrap()
                .message,
            "at least 1 command execution result is required"
        );
    }

    #[test]
    fn the_java_device_sdk_update_parses() {
        // What IotCommandsV2Client (aws-iot-device-sdk-java-v2) publishes:
        // Gson's output of UpdateCommandExecutionRequest, with deviceType
        // and the byte[] of a bin result as signed numbers.
        let body: Json = serde_json::from_str(
            r#"{"deviceType": "things", "deviceId": "My_Car", "executionId": "e-1", "status": "SUCCEEDED",
                "statusReason": {"reasonCode": "OK", "reasonDescription": "done"},
                "result": {"log": {"bin": [104, 105, -1]}, "ok": {"b": true}}}"#,
        )
        .unwrap();
        let update = parse_update(&body).unwrap();
        assert_eq!(update.status, Some(ExecutionStatus::Succeeded));
        let result = update.result.unwrap();
        assert_eq!(
            result.get("log"),
            Some(&TypedValue::Bin(vec![104, 105, 255]))
        );
        assert_eq!(result.get("ok"), Some(&TypedValue::B(true)));
        let base64: Json =
            serde_json::from_str(r#"{"status": "SUCCEEDED", "result": {"log": {"bin": "aGn/"}}}"#)
                .unwrap();
        assert_eq!(
            parse_update(&base64).unwrap().result.unwrap().get("log"),
            Some(&TypedValue::Bin(vec![104, 105, 255]))
        );
    }

    #[test]
    fn a_device_type_other_than_things_and_bytes_out_of_range_are_refused() {
        let body: Json = serde_json::from_str(
            r#"{"deviceType": "clients", "status": "SUCCEEDED", "result": {"log": {"bin": [300]}}}"#,
        )
        .unwrap();
        let errors = parse_update(&body).unwrap_err();
        let found: Vec<(&str, ValidationCode)> =
            errors.iter().map(|e| (e.path.as_str(), e.code)).collect();
        assert_eq!(
            found,
            [
                ("deviceType", ValidationCode::InvalidValue),
                ("result.log", ValidationCode::WrongType)
            ]
        );
    }

    #[test]
    fn a_request_expires_with_the_executions_first_deadline() {
        let definition: Json = serde_json::from_str(
            r#"{"commandId": "unlock", "protocol": "commands", "executionTimeoutSeconds": 60}"#,
        )
        .unwrap();
        let validator = crate::CommandDefinition::from_json(&definition)
            .unwrap()
            .validator()
            .unwrap();
        let now = Timestamp::from_secs(1_800_000_000);
        let start: Json = serde_json::from_str(r#"{"target": "My_Car"}"#).unwrap();
        let mut execution = crate::StartExecution::parse(&start, &validator, now)
            .unwrap()
            .into_execution(ExecutionId::parse("e-1").unwrap(), &validator, "ops", now);
        assert_eq!(request_expiry_seconds(&execution, now), Some(60));
        // Rounded up, never 0 while a deadline is ahead or just passed.
        let later = Timestamp::from_millis(now.millis() + 59_001);
        assert_eq!(request_expiry_seconds(&execution, later), Some(1));
        let past = now.plus_secs(3600);
        assert_eq!(request_expiry_seconds(&execution, past), Some(1));
        execution.status = ExecutionStatus::Succeeded;
        assert_eq!(request_expiry_seconds(&execution, now), None);
    }

    #[test]
    fn statuses_as_devices_see_them() {
        assert_eq!(command_status(ExecutionStatus::Queued), "CREATED");
        assert_eq!(command_status(ExecutionStatus::Sent), "CREATED");
        assert_eq!(command_status(ExecutionStatus::TimedOut), "TIMED_OUT");
    }
}
