//! A Lambda Runtime API emulator on a loopback port, and a function process served by it: the
//! real `bootstrap` binary (or any custom-runtime binary) started as Lambda starts it, fed events
//! and answered through `/2018-06-01/runtime/...`. It also plays the Lambda `Invoke` API
//! (`AWS_ENDPOINT_URL_LAMBDA`), recording asynchronous invokes such as ws-connect's follow-up.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

/// What the function answered to one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST .../response`: the handler's result, as JSON.
    Response(Value),
    /// `POST .../error`: the runtime reported a failed invocation.
    Error(Value),
    /// `POST /runtime/init/error`, or the process exited before asking for an event.
    InitError(String),
}

struct Pending {
    id: String,
    event: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<VecDeque<Pending>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// When the function first asked for an event (its init is over).
    first_next: Mutex<Option<Instant>>,
    ready: Notify,
    init_error: Mutex<Option<String>>,
    /// Asynchronous `Invoke` calls received: (function name, payload).
    invokes: Mutex<Vec<(String, Value)>>,
}

/// The emulator; one per function process, as each Lambda execution environment has its own.
pub struct RuntimeApi {
    /// `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    inner: Arc<Inner>,
    next_id: Mutex<u64>,
}

impl RuntimeApi {
    /// Starts serving on a free loopback port (needs a Tokio runtime).
    pub async fn start() -> RuntimeApi {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind runtime API");
        let address = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        RuntimeApi { address, inner, next_id: Mutex::new(0) }
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_LAMBDA`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Waits until the function asks for its first event (its init is done) and returns when it
    /// did, or the init error.
    pub async fn ready(&self, timeout: Duration) -> Result<Instant, Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.ready.notified();
            if let Some(error) = self.inner.init_error.lock().expect("lock").clone() {
                return Err(Outcome::InitError(error));
            }
            if let Some(at) = *self.inner.first_next.lock().expect("lock") {
                return Ok(at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Outcome::InitError("the function did not ask for an event in time".into()));
            }
        }
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Outcome {
        let id = {
            let mut n = self.next_id.lock().expect("lock");
            *n += 1;
            format!("00000000-0000-4000-8000-{:012}", *n)
        };
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().expect("lock").insert(id.clone(), tx);
        let event = serde_json::to_vec(event).expect("event JSON");
        self.inner.queue.lock().expect("lock").push_back(Pending { id, event });
        self.inner.queued.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => Outcome::InitError(
                self.inner.init_error.lock().expect("lock").clone().unwrap_or_else(|| "no answer in time".into()),
            ),
        }
    }

    /// The asynchronous `Invoke` calls made so far: (function name, payload).
    pub fn invokes(&self) -> Vec<(String, Value)> {
        self.inner.invokes.lock().expect("lock").clone()
    }

    /// Marks the process gone: pending and later invocations fail instead of waiting.
    fn exited(&self, why: String) {
        self.inner.init_error.lock().expect("lock").get_or_insert(why);
        self.inner.ready.notify_waiters();
        for (_, tx) in self.inner.waiting.lock().expect("lock").drain() {
            let _ = tx.send(Outcome::InitError("the function process exited".into()));
        }
    }
}

async fn next(State(inner): State<Arc<Inner>>) -> Response {
    inner.first_next.lock().expect("lock").get_or_insert_with(Instant::now);
    inner.ready.notify_waiters();
    loop {
        let notified = inner.queued.notified();
        if let Some(p) = inner.queue.lock().expect("lock").pop_front() {
            let deadline = std::time::SystemTime::now() + Duration::from_secs(30);
            let deadline_ms = deadline.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            let headers = [
                ("lambda-runtime-aws-request-id", p.id),
                ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:local".into()),
                ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".into()),
                ("content-type", "application/json".into()),
            ];
            let mut response = p.event.into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().expect("header value"));
            }
            return response;
        }
        notified.await;
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    complete(&inner, &id, Outcome::Response(json_or_text(&body)))
}

async fn fail(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    complete(&inner, &id, Outcome::Error(json_or_text(&body)))
}

fn complete(inner: &Inner, id: &str, outcome: Outcome) -> StatusCode {
    match inner.waiting.lock().expect("lock").remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> StatusCode {
    *inner.init_error.lock().expect("lock") = Some(json_or_text(&body).to_string());
    inner.ready.notify_waiters();
    StatusCode::ACCEPTED
}

/// Lambda's `Invoke`: an `Event` (asynchronous) invoke is recorded and accepted, as Lambda does.
async fn invoke_api(
    State(inner): State<Arc<Inner>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let asynchronous = headers.get("x-amz-invocation-type").is_some_and(|t| t == "Event");
    inner.invokes.lock().expect("lock").push((name, json_or_text(&body)));
    if asynchronous {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    }
}

/// A function's process served by its own [`RuntimeApi`]; killed on drop.
pub struct FunctionProcess {
    pub api: RuntimeApi,
    pub spawned_at: Instant,
    child: Child,
}

impl FunctionProcess {
    /// Starts `binary` as Lambda starts a custom runtime: `_HANDLER` names the function, the
    /// `AWS_LAMBDA_*` variables describe it, `env` adds the function's configuration.
    pub async fn spawn(binary: &Path, handler: &str, env: &[(String, String)]) -> FunctionProcess {
        FunctionProcess::spawn_with_args(binary, &[], handler, env, None).await
    }

    /// [`FunctionProcess::spawn`] of an interpreter with its arguments (a Node.js peer), its log
    /// (stderr) written to `log` if given (else dropped, unless `CHAT_FUNCTION_LOGS` is set).
    pub async fn spawn_with_args(
        program: &Path,
        args: &[&str],
        handler: &str,
        env: &[(String, String)],
        log: Option<&Path>,
    ) -> FunctionProcess {
        let api = RuntimeApi::start().await;
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", &api.address)
            .env("_HANDLER", handler)
            .env("AWS_LAMBDA_FUNCTION_NAME", handler)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{handler}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_ENDPOINT_URL_LAMBDA", api.endpoint())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(path) = log {
            command.stderr(std::fs::File::create(path).expect("log file"));
        } else if std::env::var_os("CHAT_FUNCTION_LOGS").is_none() {
            command.stderr(Stdio::null());
        }
        let spawned_at = Instant::now();
        let child = command.spawn().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        FunctionProcess { api, spawned_at, child }
    }

    /// Waits for the end of the function's init: when it first asked for an event, or why it
    /// never will (an init error, or the process exited, as Lambda's `Runtime.ExitError`).
    pub async fn ready(&mut self) -> Result<Instant, Outcome> {
        let api = &self.api;
        let child = &mut self.child;
        watching_exit(child, api, api.ready(Duration::from_secs(30))).await
    }

    /// Invokes the function once; a process that died answers [`Outcome::InitError`].
    pub async fn invoke(&mut self, event: &Value) -> Outcome {
        let api = &self.api;
        let child = &mut self.child;
        watching_exit(child, api, api.invoke(event, Duration::from_secs(30))).await
    }
}

/// Runs `work` while checking that `child` lives; its exit fails what waits on the emulator.
async fn watching_exit<T>(child: &mut Child, api: &RuntimeApi, work: impl std::future::Future<Output = T>) -> T {
    tokio::pin!(work);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            api.exited(format!("the function process exited: {status}"));
        }
        tokio::select! {
            outcome = &mut work => return outcome,
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
