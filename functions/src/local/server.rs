//! chat-local's HTTP server, with the limits API Gateway puts in front of the real functions, so
//! a laptop server cannot be exhausted by a client that connects and waits, drips bytes, declares
//! a huge body or never reads: a cap on open connections, deadlines for a request's headers (so
//! also for an idle kept-alive connection) and body, idle timeouts (stalled HTTP connections;
//! WebSockets like API Gateway's 10 minutes), bounded request heads. Every answer is an `{msg, data}` envelope, including the ones hyper
//! writes itself when it cannot parse a request (400, 414, 431).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The server's limits; [`Limits::default`] is what chat-local runs with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections (HTTP and WebSocket); one more is answered 503 and closed.
    pub max_connections: usize,
    /// A request's headers must arrive within this, counted from the connection's start or, on a
    /// kept-alive connection, from the previous answer: an idle connection closes after it.
    pub header_timeout: Duration,
    /// A request's body must arrive within this (else 408).
    pub body_timeout: Duration,
    /// An HTTP connection on which nothing moves for this long (a response its client does not
    /// read, a handler that never answers) is closed.
    pub http_idle: Duration,
    /// A WebSocket with no frame either way for this long is closed (API Gateway: 10 minutes).
    pub websocket_idle: Duration,
    /// Bytes of a request's head (request line and headers); more → 431.
    pub max_head_bytes: usize,
    /// Header lines of a request; more → 431.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            http_idle: Duration::from_secs(60),
            websocket_idle: Duration::from_secs(600),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` completes.
pub async fn serve(listener: TcpListener, app: axum::Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let (app, limits) = (app.clone(), limits.clone());
        tokio::spawn(async move { serve_connection(stream, slot, peer, app, &limits).await });
    }
}

async fn serve_connection(
    stream: TcpStream,
    slot: OwnedSemaphorePermit,
    peer: SocketAddr,
    app: axum::Router,
    limits: &Limits,
) {
    let _ = stream.set_nodelay(true);
    // The slot goes with the socket: an upgraded WebSocket keeps it until it closes.
    let io = TokioIo::new(Guarded::new(stream, slot, limits.http_idle, limits.websocket_idle));
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_headers(limits.max_headers);
    let _ = builder.serve_connection(io, service).with_upgrades().await;
}

/// Over the connection cap: one 503 envelope, then close (after taking what the client sent in
/// the meantime, so the close does not reset the connection before the answer is read).
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"msg":"fail","data":"Service Unavailable"}"#;
    let response = envelope_response(503, "Service Unavailable", body);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut request = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut request)).await;
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn envelope_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\n\
         access-control-allow-origin: *\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What hyper answers by itself when a request cannot be parsed: a bare 400, 414 or 431 head
/// (only `connection: close`, `content-length: 0` and `date`; no body). Our own handlers never answer these statuses
/// without a body, so such a write can only be hyper's; it is sent as the same status with an
/// envelope instead. Anything else (a body, other headers, more than one head) is left alone.
fn envelope_for_parser_error(write: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(write).ok()?;
    let head = text.strip_suffix("\r\n\r\n").filter(|head| !head.contains("\r\n\r\n"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let bare = lines.all(|line| {
        let line = line.to_ascii_lowercase();
        line == "content-length: 0" || line == "connection: close" || line.starts_with("date: ")
    });
    if !bare {
        return None;
    }
    let version_stripped = status_line.strip_prefix("HTTP/1.1 ").or_else(|| status_line.strip_prefix("HTTP/1.0 "))?;
    let (status, reason) = match version_stripped {
        line if line.starts_with("400") => (400, "Bad Request"),
        line if line.starts_with("414") => (414, "URI Too Long"),
        line if line.starts_with("431") => (431, "Request Header Fields Too Large"),
        _ => return None,
    };
    Some(envelope_response(status, reason, &format!(r#"{{"msg":"fail","data":"{reason}"}}"#)))
}

/// The connection's socket with an idle deadline (reset by every byte read or written; the
/// longer WebSocket one once the connection was upgraded), and hyper's parser-error responses
/// turned into envelopes.
struct Guarded {
    stream: TcpStream,
    /// The connection's place under the cap, held as long as the socket lives.
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    websocket_idle: Duration,
    upgraded: bool,
    deadline: Pin<Box<Sleep>>,
    /// Bytes of a replaced response still to write.
    pending: Vec<u8>,
}

impl Guarded {
    fn new(stream: TcpStream, slot: OwnedSemaphorePermit, idle: Duration, websocket_idle: Duration) -> Self {
        Guarded {
            stream,
            _slot: slot,
            idle,
            websocket_idle,
            upgraded: false,
            deadline: Box::pin(tokio::time::sleep(idle)),
            pending: Vec::new(),
        }
    }

    fn touch(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }

    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.deadline.as_mut().poll(cx).is_ready()
    }

    fn flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                    self.touch();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if self.idle_expired(cx) => return Poll::Ready(Err(timed_out())),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Guarded {
    fn write_through(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                self.touch();
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "idle connection closed")
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.flush_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        if self.upgraded {
            return self.write_through(cx, buf);
        }
        if buf.starts_with(b"HTTP/1.1 101 ") {
            // Upgraded to a WebSocket: from now on its own idle timeout applies, and its frames
            // are never mistaken for HTTP heads.
            self.upgraded = true;
            self.idle = self.websocket_idle;
        }
        if let Some(replacement) = buf.starts_with(b"HTTP/1.").then(|| envelope_for_parser_error(buf)).flatten() {
            self.pending = replacement;
            self.touch();
            let _ = self.flush_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        self.write_through(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.flush_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.flush_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_parser_errors_become_envelopes() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let replaced = String::from_utf8(envelope_for_parser_error(hyper_431).expect("replaced")).expect("utf8");
        assert!(replaced.starts_with("HTTP/1.1 431 "), "{replaced}");
        assert!(replaced.ends_with(r#"{"msg":"fail","data":"Request Header Fields Too Large"}"#), "{replaced}");
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 42\r\n\r\n";
        assert!(envelope_for_parser_error(ours).is_none(), "a handler's 400 keeps its envelope");
        let empty_with_body_after = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert!(envelope_for_parser_error(empty_with_body_after).is_none(), "two responses in one write");
        let cors = b"HTTP/1.1 400 Bad Request\r\naccess-control-allow-origin: *\r\ncontent-length: 0\r\n\r\n";
        assert!(envelope_for_parser_error(cors).is_none(), "only hyper's bare head");
        assert!(envelope_for_parser_error(b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some());
        assert!(envelope_for_parser_error(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
