//! THE TABLE'S DEFINITION: keys, the four indexes (names and keys from
//! `layout`), the stream, on-demand billing and TTL, as `infra/template.yaml`
//! declares them for AWS. [`create_table`] (tests and `make run`) does I/O.

use super::errors::{classify, internal};
use super::layout::{BY_COMMAND_INDEX, BY_TARGET_INDEX, DUE_INDEX, PENDING_INDEX, TTL_ATTRIBUTE};
use super::StoreError;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

/// The table definition (keys, indexes, stream, on-demand billing);
/// `infra/template.yaml` declares the same for AWS.
pub fn create_table_request(client: &Client, table: &str) -> CreateTableFluentBuilder {
    let string_attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let index = |name: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(&format!("{name}pk"), KeyType::Hash))
            .key_schema(key(&format!("{name}sk"), KeyType::Range))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .expect("name, keys and projection are set")
    };
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attr("pk"))
        .attribute_definitions(string_attr("sk"))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        // The dispatcher reads new images from the table's stream.
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .expect("enabled is set"),
        );
    for name in [BY_TARGET_INDEX, BY_COMMAND_INDEX, PENDING_INDEX, DUE_INDEX] {
        request = request
            .attribute_definitions(string_attr(&format!("{name}pk")))
            .attribute_definitions(string_attr(&format!("{name}sk")))
            .global_secondary_indexes(index(name));
    }
    request
}

/// Creates the table and enables TTL on `ttl` (tests and `make run`).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    create_table_request(client, table)
        .send()
        .await
        .map_err(classify)?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()
                .map_err(internal)?,
        )
        .send()
        .await
        .map_err(classify)?;
    Ok(())
}
