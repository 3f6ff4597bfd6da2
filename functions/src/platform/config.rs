//! CONFIGURATION from the environment, read once at cold start into plain
//! values. No I/O besides reading environment variables; the AWS clients
//! are built from these in `aws`, the service in `crate::app`.
//!
//! Region and credentials are the ones the Lambda runtime puts in the
//! environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), read directly: aws-config's default chains would
//! also build an STS client, an IMDS client and profile-file readers that a
//! Lambda function never uses, and they were 42% of the api's own init in a
//! profile (README "Benchmarks").

use super::publisher::OptionalMessages;
use aws_sdk_dynamodb::config::{Credentials, Region};
use courier_core::commands::{self, CommandsTopics};
use courier_core::protocol::{TopicRoot, DEFAULT_ROOT};

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the single table.
    pub table_name: String,
    /// `PAGE_TOKEN_SECRET`: HMAC key for nextToken (at least 16 bytes).
    pub page_token_secret: Vec<u8>,
    /// `CORS_ALLOW_ORIGIN`: the dashboard's origin, or `*` (default).
    pub cors_allow_origin: String,
    /// `TOPIC_ROOT`: the device protocol's topic root, with `{thingName}`
    /// (default `courier/things/{thingName}/jobs`).
    pub topic_root: TopicRoot,
    /// The AWS IoT commands protocol: `COMMANDS_ROOT` (default
    /// `courier/commands/things/{thingName}`; `$aws/commands/things/{thingName}`
    /// on a broker of one's own), `COMMAND_EVENTS_ROOT` (default
    /// `courier/events/commandExecution`), and the account its status events'
    /// ARNs name (`ACCOUNT_ID`, with `AWS_REGION`).
    pub commands: CommandsTopics,
    /// `TENANT_CLAIM`: the JWT claim naming the caller's tenant (default
    /// `tenant`).
    pub tenant_claim: String,
    /// `LOCAL_DEV_IDENTITY=on`: accept the development identity (local mode
    /// only; see `entry::api::auth`).
    pub local_dev_identity: bool,
    /// `DIRECT_DELIVERY=off`: the API leaves delivering the executions it
    /// creates to the stream (default `on`: it delivers them itself).
    pub direct_delivery: bool,
    /// `LIST_NOTIFICATIONS=off`, `COMMAND_STATUS_EVENTS=off`: leave out
    /// AWS IoT Jobs' `notify` and AWS IoT commands' status events (default
    /// `on`: both published; see `OptionalMessages`).
    pub optional_messages: OptionalMessages,
    /// `USAGE_REPORT=on`: one usage line per invocation, and the api's
    /// `Server-Timing` header (`platform::usage`; default `off`).
    pub usage_report: bool,
    /// `PIPELINE_MAX_ACTIVE_RUNS` (default 20) and `PIPELINE_MAX_TARGETS`
    /// (default and at most 10,000): per-tenant limits on pipeline runs.
    pub max_active_runs: u32,
    pub max_run_targets: u64,
    /// `METRICS_COMMAND_DIMENSION`: command ids (comma-separated, at most
    /// 10) whose metrics also get a `CommandId` dimension.
    pub metrics_commands: Vec<String>,
    /// `ARTIFACT_BUCKETS` (comma-separated): the S3 buckets artifact
    /// placeholders may name; none, and placeholders are refused.
    pub artifact_buckets: Vec<String>,
    /// `ARTIFACT_URL_SECONDS` (60 to 3600, default 3600): how long a
    /// presigned URL works.
    pub artifact_url_seconds: u64,
    /// `ARTIFACT_ENDPOINT`: S3's URL when it is not AWS's (locally, moto).
    pub artifact_endpoint: Option<String>,
    /// Region and credentials for the AWS clients.
    pub aws: AwsAccess,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any lookup.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var =
            |name: &str| lookup(name).ok_or_else(|| ConfigError(format!("{name} is not set")));
        let table_name = var("TABLE_NAME")?;
        let page_token_secret = var("PAGE_TOKEN_SECRET")?.into_bytes();
        if page_token_secret.len() < 16 {
            return Err(ConfigError(
                "PAGE_TOKEN_SECRET must be at least 16 bytes".into(),
            ));
        }
        let topic_root = lookup("TOPIC_ROOT").unwrap_or_else(|| DEFAULT_ROOT.into());
        let topic_root =
            TopicRoot::parse(&topic_root).map_err(|e| ConfigError(format!("TOPIC_ROOT: {e}")))?;
        let commands_root =
            lookup("COMMANDS_ROOT").unwrap_or_else(|| commands::DEFAULT_ROOT.into());
        let commands_root = TopicRoot::parse(&commands_root)
            .map_err(|e| ConfigError(format!("COMMANDS_ROOT: {e}")))?;
        let events_root =
            lookup("COMMAND_EVENTS_ROOT").unwrap_or_else(|| commands::DEFAULT_EVENTS_ROOT.into());
        if events_root.is_empty() || events_root.contains(['+', '#']) || events_root.ends_with('/')
        {
            return Err(ConfigError(format!(
                "COMMAND_EVENTS_ROOT must be a topic without wildcards or a trailing /, got {}",
                courier_core::text::quote(&events_root)
            )));
        }
        let aws = AwsAccess::from_lookup(&lookup)?;
        let commands = CommandsTopics {
            root: commands_root,
            events_root,
            arns: commands::Arns {
                region: aws.region.to_string(),
                account: lookup("ACCOUNT_ID").unwrap_or_else(|| "000000000000".into()),
            },
        };
        let local_dev_identity = on_off(&lookup, "LOCAL_DEV_IDENTITY", false)?;
        let direct_delivery = on_off(&lookup, "DIRECT_DELIVERY", true)?;
        let usage_report = on_off(&lookup, "USAGE_REPORT", false)?;
        let optional_messages = OptionalMessages {
            list_notifications: on_off(&lookup, "LIST_NOTIFICATIONS", true)?,
            command_status_events: on_off(&lookup, "COMMAND_STATUS_EVENTS", true)?,
        };
        let max_active_runs = whole(&lookup, "PIPELINE_MAX_ACTIVE_RUNS", 20, 1..=10_000)?;
        let max_run_targets = whole(&lookup, "PIPELINE_MAX_TARGETS", 10_000, 1..=10_000)?;
        let metrics_commands = list(&lookup, "METRICS_COMMAND_DIMENSION");
        if metrics_commands.len() > 10
            || metrics_commands
                .iter()
                .any(|c| courier_core::CommandId::parse(c).is_err())
        {
            return Err(ConfigError(
                "METRICS_COMMAND_DIMENSION is at most 10 command ids, comma-separated".into(),
            ));
        }
        let artifact_buckets = list(&lookup, "ARTIFACT_BUCKETS");
        let artifact_url_seconds = whole(&lookup, "ARTIFACT_URL_SECONDS", 3600, 60..=3600)?;
        let artifact_endpoint = lookup("ARTIFACT_ENDPOINT").filter(|e| !e.is_empty());
        if local_dev_identity {
            tracing::warn!("LOCAL_DEV_IDENTITY=on: requests without a JWT act as a development identity; never in a deployment");
        }
        Ok(Self {
            table_name,
            page_token_secret,
            cors_allow_origin: lookup("CORS_ALLOW_ORIGIN").unwrap_or_else(|| "*".into()),
            topic_root,
            commands,
            tenant_claim: lookup("TENANT_CLAIM").unwrap_or_else(|| "tenant".into()),
            local_dev_identity,
            direct_delivery,
            usage_report,
            optional_messages,
            max_active_runs: u32::try_from(max_active_runs).unwrap_or(20),
            max_run_targets,
            metrics_commands,
            artifact_buckets,
            artifact_url_seconds,
            artifact_endpoint,
            aws,
        })
    }
}

