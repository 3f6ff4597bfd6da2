//! THE RETRY POLICY and DEFERRAL ("not now"): one mechanism for every
//! execution, whether started directly, by a job or (later) by a pipeline.
//! Pure, no I/O: the caller passes the time in, and the backoff's jitter is
//! derived from the execution id and the attempt, so replays agree.
//!
//! A policy says how many attempts an execution gets, how long each retry
//! waits (fixed or exponential backoff between a minimum and a maximum,
//! optionally jittered) and which outcomes are retried (a status, and
//! optionally only some reason codes):
//!
//! ```json
//! {"maxAttempts": 4,
//!  "backoff": {"strategy": "EXPONENTIAL", "minSeconds": 10, "maxSeconds": 300, "jitter": true},
//!  "retryOn": [{"status": "FAILED", "reasonCodes": ["E_NETWORK"]}, {"status": "TIMED_OUT"}]}
//! ```
//!
//! It is set per command (`retryPolicy` on the definition) and overridden per
//! request or per job. The older spellings are mapped onto it:
//! `onTimeout: "RETRY"` with `maxAttempts` is `retryOn: [TIMED_OUT]`, and a
//! job's `jobExecutionsRetryConfig` criteria are `retryOn` entries with
//! their own `maxRetries`.
//!
//! A retried attempt is a new attempt (`executionNumber` + 1) held until its
//! backoff ends. A DEFERRAL is not: a device that answers "not now"
//! (`NOT_NOW` as its `statusReason` code or, for an unmodified AWS SDK
//! device, as `statusDetails.reasonCode`, on a REJECTED or FAILED update)
//! puts the same attempt back in the queue, held for the backoff, and counts
//! nothing but `deferCount`. Its delivery and completion deadlines still
//! run, so a device that defers for ever ends TIMED_OUT.

use crate::error::{ValidationCode, ValidationErrors};
use crate::ids::ExecutionId;
use crate::json::{Json, Object};
use crate::status::ExecutionStatus;
use crate::text::{json_kind, quote};
use serde::{Deserialize, Serialize};

/// Attempts a policy may give (`maxAttempts`).
pub const MAX_ATTEMPTS_RANGE: (u32, u32) = (1, 10);
/// Backoff bounds (seconds): at most a day between attempts.
pub const BACKOFF_RANGE: (u32, u32) = (0, 86_400);
/// How long a deferred execution waits when its policy has no backoff.
pub const DEFAULT_DEFER_SECONDS: u32 = 60;
/// The reason code of a device's "not now".
pub const NOT_NOW: &str = "NOT_NOW";
/// The older spelling of [`NOT_NOW`] (job executions before issue 17).
pub const BUSY: &str = "BUSY";
/// The reason code a deferred execution is re-queued with.
pub const DEFERRED: &str = "DEFERRED";

/// How the wait between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackoffStrategy {
    /// `minSeconds` every time.
    #[default]
    Fixed,
    /// `minSeconds`, doubled per retry, at most `maxSeconds`.
    Exponential,
}

impl BackoffStrategy {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Fixed => "FIXED",
            Self::Exponential => "EXPONENTIAL",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "FIXED" => Some(Self::Fixed),
            "EXPONENTIAL" => Some(Self::Exponential),
            _ => None,
        }
    }
}

/// The wait before a retried (or deferred) attempt is offered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    pub strategy: BackoffStrategy,
    pub min_seconds: u32,
    pub max_seconds: u32,
    /// Spread the wait over its upper half (derived from the execution id
    /// and the attempt, so every replay computes the same time).
    #[serde(default)]
    pub jitter: bool,
}

impl Backoff {
    /// No wait at all (the default).
    pub const fn is_none(&self) -> bool {
        self.max_seconds == 0
    }

    /// Seconds to wait before the `n`th retry (or deferral; 1-based) of
    /// execution `id`.
    pub fn delay_seconds(&self, id: &ExecutionId, n: u32) -> u32 {
        let base = match self.strategy {
            BackoffStrategy::Fixed => self.min_seconds,
            BackoffStrategy::Exponential => {
                let doublings = n.saturating_sub(1).min(31);
                self.min_seconds.saturating_mul(1 << doublings)
            }
        }
        .min(self.max_seconds)
        .max(self.min_seconds.min(self.max_seconds));
        if !self.jitter || base < 2 {
            return base;
        }
        // "Equal jitter": half the wait is kept, the other half spread by a
        // hash, never below the minimum.
        let half = base / 2;
        let spread = fnv1a(id.as_str(), n) % (u64::from(base - half) + 1);
        (half + u32::try_from(spread).unwrap_or(0)).max(self.min_seconds.min(base))
    }
}

