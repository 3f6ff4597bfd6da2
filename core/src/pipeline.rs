//! PIPELINES: ordered stages of commands, defined once and run over fleets
//! (see [`crate::pipeline_run`] for a run's rules). A definition is
//! immutable, like a command: each stage is an ordered list of operations,
//! each an ordinary command with typed parameters checked against that
//! command's schema when the pipeline is created, what a failure means for
//! the device (`STOP`, the default, or `CONTINUE`), and optionally the
//! retry policy its executions get. Pure, no I/O: the caller loads the
//! commands an operation names ([`CreatePipeline::command_ids`]) and hands
//! their validators in.

use crate::error::{ValidationCode, ValidationErrors};
use crate::ids::{CommandId, PipelineId, StageName};
use crate::job::{object, unknown_fields, whole};
use crate::json::Json;
use crate::retry::RetryPolicy;
use crate::schema::{Parameters, Validator};
use crate::text::{json_kind, msg};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// At most this many stages in a pipeline.
pub const MAX_STAGES: usize = 10;
/// At most this many operations in a stage.
pub const MAX_OPERATIONS: usize = 10;
/// A stage's per-device timeout when the definition gives none: a day.
pub const DEFAULT_STAGE_TIMEOUT_SECONDS: u32 = 86_400;
/// A stage's timeout is a minute to thirty days.
pub const STAGE_TIMEOUT_RANGE: (u64, u64) = (60, 30 * 86_400);
/// The longest description.
pub const MAX_DESCRIPTION: usize = 2048;

/// What an operation's failure (FAILED, REJECTED or TIMED_OUT, after its
/// retries) means for that device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnFailure {
    /// The device stops here (its later operations and stages never run).
    #[default]
    Stop,
    /// The device goes on to its next operation, but counts as failed for
    /// the stage's gate.
    Continue,
}

impl OnFailure {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "STOP",
            Self::Continue => "CONTINUE",
        }
    }

    const fn is_stop(&self) -> bool {
        matches!(self, Self::Stop)
    }
}

/// One command a device runs as part of a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub command_id: CommandId,
    #[serde(default, skip_serializing_if = "crate::map::SortedMap::is_empty")]
    pub parameters: Parameters,
    #[serde(default, skip_serializing_if = "OnFailure::is_stop")]
    pub on_failure: OnFailure,
    /// The executions' retry policy; the command's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

/// Operations every device of a wave runs in order before the wave's gate
/// is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: StageName,
    /// How long one device has, from starting the stage, to finish its
    /// operations; a device that has not is counted as timed out.
    pub timeout_seconds: u32,
    pub operations: Vec<Operation>,
}

/// A pipeline, as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub pipeline_id: PipelineId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub stages: Vec<Stage>,
    pub created_at: Timestamp,
}

impl Pipeline {
    /// The operation at (`stage`, `operation`), if there is one.
    pub fn operation(&self, stage: usize, operation: usize) -> Option<&Operation> {
        self.stages.get(stage)?.operations.get(operation)
    }
}

/// `POST /pipelines`, parsed and every operation's parameters checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePipeline {
    pub pipeline_id: PipelineId,
    pub description: Option<String>,
    pub stages: Vec<Stage>,
}

const FIELDS: [&str; 3] = ["pipelineId", "description", "stages"];
const STAGE_FIELDS: [&str; 3] = ["name", "timeoutSeconds", "operations"];
const OPERATION_FIELDS: [&str; 4] = ["commandId", "parameters", "onFailure", "retryPolicy"];

