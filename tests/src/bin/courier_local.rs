//! `courier-local create-table`: creates Courier's table (with TTL) in
//! DynamoDB Local for `make run`. Uses the table definition the store itself
//! declares, so local and tests cannot drift from it.

use courier_functions::store::dynamodb::DynamoStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, table] = args.as_slice() else {
        return Err(
            "usage: courier-local create-table TABLE (DYNAMODB_ENDPOINT names DynamoDB Local)"
                .into(),
        );
    };
    if command != "create-table" {
        return Err(format!("unknown command {command:?}").into());
    }
    let client = courier_tests::client().await;
    DynamoStore::create_table(&client, table).await?;
    println!(
        "created table {table} with TTL on `ttl` at {}",
        courier_tests::endpoint()
    );
    Ok(())
}
