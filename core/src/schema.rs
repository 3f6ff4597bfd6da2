//! Command definitions and their typed parameter schemas, and the validation
//! of a parameters object against them. Pure, no I/O.
//!
//! A definition is checked once (`CommandDefinition::validator`), which
//! compiles its patterns; the resulting [`Validator`] then checks any number of
//! parameter sets. The API, the device protocol and the WASM module all use it,
//! so every side refuses the same input with the same codes and messages.

use crate::command_payload::{OutputFormat, StaticPayload};
use crate::conditions::{Compiled, ValueCondition};
use crate::device_protocol::DeviceProtocol;
use crate::error::{ValidationCode, ValidationError, ValidationErrors};
use crate::ids::{CommandId, ParameterName};
use crate::json::{Json, Number as JsonNumber, Object};
use crate::pattern::Pattern;
use crate::retry::RetryPolicy;
use crate::text::{json_kind, quote, shown};
use crate::time::Timestamp;
use crate::value::{Number, TypedValue, ValueType};
use serde::{Deserialize, Serialize};

/// AWS IoT commands' namespace for commands to things (the other,
/// `AWS-IoT-FleetWise`, is AWS IoT FleetWise's vehicles).
pub const AWS_IOT_NAMESPACE: &str = "AWS-IoT";

/// The largest parameters (or result) object accepted, as JSON text: 128 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
pub const MAX_PARAMETERS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2048;
pub const MAX_PATTERN_CHARS: usize = 1024;
pub const MAX_ENUM_VALUES: usize = 256;
/// executionTimeoutSeconds: 1 second to 7 days.
pub const EXECUTION_TIMEOUT_RANGE: (u32, u32) = (1, 7 * 24 * 3600);
/// retentionSeconds: 1 minute to 1 year.
pub const RETENTION_RANGE: (u32, u32) = (60, 365 * 24 * 3600);
pub const DEFAULT_EXECUTION_TIMEOUT_SECONDS: u32 = 600;
pub const DEFAULT_RETENTION_SECONDS: u32 = 30 * 24 * 3600;

/// Typed parameter values by name; ordered so stored and printed forms are stable.
pub type Parameters = crate::map::SortedMap<TypedValue>;

/// A command a device can run: its id, its parameter schema and its defaults.
/// Definitions are immutable once created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommandDefinition {
    pub command_id: CommandId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Vec<ParameterSpec>,
    /// Default time a device has to finish an execution, from its creation.
    #[serde(default = "default_timeout")]
    pub execution_timeout_seconds: u32,
    /// How long an ended execution is kept before DynamoDB's TTL removes it.
    #[serde(default = "default_retention")]
    pub retention_seconds: u32,
    /// Set by the service when the definition is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// The device protocol its executions are delivered over: `jobs` (AWS
    /// IoT Jobs, the default) or `commands` (AWS IoT commands).
    #[serde(default, skip_serializing_if = "DeviceProtocol::is_jobs")]
    pub protocol: DeviceProtocol,
    /// What the device receives, with placeholders filled from each
    /// execution (see `payload_template`): AWS IoT commands'
    /// `payloadTemplate` (`${aws:iot:commandexecution::parameter:NAME}`),
    /// or, for the Jobs protocol, the job document
    /// (`${aws:iot:parameter:NAME}`, AWS IoT Jobs' document parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_template: Option<String>,
    /// What a filled `payloadTemplate` is sent as: AWS's `preprocessor`
    /// (`{"awsJsonSubstitution": {"outputFormat": "JSON" | "CBOR"}}`);
    /// JSON unless it says CBOR.
    #[serde(default, skip_serializing_if = "OutputFormat::is_json")]
    pub output_format: OutputFormat,
    /// AWS IoT commands' static payload: bytes every request carries as
    /// they are, with their content type (a commands-protocol command
    /// without parameters or template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<StaticPayload>,
    /// A name for people (AWS's `displayName`); need not be unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// How its executions are retried unless a request or job says
    /// otherwise (see `retry`).
    #[serde(default, skip_serializing_if = "RetryPolicy::is_default")]
    pub retry_policy: RetryPolicy,
    /// A start request with a `dedupeKey` replaces the pending execution
    /// with the same key unless it says `"supersede": false` (see `dedupe`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supersede: bool,
}

const fn default_timeout() -> u32 {
    DEFAULT_EXECUTION_TIMEOUT_SECONDS
}
const fn default_retention() -> u32 {
    DEFAULT_RETENTION_SECONDS
}

