//! THE RECORDS AS JSON: the execution record (with its reason and late
//! result) and a command definition, to and from core's JSON model, field
//! for field as their serde forms write them (the API's bodies, the
//! table's items) — `core/tests/codec.rs` holds the two to each other. The
//! WASM module reads and writes records this way, without serde, which
//! keeps it small. Pure, no I/O.

use crate::deadline::{LateResult, OnTimeout};
use crate::execution::{CommandExecution, RunOperation};
use crate::ids::{
    ClientToken, CommandId, DedupeKey, ExecutionId, JobId, ParameterName, RunId, ThingName,
};
use crate::json::{Json, Object};
use crate::map::StatusDetails;
use crate::reason::StatusReason;
use crate::retry::RetryPolicy;
use crate::schema::{CommandDefinition, ParameterSpec, Parameters};
use crate::status::ExecutionStatus;
use crate::text::quote;
use crate::time::Timestamp;
use crate::value::{TypedValue, ValueType};

/// A value's JSON form, as serde writes it.
pub trait ToJson {
    fn to_json(&self) -> Json;
}

impl<T: ToJson> ToJson for &T {
    fn to_json(&self) -> Json {
        (**self).to_json()
    }
}

/// Reading a record (not user input: one reason is enough).
pub type Read<T> = Result<T, String>;

/// An object being written, leaving out what serde skips.
#[derive(Default)]
struct Out(Object);

impl Out {
    fn put(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    fn opt<T: ToJson>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => {
                let json = v.to_json();
                self.put(key, json)
            }
            None => self,
        }
    }

    fn done(self) -> Json {
        Json::Object(self.0)
    }
}

impl ToJson for Timestamp {
    fn to_json(&self) -> Json {
        Json::from(*self)
    }
}

impl ToJson for StatusReason {
    fn to_json(&self) -> Json {
        Out::default()
            .put("reasonCode", self.reason_code.as_str())
            .opt(
                "reasonDescription",
                self.reason_description.as_ref().map(Str),
            )
            .done()
    }
}

/// A string field's value.
struct Str<'a>(&'a String);

impl ToJson for Str<'_> {
    fn to_json(&self) -> Json {
        Json::from(self.0.as_str())
    }
}

impl ToJson for TypedValue {
    fn to_json(&self) -> Json {
        TypedValue::to_json(self)
    }
}

