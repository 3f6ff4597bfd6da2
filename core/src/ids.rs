//! Identifier newtypes, parsed once at the edge ("parse, don't validate").
//! A value of these types is always well-formed. Pure, no I/O.
//!
//! Character sets and lengths follow AWS IoT where the concept is the same:
//! thing names `[a-zA-Z0-9:_-]{1,128}`, command ids `[a-zA-Z0-9_-]{1,64}`,
//! client tokens printable ASCII `[\x21-\x7E]{1,64}`; tenant ids
//! `[a-zA-Z0-9._:-]{1,64}`.

use crate::error::{ValidationCode, ValidationError};
use crate::text::{json_kind, quote};
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal, $allowed:expr, $allowed_text:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            /// Parses `raw`; the error's path is `path`.
            pub fn parse_at(raw: &str, path: &str) -> Result<Self, ValidationError> {
                let allowed: fn(char) -> bool = $allowed;
                if raw.is_empty() || raw.len() > $max || !raw.chars().all(allowed) {
                    return Err(ValidationError::new(
                        path,
                        ValidationCode::InvalidId,
                        crate::text::msg![
                            concat!($what, " must be 1 to "),
                            $max,
                            concat!(" characters of ", $allowed_text, "; got "),
                            quote(raw)
                        ],
                    ));
                }
                Ok(Self(raw.to_owned()))
            }

            pub fn parse(raw: &str) -> Result<Self, ValidationError> {
                Self::parse_at(raw, stringify!($name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = ValidationError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl crate::text::Piece for $name {
            fn put(&self, out: &mut String) {
                out.push_str(&self.0);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Reads the optional `clientToken` field of a request object, collecting a
/// problem into `errors` (create, cancel and device updates all take one).
pub(crate) fn optional_client_token(
    map: &crate::json::Object,
    errors: &mut crate::error::ValidationErrors,
) -> Option<ClientToken> {
    match map.get("clientToken") {
        None | Some(crate::json::Json::Null) => None,
        Some(crate::json::Json::String(t)) => {
            errors.collect(ClientToken::parse_at(t, "clientToken"))
        }
        Some(other) => {
            errors.add(
                "clientToken",
                ValidationCode::WrongType,
                crate::text::msg!["expected a string, got ", json_kind(other)],
            );
            None
        }
    }
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

id_type!(
    /// A command definition's id, e.g. `reboot` or `set-config`.
    CommandId, "a command id", 64, word_char, "letters, digits, '_' and '-'"
);
id_type!(
    /// A start request's `dedupeKey`: at most one pending execution per
    /// device carries it (see `dedupe`), e.g. `lock` or `fw:2.4.1`.
    DedupeKey, "a dedupe key", 128, |c| word_char(c) || c == ':' || c == '.', "letters, digits, ':', '.', '_' and '-'"
);
id_type!(
    /// An execution's id (server-generated, UUID-shaped).
    ExecutionId, "an execution id", 64, word_char, "letters, digits, '_' and '-'"
);
id_type!(
    /// The device an execution targets: an AWS IoT thing name.
    ThingName, "a thing name", 128, |c| word_char(c) || c == ':', "letters, digits, ':', '_' and '-'"
);
id_type!(
    /// A job's id: one command sent to many devices.
    JobId, "a job id", 64, word_char, "letters, digits, '_' and '-'"
);
id_type!(
    /// A pipeline's id: ordered stages of commands.
    PipelineId, "a pipeline id", 64, word_char, "letters, digits, '_' and '-'"
);
id_type!(
    /// A pipeline run's id: one pipeline over a fleet, in waves.
    RunId, "a run id", 64, word_char, "letters, digits, '_' and '-'"
);
id_type!(
    /// A pipeline stage's name, unique within its pipeline (`download`).
    StageName, "a stage name", 64, word_char, "letters, digits, '_' and '-'"
);
id_type!(
    /// The tenant a caller acts for (from a verified JWT claim). Every key in
    /// the table is scoped by it; `#` is the key separator and never part of one.
    TenantId, "a tenant id", 64, |c| word_char(c) || c == '.' || c == ':', "letters, digits, '.', ':', '_' and '-'"
);
id_type!(
    /// A caller's idempotency token.
    ClientToken, "a client token", 64, |c| ('\x21'..='\x7e').contains(&c), "printable ASCII without spaces"
);
id_type!(
    /// A parameter's name in a command definition (AWS: `[.$a-zA-Z0-9_-]+`).
    ParameterName, "a parameter name", 192, |c| word_char(c) || c == '.' || c == '$', "letters, digits, '.', '$', '_' and '-'"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_ids() {
        assert!(CommandId::parse("set-config_2").is_ok());
        assert!(ThingName::parse("arn:thing-1").is_ok());
        assert!(ClientToken::parse("tok/1+2=3").is_ok());
        assert!(ParameterName::parse("$net.rate").is_ok());
    }

    #[test]
    fn refuses_malformed_ids_with_invalid_id_code() {
        for bad in ["", "has space", "slash/", &"x".repeat(65)] {
            let err = CommandId::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "InvalidId");
        }
        assert!(ThingName::parse(&"t".repeat(128)).is_ok());
        assert!(ThingName::parse(&"t".repeat(129)).is_err());
        assert!(ClientToken::parse("a b").is_err());
        assert!(ClientToken::parse("é").is_err());
    }

    #[test]
    fn deserializing_validates() {
        let ok: Result<ThingName, _> = serde_json::from_str("\"dev-1\"");
        assert!(ok.is_ok());
        let bad: Result<ThingName, _> = serde_json::from_str("\"dev/1\"");
        assert!(bad.is_err());
    }
}