/// One parameter of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterSpec {
    pub name: ParameterName,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<TypedValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Inclusive bounds for I, L, D and UL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<JsonNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<JsonNumber>,
    /// Length bounds for S, in characters (Unicode scalar values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// A regular expression the whole S value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The only S values allowed.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<String>>,
    /// Largest decoded size of a BIN value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u32>,
    /// A secret or personal value (a Wi-Fi password, a user's name): shown to
    /// the device and to `GET /executions/{id}`, never in listings or logs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
    /// AWS IoT commands' conditions on the value (see `conditions`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_conditions: Vec<ValueCondition>,
}

/// A checked definition, ready to validate parameter sets.
#[derive(Debug, Clone)]
pub struct Validator {
    definition: CommandDefinition,
    patterns: Vec<Option<Pattern>>,
    /// Each parameter's value conditions, compiled.
    conditions: Vec<Vec<Compiled>>,
}

/// Reading a definition's fields, each problem collected at its path.
struct DefinitionFields<'a> {
    map: &'a Object,
    path: String,
}

impl<'a> DefinitionFields<'a> {
    /// The object at `path`, its fields checked against `known`.
    fn of(
        json: &'a Json,
        path: &str,
        known: &[&str],
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        let Json::Object(map) = json else {
            errors.add(
                path,
                ValidationCode::WrongType,
                crate::text::msg!["expected an object, got ", json_kind(json)],
            );
            return None;
        };
        let at = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                crate::text::msg![path, ".", key]
            }
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                errors.add(
                    at(key),
                    ValidationCode::UnknownField,
                    crate::text::msg!["unknown field; expected one of: ", known.join(", ")],
                );
            }
        }
        Some(Self {
            map,
            path: path.to_owned(),
        })
    }

    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            crate::text::msg![self.path, ".", key]
        }
    }

    fn get(&self, key: &str) -> Option<&'a Json> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong(&self, key: &str, expected: &str, got: &Json, errors: &mut ValidationErrors) {
        errors.add(
            self.at(key),
            ValidationCode::WrongType,
            crate::text::msg!["expected ", expected, ", got ", json_kind(got)],
        );
    }

    fn string(&self, key: &str, errors: &mut ValidationErrors) -> Option<String> {
        let v = self.get(key)?;
        match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.wrong(key, "a string", v, errors);
                None
            }
        }
    }

    fn conditions(&self, key: &str, errors: &mut ValidationErrors) -> Vec<ValueCondition> {
        match self.get(key) {
            None => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    ValueCondition::from_json(
                        item,
                        &crate::text::msg![self.at(key), "[", i, "]"],
                        errors,
                    )
                })
                .collect(),
            Some(other) => {
                self.wrong(key, "an array of value conditions", other, errors);
                Vec::new()
            }
        }
    }

    fn u32(&self, key: &str, errors: &mut ValidationErrors) -> Option<u32> {
        let v = self.get(key)?;
        match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                self.wrong(key, "a whole number (0 to 4294967295)", v, errors);
                None
            }
        }
    }

    fn bool(&self, key: &str, errors: &mut ValidationErrors) -> Option<bool> {
        let v = self.get(key)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong(key, "true or false", v, errors);
                None
            }
        }
    }

    fn number(&self, key: &str, errors: &mut ValidationErrors) -> Option<JsonNumber> {
        let v = self.get(key)?;
        match v.as_number() {
            Some(n) => Some(n),
            None => {
                self.wrong(key, "a number", v, errors);
                None
            }
        }
    }
}

const DEFINITION_FIELDS: [&str; 15] = [
    "commandId",
    "displayName",
    "namespace",
    "payload",
    "preprocessor",
    "supersede",
    "retryPolicy",
    "mandatoryParameters",
    "protocol",
    "payloadTemplate",
    "description",
    "parameters",
    "executionTimeoutSeconds",
    "retentionSeconds",
    "createdAt",
];
const PARAMETER_FIELDS: [&str; 14] = [
    "valueConditions",
    "name",
    "type",
    "required",
    "default",
    "description",
    "min",
    "max",
    "minLength",
    "maxLength",
    "pattern",
    "enum",
    "maxBytes",
    "sensitive",
];

impl CommandDefinition {
    /// The template a Jobs-protocol execution carries to fill its job
    /// document from (a commands-protocol one is filled from the
    /// definition when its request is published).
    pub fn document_template(&self) -> Option<String> {
        self.protocol
            .is_jobs()
            .then(|| self.payload_template.clone())
            .flatten()
    }