/// A map of typed values (parameters, results).
pub fn parameters_json(parameters: &Parameters) -> Json {
    Json::Object(
        parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

fn details_json(details: &StatusDetails) -> Json {
    Json::Object(
        details
            .iter()
            .map(|(k, v)| (k.clone(), Json::from(v.as_str())))
            .collect(),
    )
}

impl ToJson for LateResult {
    fn to_json(&self) -> Json {
        let mut out = Out::default()
            .put("status", self.status.as_str())
            .opt("statusReason", self.status_reason.as_ref());
        if !self.status_details.is_empty() {
            out = out.put("statusDetails", details_json(&self.status_details));
        }
        if !self.result.is_empty() {
            out = out.put("result", parameters_json(&self.result));
        }
        out.put("receivedAt", self.received_at.to_json()).done()
    }
}

impl ToJson for CommandExecution {
    fn to_json(&self) -> Json {
        let e = self;
        let mut out = Out::default()
            .put("executionId", e.execution_id.as_str())
            .put("commandId", e.command_id.as_str())
            .put("target", e.target.as_str());
        if let Some(job) = &e.job_id {
            out = out.put("jobId", job.as_str());
        }
        if let Some(run) = &e.run_id {
            out = out.put("runId", run.as_str());
        }
        if let Some(at) = &e.run_operation {
            let mut position = Out::default()
                .put("stage", at.stage)
                .put("operation", at.operation)
                .put("stageDeadline", at.stage_deadline.to_json());
            if at.failed_in_stage {
                position = position.put("failedInStage", true);
            }
            out = out.put("runOperation", position.done());
        }
        out = out
            .put("status", e.status.as_str())
            .opt("statusReason", e.status_reason.as_ref());
        if !e.status_details.is_empty() {
            out = out.put("statusDetails", details_json(&e.status_details));
        }
        out = out.put("parameters", parameters_json(&e.parameters));
        if !e.redacted_parameters.is_empty() {
            let names: Vec<Json> = e
                .redacted_parameters
                .iter()
                .map(|n| Json::from(n.as_str()))
                .collect();
            out = out.put("redactedParameters", Json::Array(names));
        }
        if !e.result.is_empty() {
            out = out.put("result", parameters_json(&e.result));
        }
        out = out
            .put("executionTimeoutSeconds", e.execution_timeout_seconds)
            .opt("notBefore", e.not_before.as_ref());
        if let Some(d) = e.delivery_timeout_seconds {
            out = out.put("deliveryTimeoutSeconds", d);
        }
        out = out
            .opt("deliverBy", e.deliver_by.as_ref())
            .put("completeBy", e.complete_by.to_json())
            .opt("stepDeadline", e.step_deadline.as_ref())
            .put("retryPolicy", e.retry_policy.to_json());
        if e.defer_count != 0 {
            out = out.put("deferCount", e.defer_count);
        }
        out = out
            .opt("lastDeferredAt", e.last_deferred_at.as_ref())
            .opt("lateResult", e.late_result.as_ref());
        if let Some(key) = &e.dedupe_key {
            out = out.put("dedupeKey", key.as_str());
        }
        for (key, id) in [
            ("supersedes", &e.supersedes),
            ("supersededBy", &e.superseded_by),
        ] {
            if let Some(id) = id {
                out = out.put(key, id.as_str());
            }
        }
        for (key, by) in [
            ("createdBy", &e.created_by),
            ("canceledBy", &e.canceled_by),
            ("lastUpdatedBy", &e.last_updated_by),
        ] {
            if let Some(by) = by {
                out = out.put(key, by.as_str());
            }
        }
        if !e.changed_by.is_empty() {
            out = out.put("changedBy", details_json(&e.changed_by));
        }
        out = out
            .opt("sentAt", e.sent_at.as_ref())
            .opt("acknowledgedAt", e.acknowledged_at.as_ref());
        out = out
            .put("retentionSeconds", e.retention_seconds)
            .put("createdAt", e.created_at.to_json())
            .put("lastUpdatedAt", e.last_updated_at.to_json())
            .opt("startedAt", e.started_at.as_ref())
            .opt("completedAt", e.completed_at.as_ref())
            .put("timeToLive", e.time_to_live.to_json())
            .put("version", e.version)
            .put("executionNumber", e.execution_number);
        if let Some(token) = &e.client_token {
            out = out.put("clientToken", token.as_str());
        }
        if !e.protocol.is_jobs() {
            out = out.put("protocol", e.protocol.as_str());
        }
        out.done()
    }
}

/// Reading the fields of one record object.
struct Fields<'a> {
    map: &'a Object,
}

impl<'a> Fields<'a> {
    fn of(json: &'a Json, what: &str) -> Read<Self> {
        json.as_object()
            .map(|map| Self { map })
            .ok_or_else(|| crate::text::msg![what, " must be an object"])
    }

    /// A present, non-null field.
    fn get(&self, key: &str) -> Option<&'a Json> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Read<&'a Json> {
        self.get(key)
            .ok_or_else(|| crate::text::msg!["missing field `", key, "`"])
    }

    fn string(&self, key: &str) -> Read<&'a str> {
        self.required(key)?
            .as_str()
            .ok_or_else(|| crate::text::msg!["`", key, "` must be a string"])
    }

    fn opt_string(&self, key: &str) -> Read<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| crate::text::msg!["`", key, "` must be a string"]),
        }
    }

    fn u64(&self, key: &str) -> Read<u64> {
        self.required(key)?
            .as_u64()
            .ok_or_else(|| crate::text::msg!["`", key, "` must be a whole number"])
    }

    fn u32(&self, key: &str) -> Read<u32> {
        self.required(key)?
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| crate::text::msg!["`", key, "` must be a whole number"])
    }

    fn u32_or(&self, key: &str, default: u32) -> Read<u32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| crate::text::msg!["`", key, "` must be a whole number"]),
        }
    }

    fn time(&self, key: &str) -> Read<Timestamp> {
        time_of(self.required(key)?, key)
    }

    fn opt_time(&self, key: &str) -> Read<Option<Timestamp>> {
        self.get(key).map(|v| time_of(v, key)).transpose()
    }

    fn id<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Result<T, crate::error::ValidationError>,
    ) -> Read<T> {
        parse(self.string(key)?).map_err(|e| crate::text::msg!["`", key, "`: ", e.message])
    }

    fn status(&self, key: &str) -> Read<ExecutionStatus> {
        let raw = self.string(key)?;
        ExecutionStatus::parse(raw).ok_or_else(|| crate::text::msg!["`", key, "` is not a status"])
    }

    fn details(&self, key: &str) -> Read<StatusDetails> {
        let Some(v) = self.get(key) else {
            return Ok(StatusDetails::new());
        };
        let map = v
            .as_object()
            .ok_or_else(|| crate::text::msg!["`", key, "` must be an object of strings"])?;
        map.iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| crate::text::msg!["`", key, ".", k, "` must be a string"])
            })
            .collect()
    }

    fn parameters(&self, key: &str) -> Read<Parameters> {
        let Some(v) = self.get(key) else {
            return Ok(Parameters::new());
        };
        let map = v
            .as_object()
            .ok_or_else(|| crate::text::msg!["`", key, "` must be an object of typed values"])?;
        map.iter()
            .map(|(k, v)| {
                TypedValue::from_json_at(v, k)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| crate::text::msg!["`", key, ".", k, "`: ", e.message])
            })
            .collect()
    }

    fn reason(&self, key: &str) -> Read<Option<StatusReason>> {
        self.get(key)
            .map(|v| {
                let f = Fields::of(v, key)?;
                Ok(StatusReason {
                    reason_code: f.string("reasonCode")?.to_owned(),
                    reason_description: f.opt_string("reasonDescription")?,
                })
            })
            .transpose()
    }
}

