//! One integration-test binary: every module runs against real processes (redis-server, moto)
//! started by the harness in `tests/lib.rs`.

/// Runs an `async fn(BackendKind)` scenario once per backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(chat_tests::BackendKind::Embedded).await
                }
            )*
        }
        mod dynamo_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(chat_tests::BackendKind::DynamoRedis).await
                }
            )*
        }
    };
}

/// Runs `async fn(BackendKind)` scenarios that exercise Redis once more, against a 3-master Redis
/// Cluster (`REDIS_CLUSTER=true`).
macro_rules! on_redis_cluster {
    ($($name:ident),* $(,)?) => {
        mod dynamo_redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(chat_tests::BackendKind::DynamoRedisCluster).await
                }
            )*
        }
    };
}

mod admin;
mod chat_local;
mod concurrency;
mod conformance;
mod delivery;
mod events;
mod friends;
mod groups;
mod hostile;
mod identity;
mod messaging;
mod openapi;
mod outage;
mod profile;
