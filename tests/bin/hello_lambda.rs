//! The floor of a Rust Lambda cold start: a hello-world `lambda_runtime` function, the baseline
//! of `make bench-coldstart`.

use lambda_http::lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_: LambdaEvent<Value>| async { Ok::<_, Error>(json!({"statusCode": 200, "body": "hello"})) })).await
}
