//! Why an execution (or a job) is in its status, in the device's or the
//! system's words: `statusReason` with a machine code and a sentence. Pure,
//! no I/O.

use crate::error::{ValidationCode, ValidationErrors};
use crate::json::Json;
use crate::text::{json_kind, quote};
use serde::{Deserialize, Serialize};

/// Why an execution is in its status, in the device's or the system's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReason {
    /// `[A-Z0-9_-]{1,64}`, e.g. `DISK_FULL`.
    pub reason_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_description: Option<String>,
}

pub const MAX_REASON_DESCRIPTION_CHARS: usize = 1024;

/// Whether `code` is a reason code: 1 to 64 of A-Z, 0-9, '_' and '-'.
pub fn is_reason_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl StatusReason {
    /// An optional `statusReason` field (absent or null: none), its problems
    /// added to `errors`.
    pub fn optional(
        json: Option<&Json>,
        path: &str,
        errors: &mut ValidationErrors,
    ) -> Option<Self> {
        match json {
            None | Some(Json::Null) => None,
            Some(json) => match Self::parse_at(json, path) {
                Ok(reason) => Some(reason),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        }
    }

    pub fn parse_at(json: &Json, path: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let Json::Object(map) = json else {
            errors.add(
                path,
                ValidationCode::WrongType,
                crate::text::msg!["expected an object, got ", json_kind(json)],
            );
            return Err(errors);
        };
        for key in map.keys() {
            if key != "reasonCode" && key != "reasonDescription" {
                errors.add(
                    crate::text::msg![path, ".", key],
                    ValidationCode::UnknownField,
                    "statusReason takes reasonCode and reasonDescription only",
                );
            }
        }
        let code_path = crate::text::msg![path, ".reasonCode"];
        let reason_code = match map.get("reasonCode") {
            Some(Json::String(code)) => {
                if !is_reason_code(code) {
                    errors.add(
                        &code_path,
                        ValidationCode::PatternMismatch,
                        crate::text::msg![
                            "reasonCode must be 1 to 64 of A-Z, 0-9, '_' and '-'; got ",
                            quote(code)
                        ],
                    );
                }
                code.clone()
            }
            Some(other) => {
                errors.add(
                    &code_path,
                    ValidationCode::WrongType,
                    crate::text::msg!["expected a string, got ", json_kind(other)],
                );
                String::new()
            }
            None => {
                errors.add(
                    &code_path,
                    ValidationCode::MissingRequired,
                    "reasonCode is required in statusReason",
                );
                String::new()
            }
        };
        let reason_description = match map.get("reasonDescription") {
            None | Some(Json::Null) => None,
            Some(Json::String(d)) if d.chars().count() <= MAX_REASON_DESCRIPTION_CHARS => {
                Some(d.clone())
            }
            Some(Json::String(_)) => {
                errors.add(
                    crate::text::msg![path, ".reasonDescription"],
                    ValidationCode::TooLong,
                    crate::text::msg!["at most ", MAX_REASON_DESCRIPTION_CHARS, " characters"],
                );
                None
            }
            Some(other) => {
                errors.add(
                    crate::text::msg![path, ".reasonDescription"],
                    ValidationCode::WrongType,
                    crate::text::msg!["expected a string, got ", json_kind(other)],
                );
                None
            }
        };
        errors.into_result(Self {
            reason_code,
            reason_description,
        })
    }
}
