//! THE LOCAL AWS PARTS, as clients: DynamoDB Local (`DYNAMODB_ENDPOINT`,
//! started by the scripts), its streams, and moto's IoT control plane
//! (`MOTO_ENDPOINT`); a fresh table with Courier's layout. Static dummy
//! credentials: the local parts accept any. Does I/O.

use aws_sdk_dynamodb::Client;
use courier_functions::entry::api::auth::default_tenant;
use courier_functions::ops::page_token::PageTokens;
use courier_functions::ops::Courier;
use courier_functions::platform::thing_groups::IotThingGroups;
use courier_functions::store::dynamodb::DynamoStore;
use courier_functions::store::table;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("DYNAMODB_ENDPOINT is not set: run through `make test` or `make bench` (the scripts start DynamoDB Local)")
    })
}

pub fn local_credentials() -> aws_sdk_dynamodb::config::Credentials {
    aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "courier-local")
}

/// SDK settings for a local part at `endpoint` (us-east-1, local credentials).
pub async fn sdk_config(endpoint: String) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(local_credentials())
        .load()
        .await
}

/// A client for DynamoDB Local.
pub async fn client() -> Client {
    Client::new(&sdk_config(endpoint()).await)
}

/// DynamoDB Local's streams.
pub async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&sdk_config(endpoint()).await)
}

/// The store over `table`, viewed as the default tenant (local mode's).
pub fn store(client: Client, table: &str) -> DynamoStore {
    DynamoStore::new(client, table, default_tenant())
}

/// The service over `table` (see [`store`]), with the local page-token key.
pub fn courier(client: Client, table: &str) -> Courier<DynamoStore> {
    Courier::new(
        store(client, table),
        PageTokens::new(b"local-page-token-key".to_vec()),
    )
}

/// A new, empty table with Courier's layout, unique in this process.
pub async fn fresh_table() -> (Client, String) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let client = client().await;
    let name = format!(
        "courier-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    table::create_table(&client, &name)
        .await
        .expect("create table in DynamoDB Local");
    (client, name)
}

/// The IoT control plane served by moto (`MOTO_ENDPOINT`), for thing
/// groups. Without it, the client points at a closed port: fine where no
/// group is resolved.
pub async fn iot_client() -> aws_sdk_iot::Client {
    let endpoint =
        std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9".to_owned());
    aws_sdk_iot::Client::new(&sdk_config(endpoint).await)
}

/// Thing-group resolution through moto (see [`iot_client`]).
pub async fn thing_groups() -> IotThingGroups {
    IotThingGroups::new(iot_client().await)
}