    /// A definition from its JSON form (`POST /commands`, or one read from
    /// `GET /commands`), every problem of shape reported at its path. Its
    /// rules are checked by [`Self::validator`].
    pub fn from_json(json: &Json) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Some(f) = DefinitionFields::of(json, "", &DEFINITION_FIELDS, &mut errors) else {
            return Err(errors);
        };
        let command_id = match f.get("commandId") {
            None => {
                errors.add(
                    "commandId",
                    ValidationCode::MissingRequired,
                    "commandId is required",
                );
                None
            }
            Some(Json::String(raw)) => errors.collect(CommandId::parse_at(raw, "commandId")),
            Some(other) => {
                f.wrong("commandId", "a string", other, &mut errors);
                None
            }
        };
        let description = f.string("description", &mut errors);
        let display_name = f.string("displayName", &mut errors);
        match f.get("namespace") {
            None => {}
            Some(Json::String(n)) if n == AWS_IOT_NAMESPACE => {}
            Some(Json::String(n)) => errors.add(
                "namespace",
                ValidationCode::InvalidValue,
                crate::text::msg![
                    quote(n),
                    " is not served; Courier's commands are in the AWS-IoT namespace"
                ],
            ),
            Some(other) => f.wrong("namespace", "\"AWS-IoT\"", other, &mut errors),
        }
        let payload = f
            .get("payload")
            .and_then(|p| StaticPayload::parse(p, "payload", &mut errors));
        let output_format = f
            .get("preprocessor")
            .and_then(|p| OutputFormat::parse_preprocessor(p, "preprocessor", &mut errors))
            .unwrap_or_default();
        if f.get("preprocessor").is_some() && f.get("payloadTemplate").is_none() {
            errors.add(
                "preprocessor",
                ValidationCode::InvalidDefinition,
                "a preprocessor fills a payloadTemplate; give one, or leave the preprocessor out",
            );
        }
        let parameters = match f.get("parameters") {
            None => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    ParameterSpec::from_json(
                        item,
                        &crate::text::msg!["parameters[", i, "]"],
                        &mut errors,
                    )
                })
                .collect(),
            Some(other) => {
                f.wrong("parameters", "an array of parameters", other, &mut errors);
                Vec::new()
            }
        };
        let parameters = match (f.get("mandatoryParameters"), parameters.is_empty()) {
            (None, _) => parameters,
            (Some(Json::Array(items)), true) if f.get("parameters").is_none() => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    ParameterSpec::from_aws(
                        item,
                        &crate::text::msg!["mandatoryParameters[", i, "]"],
                        &mut errors,
                    )
                })
                .collect(),
            (Some(Json::Array(_)), _) => {
                errors.add(
                    "mandatoryParameters",
                    ValidationCode::InvalidDefinition,
                    "give parameters (Courier's form) or mandatoryParameters (AWS's), not both",
                );
                parameters
            }
            (Some(other), _) => {
                f.wrong(
                    "mandatoryParameters",
                    "an array of parameters",
                    other,
                    &mut errors,
                );
                parameters
            }
        };
        let execution_timeout_seconds = f
            .u32("executionTimeoutSeconds", &mut errors)
            .unwrap_or(DEFAULT_EXECUTION_TIMEOUT_SECONDS);
        let retention_seconds = f
            .u32("retentionSeconds", &mut errors)
            .unwrap_or(DEFAULT_RETENTION_SECONDS);
        let created_at = match f.get("createdAt") {
            None => None,
            Some(v) => match v.as_f64().and_then(Timestamp::from_secs_f64) {
                Some(t) => Some(t),
                None => {
                    f.wrong("createdAt", "epoch seconds", v, &mut errors);
                    None
                }
            },
        };
        let protocol = match f.get("protocol") {
            // AWS's CreateCommand has no protocol field: a body written for
            // it (a static payload, a preprocessor, a namespace) is a
            // commands-protocol command.
            None if ["payload", "preprocessor", "namespace"]
                .iter()
                .any(|aws_only| f.get(aws_only).is_some()) =>
            {
                DeviceProtocol::Commands
            }
            None => DeviceProtocol::Jobs,
            Some(Json::String(raw)) => DeviceProtocol::parse(raw).unwrap_or_else(|| {
                errors.add(
                    "protocol",
                    ValidationCode::InvalidValue,
                    crate::text::msg![
                        quote(raw),
                        " is not a device protocol; use jobs or commands"
                    ],
                );
                DeviceProtocol::Jobs
            }),
            Some(other) => {
                f.wrong("protocol", "\"jobs\" or \"commands\"", other, &mut errors);
                DeviceProtocol::Jobs
            }
        };
        let retry_policy = match f.get("retryPolicy") {
            None | Some(Json::Null) => RetryPolicy::default(),
            Some(v) => RetryPolicy::parse(v, "retryPolicy", &mut errors).unwrap_or_default(),
        };
        let supersede = match f.get("supersede") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(other) => {
                f.wrong("supersede", "true or false", other, &mut errors);
                false
            }
        };
        match command_id {
            Some(command_id) if errors.is_empty() => Ok(Self {
                command_id,
                description,
                parameters,
                execution_timeout_seconds,
                retention_seconds,
                created_at,
                protocol,
                payload_template: f.string("payloadTemplate", &mut errors),
                output_format,
                payload,
                display_name,
                retry_policy,
                supersede,
            }),
            _ => Err(errors),
        }
    }

    /// Checks the definition itself and compiles it. Every problem is reported.
    pub fn validator(&self) -> Result<Validator, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if let Some(d) = &self.description {
            check_description(d, "description", &mut errors);
        }
        if let Some(d) = &self.display_name {
            check_description(d, "displayName", &mut errors);
        }
        self.check_payload_form(&mut errors);
        check_range_u32(
            self.execution_timeout_seconds,
            EXECUTION_TIMEOUT_RANGE,
            "executionTimeoutSeconds",
            &mut errors,
        );
        check_range_u32(
            self.retention_seconds,
            RETENTION_RANGE,
            "retentionSeconds",
            &mut errors,
        );
        if self.parameters.len() > MAX_PARAMETERS {
            errors.add(
                "parameters",
                ValidationCode::TooLong,
                crate::text::msg![
                    "at most ",
                    MAX_PARAMETERS,
                    " parameters, got ",
                    self.parameters.len()
                ],
            );
        }
        let mut patterns = Vec::with_capacity(self.parameters.len());
        let mut conditions = Vec::with_capacity(self.parameters.len());
        for (i, spec) in self.parameters.iter().enumerate() {
            let path = crate::text::msg!["parameters[", i, "]"];
            if self.parameters[..i]
                .iter()
                .any(|other| other.name == spec.name)
            {
                errors.add(
                    crate::text::msg![path, ".name"],
                    ValidationCode::InvalidDefinition,
                    crate::text::msg!["parameter ", quote(spec.name.as_str()), " is defined twice"],
                );
            }
            patterns.push(spec.check(&path, &mut errors));
            conditions.push(
                spec.value_conditions
                    .iter()
                    .enumerate()
                    .filter_map(|(k, c)| {
                        c.compile(
                            spec.value_type,
                            &crate::text::msg![path, ".valueConditions[", k, "]"],
                            &mut errors,
                        )
                    })
                    .collect(),
            );
        }
        if let Some(template) = &self.payload_template {
            let parameters: Vec<(&str, ValueType, bool)> = self
                .parameters
                .iter()
                .map(|p| {
                    (
                        p.name.as_str(),
                        p.value_type,
                        p.required || p.default.is_some(),
                    )
                })
                .collect();
            crate::payload_template::check(template, self.protocol, &parameters, &mut errors);
        }
        let validator = Validator {
            definition: self.clone(),
            patterns,
            conditions,
        };
        // A default must itself be a valid value of its parameter.
        for (i, spec) in self.parameters.iter().enumerate() {
            if let Some(default) = &spec.default {
                let path = crate::text::msg!["parameters[", i, "].default"];
                if default.value_type() != spec.value_type {
                    errors.add(
                        path,
                        ValidationCode::WrongType,
                        crate::text::msg![
                            "default is of type ",
                            default.value_type(),
                            " but the parameter is of type ",
                            spec.value_type
                        ],
                    );
                } else {
                    validator.check_constraints(i, default, &path, &mut errors);
                }
            }
        }
        errors.into_result(validator)
    }
}

