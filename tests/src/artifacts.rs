//! S3 for artifact tests: a bucket of a test's own in moto (`MOTO_ENDPOINT`)
//! holding one object, the service presigning URLs for it, and its API
//! called at the tests' clock. Does I/O (moto, DynamoDB Local).

use aws_sdk_dynamodb::config::Credentials;
use courier_core::Timestamp;
use courier_functions::ops::Courier;
use courier_functions::platform::presign::ArtifactSigner;
use courier_functions::store::dynamodb::DynamoStore;
use courier_local::http::{client as http_client, request};
use serde_json::Value;
use std::time::Duration;

/// The artifact tests' clock (epoch seconds): URLs are signed relative to it.
pub const NOW: i64 = 1_795_000_000;

/// `method path` with `body` on the service's API as the development
/// identity, at [`NOW`].
pub async fn api(
    courier: &Courier<DynamoStore>,
    method: &str,
    path: &str,
    body: Value,
) -> crate::ApiReply {
    let event = crate::http_event(method, path, Some(&body));
    crate::send_to_api(
        courier,
        &crate::api_settings(true),
        &event,
        Timestamp::from_secs(NOW),
    )
    .await
}

/// moto's endpoint, which serves S3 too.
pub fn moto() -> String {
    std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT: run through `make test`")
}

/// A bucket `name` in moto, holding `key` = `content`.
pub async fn bucket_with(name: &str, key: &str, content: &[u8]) {
    let http = http_client();
    let (status, body) = request(&http, "PUT", &format!("{}/{name}", moto()), vec![])
        .await
        .expect("moto answers");
    assert!(
        status < 300,
        "create bucket: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = request(
        &http,
        "PUT",
        &format!("{}/{name}/{key}", moto()),
        content.to_vec(),
    )
    .await
    .expect("moto answers");
    assert!(status < 300, "put object: {status}");
}

/// The service over a fresh table, presigning URLs for `bucket` (10
/// minutes) against moto.
pub async fn courier_with_artifacts(bucket: &str) -> Courier<DynamoStore> {
    crate::fresh_courier().await.with_artifacts(ArtifactSigner {
        buckets: vec![bucket.to_owned()],
        lifetime: Duration::from_secs(600),
        region: "us-east-1".into(),
        endpoint: Some(moto()),
        credentials: Credentials::new("testing", "testing", None, None, "test"),
    })
}