/// FNV-1a over the id's bytes and the attempt: small, stable everywhere.
fn fnv1a(id: &str, n: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes().chain(n.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One outcome that is retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryOn {
    /// FAILED, REJECTED or TIMED_OUT (a delivery or step deadline; the
    /// whole execution's `completeBy` is never retried).
    pub status: ExecutionStatus,
    /// Only these reason codes (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason_codes: Vec<String>,
    /// At most this many retries for this outcome (a job criterion's
    /// `numberOfRetries`); the policy's `maxAttempts` bounds them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// How an execution is retried. The default retries nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Backoff::is_none")]
    pub backoff: Backoff,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry_on: Vec<RetryOn>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: Backoff::default(),
            retry_on: Vec::new(),
        }
    }
}

const RETRYABLE: [ExecutionStatus; 3] = [
    ExecutionStatus::Failed,
    ExecutionStatus::Rejected,
    ExecutionStatus::TimedOut,
];

impl RetryPolicy {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether attempt `attempt` (1-based) ending in `status` with `code`
    /// is followed by another.
    pub fn retries(&self, status: ExecutionStatus, code: Option<&str>, attempt: u32) -> bool {
        attempt < self.max_attempts
            && self.retry_on.iter().any(|on| {
                on.status == status
                    && (on.reason_codes.is_empty()
                        || code.is_some_and(|c| on.reason_codes.iter().any(|r| r == c)))
                    && on.max_retries.is_none_or(|max| attempt <= max)
            })
    }

    /// Whether a per-attempt deadline (TIMED_OUT) is retried at all.
    pub fn retries_timeouts(&self) -> bool {
        self.max_attempts > 1
            && self
                .retry_on
                .iter()
                .any(|on| on.status == ExecutionStatus::TimedOut)
    }

    /// Seconds before the `n`th deferral is offered again.
    pub fn defer_seconds(&self, id: &ExecutionId, n: u32) -> u32 {
        if self.backoff.is_none() {
            DEFAULT_DEFER_SECONDS
        } else {
            self.backoff.delay_seconds(id, n)
        }
    }