impl CommandDefinition {
    /// A static payload goes alone: to a commands-protocol device, with no
    /// parameters to validate (they would reach no device) and no template.
    fn check_payload_form(&self, errors: &mut ValidationErrors) {
        if self.payload.is_none() {
            if !self.output_format.is_json() && self.protocol.is_jobs() {
                errors.add(
                    "preprocessor",
                    ValidationCode::InvalidDefinition,
                    "a job document is JSON; CBOR output is for commands-protocol commands (\"protocol\": \"commands\")",
                );
            }
            return;
        }
        if self.protocol.is_jobs() {
            errors.add(
                "payload",
                ValidationCode::InvalidDefinition,
                "a static payload is for commands-protocol commands (\"protocol\": \"commands\"); a Jobs-protocol command's job document is its payloadTemplate",
            );
        }
        if self.payload_template.is_some() {
            errors.add(
                "payload",
                ValidationCode::InvalidDefinition,
                "give payload (sent as it is) or payloadTemplate (filled from parameters), not both",
            );
        }
        if !self.parameters.is_empty() {
            errors.add(
                "parameters",
                ValidationCode::InvalidDefinition,
                "a command with a static payload takes no parameters (the device receives the payload unchanged); use a payloadTemplate to send parameter values",
            );
        }
    }
}