impl CreatePipeline {
    /// The commands a body's operations name (well-formed ids only, each
    /// once), for the caller to load before [`Self::parse`].
    pub fn command_ids(body: &Json) -> Vec<CommandId> {
        let mut ids: Vec<CommandId> = Vec::new();
        let Some(Json::Array(stages)) = body.get("stages") else {
            return ids;
        };
        for stage in stages {
            let Some(Json::Array(operations)) = stage.get("operations") else {
                continue;
            };
            for operation in operations {
                let id = operation.get("commandId").and_then(Json::as_str);
                if let Some(id) = id.and_then(|raw| CommandId::parse(raw).ok()) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        ids
    }

    /// Parses a request body, reporting every problem at once. `command`
    /// gives the validator of each command an operation names (`None`: no
    /// such command).
    pub fn parse<'v>(
        body: &Json,
        command: &dyn Fn(&CommandId) -> Option<&'v Validator>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Json::Object(map) = body else {
            errors.add(
                "",
                ValidationCode::InvalidJson,
                msg!["the body must be a JSON object, got ", json_kind(body)],
            );
            return Err(errors);
        };
        unknown_fields(map, "", &FIELDS, &mut errors);
        let pipeline_id = match map.get("pipelineId") {
            Some(Json::String(raw)) => errors.collect(PipelineId::parse_at(raw, "pipelineId")),
            None | Some(Json::Null) => {
                errors.add(
                    "pipelineId",
                    ValidationCode::MissingRequired,
                    "pipelineId is required",
                );
                None
            }
            Some(other) => {
                errors.add(
                    "pipelineId",
                    ValidationCode::WrongType,
                    msg!["expected a string, got ", json_kind(other)],
                );
                None
            }
        };
        let description = description(map.get("description"), &mut errors);
        let stages = match map.get("stages") {
            Some(Json::Array(list)) if (1..=MAX_STAGES).contains(&list.len()) => list
                .iter()
                .enumerate()
                .filter_map(|(i, stage)| parse_stage(stage, i, command, &mut errors))
                .collect(),
            Some(Json::Array(_)) => {
                errors.add(
                    "stages",
                    ValidationCode::OutOfRange,
                    msg!["1 to ", MAX_STAGES, " stages"],
                );
                Vec::new()
            }
            None | Some(Json::Null) => {
                errors.add(
                    "stages",
                    ValidationCode::MissingRequired,
                    "stages (a list of stages) is required",
                );
                Vec::new()
            }
            Some(other) => {
                errors.add(
                    "stages",
                    ValidationCode::WrongType,
                    msg!["expected a list of stages, got ", json_kind(other)],
                );
                Vec::new()
            }
        };
        // From the request itself, so a repeated name is reported (at its
        // own index) even when one of the stages has other problems.
        let names: Vec<Option<&str>> = match map.get("stages") {
            Some(Json::Array(list)) => list
                .iter()
                .map(|stage| stage.get("name").and_then(Json::as_str))
                .collect(),
            _ => Vec::new(),
        };
        for (i, name) in names.iter().enumerate() {
            let Some(name) = name else { continue };
            if names[..i].contains(&Some(*name)) {
                errors.add(
                    msg!["stages[", i, "].name"],
                    ValidationCode::InvalidValue,
                    msg![
                        crate::text::quote(name),
                        " names an earlier stage too; stage names are unique"
                    ],
                );
            }
        }
        match pipeline_id {
            Some(pipeline_id) if errors.is_empty() => Ok(Self {
                pipeline_id,
                description,
                stages,
            }),
            _ => Err(errors),
        }
    }

    /// The pipeline record, created at `now`.
    pub fn into_pipeline(self, now: Timestamp) -> Pipeline {
        Pipeline {
            pipeline_id: self.pipeline_id,
            description: self.description,
            stages: self.stages,
            created_at: now,
        }
    }
}

fn description(value: Option<&Json>, errors: &mut ValidationErrors) -> Option<String> {
    match value {
        None | Some(Json::Null) => None,
        Some(Json::String(text)) if text.chars().count() <= MAX_DESCRIPTION => Some(text.clone()),
        Some(Json::String(_)) => {
            errors.add(
                "description",
                ValidationCode::TooLong,
                msg!["at most ", MAX_DESCRIPTION, " characters"],
            );
            None
        }
        Some(other) => {
            errors.add(
                "description",
                ValidationCode::WrongType,
                msg!["expected a string, got ", json_kind(other)],
            );
            None
        }
    }
}

