//! Configuration from the environment, read once at cold start, and the AWS
//! clients built from it. No I/O besides reading environment variables.
//!
//! Region and credentials are the ones the Lambda runtime puts in the
//! environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`), read directly: aws-config's default chains would
//! also build an STS client, an IMDS client and profile-file readers that a
//! Lambda function never uses, and they were 42% of the api's own init in a
//! profile (README "Benchmarks").
//!
//! Local endpoints come from the SDK's own variable names
//! (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_IOT_DATA_PLANE`,
//! `AWS_ENDPOINT_URL_IOT`, or `AWS_ENDPOINT_URL` for all), so no code differs
//! between local and AWS.
//!
//! Every client shares one HTTPS client that trusts only the Amazon Trust
//! Services roots, compiled in: every AWS endpoint Courier calls chains to
//! them, fewer authorities are trusted than a system store holds, and no CA
//! directory is read at cold start.

use crate::api::{ApiSettings, Cors};
use crate::auth::AuthSettings;
use crate::page_token::PageTokens;
use crate::publisher::IotDataPublisher;
use crate::service::Courier;
use crate::store::dynamodb::DynamoStore;
use crate::thing_groups::IotThingGroups;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::SdkConfig;
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
    /// `TENANT_CLAIM`: the JWT claim naming the caller's tenant (default
    /// `tenant`); `LOCAL_DEV_IDENTITY=on`: accept the development identity
    /// (local mode only; see `auth`).
    pub auth: AuthSettings,
    /// Region and credentials for the AWS clients (see the module header).
    pub aws: AwsAccess,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let var =
            |name: &str| std::env::var(name).map_err(|_| ConfigError(format!("{name} is not set")));
        let table_name = var("TABLE_NAME")?;
        let page_token_secret = var("PAGE_TOKEN_SECRET")?.into_bytes();
        if page_token_secret.len() < 16 {
            return Err(ConfigError(
                "PAGE_TOKEN_SECRET must be at least 16 bytes".into(),
            ));
        }
        let topic_root = std::env::var("TOPIC_ROOT").unwrap_or_else(|_| DEFAULT_ROOT.into());
        let topic_root =
            TopicRoot::parse(&topic_root).map_err(|e| ConfigError(format!("TOPIC_ROOT: {e}")))?;
        let local_dev_identity = match std::env::var("LOCAL_DEV_IDENTITY").as_deref() {
            Ok("on") => true,
            Ok("" | "off") | Err(_) => false,
            Ok(other) => {
                return Err(ConfigError(format!(
                    "LOCAL_DEV_IDENTITY is on or off, got {other:?}"
                )))
            }
        };
        if local_dev_identity {
            tracing::warn!("LOCAL_DEV_IDENTITY=on: requests without a JWT act as a development identity; never in a deployment");
        }
        Ok(Self {
            table_name,
            page_token_secret,
            cors_allow_origin: std::env::var("CORS_ALLOW_ORIGIN").unwrap_or_else(|_| "*".into()),
            topic_root,
            auth: AuthSettings {
                tenant_claim: std::env::var("TENANT_CLAIM").unwrap_or_else(|_| "tenant".into()),
                local_dev_identity,
            },
            aws: AwsAccess::from_env()?,
        })
    }

    /// What the API needs besides the service: CORS and authentication.
    pub fn api_settings(&self) -> ApiSettings {
        ApiSettings {
            cors: Cors {
                allow_origin: self.cors_allow_origin.clone(),
            },
            auth: self.auth.clone(),
        }
    }

    /// The service over DynamoDB and the IoT control plane (thing groups),
    /// for the API; the SDK clients are built once.
    pub fn courier_and_groups(&self) -> (Courier<DynamoStore>, IotThingGroups) {
        let sdk = sdk_config(&self.aws);
        (self.courier_with(&sdk), thing_groups(&sdk))
    }

    fn courier_with(&self, sdk: &SdkConfig) -> Courier<DynamoStore> {
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        dynamodb.set_endpoint_url(endpoint_url("DYNAMODB"));
        let client = aws_sdk_dynamodb::Client::from_conf(dynamodb.build());
        let store = DynamoStore::new(client, &self.table_name);
        Courier::new(store, PageTokens::new(self.page_token_secret.clone()))
    }

    /// The service and an IoT data-plane publisher, for the functions that
    /// talk to devices; the SDK configuration is loaded once for both.
    pub fn courier_and_publisher(&self) -> (Courier<DynamoStore>, IotDataPublisher) {
        let sdk = sdk_config(&self.aws);
        (self.courier_with(&sdk), publisher(&sdk))
    }

    /// Everything the job runner needs (dispatcher, sweeper): the service, a
    /// publisher and the thing-group resolver, from one SDK configuration.
    pub fn courier_publisher_and_groups(
        &self,
    ) -> (Courier<DynamoStore>, IotDataPublisher, IotThingGroups) {
        let sdk = sdk_config(&self.aws);
        (self.courier_with(&sdk), publisher(&sdk), thing_groups(&sdk))
    }
}

