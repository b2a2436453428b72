//! The floor of the cold-start benchmark: a lambda_runtime function that
//! answers every event with `{"ok": true}` and does nothing else.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({"ok": true}))
    }))
    .await
}
