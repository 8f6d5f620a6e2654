//! chat-local against clients that do not play by the rules (issue 11, items 5–7 and 9): raw
//! sockets that connect and wait, drip or declare huge bodies, exceed the connection cap, never
//! read their WebSocket, send malformed frames or unparsable requests. Run under the harness's
//! short limits ([`chat_tests::test_limits`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat_shared::config::Config;
use chat_tests::{test_limits, Backend, BackendKind};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream
}

/// Everything the server sends until it closes the connection (or 10 s pass).
fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status and JSON body of the first response in `bytes`.
fn response(bytes: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(bytes);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(rest.len());
    let body = serde_json::from_str(rest.get(..length).unwrap_or(rest)).unwrap_or(Value::Null);
    (status, body)
}

fn envelope(data: &str) -> Value {
    json!({"msg": "fail", "data": data})
}

/// Sends `request` raw and reads the answer until the server closes.
fn exchange(addr: &str, request: &[u8]) -> (u16, Value) {
    let mut stream = connect(addr);
    let _ = stream.write_all(request);
    response(&read_all(&mut stream))
}

/// How long the server takes to close a connection after `request` was sent.
fn closed_after(addr: &str, request: &[u8]) -> (Duration, Vec<u8>) {
    let mut stream = connect(addr);
    stream.write_all(request).expect("write");
    let start = Instant::now();
    let answer = read_all(&mut stream);
    (start.elapsed(), answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_oversized_requests_end_quickly() {
    let b = Backend::new(BackendKind::Embedded).await;
    let addr = b.serve();
    let limits = test_limits();
    let addr2 = addr.clone();
    tokio::task::spawn_blocking(move || {
        let addr = addr2;
        // A bare connect that never sends a byte: closed after the header deadline.
        let (waited, answer) = closed_after(&addr, b"");
        assert!(answer.is_empty() && waited < limits.header_timeout + Duration::from_secs(3), "{waited:?}");
        // Partial headers: closed after the header deadline.
        let (waited, _) = closed_after(&addr, b"POST /api/regChat HTTP/1.1\r\nHost: x\r\n");
        assert!(waited < limits.header_timeout + Duration::from_secs(3), "{waited:?}");
        // A partial body: 408 envelope after the body deadline.
        let (waited, answer) =
            closed_after(&addr, b"POST /api/regChat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nusername=");
        assert_eq!(response(&answer), (408, envelope("Request Timeout")));
        assert!(waited < limits.body_timeout + Duration::from_secs(3), "{waited:?}");
        // A declared length over the limit: 413 at once, the body never read.
        let (waited, answer) = closed_after(
            &addr,
            b"POST /api/regChat HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\nContent-Type: application/json\r\n\r\n",
        );
        assert_eq!(response(&answer), (413, envelope("request entity too large")));
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        // A kept-alive connection that goes quiet after an answer: its next request's headers
        // are due within the header deadline.
        let (waited, answer) = closed_after(&addr, b"GET /api/nothing HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(response(&answer).0, 404);
        assert!(waited < limits.header_timeout + Duration::from_secs(3), "{waited:?}");
    })
    .await
    .expect("checks");
}

/// `ask` until it is not refused for lack of a connection place, or `within` passed (places come
/// back once the server has seen a connection close).
fn first_answer_within(within: Duration, ask: impl Fn() -> (u16, Value)) -> (u16, Value) {
    let deadline = Instant::now() + within;
    loop {
        let answer = ask();
        if answer.0 != 503 || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_until_one_closes() {
    let b = Backend::new(BackendKind::Embedded).await;
    let addr = b.serve_with(chat_functions::local::Limits { max_connections: 4, ..test_limits() });
    let request = b"GET /api/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let addr2 = addr.clone();
    tokio::task::spawn_blocking(move || {
        let held: Vec<TcpStream> = (0..4).map(|_| connect(&addr2)).collect();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(exchange(&addr2, request), (503, envelope("Service Unavailable")));
        drop(held);
        assert_eq!(first_answer_within(Duration::from_secs(5), || exchange(&addr2, request)).0, 404);
    })
    .await
    .expect("checks");
    // Upgraded WebSockets hold their place too, until they close.
    let user = b.register("capped01").await;
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let url = format!("ws://{addr}/ws?token={}", user.token);
        sockets.push(tokio_tungstenite::connect_async(url).await.expect("connect").0);
    }
    let addr2 = addr.clone();
    let busy = tokio::task::spawn_blocking(move || exchange(&addr2, request)).await.expect("exchange");
    assert_eq!(busy, (503, envelope("Service Unavailable")));
    drop(sockets);
    let free =
        tokio::task::spawn_blocking(move || first_answer_within(Duration::from_secs(5), || exchange(&addr, request)))
            .await
            .expect("exchange");
    assert_eq!(free.0, 404, "the closed sockets gave their places back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_below_the_handlers_are_envelopes() {
    let b = Backend::new(BackendKind::Embedded).await;
    let addr = b.serve();
    tokio::task::spawn_blocking(move || {
        let long_url = format!("GET /api/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100 * 1024));
        assert_eq!(exchange(&addr, long_url.as_bytes()), (414, envelope("URI Too Long")));
        let many: String = (0..2000).map(|i| format!("X-H{i}: v\r\n")).collect();
        let many_headers = format!("GET /api/x HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        assert_eq!(exchange(&addr, many_headers.as_bytes()), (431, envelope("Request Header Fields Too Large")));
        let huge_header = format!("GET /api/x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(1024 * 1024));
        assert_eq!(exchange(&addr, huge_header.as_bytes()), (431, envelope("Request Header Fields Too Large")));
        let plain_get = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        assert_eq!(exchange(&addr, plain_get), (400, envelope("Bad Request")));
        let post = b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (status, body) = exchange(&addr, post);
        assert_eq!((status, body["msg"].as_str()), (404, Some("fail")), "{body}");
        let bad_chunk =
            b"POST /api/regChat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
        assert_eq!(exchange(&addr, bad_chunk), (400, envelope("Bad Request")));
        assert_eq!(exchange(&addr, b"NOT HTTP AT ALL\r\n\r\n"), (400, envelope("Bad Request")));
    })
    .await
    .expect("checks");
}

/// A WebSocket whose client never reads: once its outgoing buffer is full the connection is gone
/// (closed, unregistered) and what is sent to it from then on waits offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_reads_is_dropped_and_its_messages_kept_offline() {
    // Enough sends to fill the socket's buffer, past the send rate limit.
    let config = Config { send_rate_limit: 100_000, ..chat_tests::test_config() };
    let b = Backend::with_config(BackendKind::Embedded, config).await;
    let addr = b.serve();
    let (alice, bob) = (b.register("alice11").await, b.register("bob00011").await);
    b.befriend(alice.id, bob.id).await;
    b.befriend(bob.id, alice.id).await;
    let (socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", bob.token)).await.expect("connect");
    // Wait until the connection is registered, then never read again.
    for _ in 0..100 {
        if !b.state.connections.current_connections(&[bob.id]).await.expect("current").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = "x".repeat(50 * 1024);
    let data = json!({"data": text, "dataType": false, "otherData": null}).to_string();
    let mut sent = 0;
    while b.queued(bob.id).await.is_empty() {
        assert!(sent < 1000, "the server kept buffering for a client that never reads");
        let body =
            json!({"sendto_id": bob.id, "chatType": "single", "type": "text", "data": data, "options": "%7B%7D"});
        let (status, answer) = b.call_as("POST", "/api/chat/socket/sendmessage", &alice, body).await;
        assert_eq!(status, 200, "{answer}");
        sent += 1;
    }
    assert!(b.state.connections.current_connections(&[bob.id]).await.expect("current").is_empty(), "unregistered");
    let body = json!({"sendto_id": bob.id, "chatType": "single", "type": "text", "data": "after", "options": "%7B%7D"});
    assert_eq!(b.call_as("POST", "/api/chat/socket/sendmessage", &alice, body).await.0, 200);
    assert!(b.queued(bob.id).await.iter().any(|m| m["data"].as_str().is_some_and(|d| d.contains("after"))));
    drop(socket);
}

/// A handshake on a raw socket as `token`'s user; the socket after the 101.
fn raw_websocket(addr: &str, token: &str) -> TcpStream {
    let mut stream = connect(addr);
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("101 head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// A client frame: `first` (FIN, RSV bits, opcode), masked unless `unmasked`.
fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if unmasked { 0 } else { 0x80 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [1u8, 2, 3, 4];
    if !unmasked {
        out.extend_from_slice(&key);
    }
    out.extend(payload.iter().enumerate().map(|(i, b)| if unmasked { *b } else { b ^ key[i % 4] }));
    out
}

/// The code of the server's close frame (frames before it are skipped); `None` if it closed the
/// connection without one.
fn close_code_from(stream: &mut TcpStream) -> Option<u16> {
    let bytes = read_all(stream);
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let opcode = bytes[at] & 0x0F;
        let (len, header) = match bytes[at + 1] & 0x7F {
            126 => (u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize, 4),
            127 => (u64::from_be_bytes(bytes[at + 2..at + 10].try_into().ok()?) as usize, 10),
            n => (n as usize, 2),
        };
        let payload = bytes.get(at + header..at + header + len)?;
        if opcode == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
        at += header + len;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_protocol_errors_close_with_rfc_6455_codes() {
    let b = Backend::new(BackendKind::Embedded).await;
    let addr = b.serve();
    let user = b.register("frames01").await;
    // Sanity: a well-formed client still works.
    let (mut fine, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={}", user.token)).await.expect("connect");
    fine.send(Message::Text(r#"{"type":"ping"}"#.into())).await.expect("ping");
    assert!(fine.next().await.is_some());
    // A close the client starts gets the server's close reply (echoing 1000), not a dropped
    // connection.
    let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
    fine.send(Message::Close(Some(normal))).await.expect("close");
    let mut reply = None;
    while let Some(Ok(frame)) = fine.next().await {
        if let Message::Close(close) = frame {
            reply = Some(close.map_or(1005, |c| u16::from(c.code)));
            break;
        }
    }
    assert_eq!(reply, Some(1000), "the close handshake completes");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", frame(0x81, b"hello", true), 1002),
        ("invalid UTF-8", frame(0x81, &[0xC3, 0x28, 0xFF], false), 1007),
        ("reserved opcode", frame(0x83, b"x", false), 1002),
        ("reserved bits", frame(0xC1, b"x", false), 1002),
        ("oversized control frame", frame(0x89, &[0u8; 126], false), 1002),
        ("frame over the limit", frame(0x82, &vec![7u8; 40 * 1024], false), 1009),
    ];
    let token = user.token.clone();
    let websocket_idle = test_limits().websocket_idle;
    tokio::task::spawn_blocking(move || {
        // A socket on which nothing moves after its welcome frames is closed after the idle timeout.
        let mut quiet = raw_websocket(&addr, &token);
        let start = Instant::now();
        read_all(&mut quiet);
        assert!(start.elapsed() < websocket_idle + Duration::from_secs(3), "{:?}", start.elapsed());
        for (what, bad, code) in cases {
            let mut stream = raw_websocket(&addr, &token);
            stream.write_all(&bad).expect("frame");
            assert_eq!(close_code_from(&mut stream), Some(code), "{what}");
        }
    })
    .await
    .expect("checks");
}