    /// `onTimeout: "RETRY"` with `maxAttempts` (the start request's older
    /// spelling): timeouts retried, nothing else.
    pub fn on_timeout(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            backoff: Backoff::default(),
            retry_on: vec![RetryOn {
                status: ExecutionStatus::TimedOut,
                reason_codes: Vec::new(),
                max_retries: None,
            }],
        }
    }

    /// A job's `jobExecutionsRetryConfig`: each (status, retries) pair
    /// retried up to its own count.
    pub fn from_criteria(criteria: &[(ExecutionStatus, u32)]) -> Self {
        let most = criteria.iter().map(|(_, n)| *n).max().unwrap_or(0);
        Self {
            max_attempts: 1 + most,
            backoff: Backoff::default(),
            retry_on: criteria
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(status, n)| RetryOn {
                    status: *status,
                    reason_codes: Vec::new(),
                    max_retries: Some(*n),
                })
                .collect(),
        }
    }

    /// Courier's spelling, `retryPolicy`, at `path`.
    pub fn parse(value: &Json, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let map = object(value, path, &["maxAttempts", "backoff", "retryOn"], errors)?;
        let before = errors.len();
        let max_attempts = match map.get("maxAttempts") {
            None => 1,
            Some(v) => whole(v, &at(path, "maxAttempts"), MAX_ATTEMPTS_RANGE, errors),
        };
        let backoff = match map.get("backoff") {
            None | Some(Json::Null) => Backoff::default(),
            Some(v) => parse_backoff(v, &at(path, "backoff"), errors),
        };
        let retry_on = match map.get("retryOn") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) if items.len() <= 10 => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    parse_retry_on(item, &crate::text::msg![path, ".retryOn[", i, "]"], errors)
                })
                .collect(),
            Some(other) => {
                errors.add(
                    at(path, "retryOn"),
                    ValidationCode::WrongType,
                    crate::text::msg![
                        "expected a list of at most 10 outcomes, got ",
                        json_kind(other)
                    ],
                );
                Vec::new()
            }
        };
        if max_attempts > 1 && retry_on.is_empty() && errors.len() == before {
            errors.add(
                at(path, "retryOn"),
                ValidationCode::MissingRequired,
                "maxAttempts above 1 needs the outcomes to retry (retryOn)",
            );
        }
        (errors.len() == before).then_some(Self {
            max_attempts,
            backoff,
            retry_on,
        })
    }

    /// The policy as JSON, the way serde writes it.
    pub fn to_json(&self) -> Json {
        let mut out = Object::new();
        out.insert("maxAttempts".into(), Json::from(self.max_attempts));
        if !self.backoff.is_none() {
            let b = &self.backoff;
            let mut backoff = Object::new();
            backoff.insert("strategy".into(), Json::from(b.strategy.as_str()));
            backoff.insert("minSeconds".into(), Json::from(b.min_seconds));
            backoff.insert("maxSeconds".into(), Json::from(b.max_seconds));
            backoff.insert("jitter".into(), Json::Bool(b.jitter));
            out.insert("backoff".into(), Json::Object(backoff));
        }
        if !self.retry_on.is_empty() {
            let list = self
                .retry_on
                .iter()
                .map(|on| {
                    let mut entry = Object::new();
                    entry.insert("status".into(), Json::from(on.status.as_str()));
                    if !on.reason_codes.is_empty() {
                        let codes = on.reason_codes.iter().map(|c| Json::from(c.as_str()));
                        entry.insert("reasonCodes".into(), Json::Array(codes.collect()));
                    }
                    if let Some(n) = on.max_retries {
                        entry.insert("maxRetries".into(), Json::from(n));
                    }
                    Json::Object(entry)
                })
                .collect();
            out.insert("retryOn".into(), Json::Array(list));
        }
        Json::Object(out)
    }

    /// Reads a stored policy (the record's own form; one reason is enough).
    pub fn read(value: &Json) -> Result<Self, String> {
        let mut errors = ValidationErrors::new();
        Self::parse(value, "retryPolicy", &mut errors)
            .ok_or_else(|| crate::text::msg!["retryPolicy: ", errors.to_string()])
    }

    /// A record written before policies existed: `onTimeout`/`maxAttempts`
    /// (timeouts) and `failureRetries` (a job's FAILED criterion).
    pub fn from_legacy(on_timeout_retry: bool, max_attempts: u32, failure_retries: u32) -> Self {
        let mut criteria = Vec::new();
        if on_timeout_retry && max_attempts > 1 {
            criteria.push((ExecutionStatus::TimedOut, max_attempts - 1));
        }
        if failure_retries > 0 {
            criteria.push((ExecutionStatus::Failed, failure_retries));
        }
        Self::from_criteria(&criteria)
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        crate::text::msg![path, ".", key]
    }
}

fn object<'a>(
    value: &'a Json,
    path: &str,
    fields: &[&str],
    errors: &mut ValidationErrors,
) -> Option<&'a Object> {
    let Json::Object(map) = value else {
        errors.add(
            path,
            ValidationCode::WrongType,
            crate::text::msg!["expected an object, got ", json_kind(value)],
        );
        return None;
    };
    for key in map.keys() {
        if !fields.contains(&key.as_str()) {
            errors.add(
                at(path, key),
                ValidationCode::UnknownField,
                crate::text::msg!["unknown field; expected one of: ", fields.join(", ")],
            );
        }
    }
    Some(map)
}

fn whole(value: &Json, path: &str, range: (u32, u32), errors: &mut ValidationErrors) -> u32 {
    match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
        Some(n) if (range.0..=range.1).contains(&n) => n,
        _ => {
            errors.add(
                path,
                ValidationCode::OutOfRange,
                crate::text::msg!["expected a whole number within ", range.0, "..=", range.1],
            );
            range.0
        }
    }
}

