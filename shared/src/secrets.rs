//! Keys of the deployed functions, read once per cold start from AWS Secrets Manager (the stack
//! generates them), so no key is ever in a function's configuration. chat-local keeps its keys
//! in its data dir instead.

use aws_config::SdkConfig;

use crate::error::{AppError, AppResult};

/// Reads the secret strings of `ids` (ARNs or names) concurrently, in order.
pub async fn fetch(shared: &SdkConfig, ids: &[String]) -> AppResult<Vec<Vec<u8>>> {
    let mut config =
        aws_sdk_secretsmanager::config::Builder::from(shared).timeout_config(crate::store::dynamo::timeouts());
    if let Some(url) = crate::store::dynamo::endpoint_from_env("SECRETS_MANAGER") {
        config = config.endpoint_url(url);
    }
    let config = config.build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    let reads = ids.iter().map(|id| {
        let client = &client;
        async move {
            let out = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
                AppError::Config(format!("secret {id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e)))
            })?;
            out.secret_string
                .map(String::into_bytes)
                .ok_or_else(|| AppError::Config(format!("secret {id} has no string value")))
        }
    });
    futures_util::future::try_join_all(reads).await
}