impl ParameterSpec {
    /// One of AWS IoT commands' `mandatoryParameters` (`{name, type: STRING |
    /// INTEGER | ..., defaultValue?, value?, valueConditions?, description?}`)
    /// as a parameter: required unless it has a default (`value`, when given,
    /// is the default, as AWS lets it override `defaultValue`).
    fn from_aws(json: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        const AWS_FIELDS: [&str; 6] = [
            "name",
            "type",
            "value",
            "defaultValue",
            "valueConditions",
            "description",
        ];
        let f = DefinitionFields::of(json, path, &AWS_FIELDS, errors)?;
        let mut courier = Object::new();
        for (aws, ours) in [
            ("name", "name"),
            ("description", "description"),
            ("valueConditions", "valueConditions"),
        ] {
            if let Some(v) = f.get(aws) {
                courier.insert(ours.to_owned(), v.clone());
            }
        }
        let default = f.get("value").or_else(|| f.get("defaultValue"));
        if let Some(v) = default {
            courier.insert("default".to_owned(), v.clone());
        }
        courier.insert("required".to_owned(), Json::Bool(default.is_none()));
        match f.get("type") {
            Some(Json::String(t)) => {
                let ours = match t.as_str() {
                    "STRING" => Some("S"),
                    "INTEGER" => Some("I"),
                    "LONG" => Some("L"),
                    "DOUBLE" => Some("D"),
                    "UNSIGNEDLONG" => Some("UL"),
                    "BOOLEAN" => Some("B"),
                    "BINARY" => Some("BIN"),
                    _ => None,
                };
                match ours {
                    Some(ours) => {
                        courier.insert("type".to_owned(), Json::from(ours));
                    }
                    None => {
                        errors.add(
                            f.at("type"),
                            ValidationCode::InvalidValue,
                            crate::text::msg![quote(t), " is not a type; use STRING, INTEGER, LONG, DOUBLE, UNSIGNEDLONG, BOOLEAN or BINARY"],
                        );
                        return None;
                    }
                }
            }
            Some(other) => {
                f.wrong("type", "a string", other, errors);
                return None;
            }
            None => {
                errors.add(
                    f.at("type"),
                    ValidationCode::MissingRequired,
                    "type is required: STRING, INTEGER, LONG, DOUBLE, UNSIGNEDLONG, BOOLEAN or BINARY",
                );
                return None;
            }
        }
        Self::from_json(&Json::Object(courier), path, errors)
    }

