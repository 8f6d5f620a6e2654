//! The `chat-local` binary end to end over real HTTP: it serves the API, prints where, and keeps
//! users and sessions across a restart; its admin console driven in a real (headless) Chromium.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_tests::{free_port, moto_endpoint, unique_table, workspace_root, RedisServer, TempDir};
use serde_json::{json, Value};

fn target_dir() -> std::path::PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| workspace_root().join("target"))
}

fn binary() -> std::path::PathBuf {
    let path = target_dir().join("debug/chat-local");
    assert!(path.exists(), "{} missing: run `cargo build --bins` first (make test does)", path.display());
    path
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &TempDir, port: u16) -> Server {
    start_with(dir, port, &[])
}

fn start_with(dir: &TempDir, port: u16, extra: &[&str]) -> Server {
    start_with_env(dir, port, extra, &[])
}

fn start_with_env(dir: &TempDir, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(binary())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir.0)
        .args(extra)
        .env_remove("JWT_SECRET")
        .env_remove("ADMIN_JWT_SECRET")
        .env_remove("CHAT_ADMIN_USERNAME")
        .env_remove("CHAT_ADMIN_PASSWORD")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("chat-local");
    let mut banner = [0u8; 64];
    let n = child.stdout.as_mut().expect("stdout").read(&mut banner).expect("banner");
    let banner = String::from_utf8_lossy(&banner[..n]).into_owned();
    assert!(banner.starts_with(&format!("chat-local listening on http://127.0.0.1:{port}")), "{banner}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chat-local did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child)
}

/// A GET answered with text: `(status, body)`.
fn http_text(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").as_bytes())
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response[9..12].parse().expect("status");
    (status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// A minimal HTTP/1.1 client: `(status, JSON body)`.
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response[9..12].parse().expect("status");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, if body.is_empty() { Value::Null } else { serde_json::from_str(body).expect("JSON") })
}

#[test]
fn serves_the_api_and_keeps_users_and_sessions_across_restarts() {
    let dir = TempDir::new();
    let port = free_port();
    let json_header = [("content-type", "application/json")];
    let token = {
        let _server = start(&dir, port);
        let (status, body) = http(
            port,
            "POST",
            "/api/regChat",
            &json_header,
            &json!({"username": "local01", "password": "123456"}).to_string(),
        );
        assert_eq!(status, 200, "{body}");
        let (status, body) = http(port, "POST", "/api/regChat", &[], "username=local01&password=123456");
        assert_eq!((status, body), (400, json!({"msg":"fail","data":"该账号已存在，请换一个账号注册"})));
        let (status, _) = http(port, "OPTIONS", "/api/regChat", &[], "");
        assert_eq!(status, 204);
        http(
            port,
            "POST",
            "/api/loginChat",
            &json_header,
            &json!({"username": "local01", "password": "123456"}).to_string(),
        )
        .1["data"]["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    // Restarted on the same data dir: the account, the JWT secret and the session survive.
    let _server = start(&dir, port);
    let (status, body) = http(port, "POST", "/api/chat/logout", &[("token", &token)], "");
    assert_eq!((status, body), (200, json!({"msg":"ok","data":true})));
    let (status, _) = http(
        port,
        "POST",
        "/api/loginChat",
        &json_header,
        &json!({"username": "local01", "password": "123456"}).to_string(),
    );
    assert_eq!(status, 200);
}

#[test]
fn runs_on_dynamodb_and_redis_with_flags_creating_the_table() {
    let (dir, port, redis, table, social) =
        (TempDir::new(), free_port(), RedisServer::start(), unique_table(), unique_table());
    let moto = moto_endpoint();
    let _server = start_with(
        &dir,
        port,
        &[
            "--dynamodb-endpoint",
            &moto,
            "--redis-url",
            &redis.url(),
            "--users-table",
            &table,
            "--social-table",
            &social,
        ],
    );
    let body = json!({"username": "remote01", "password": "123456"}).to_string();
    let (status, user) = http(port, "POST", "/api/regChat", &[("content-type", "application/json")], &body);
    assert_eq!(status, 200, "{user}");
    let (status, profile) =
        http(port, "GET", &format!("/api/userinfo/{}", user["data"]["uuid"].as_str().expect("uuid")), &[], "");
    assert_eq!((status, profile["data"]["username"].as_str()), (200, Some("remote01")));
}

#[test]
fn the_admin_console_manages_users_in_a_real_browser() {
    let (dir, port) = (TempDir::new(), free_port());
    let (username, password) = ("e2eadmin", "e2e-admin-password");
    let _server =
        start_with_env(&dir, port, &[], &[("CHAT_ADMIN_USERNAME", username), ("CHAT_ADMIN_PASSWORD", password)]);
    // The documented default manager is not created when the environment names another.
    let login = |name: &str, pass: &str| {
        let body = json!({"username": name, "password": pass}).to_string();
        http(port, "POST", "/admin/loginevent", &[("content-type", "application/json")], &body)
    };
    assert_eq!(login("admin", "admin123456").1["data"], "该管理员不存在或者被禁用了");
    assert_eq!(login(username, password).0, 200);

    let screenshot = target_dir().join("admin-console.png");
    let _ = std::fs::remove_file(&screenshot);
    let script = workspace_root().join("tests/browser/admin-console.mjs");
    let out = Command::new("node")
        .arg(&script)
        .env("BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("ADMIN_USERNAME", username)
        .env("ADMIN_PASSWORD", password)
        .env("SCREENSHOT", &screenshot)
        .output()
        .expect("node on PATH (make test installs tests/browser's playwright-core and Chromium)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("all steps passed"), "{stdout}");
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot: {} bytes", png.len());
}

#[test]
fn a_fresh_laptop_install_bootstraps_the_documented_manager() {
    let (dir, port) = (TempDir::new(), free_port());
    let _server = start(&dir, port);
    let body = json!({"username": "admin", "password": "admin123456"}).to_string();
    let (status, login) = http(port, "POST", "/admin/loginevent", &[("content-type", "application/json")], &body);
    assert_eq!(status, 200, "{login}");
    let (status, page) = http_text(port, "/admin");
    assert_eq!(status, 200);
    assert!(page.contains("<title>") && page.contains("/admin/loginevent"), "the console page");
}
