//! The hello-world yardstick (`src/main.rs`) on the runtime flavor Courier's
//! functions use: tokio's single-threaded scheduler. Comparing with both
//! shows what Courier's init adds, apart from that choice.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