fn parse_stage<'v>(
    value: &Json,
    index: usize,
    command: &dyn Fn(&CommandId) -> Option<&'v Validator>,
    errors: &mut ValidationErrors,
) -> Option<Stage> {
    let path = msg!["stages[", index, "]"];
    let map = object(value, &path, errors)?;
    unknown_fields(map, &path, &STAGE_FIELDS, errors);
    let name = match map.get("name") {
        Some(Json::String(raw)) => errors.collect(StageName::parse_at(raw, &msg![path, ".name"])),
        None | Some(Json::Null) => {
            errors.add(
                msg![path, ".name"],
                ValidationCode::MissingRequired,
                "a stage's name is required",
            );
            None
        }
        Some(other) => {
            errors.add(
                msg![path, ".name"],
                ValidationCode::WrongType,
                msg!["expected a string, got ", json_kind(other)],
            );
            None
        }
    };
    let timeout_seconds = match map.get("timeoutSeconds") {
        None | Some(Json::Null) => Some(DEFAULT_STAGE_TIMEOUT_SECONDS),
        Some(_) => whole(map, "timeoutSeconds", &path, STAGE_TIMEOUT_RANGE, errors),
    };
    let operations_path = msg![path, ".operations"];
    let operations = match map.get("operations") {
        Some(Json::Array(list)) if (1..=MAX_OPERATIONS).contains(&list.len()) => {
            let before = errors.len();
            let parsed: Vec<Operation> = list
                .iter()
                .enumerate()
                .filter_map(|(i, op)| {
                    parse_operation(op, &msg![operations_path, "[", i, "]"], command, errors)
                })
                .collect();
            (errors.len() == before).then_some(parsed)
        }
        Some(Json::Array(_)) => {
            errors.add(
                &operations_path,
                ValidationCode::OutOfRange,
                msg!["1 to ", MAX_OPERATIONS, " operations"],
            );
            None
        }
        None | Some(Json::Null) => {
            errors.add(
                &operations_path,
                ValidationCode::MissingRequired,
                "operations (a list of commands to run) is required",
            );
            None
        }
        Some(other) => {
            errors.add(
                &operations_path,
                ValidationCode::WrongType,
                msg!["expected a list of operations, got ", json_kind(other)],
            );
            None
        }
    };
    Some(Stage {
        name: name?,
        timeout_seconds: timeout_seconds?,
        operations: operations?,
    })
}

