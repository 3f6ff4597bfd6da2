//! WIRING for the binaries: the service, its clients and settings, built
//! once per cold start from the [`Config`], each binary taking only the
//! clients it uses (every SDK client costs init time). Builds the AWS
//! clients; no other I/O.

use crate::entry::api::auth::{default_tenant, AuthSettings};
use crate::entry::api::reply::Cors;
use crate::entry::api::routes::ApiSettings;
use crate::ops::page_token::PageTokens;
use crate::ops::Courier;
use crate::ops::RunLimits;
use crate::platform::aws;
use crate::platform::config::Config;
use crate::platform::presign::ArtifactSigner;
use crate::platform::publisher::IotDataPublisher;
use crate::platform::thing_groups::IotThingGroups;
use crate::store::dynamodb::DynamoStore;
use aws_types::SdkConfig;

/// The service over DynamoDB. Each request or event is served by the view of
/// its own tenant (`Courier::for_tenant`); this one starts as the default's.
fn courier(config: &Config, sdk: &SdkConfig) -> Courier<DynamoStore> {
    crate::platform::metrics::configure(config.metrics_commands.clone());
    let store = DynamoStore::new(aws::dynamodb(sdk), &config.table_name, default_tenant());
    let courier = Courier::new(store, PageTokens::new(config.page_token_secret.clone()))
        .with_commands(config.commands.clone())
        .with_optional_messages(config.optional_messages)
        .with_run_limits(RunLimits {
            max_active_runs: config.max_active_runs,
            max_targets: config.max_run_targets,
        });
    if config.artifact_buckets.is_empty() {
        return courier;
    }
    courier.with_artifacts(ArtifactSigner {
        buckets: config.artifact_buckets.clone(),
        lifetime: std::time::Duration::from_secs(config.artifact_url_seconds),
        region: config.aws.region.to_string(),
        endpoint: config.artifact_endpoint.clone(),
        credentials: config.aws.credentials.clone(),
    })
}

/// The `api` function: the service, thing groups (jobs), a publisher
/// (direct delivery), CORS and auth.
pub fn api(
    config: &Config,
) -> (
    Courier<DynamoStore>,
    IotThingGroups,
    IotDataPublisher,
    ApiSettings,
) {
    let sdk = aws::sdk_config(&config.aws);
    let settings = ApiSettings {
        cors: Cors {
            allow_origin: config.cors_allow_origin.clone(),
        },
        auth: AuthSettings {
            tenant_claim: config.tenant_claim.clone(),
            local_dev_identity: config.local_dev_identity,
        },
        direct_delivery: config.direct_delivery.then(|| config.topic_root.clone()),
    };
    (
        courier(config, &sdk),
        IotThingGroups::new(aws::iot(&sdk)),
        IotDataPublisher::new(aws::iot_data(&sdk)),
        settings,
    )
}

/// The `device-events` function: the service and a publisher.
pub fn device_events(config: &Config) -> (Courier<DynamoStore>, IotDataPublisher) {
    let sdk = aws::sdk_config(&config.aws);
    (
        courier(config, &sdk),
        IotDataPublisher::new(aws::iot_data(&sdk)),
    )
}

/// The job runner's functions (`dispatcher`, `sweeper`): the service, a
/// publisher and thing groups.
pub fn job_runner(config: &Config) -> (Courier<DynamoStore>, IotDataPublisher, IotThingGroups) {
    let sdk = aws::sdk_config(&config.aws);
    (
        courier(config, &sdk),
        IotDataPublisher::new(aws::iot_data(&sdk)),
        IotThingGroups::new(aws::iot(&sdk)),
    )
}