/// A comma-separated list, blanks dropped; empty when unset.
fn list(lookup: impl Fn(&str) -> Option<String>, name: &str) -> Vec<String> {
    lookup(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A whole number within `range`, `default` when unset or empty.
fn whole(
    lookup: impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match lookup(name).as_deref() {
        None | Some("") => Ok(default),
        Some(raw) => match raw.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError(format!(
                "{name} is a whole number from {} to {}, got {}",
                range.start(),
                range.end(),
                courier_core::text::quote(raw)
            ))),
        },
    }
}

/// A switch: `on` or `off`, `default` when unset or empty.
fn on_off(
    lookup: impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match lookup(name).as_deref() {
        None | Some("") => Ok(default),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(ConfigError(format!(
            "{name} is on or off, got {}",
            courier_core::text::quote(other)
        ))),
    }
}

/// Region and credentials, as the Lambda runtime provides them.
#[derive(Debug, Clone)]
pub struct AwsAccess {
    pub region: Region,
    /// The function role's session; its `Debug` hides the secret.
    pub credentials: Credentials,
}

impl AwsAccess {
    /// From `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// (optional) `AWS_SESSION_TOKEN`, which Lambda sets for every function,
    /// as `lookup` finds them (an empty value counts as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let optional = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let required = |name: &str| {
            optional(name).ok_or_else(|| {
                ConfigError(format!(
                    "{name} is not set (the Lambda runtime sets it; locally, the env file does)"
                ))
            })
        };
        Ok(Self {
            region: Region::new(required("AWS_REGION")?),
            credentials: Credentials::new(
                required("AWS_ACCESS_KEY_ID")?,
                required("AWS_SECRET_ACCESS_KEY")?,
                optional("AWS_SESSION_TOKEN"),
                None,
                "lambda-environment",
            ),
        })
    }
}