fn time_of(json: &Json, key: &str) -> Read<Timestamp> {
    json.as_f64()
        .and_then(Timestamp::from_secs_f64)
        .ok_or_else(|| crate::text::msg!["`", key, "` must be epoch seconds"])
}

impl CommandExecution {
    /// An execution record from its JSON form (as the API returns it).
    pub fn from_json(json: &Json) -> Read<Self> {
        let f = Fields::of(json, "an execution")?;
        let late_result = match f.get("lateResult") {
            None => None,
            Some(v) => {
                let l = Fields::of(v, "lateResult")?;
                Some(LateResult {
                    status: l.status("status")?,
                    status_reason: l.reason("statusReason")?,
                    status_details: l.details("statusDetails")?,
                    result: l.parameters("result")?,
                    received_at: l.time("receivedAt")?,
                })
            }
        };
        let redacted_parameters = match f.get("redactedParameters") {
            None => Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or("`redactedParameters` must be an array")?
                .iter()
                .map(|n| {
                    n.as_str()
                        .and_then(|s| ParameterName::parse(s).ok())
                        .ok_or_else(|| "`redactedParameters` holds parameter names".to_owned())
                })
                .collect::<Read<_>>()?,
        };
        let on_timeout = match f.get("onTimeout") {
            None => OnTimeout::TimeOut,
            Some(v) => v
                .as_str()
                .and_then(OnTimeout::parse)
                .ok_or("`onTimeout` is TIME_OUT or RETRY")?,
        };
        Ok(Self {
            execution_id: f.id("executionId", ExecutionId::parse)?,
            command_id: f.id("commandId", CommandId::parse)?,
            target: f.id("target", ThingName::parse)?,
            job_id: f
                .get("jobId")
                .map(|_| f.id("jobId", JobId::parse))
                .transpose()?,
            run_id: f
                .get("runId")
                .map(|_| f.id("runId", RunId::parse))
                .transpose()?,
            run_operation: f
                .get("runOperation")
                .map(|v| {
                    let at = Fields::of(v, "runOperation")?;
                    Ok::<_, String>(RunOperation {
                        stage: at.u32("stage")?,
                        operation: at.u32("operation")?,
                        stage_deadline: at.time("stageDeadline")?,
                        failed_in_stage: match at.get("failedInStage") {
                            None => false,
                            Some(b) => b
                                .as_bool()
                                .ok_or("`runOperation.failedInStage` must be true or false")?,
                        },
                    })
                })
                .transpose()?,
            status: f.status("status")?,
            status_reason: f.reason("statusReason")?,
            status_details: f.details("statusDetails")?,
            parameters: f.parameters("parameters")?,
            redacted_parameters,
            result: f.parameters("result")?,
            execution_timeout_seconds: f.u32("executionTimeoutSeconds")?,
            not_before: f.opt_time("notBefore")?,
            delivery_timeout_seconds: f
                .get("deliveryTimeoutSeconds")
                .map(|_| f.u32("deliveryTimeoutSeconds"))
                .transpose()?,
            deliver_by: f.opt_time("deliverBy")?,
            complete_by: f.time("completeBy")?,
            step_deadline: f.opt_time("stepDeadline")?,
            retry_policy: match f.get("retryPolicy") {
                Some(policy) => RetryPolicy::read(policy)?,
                None => RetryPolicy::from_legacy(
                    on_timeout == OnTimeout::Retry,
                    f.u32_or("maxAttempts", 1)?,
                    f.u32_or("failureRetries", 0)?,
                ),
            },
            defer_count: f.u32_or("deferCount", f.u32_or("busyCount", 0)?)?,
            last_deferred_at: f.opt_time("lastDeferredAt")?,
            late_result,
            dedupe_key: f
                .get("dedupeKey")
                .map(|_| f.id("dedupeKey", DedupeKey::parse))
                .transpose()?,
            supersedes: f
                .get("supersedes")
                .map(|_| f.id("supersedes", ExecutionId::parse))
                .transpose()?,
            superseded_by: f
                .get("supersededBy")
                .map(|_| f.id("supersededBy", ExecutionId::parse))
                .transpose()?,
            created_by: f.opt_string("createdBy")?,
            canceled_by: f.opt_string("canceledBy")?,
            last_updated_by: f.opt_string("lastUpdatedBy")?,
            changed_by: f.details("changedBy")?,
            sent_at: f.opt_time("sentAt")?,
            acknowledged_at: f.opt_time("acknowledgedAt")?,
            retention_seconds: f.u32("retentionSeconds")?,
            created_at: f.time("createdAt")?,
            last_updated_at: f.time("lastUpdatedAt")?,
            started_at: f.opt_time("startedAt")?,
            completed_at: f.opt_time("completedAt")?,
            time_to_live: f.time("timeToLive")?,
            version: f.u64("version")?,
            execution_number: f.u32_or("executionNumber", 1)?,
            client_token: f
                .get("clientToken")
                .map(|_| f.id("clientToken", ClientToken::parse))
                .transpose()?,
            protocol: match f.opt_string("protocol")? {
                None => crate::device_protocol::DeviceProtocol::Jobs,
                Some(raw) => {
                    crate::device_protocol::DeviceProtocol::parse(&raw).ok_or_else(|| {
                        crate::text::msg!["protocol ", quote(&raw), " is not jobs or commands"]
                    })?
                }
            },
            // Not part of the API's record (the command shows it).
            document_template: None,
        })
    }
}