    /// One parameter of a definition from its JSON form, at `path`.
    fn from_json(json: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let before = errors.len();
        let f = DefinitionFields::of(json, path, &PARAMETER_FIELDS, errors)?;
        let name = match f.get("name") {
            None => {
                errors.add(
                    f.at("name"),
                    ValidationCode::MissingRequired,
                    "name is required",
                );
                None
            }
            Some(Json::String(raw)) => errors.collect(ParameterName::parse_at(raw, &f.at("name"))),
            Some(other) => {
                f.wrong("name", "a string", other, errors);
                None
            }
        };
        let value_type = match f.get("type") {
            None => {
                errors.add(
                    f.at("type"),
                    ValidationCode::MissingRequired,
                    "type is required: S, B, I, L, D, BIN or UL",
                );
                None
            }
            Some(v) => {
                let parsed = v.as_str().and_then(ValueType::from_tag);
                if parsed.is_none() {
                    errors.add(
                        f.at("type"),
                        ValidationCode::InvalidValue,
                        crate::text::msg![shown(v), " is not a type; use S, B, I, L, D, BIN or UL"],
                    );
                }
                parsed
            }
        };
        let default = match f.get("default") {
            None => None,
            Some(v) => errors.collect(TypedValue::from_json_at(v, &f.at("default"))),
        };
        let allowed_values = match f.get("enum") {
            None => None,
            Some(Json::Array(items)) => {
                let mut values = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => values.push(s.to_owned()),
                        None => errors.add(
                            crate::text::msg![f.at("enum"), "[", i, "]"],
                            ValidationCode::WrongType,
                            crate::text::msg!["expected a string, got ", json_kind(item)],
                        ),
                    }
                }
                Some(values)
            }
            Some(other) => {
                f.wrong("enum", "an array of strings", other, errors);
                None
            }
        };
        let spec = Self {
            name: name?,
            value_type: value_type?,
            required: f.bool("required", errors).unwrap_or(false),
            default,
            description: f.string("description", errors),
            min: f.number("min", errors),
            max: f.number("max", errors),
            min_length: f.u32("minLength", errors),
            max_length: f.u32("maxLength", errors),
            pattern: f.string("pattern", errors),
            allowed_values,
            max_bytes: f.u32("maxBytes", errors),
            sensitive: f.bool("sensitive", errors).unwrap_or(false),
            value_conditions: f.conditions("valueConditions", errors),
        };
        (errors.len() == before).then_some(spec)
    }

    /// A sensitive parameter's validation message, saying what is wrong
    /// without the value itself.
    fn message_without_value(&self, error: &ValidationError) -> String {
        let rule = match error.code {
            // These never show the value.
            ValidationCode::TooShort | ValidationCode::TooLong | ValidationCode::WrongType => {
                return error.message.clone()
            }
            ValidationCode::OutOfRange => match (&self.min, &self.max) {
                (Some(min), Some(max)) => crate::text::msg!["it must be from ", min, " to ", max],
                (Some(min), None) => crate::text::msg!["it must be at least ", min],
                (None, Some(max)) => crate::text::msg!["it must be at most ", max],
                (None, None) => crate::text::msg!["it does not fit type ", self.value_type],
            },
            ValidationCode::PatternMismatch => crate::text::msg![
                "it must match the pattern ",
                self.pattern.as_deref().unwrap_or_default()
            ],
            ValidationCode::NotInEnum => "it is not one of the allowed values".to_owned(),
            _ => crate::text::msg!["it is not a valid ", self.value_type, " value"],
        };
        crate::text::msg![
            "the value of sensitive parameter ",
            quote(self.name.as_str()),
            " is not shown; ",
            rule
        ]
    }

    /// Checks that the constraints fit the type and each other; returns the
    /// compiled pattern, if any.
    fn check(&self, path: &str, errors: &mut ValidationErrors) -> Option<Pattern> {
        if let Some(d) = &self.description {
            check_description(d, &crate::text::msg![path, ".description"], errors);
        }
        let t = self.value_type;
        let misplaced = |field: &str, errors: &mut ValidationErrors, fits: &str| {
            errors.add(
                crate::text::msg![path, ".", field],
                ValidationCode::InvalidDefinition,
                crate::text::msg![field, " applies to ", fits, " parameters, not to type ", t],
            );
        };
        if !t.is_numeric() {
            if self.min.is_some() {
                misplaced("min", errors, "numeric (I, L, D, UL)");
            }
            if self.max.is_some() {
                misplaced("max", errors, "numeric (I, L, D, UL)");
            }
        }
        if t != ValueType::S {
            for (field, present) in [
                ("minLength", self.min_length.is_some()),
                ("maxLength", self.max_length.is_some()),
                ("pattern", self.pattern.is_some()),
                ("enum", self.allowed_values.is_some()),
            ] {
                if present {
                    misplaced(field, errors, "string (S)");
                }
            }
        }
        if t != ValueType::Bin && self.max_bytes.is_some() {
            misplaced("maxBytes", errors, "binary (BIN)");
        }
        if let (Some(min), Some(max)) = (&self.min, &self.max) {
            if Number::from_json(min).partial_cmp(Number::from_json(max))
                == Some(std::cmp::Ordering::Greater)
            {
                errors.add(
                    crate::text::msg![path, ".min"],
                    ValidationCode::InvalidDefinition,
                    crate::text::msg!["min (", min, ") is greater than max (", max, ")"],
                );
            }
        }
        if let (Some(min), Some(max)) = (self.min_length, self.max_length) {
            if min > max {
                errors.add(
                    crate::text::msg![path, ".minLength"],
                    ValidationCode::InvalidDefinition,
                    crate::text::msg![
                        "minLength (",
                        min,
                        ") is greater than maxLength (",
                        max,
                        ")"
                    ],
                );
            }
        }
        if let Some(values) = &self.allowed_values {
            if values.is_empty() || values.len() > MAX_ENUM_VALUES {
                errors.add(
                    crate::text::msg![path, ".enum"],
                    ValidationCode::InvalidDefinition,
                    crate::text::msg![
                        "enum needs 1 to ",
                        MAX_ENUM_VALUES,
                        " values, got ",
                        values.len()
                    ],
                );
            }
        }
        let pattern = self.pattern.as_ref()?;
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            errors.add(
                crate::text::msg![path, ".pattern"],
                ValidationCode::InvalidDefinition,
                crate::text::msg!["pattern is longer than ", MAX_PATTERN_CHARS, " characters"],
            );
            return None;
        }
        // The whole value must match (see `pattern`), as JSON Schema users
        // expect from an explicit `^...$`, without making them write it.
        match Pattern::parse(pattern) {
            Ok(compiled) => Some(compiled),
            Err(e) => {
                errors.add(
                    crate::text::msg![path, ".pattern"],
                    ValidationCode::InvalidDefinition,
                    crate::text::msg!["pattern does not compile: ", e],
                );
                None
            }
        }
    }
}

impl Validator {
    /// Parameter `index`'s compiled pattern, if it has one.
    /// The value conditions of the parameter at `index`, compiled.
    pub fn conditions(&self, index: usize) -> &[Compiled] {
        self.conditions.get(index).map_or(&[], Vec::as_slice)
    }

