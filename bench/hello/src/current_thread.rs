//! The floor again, on tokio's single-threaded runtime as our functions run:
//! the benchmark prints it beside the budget's floor (`hello`, written as
//! lambda_runtime's examples write it), so that the part of our margin that
//! comes from the runtime's flavour, not from doing less, is visible.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<Value, Error>(json!({"ok": true}))
    }))
    .await
}