impl ToJson for ParameterSpec {
    fn to_json(&self) -> Json {
        let p = self;
        let mut out = Out::default()
            .put("name", p.name.as_str())
            .put("type", p.value_type.as_str())
            .put("required", p.required)
            .opt("default", p.default.as_ref())
            .opt("description", p.description.as_ref().map(Str));
        if let Some(min) = p.min {
            out = out.put("min", Json::Number(min));
        }
        if let Some(max) = p.max {
            out = out.put("max", Json::Number(max));
        }
        if let Some(n) = p.min_length {
            out = out.put("minLength", n);
        }
        if let Some(n) = p.max_length {
            out = out.put("maxLength", n);
        }
        if let Some(pattern) = &p.pattern {
            out = out.put("pattern", pattern.as_str());
        }
        if let Some(values) = &p.allowed_values {
            let values: Vec<Json> = values.iter().map(|v| Json::from(v.as_str())).collect();
            out = out.put("enum", Json::Array(values));
        }
        if let Some(n) = p.max_bytes {
            out = out.put("maxBytes", n);
        }
        if p.sensitive {
            out = out.put("sensitive", true);
        }
        if !p.value_conditions.is_empty() {
            let conditions = p.value_conditions.iter().map(|c| c.to_json()).collect();
            out = out.put("valueConditions", Json::Array(conditions));
        }
        out.done()
    }
}

impl ToJson for CommandDefinition {
    fn to_json(&self) -> Json {
        let d = self;
        let out = Out::default()
            .put("commandId", d.command_id.as_str())
            .opt("description", d.description.as_ref().map(Str))
            .put(
                "parameters",
                Json::Array(d.parameters.iter().map(ToJson::to_json).collect()),
            )
            .put("executionTimeoutSeconds", d.execution_timeout_seconds)
            .put("retentionSeconds", d.retention_seconds)
            .opt("createdAt", d.created_at.as_ref());
        let out = if d.protocol.is_jobs() {
            out
        } else {
            out.put("protocol", d.protocol.as_str())
        };
        let out = out
            .opt("displayName", d.display_name.as_ref().map(Str))
            .opt("payloadTemplate", d.payload_template.as_ref().map(Str));
        let out = if d.output_format.is_json() || d.payload_template.is_none() {
            out
        } else {
            out.put(
                "preprocessor",
                Out::default()
                    .put(
                        "awsJsonSubstitution",
                        Out::default()
                            .put("outputFormat", d.output_format.as_str())
                            .done(),
                    )
                    .done(),
            )
        };
        let out = match &d.payload {
            None => out,
            Some(p) => out.put(
                "payload",
                Out::default()
                    .put("content", p.content.as_str())
                    .put("contentType", p.content_type.as_str())
                    .done(),
            ),
        };
        let out = if d.supersede {
            out.put("supersede", true)
        } else {
            out
        };
        if d.retry_policy.is_default() {
            out.done()
        } else {
            out.put("retryPolicy", d.retry_policy.to_json()).done()
        }
    }
}

impl ValueType {
    /// Reads a type tag (`"I"`).
    pub fn from_json(json: &Json) -> Option<Self> {
        json.as_str().and_then(Self::from_tag)
    }
}