    pub fn pattern(&self, index: usize) -> Option<&Pattern> {
        self.patterns.get(index).and_then(Option::as_ref)
    }

    pub fn definition(&self) -> &CommandDefinition {
        &self.definition
    }

    /// Removes the values of sensitive parameters from `parameters` and
    /// returns their names (for listings and logs; see
    /// [`ParameterSpec::sensitive`]).
    pub fn redact(&self, parameters: &mut Parameters) -> Vec<ParameterName> {
        self.definition
            .parameters
            .iter()
            .filter(|spec| spec.sensitive && parameters.remove(spec.name.as_str()).is_some())
            .map(|spec| spec.name.clone())
            .collect()
    }

    /// Validates a raw parameters object, reporting every problem at once, and
    /// returns the typed parameters with defaults filled in.
    /// Validates a request's `parameters` field (absent or null: none given),
    /// adding any problems to `errors`. Shared by every request that carries
    /// parameters (start execution, create job).
    pub fn validate_field(
        &self,
        field: Option<&Json>,
        errors: &mut ValidationErrors,
    ) -> Option<Parameters> {
        let result = match field {
            None | Some(Json::Null) => self.validate(&Object::new()),
            Some(Json::Object(raw)) => self.validate(raw),
            Some(other) => Err(ValidationError::new(
                "parameters",
                ValidationCode::WrongType,
                crate::text::msg!["expected an object of typed values, got ", json_kind(other)],
            )
            .into()),
        };
        match result {
            Ok(parameters) => Some(parameters),
            Err(e) => {
                errors.0.extend(e.0);
                None
            }
        }
    }

    pub fn validate(&self, raw: &Object) -> Result<Parameters, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let size = crate::json::object_text_len(raw);
        if size > MAX_PAYLOAD_BYTES {
            // Checking the items of an oversized payload would only add noise.
            errors.add(
                "parameters",
                ValidationCode::PayloadTooLarge,
                crate::text::msg![
                    "parameters are ",
                    size,
                    " bytes as JSON; the limit is ",
                    MAX_PAYLOAD_BYTES
                ],
            );
            return Err(errors);
        }
        let specs = &self.definition.parameters;
        for name in raw.keys() {
            if !specs.iter().any(|s| s.name.as_str() == name) {
                let known: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                errors.add(
                    crate::text::msg!["parameters.", name],
                    ValidationCode::UnknownParameter,
                    if known.is_empty() {
                        crate::text::msg![
                            quote(name),
                            " is not a parameter of command ",
                            self.definition.command_id,
                            "; it takes none"
                        ]
                    } else {
                        crate::text::msg![
                            quote(name),
                            " is not a parameter of command ",
                            self.definition.command_id,
                            "; known: ",
                            known.join(", ")
                        ]
                    },
                );
            }
        }
        let mut typed = Parameters::new();
        for (i, spec) in specs.iter().enumerate() {
            let path = crate::text::msg!["parameters.", spec.name];
            match raw.get(spec.name.as_str()) {
                Some(json) => {
                    let before = errors.len();
                    if let Some(value) = errors.collect(parse_typed(json, spec.value_type, &path)) {
                        if self.check_constraints(i, &value, &path, &mut errors) {
                            typed.insert(spec.name.as_str().to_owned(), value);
                        }
                    }
                    if spec.sensitive {
                        // Messages go back to callers, into logs and onto
                        // dashboards: none may repeat a secret.
                        for error in &mut errors.0[before..] {
                            error.message = spec.message_without_value(error);
                        }
                    }
                }
                None => match &spec.default {
                    Some(default) => {
                        typed.insert(spec.name.as_str().to_owned(), default.clone());
                    }
                    None if spec.required => errors.add(
                        path,
                        ValidationCode::MissingRequired,
                        crate::text::msg![
                            "required parameter ",
                            quote(spec.name.as_str()),
                            " (",
                            spec.value_type,
                            ") is missing"
                        ],
                    ),
                    None => {}
                },
            }
        }
        errors.into_result(typed)
    }

    /// Checks one value of the right type against parameter `i`'s
    /// constraints; true when it passes.
    fn check_constraints(
        &self,
        i: usize,
        value: &TypedValue,
        path: &str,
        errors: &mut ValidationErrors,
    ) -> bool {
        let spec = &self.definition.parameters[i];
        let before = errors.len();
        if let Some(n) = value.as_number() {
            if let Some(min) = &spec.min {
                if n.partial_cmp(Number::from_json(min)) == Some(std::cmp::Ordering::Less) {
                    errors.add(
                        path,
                        ValidationCode::OutOfRange,
                        crate::text::msg![n, " is below the minimum ", min],
                    );
                }
            }
            if let Some(max) = &spec.max {
                if n.partial_cmp(Number::from_json(max)) == Some(std::cmp::Ordering::Greater) {
                    errors.add(
                        path,
                        ValidationCode::OutOfRange,
                        crate::text::msg![n, " is above the maximum ", max],
                    );
                }
            }
        }
        match value {
            TypedValue::S(s) => {
                if let Err(why) = crate::artifact::check(s) {
                    errors.add(path, ValidationCode::InvalidValue, why);
                }
                let chars = s.chars().count();
                if let Some(min) = spec.min_length {
                    if chars < min as usize {
                        errors.add(
                            path,
                            ValidationCode::TooShort,
                            crate::text::msg![chars, " characters; at least ", min, " needed"],
                        );
                    }
                }
                if let Some(max) = spec.max_length {
                    if chars > max as usize {
                        errors.add(
                            path,
                            ValidationCode::TooLong,
                            crate::text::msg![chars, " characters; at most ", max, " allowed"],
                        );
                    }
                }
                if let Some(Some(pattern)) = self.patterns.get(i) {
                    if !pattern.is_match(s) {
                        errors.add(
                            path,
                            ValidationCode::PatternMismatch,
                            crate::text::msg![
                                quote(s),
                                " does not match the pattern ",
                                spec.pattern.as_deref().unwrap_or_default()
                            ],
                        );
                    }
                }
                if let Some(allowed) = &spec.allowed_values {
                    if !allowed.iter().any(|a| a == s) {
                        errors.add(
                            path,
                            ValidationCode::NotInEnum,
                            crate::text::msg![quote(s), " is not one of: ", allowed.join(", ")],
                        );
                    }
                }
            }
            TypedValue::Bin(bytes) => {
                if let Some(max) = spec.max_bytes {
                    if bytes.len() > max as usize {
                        errors.add(
                            path,
                            ValidationCode::TooLong,
                            crate::text::msg![bytes.len(), " bytes; at most ", max, " allowed"],
                        );
                    }
                }
            }
            TypedValue::B(_)
            | TypedValue::I(_)
            | TypedValue::L(_)
            | TypedValue::D(_)
            | TypedValue::Ul(_) => {}
        }
        for condition in self.conditions.get(i).into_iter().flatten() {
            if let Some((code, message)) = condition.refuses(value) {
                errors.add(path, code, message);
            }
        }
        errors.len() == before
    }
}

