//! The accept loop, in place of `axum::serve`, for the limits a public server needs and axum's
//! loop does not offer: a cap on open connections (excess ones get a JSON `503` at once, so the
//! descriptors left keep `/healthz` answering), a deadline for a request's head (a client that
//! sends half a request line, or sits on an idle keep-alive connection, is cut off: hyper's
//! timer runs whenever it waits for the next head), and JSON bodies for the errors hyper answers
//! itself (`431` for oversized headers, `400` for a malformed request), which are otherwise empty.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tandem_protocol::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of the connections themselves (the request-level ones live in `AppState`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

/// Serves `app` on `listener` until `shutdown` fires, then waits for open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, typically: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let (app, shutdown) = (app.clone(), shutdown.clone());
                connections.spawn(async move {
                    serve_connection(stream, peer, app, limits, shutdown).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(max = limits.max_connections, "connection limit reached");
                connections.spawn(refuse(stream));
            }
        }
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    // The peer goes into each request's extensions, where `ConnectInfo` extractors find it.
    let app = tower::util::MapRequest::new(app, move |mut request: axum::http::Request<_>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        // Whole writes, so a response head reaches `JsonErrors` in one piece.
        .writev(false);
    let connection = builder.serve_connection(TokioIo::new(JsonErrors::new(stream)), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        // Timeouts and clients that hang up: routine, and nothing of the request is in `e`.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Answers a connection over the limit and closes it. The request's head is read first (for a
/// moment, and a few KiB at most): clients take an answer that comes before their request for a
/// broken connection, not for an answer.
async fn refuse(mut stream: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let answer = canned(
        503,
        ErrorCode::ServerBusy,
        "too many open connections; try again shortly",
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&answer)).await;
    let _ = stream.shutdown().await;
}

/// A complete HTTP/1.1 error answer with the protocol's JSON body, closing the connection.
fn canned(status: u16, code: ErrorCode, description: &str) -> Vec<u8> {
    let body = serde_json::to_string(&tandem_protocol::ErrorBody {
        error: code,
        error_description: description.into(),
    })
    .expect("an error body always serializes");
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let retry = if status == 503 {
        "retry-after: 1\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {retry}connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The JSON answer for an error hyper writes itself: its error answers, unlike the app's, have
/// an empty body, so an error status with `content-length: 0` is one of them.
fn json_for_hyper_error(head: &[u8]) -> Option<Vec<u8>> {
    let status: u16 = std::str::from_utf8(head.get(9..12)?).ok()?.parse().ok()?;
    if !head.starts_with(b"HTTP/1.1 ") || status < 400 {
        return None;
    }
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if !text.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    Some(match status {
        431 => canned(
            431,
            ErrorCode::HeadersTooLarge,
            "the request's headers are too large",
        ),
        _ => canned(
            status,
            ErrorCode::InvalidRequest,
            "the HTTP request is malformed",
        ),
    })
}

/// A connection whose writes of hyper's own error answers are swapped for JSON ones.
struct JsonErrors {
    stream: TcpStream,
    /// A JSON answer being written, and how much of it is out, in place of hyper's.
    replacement: Option<(Vec<u8>, usize)>,
}

impl JsonErrors {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            replacement: None,
        }
    }
}

impl AsyncRead for JsonErrors {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for JsonErrors {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_none() {
            match json_for_hyper_error(buf) {
                Some(json) => this.replacement = Some((json, 0)),
                None => return Pin::new(&mut this.stream).poll_write(cx, buf),
            }
        }
        let (json, written) = this.replacement.as_mut().expect("set above");
        while *written < json.len() {
            *written += ready!(Pin::new(&mut this.stream).poll_write(cx, &json[*written..]))?;
        }
        // hyper closes the connection after its error answer; anything after it is dropped.
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_errors_become_json_and_app_answers_pass() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let json = String::from_utf8(json_for_hyper_error(hyper_431).unwrap()).unwrap();
        assert!(json.starts_with("HTTP/1.1 431 "));
        assert!(json.ends_with(r#"{"error":"headers_too_large","error_description":"the request's headers are too large"}"#));
        let app_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 70\r\n\r\n";
        assert!(json_for_hyper_error(app_400).is_none());
        let no_content = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
        assert!(json_for_hyper_error(no_content).is_none());
        assert!(json_for_hyper_error(b"{\"a\":1}").is_none());
    }
}