/// The Amazon Trust Services root certificates (see the module header).
const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("amazon-trust-roots.pem");

/// Publishing to devices: the IoT data plane (`iot:Publish`).
fn publisher(sdk: &SdkConfig) -> IotDataPublisher {
    let mut config = aws_sdk_iotdataplane::config::Builder::from(sdk);
    config.set_endpoint_url(endpoint_url("IOT_DATA_PLANE"));
    IotDataPublisher::new(aws_sdk_iotdataplane::Client::from_conf(config.build()))
}

/// A job's thing groups: the IoT control plane (`iot:ListThingsInThingGroup`).
fn thing_groups(sdk: &SdkConfig) -> IotThingGroups {
    let mut config = aws_sdk_iot::config::Builder::from(sdk);
    config.set_endpoint_url(endpoint_url("IOT"));
    IotThingGroups::new(aws_sdk_iot::Client::from_conf(config.build()))
}

/// `AWS_ENDPOINT_URL_{service}`, else `AWS_ENDPOINT_URL`: the SDK's names
/// for a local stand-in's address. Unset (or empty) on AWS.
fn endpoint_url(service: &str) -> Option<String> {
    endpoint_url_from(service, |name| std::env::var(name).ok())
}

fn endpoint_url_from(service: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    [
        format!("AWS_ENDPOINT_URL_{service}"),
        "AWS_ENDPOINT_URL".to_owned(),
    ]
    .iter()
    .find_map(|name| lookup(name).filter(|url| !url.is_empty()))
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
    /// (optional) `AWS_SESSION_TOKEN`, which Lambda sets for every function.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any lookup (an empty value counts as unset).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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

/// The SDK configuration every client is built from, once per cold start.
/// The retry budget and timeouts are bounded so that a storage outage fails
/// a request in seconds (503 with Retry-After, or an event retried by the
/// platform) instead of holding it until the Lambda timeout.
pub fn sdk_config(access: &AwsAccess) -> SdkConfig {
    use aws_sdk_dynamodb::config::{retry::RetryConfig, timeout::TimeoutConfig};
    use std::time::Duration;
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(access.region.clone())
        .credentials_provider(SharedCredentialsProvider::new(access.credentials.clone()))
        .http_client(https_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(SDK_MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(500)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build()
}

/// Attempts per AWS call, the first included (the SDK retries throttling,
/// 5xx and connection failures with jittered backoff).
pub const SDK_MAX_ATTEMPTS: u32 = 3;

/// rustls (aws-lc) trusting the Amazon Trust Services roots only.
fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    let roots = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AMAZON_TRUST_ROOTS);
    let context = TlsContext::builder().with_trust_store(roots).build();
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
    let client = match context {
        Ok(context) => builder.tls_context(context).build_https(),
        // Cannot happen (building a context only moves its parts); the
        // SDK's default trust would still be correct, only slower to load.
        Err(_) => builder.build_https(),
    };
    SharedHttpClient::new(WithoutWarmUp(client))
}

/// The SDK's HTTPS client without its warm-up. Building each SDK client
/// calls `validate_base_client_config`, which builds a whole TLS connector
/// and drops it, so that a system certificate store is read at init rather
/// than at the first request. Courier's roots are compiled in: there is
/// nothing to warm, and the warm-up cost one TLS setup per SDK client at
/// every cold start. The connector the requests use is built once, at the
/// first request, either way.
#[derive(Debug)]
struct WithoutWarmUp(SharedHttpClient);

impl HttpClient for WithoutWarmUp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The wall clock, read at the edge and passed into core as a value.
pub fn now() -> courier_core::Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    courier_core::Timestamp::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::ProvideCredentials as _;
    use base64::Engine as _;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

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

    #[test]
    fn a_service_endpoint_overrides_the_shared_one_and_empty_means_unset() {
        let both = lookup(&[
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ]);
        assert_eq!(
            endpoint_url_from("DYNAMODB", &both).as_deref(),
            Some("http://127.0.0.1:8000")
        );
        assert_eq!(
            endpoint_url_from("IOT", &both).as_deref(),
            Some("http://127.0.0.1:9000")
        );
        let empty = lookup(&[("AWS_ENDPOINT_URL_IOT", "")]);
        assert_eq!(endpoint_url_from("IOT", &empty), None);
    }

    #[test]
    fn the_compiled_in_trust_store_holds_the_five_amazon_trust_services_roots() {
        let text = std::str::from_utf8(AMAZON_TRUST_ROOTS).unwrap_or_default();
        let blocks: Vec<&str> = text
            .split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .filter_map(|b| b.split("-----END CERTIFICATE-----").next())
            .collect();
        assert_eq!(blocks.len(), 5);
        for block in blocks {
            let body: String = block.split_whitespace().collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default();
            // An X.509 certificate: a DER SEQUENCE of a plausible size.
            assert_eq!(der.first(), Some(&0x30));
            assert!(der.len() > 400, "{} bytes", der.len());
        }
    }
}