/// Parses a value that must be of type `expected`.
fn parse_typed(
    json: &Json,
    expected: ValueType,
    path: &str,
) -> Result<TypedValue, ValidationError> {
    let value = TypedValue::from_json_at(json, path)?;
    if value.value_type() != expected {
        return Err(ValidationError::new(
            path,
            ValidationCode::WrongType,
            crate::text::msg![
                "expected ",
                expected.describe(),
                ", got type ",
                value.value_type()
            ],
        ));
    }
    Ok(value)
}

/// Parses a map of typed values with no schema (a device's `result`),
/// reporting every problem and the 128 KiB limit.
pub fn parse_typed_map(raw: &Json, path: &str) -> Result<Parameters, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let Json::Object(map) = raw else {
        errors.add(
            path,
            ValidationCode::WrongType,
            crate::text::msg!["expected an object of typed values, got ", json_kind(raw)],
        );
        return Err(errors);
    };
    let size = raw.text_len();
    if size > MAX_PAYLOAD_BYTES {
        errors.add(
            path,
            ValidationCode::PayloadTooLarge,
            crate::text::msg![
                path,
                " is ",
                size,
                " bytes as JSON; the limit is ",
                MAX_PAYLOAD_BYTES
            ],
        );
        return Err(errors);
    }
    let mut typed = Parameters::new();
    for (name, json) in map {
        let at = crate::text::msg![path, ".", name];
        if let Some(key) = errors.collect(ParameterName::parse_at(name, &at)) {
            if let Some(value) = errors.collect(TypedValue::from_json_at(json, &at)) {
                typed.insert(key.to_string(), value);
            }
        }
    }
    errors.into_result(typed)
}

fn check_description(text: &str, path: &str, errors: &mut ValidationErrors) {
    let chars = text.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        errors.add(
            path,
            ValidationCode::TooLong,
            crate::text::msg![
                chars,
                " characters; at most ",
                MAX_DESCRIPTION_CHARS,
                " allowed"
            ],
        );
    }
}

/// Checks `value` against an inclusive `(min, max)` range.
pub fn check_range_u32(
    value: u32,
    (min, max): (u32, u32),
    path: &str,
    errors: &mut ValidationErrors,
) {
    if value < min || value > max {
        errors.add(
            path,
            ValidationCode::OutOfRange,
            crate::text::msg![value, " is outside ", min, "..=", max],
        );
    }
}