fn parse_backoff(value: &Json, path: &str, errors: &mut ValidationErrors) -> Backoff {
    let fields = ["strategy", "minSeconds", "maxSeconds", "jitter"];
    let Some(map) = object(value, path, &fields, errors) else {
        return Backoff::default();
    };
    let strategy = match map.get("strategy") {
        None => BackoffStrategy::Fixed,
        Some(Json::String(raw)) => BackoffStrategy::parse(raw).unwrap_or_else(|| {
            errors.add(
                at(path, "strategy"),
                ValidationCode::InvalidValue,
                crate::text::msg![quote(raw), ": use FIXED or EXPONENTIAL"],
            );
            BackoffStrategy::Fixed
        }),
        Some(other) => {
            errors.add(
                at(path, "strategy"),
                ValidationCode::WrongType,
                crate::text::msg!["expected FIXED or EXPONENTIAL, got ", json_kind(other)],
            );
            BackoffStrategy::Fixed
        }
    };
    let min_seconds = map.get("minSeconds").map_or(0, |v| {
        whole(v, &at(path, "minSeconds"), BACKOFF_RANGE, errors)
    });
    let max_seconds = map.get("maxSeconds").map_or(min_seconds, |v| {
        whole(v, &at(path, "maxSeconds"), BACKOFF_RANGE, errors)
    });
    if max_seconds < min_seconds {
        errors.add(
            at(path, "maxSeconds"),
            ValidationCode::OutOfRange,
            crate::text::msg!["must be at least minSeconds (", min_seconds, ")"],
        );
    }
    let jitter = match map.get("jitter") {
        None => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            errors.add(
                at(path, "jitter"),
                ValidationCode::WrongType,
                crate::text::msg!["expected true or false, got ", json_kind(other)],
            );
            false
        }
    };
    Backoff {
        strategy,
        min_seconds,
        max_seconds,
        jitter,
    }
}

fn parse_retry_on(value: &Json, path: &str, errors: &mut ValidationErrors) -> Option<RetryOn> {
    let map = object(
        value,
        path,
        &["status", "reasonCodes", "maxRetries"],
        errors,
    )?;
    let status = match map.get("status").and_then(Json::as_str) {
        Some(raw) => ExecutionStatus::parse(raw).filter(|s| RETRYABLE.contains(s)),
        None => None,
    };
    if status.is_none() {
        errors.add(
            at(path, "status"),
            ValidationCode::InvalidValue,
            "status is one of FAILED, REJECTED, TIMED_OUT",
        );
    }
    let reason_codes = match map.get("reasonCodes") {
        None => Vec::new(),
        Some(Json::Array(codes)) if codes.len() <= 20 => codes
            .iter()
            .filter_map(|code| match code {
                Json::String(c) if crate::reason::is_reason_code(c) => Some(c.clone()),
                other => {
                    errors.add(
                        at(path, "reasonCodes"),
                        ValidationCode::InvalidValue,
                        crate::text::msg![
                            "a reason code is 1 to 64 of A-Z, 0-9, '_' and '-'; got ",
                            crate::text::shown(other)
                        ],
                    );
                    None
                }
            })
            .collect(),
        Some(other) => {
            errors.add(
                at(path, "reasonCodes"),
                ValidationCode::WrongType,
                crate::text::msg![
                    "expected a list of at most 20 reason codes, got ",
                    json_kind(other)
                ],
            );
            Vec::new()
        }
    };
    let max_retries = map
        .get("maxRetries")
        .map(|v| whole(v, &at(path, "maxRetries"), (0, 9), errors));
    Some(RetryOn {
        status: status?,
        reason_codes,
        max_retries,
    })
}

/// Whether a device's FAILED or REJECTED report is a deferral ("not now"):
/// `NOT_NOW` (or the older `BUSY`) as its reason code, or as the
/// `reasonCode` key of its `statusDetails` (all an AWS SDK device can send).
pub fn is_deferral(
    status: ExecutionStatus,
    reason_code: Option<&str>,
    details_code: Option<&str>,
) -> bool {
    matches!(status, ExecutionStatus::Failed | ExecutionStatus::Rejected)
        && [reason_code, details_code]
            .into_iter()
            .flatten()
            .any(|c| c == NOT_NOW || c == BUSY)
}
