//! Load script (not a test): messages/s and delivery latency through a running `chat-local`.
//!
//! `make load` starts chat-local on a scratch data dir and runs this against it; by hand:
//! `cargo run --release -p chat-tests --example load -- --addr 127.0.0.1:3000 --pairs 20 --messages 50`.
//! Each pair is a sender and a connected receiver whose settings allow unlimited messages from
//! strangers, so every send is delivered live. Senders run concurrently, each sending one message
//! after the other. Latency: from just before the HTTP send to the frame's arrival on the socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    addr: String,
    pairs: usize,
    messages: usize,
}

fn args() -> Args {
    let mut out = Args { addr: "127.0.0.1:3000".into(), pairs: 20, messages: 50 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--addr" => out.addr = value,
            "--pairs" => out.pairs = value.parse().unwrap_or(out.pairs),
            "--messages" => out.messages = value.parse().unwrap_or(out.messages),
            other => {
                eprintln!("unknown flag {other}; usage: load [--addr HOST:PORT] [--pairs N] [--messages N]");
                std::process::exit(2);
            }
        }
    }
    out
}

/// One HTTP/1.1 POST with a JSON body; returns the JSON response body.
async fn post(addr: &str, path: &str, token: Option<&str>, body: &Value) -> Value {
    let body = body.to_string();
    let token = token.map(|t| format!("token: {t}\r\n")).unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\n{token}content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to chat-local");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let json = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(json).unwrap_or(Value::Null)
}

async fn register(addr: &str, username: &str) -> (i64, String) {
    let body = post(addr, "/api/regChat", None, &json!({"username": username, "password": "123456"})).await;
    let data = &body["data"];
    match (data["id"].as_i64(), data["token"].as_str()) {
        (Some(id), Some(token)) => (id, token.to_owned()),
        _ => panic!("registration of {username} failed: {body}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let args = args();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let expected = args.pairs * args.messages;
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for i in 0..args.pairs {
        let (_, sender_token) = register(&args.addr, &format!("ls{}{i:03}", &run[..8])).await;
        let (receiver_id, receiver_token) = register(&args.addr, &format!("lr{}{i:03}", &run[..8])).await;
        let unlimited = json!({"chatset": {"user": {"sendCount": 2}, "visitor": {"sendCount": 2}}}).to_string();
        post(&args.addr, "/api/chat/userset", Some(&receiver_token), &json!({"userset": unlimited})).await;
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token={receiver_token}", args.addr))
            .await
            .expect("websocket");
        let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
        let messages = args.messages;
        readers.push(tokio::spawn(async move {
            let (_, mut stream) = socket.split();
            let mut got = 0;
            while got < messages {
                let Ok(Some(Ok(Message::Text(text)))) =
                    tokio::time::timeout(Duration::from_secs(30), stream.next()).await
                else {
                    break;
                };
                let arrived = Instant::now();
                let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let Some(id) = frame["data"]["data"].as_str().filter(|_| frame["type"] == "singleChat") else {
                    continue;
                };
                let start = sent_at.lock().expect("lock").get(id).copied();
                if let Some(start) = start {
                    latencies.lock().expect("lock").push(arrived - start);
                    got += 1;
                }
            }
        }));
        senders.push((sender_token, receiver_id));
    }
    // Let the sockets finish their post-connect frames.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, (token, to))| {
            let (addr, sent_at, messages) = (args.addr.clone(), sent_at.clone(), args.messages);
            tokio::spawn(async move {
                for n in 0..messages {
                    // The payload names the sample, so the receiver can match it before it knows the id.
                    let key = format!("{i}-{n}");
                    sent_at.lock().expect("lock").insert(key.clone(), Instant::now());
                    let body = json!({"sendto_id": to, "chatType": "single", "type": "text", "data": key});
                    let answer = post(&addr, "/api/chat/socket/sendmessage", Some(&token), &body).await;
                    assert_eq!(answer["msg"], "ok", "send failed: {answer}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("sender");
    }
    let sending = started.elapsed();
    for reader in readers {
        let _ = reader.await;
    }
    let elapsed = started.elapsed();
    let mut samples = latencies.lock().expect("lock").clone();
    samples.sort();
    println!("chat-local load: {} pairs x {} messages = {expected} messages", args.pairs, args.messages);
    println!("  delivered live : {} of {expected}", samples.len());
    println!(
        "  send rate      : {:.0} messages/s (all sends done in {:.2?})",
        expected as f64 / sending.as_secs_f64(),
        sending
    );
    println!(
        "  delivery rate  : {:.0} messages/s (last frame after {:.2?})",
        samples.len() as f64 / elapsed.as_secs_f64(),
        elapsed
    );
    println!(
        "  latency        : p50 {:.2?}  p99 {:.2?}  max {:.2?}",
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples.last().copied().unwrap_or_default()
    );
    if samples.len() < expected {
        std::process::exit(1);
    }
}
