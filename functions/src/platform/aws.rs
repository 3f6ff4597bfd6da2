//! THE AWS CLIENTS, built once per cold start from [`AwsAccess`]: the SDK
//! configuration (bounded retries and timeouts), one HTTPS client that
//! trusts only the Amazon Trust Services roots (compiled in: every AWS
//! endpoint Courier calls chains to them, fewer authorities are trusted than
//! a system store holds, and no CA directory is read at cold start), and a
//! client per service. No I/O until a client is used.
//!
//! Local endpoints come from the SDK's own variable names
//! (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_IOT_DATA_PLANE`,
//! `AWS_ENDPOINT_URL_IOT`, or `AWS_ENDPOINT_URL` for all), so no code differs
//! between local and AWS.

use crate::platform::config::AwsAccess;
use crate::platform::usage::{Service, Timing};
use aws_sdk_dynamodb::config::SharedInterceptor;
use aws_sdk_dynamodb::config::{BehaviorVersion, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::SdkConfig;

/// The table: DynamoDB.
pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let mut config = aws_sdk_dynamodb::config::Builder::from(sdk);
    config.set_endpoint_url(endpoint_url("DYNAMODB"));
    config.push_interceptor(SharedInterceptor::new(Timing(Service::DynamoDb)));
    aws_sdk_dynamodb::Client::from_conf(config.build())
}

/// The Amazon Trust Services root certificates (see the module header).
const AMAZON_TRUST_ROOTS: &[u8] = include_bytes!("amazon-trust-roots.pem");

/// Publishing to devices: the IoT data plane (`iot:Publish`).
pub fn iot_data(sdk: &SdkConfig) -> aws_sdk_iotdataplane::Client {
    let mut config = aws_sdk_iotdataplane::config::Builder::from(sdk);
    config.set_endpoint_url(endpoint_url("IOT_DATA_PLANE"));
    config.push_interceptor(SharedInterceptor::new(Timing(Service::IotDataPlane)));
    aws_sdk_iotdataplane::Client::from_conf(config.build())
}

/// Thing groups: the IoT control plane (`iot:ListThingsInThingGroup`).
pub fn iot(sdk: &SdkConfig) -> aws_sdk_iot::Client {
    let mut config = aws_sdk_iot::config::Builder::from(sdk);
    config.set_endpoint_url(endpoint_url("IOT"));
    aws_sdk_iot::Client::from_conf(config.build())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::config::lookup;
    use base64::Engine as _;

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