/// An environment of the given variables, for tests.
#[cfg(test)]
pub(crate) fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::ProvideCredentials as _;

    #[tokio::test]
    async fn region_and_credentials_come_from_the_lambda_variables() {
        let access = AwsAccess::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-example"),
            ("AWS_SESSION_TOKEN", "session"),
        ]))
        .unwrap();
        assert_eq!(access.region.as_ref(), "eu-west-1");
        let credentials = access.credentials.provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.session_token(), Some("session"));
        // The secret never shows in a log line that prints the settings.
        assert!(!format!("{access:?}").contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn a_missing_or_empty_variable_is_named_and_a_session_token_is_optional() {
        let err = AwsAccess::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("AWS_ACCESS_KEY_ID is not set"),
            "{err}"
        );
        let access = AwsAccess::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", ""),
        ]))
        .unwrap();
        assert_eq!(access.credentials.session_token(), None);
    }

    fn with_required(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars = vec![
            ("TABLE_NAME", "courier"),
            ("PAGE_TOKEN_SECRET", "0123456789abcdef"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn artifact_buckets_are_a_list_and_the_url_lifetime_is_bounded_as_in_aws() {
        let config = Config::from_lookup(lookup(&with_required(&[(
            "ARTIFACT_BUCKETS",
            " fw-images, ,more-fw ",
        )])))
        .unwrap();
        assert_eq!(config.artifact_buckets, ["fw-images", "more-fw"]);
        assert_eq!(config.artifact_url_seconds, 3600);
        for refused in ["59", "3601", "an hour"] {
            let err =
                Config::from_lookup(lookup(&with_required(&[("ARTIFACT_URL_SECONDS", refused)])))
                    .unwrap_err();
            assert!(
                err.to_string()
                    .contains("ARTIFACT_URL_SECONDS is a whole number from 60 to 3600"),
                "{err}"
            );
        }
        let none = Config::from_lookup(lookup(&with_required(&[]))).unwrap();
        assert!(none.artifact_buckets.is_empty());
    }

    #[test]
    fn the_optional_messages_are_on_unless_turned_off() {
        let default = Config::from_lookup(lookup(&with_required(&[]))).unwrap();
        assert_eq!(default.optional_messages, OptionalMessages::default());
        assert!(default.optional_messages.list_notifications);
        let lean = Config::from_lookup(lookup(&with_required(&[
            ("LIST_NOTIFICATIONS", "off"),
            ("COMMAND_STATUS_EVENTS", "off"),
        ])))
        .unwrap();
        assert!(!lean.optional_messages.list_notifications);
        assert!(!lean.optional_messages.command_status_events);
        let err = Config::from_lookup(lookup(&with_required(&[("COMMAND_STATUS_EVENTS", "no")])))
            .unwrap_err();
        assert!(err.to_string().contains("COMMAND_STATUS_EVENTS"), "{err}");
    }
}