fn parse_operation<'v>(
    value: &Json,
    path: &str,
    command: &dyn Fn(&CommandId) -> Option<&'v Validator>,
    errors: &mut ValidationErrors,
) -> Option<Operation> {
    let map = object(value, path, errors)?;
    unknown_fields(map, path, &OPERATION_FIELDS, errors);
    let id_path = msg![path, ".commandId"];
    let command_id = match map.get("commandId") {
        Some(Json::String(raw)) => errors.collect(CommandId::parse_at(raw, &id_path)),
        None | Some(Json::Null) => {
            errors.add(
                &id_path,
                ValidationCode::MissingRequired,
                "an operation's commandId is required",
            );
            None
        }
        Some(other) => {
            errors.add(
                &id_path,
                ValidationCode::WrongType,
                msg!["expected a string, got ", json_kind(other)],
            );
            None
        }
    };
    let validator = command_id.as_ref().and_then(|id| {
        let found = command(id);
        if found.is_none() {
            errors.add(
                &id_path,
                ValidationCode::InvalidValue,
                msg![
                    "no command ",
                    crate::text::quote(id.as_str()),
                    " exists; create it first"
                ],
            );
        }
        found
    });
    // The command's own paths (`parameters.rate`) put under the operation's.
    let parameters = validator.and_then(|validator| {
        let mut found = ValidationErrors::new();
        let parameters = validator.validate_field(map.get("parameters"), &mut found);
        for mut error in found.0 {
            error.path = msg![path, ".", error.path];
            errors.push(error);
        }
        parameters
    });
    let on_failure = match map.get("onFailure") {
        None | Some(Json::Null) => Some(OnFailure::Stop),
        Some(Json::String(raw)) if raw == "STOP" => Some(OnFailure::Stop),
        Some(Json::String(raw)) if raw == "CONTINUE" => Some(OnFailure::Continue),
        Some(_) => {
            errors.add(
                msg![path, ".onFailure"],
                ValidationCode::InvalidValue,
                "onFailure is STOP (the device stops here; the default) or CONTINUE",
            );
            None
        }
    };
    let retry_policy = match map.get("retryPolicy") {
        None | Some(Json::Null) => Some(None),
        Some(v) => RetryPolicy::parse(v, &msg![path, ".retryPolicy"], errors).map(Some),
    };
    Some(Operation {
        command_id: command_id?,
        parameters: parameters?,
        on_failure: on_failure?,
        retry_policy: retry_policy?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::CommandDefinition;
    use std::collections::BTreeMap;

    fn json(text: &str) -> Json {
        serde_json::from_str::<Json>(text).unwrap()
    }

    fn commands() -> BTreeMap<CommandId, Validator> {
        let mut out = BTreeMap::new();
        for (id, params) in [
            (
                "download",
                r#"[{"name": "url", "type": "S", "required": true}]"#,
            ),
            ("install", "[]"),
            (
                "reboot",
                r#"[{"name": "delay", "type": "I", "min": 0, "max": 600}]"#,
            ),
        ] {
            let definition: CommandDefinition = serde_json::from_str(&format!(
                r#"{{"commandId": "{id}", "parameters": {params}}}"#
            ))
            .unwrap();
            out.insert(
                CommandId::parse(id).unwrap(),
                definition.validator().unwrap(),
            );
        }
        out
    }

    fn parse(text: &str) -> Result<CreatePipeline, ValidationErrors> {
        let commands = commands();
        CreatePipeline::parse(&json(text), &|id| commands.get(id))
    }

    fn problems(text: &str) -> Vec<(String, &'static str)> {
        parse(text)
            .expect_err(text)
            .0
            .into_iter()
            .map(|e| (e.path.clone(), e.code()))
            .collect()
    }

    const FIRMWARE: &str = r#"{
        "pipelineId": "fw-2-4",
        "description": "download, install, reboot",
        "stages": [
            {"name": "download", "timeoutSeconds": 3600, "operations": [
                {"commandId": "download", "parameters": {"url": {"S": "s3://fw/2.4.bin"}}}]},
            {"name": "install", "operations": [
                {"commandId": "install", "retryPolicy": {"maxAttempts": 3, "retryOn": [{"status": "FAILED"}]}},
                {"commandId": "reboot", "parameters": {"delay": {"I": 5}}, "onFailure": "CONTINUE"}]}
        ]
    }"#;

    #[test]
    fn a_valid_definition_parses_with_defaults_filled_in() {
        let p = parse(FIRMWARE)
            .unwrap()
            .into_pipeline(Timestamp::from_secs(1));
        assert_eq!(p.pipeline_id.as_str(), "fw-2-4");
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].timeout_seconds, 3600);
        assert_eq!(p.stages[1].timeout_seconds, DEFAULT_STAGE_TIMEOUT_SECONDS);
        let install = p.operation(1, 0).unwrap();
        assert_eq!(install.on_failure, OnFailure::Stop);
        assert_eq!(install.retry_policy.as_ref().unwrap().max_attempts, 3);
        assert_eq!(p.operation(1, 1).unwrap().on_failure, OnFailure::Continue);
        assert!(p.operation(2, 0).is_none());
    }

    #[test]
    fn a_stored_pipeline_reads_back_as_written() {
        let p = parse(FIRMWARE)
            .unwrap()
            .into_pipeline(Timestamp::from_secs(1_800_000_000));
        let text = serde_json::to_string(&p).unwrap();
        assert!(
            !text.contains("onFailure\":\"STOP"),
            "the default is left out: {text}"
        );
        let back: Pipeline = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn the_commands_named_are_listed_once_each() {
        let ids = CreatePipeline::command_ids(&json(FIRMWARE));
        let ids: Vec<&str> = ids.iter().map(CommandId::as_str).collect();
        assert_eq!(ids, ["download", "install", "reboot"]);
        assert!(CreatePipeline::command_ids(&json(r#"{"stages": 3}"#)).is_empty());
    }

    #[test]
    fn parameters_are_checked_against_each_command_with_the_operation_path() {
        let found = problems(
            r#"{"pipelineId": "p", "stages": [{"name": "s", "operations": [
                {"commandId": "reboot", "parameters": {"delay": {"I": 601}}},
                {"commandId": "download"}]}]}"#,
        );
        assert_eq!(
            found,
            [
                (
                    "stages[0].operations[0].parameters.delay".to_owned(),
                    "OutOfRange"
                ),
                (
                    "stages[0].operations[1].parameters.url".to_owned(),
                    "MissingRequired"
                ),
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_path() {
        let found = problems(
            r#"{"pipelineId": "has space", "extra": 1, "stages": [
                {"name": "a", "timeoutSeconds": 5, "operations": [{"commandId": "nope", "onFailure": "RETRY", "x": 1}]},
                {"name": "a", "operations": []},
                {"operations": [{"commandId": "install", "retryPolicy": {"maxAttempts": 0}}]},
                "stage"
            ]}"#,
        );
        let expected = [
            ("extra", "UnknownField"),
            ("pipelineId", "InvalidId"),
            ("stages[0].timeoutSeconds", "OutOfRange"),
            ("stages[0].operations[0].x", "UnknownField"),
            ("stages[0].operations[0].commandId", "InvalidValue"),
            ("stages[0].operations[0].onFailure", "InvalidValue"),
            ("stages[1].operations", "OutOfRange"),
            ("stages[2].name", "MissingRequired"),
            (
                "stages[2].operations[0].retryPolicy.maxAttempts",
                "OutOfRange",
            ),
            ("stages[3]", "WrongType"),
            ("stages[1].name", "InvalidValue"),
        ];
        let found: Vec<(&str, &str)> = found.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn stage_names_are_unique() {
        let found = problems(
            r#"{"pipelineId": "p", "stages": [
                {"name": "a", "operations": [{"commandId": "install"}]},
                {"name": "a", "operations": [{"commandId": "install"}]}]}"#,
        );
        assert_eq!(found, [("stages[1].name".to_owned(), "InvalidValue")]);
    }

    #[test]
    fn a_repeated_stage_name_is_reported_beside_the_stages_other_problems() {
        let found = problems(
            r#"{"pipelineId": "p", "stages": [
                {"name": "a", "operations": [{"commandId": "install"}]},
                {"name": "a", "operations": []}]}"#,
        );
        assert_eq!(
            found,
            [
                ("stages[1].operations".to_owned(), "OutOfRange"),
                ("stages[1].name".to_owned(), "InvalidValue")
            ]
        );
    }

    #[test]
    fn the_stage_and_operation_counts_are_bounded() {
        let op = r#"{"commandId": "install"}"#;
        let stage = |n: usize| {
            format!(
                r#"{{"name": "s{n}", "operations": [{}]}}"#,
                vec![op; n].join(",")
            )
        };
        let too_many_ops = format!(r#"{{"pipelineId": "p", "stages": [{}]}}"#, stage(11));
        assert_eq!(
            problems(&too_many_ops),
            [("stages[0].operations".to_owned(), "OutOfRange")]
        );
        let stages: Vec<String> = (0..11)
            .map(|i| stage(1).replace("s1", &format!("s{i}")))
            .collect();
        let too_many_stages = format!(r#"{{"pipelineId": "p", "stages": [{}]}}"#, stages.join(","));
        assert_eq!(
            problems(&too_many_stages),
            [("stages".to_owned(), "OutOfRange")]
        );
        assert_eq!(
            problems(r#"{"pipelineId": "p"}"#),
            [("stages".to_owned(), "MissingRequired")]
        );
        assert_eq!(problems("[]"), [(String::new(), "InvalidJson")]);
    }
}
