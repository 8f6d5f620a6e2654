//! `make bench-coldstart`: cold starts of the token-checked read `get-user-set-info` (release
//! `bootstrap`, keys from Secrets Manager) side by side with a hello-world `lambda_runtime`
//! binary and a Node.js function doing the same work (`tests/coldstart-node`), each started as a
//! Lambda process against a Runtime API emulator on loopback moto + redis-server. Prints the
//! medians of spawn → ready (init) and spawn → first response, and the two ratios of the goal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chat_tests::runtime_api::{FunctionProcess, Outcome};
use chat_tests::{
    function_binary, moto_endpoint, refresh_event, workspace_root, Backend, EventCredentials, RedisServer,
};
use serde_json::Value;

struct Sample {
    init: Duration,
    first_response: Duration,
    /// A second invocation of the same process: what the stores (moto, redis) take per request.
    warm_response: Duration,
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(15);
    let backend = Backend::aws(RedisServer::start(), &moto_endpoint(), &moto_endpoint()).await;
    backend.serve();
    let gateway = backend.websocket_endpoint.clone();
    let user = backend.register("demo01").await;
    // The event reads the settings of user 2.
    backend.register("demo02").await;
    let env = backend.function_env(&gateway).await;
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("events/get-user-set-info.json")).expect("event"),
    )
    .expect("event JSON");
    refresh_event(&mut event, &EventCredentials { user_token: user.token, admin_token: String::new() });

    let bootstrap = function_binary("release");
    let hello = bootstrap.with_file_name("hello-lambda");
    let node_dir = workspace_root().join("tests/coldstart-node");
    let node = node_dir.join("node_modules").exists().then(|| PathBuf::from("node"));
    if node.is_none() {
        eprintln!("(no Node.js peer: run `npm ci --prefix tests/coldstart-node` first)");
    }
    let node_script = node_dir.join("index.mjs").to_string_lossy().into_owned();

    let (mut rust, mut floor, mut peer) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Interleaved, so a noisy moment of the machine hits all three alike.
        floor.push(cold_start(&hello, &[], "hello", &[], &event).await);
        rust.push(cold_start(&bootstrap, &[], "get-user-set-info", &env, &event).await);
        if let Some(node) = &node {
            peer.push(cold_start(node, &[&node_script], "get-user-set-info", &env, &event).await);
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    println!("cold starts, median of {rounds} (spawn → ready = init; spawn → first response):");
    println!("{:<34} {:>10} {:>16} {:>15}", "function", "init ms", "first resp. ms", "warm resp. ms");
    let rows =
        [("hello-world lambda_runtime", &floor), ("get-user-set-info (bootstrap)", &rust), ("Node.js 20 peer", &peer)];
    for (name, samples) in rows.iter().filter(|(_, s)| !s.is_empty()) {
        println!(
            "{name:<34} {:>10.2} {:>16.2} {:>15.2}",
            ms(median(samples, |s| s.init)),
            ms(median(samples, |s| s.first_response)),
            ms(median(samples, |s| s.warm_response))
        );
    }
    let init_ratio = ms(median(&rust, |s| s.init)) / ms(median(&floor, |s| s.init));
    println!("init ratio get-user-set-info / hello-world: {init_ratio:.2}x (goal <= 2.5x)");
    if !peer.is_empty() {
        let ratio = ms(median(&rust, |s| s.first_response)) / ms(median(&peer, |s| s.first_response));
        println!("first response ratio get-user-set-info / Node.js: {ratio:.3}x (goal <= 0.05x)");
    }
    println!("binary sizes: bootstrap {} bytes, hello-lambda {} bytes", size(&bootstrap), size(&hello));
}

async fn cold_start(program: &Path, args: &[&str], handler: &str, env: &[(String, String)], event: &Value) -> Sample {
    let mut process = FunctionProcess::spawn_with_args(program, args, handler, env, None).await;
    let ready = process.ready().await.unwrap_or_else(|e| panic!("{handler}: cold start failed: {e:?}"));
    let outcome = process.invoke(event).await;
    let answered = Instant::now();
    let answered_well = |outcome: &Outcome| matches!(outcome, Outcome::Response(r) if r["statusCode"] == 200);
    assert!(answered_well(&outcome), "{handler}: {outcome:?}");
    let again = Instant::now();
    let second = process.invoke(event).await;
    let warm_response = again.elapsed();
    assert!(answered_well(&second), "{handler}: {second:?}");
    Sample { init: ready - process.spawned_at, first_response: answered - process.spawned_at, warm_response }
}

fn median(samples: &[Sample], of: impl Fn(&Sample) -> Duration) -> Duration {
    let mut values: Vec<Duration> = samples.iter().map(of).collect();
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
