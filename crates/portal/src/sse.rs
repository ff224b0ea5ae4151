//! The client side of the legacy HTTP+SSE transport (MCP 2024-11-05), for
//! upstream servers that predate Streamable HTTP ([`crate::Transport::Sse`]).
//!
//! `GET <url>` opens the stream; its first `endpoint` event names where to
//! POST messages (same origin only); every `message` event is one JSON-RPC
//! message from the server. rmcp has no client for this transport, so this
//! is one: [`SseClient`] is an rmcp [`Transport`] for the portal's client.

use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleClient;
use tokio::sync::mpsc;

/// Server messages read from the stream and not yet taken by the client.
const INBOUND: usize = 64;
/// Largest event the stream may send (a tool result's JSON, mostly); more
/// ends the connection rather than growing a buffer without bound.
const MAX_EVENT_BYTES: usize = 32 * 1024 * 1024;
/// Longest a POST of one message may take.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure of the SSE transport, with where it happened.
#[derive(Debug)]
pub struct SseError(String);

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SseError {}

/// A connected SSE session: its stream is read by a task of its own.
pub(crate) struct SseClient {
    http: reqwest::Client,
    endpoint: url::Url,
    inbound: mpsc::Receiver<ServerJsonRpcMessage>,
    reader: tokio::task::JoinHandle<()>,
}

impl SseClient {
    /// Opens the stream at `url` with `headers` (on the GET and on every
    /// POST) and waits for its `endpoint` event.
    pub async fn connect(url: &str, headers: HeaderMap) -> Result<SseClient, String> {
        let base = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            // A redirect could take the credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let response = http
            .get(base.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(format!("GET {url}: HTTP {status}: {body}"));
        }
        let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !content_type.starts_with("text/event-stream") {
            return Err(format!(
                "GET {url}: answered `{content_type}`, not an SSE stream (text/event-stream); is this a Streamable HTTP endpoint? then use transport http"
            ));
        }
        let (endpoint_tx, endpoint_rx) = tokio::sync::oneshot::channel();
        let (inbound_tx, inbound) = mpsc::channel(INBOUND);
        let reader = tokio::spawn(read(response, base.clone(), endpoint_tx, inbound_tx));
        let endpoint = match endpoint_rx.await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => return Err(format!("{url}: {e}")),
            Err(_) => return Err(format!("{url}: the stream ended before its `endpoint` event")),
        };
        Ok(SseClient { http, endpoint, inbound, reader })
    }
}

/// Reads the stream: the endpoint first, then messages, until it ends.
async fn read(
    mut response: reqwest::Response,
    base: url::Url,
    endpoint: tokio::sync::oneshot::Sender<Result<url::Url, String>>,
    inbound: mpsc::Sender<ServerJsonRpcMessage>,
) {
    let mut parser = Parser::default();
    let mut endpoint = Some(endpoint);
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("SSE stream of {base}: {e}");
                break;
            }
        };
        let events = match parser.feed(&chunk) {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!("SSE stream of {base}: {e}; closing it");
                break;
            }
        };
        for (name, data) in events {
            match name.as_str() {
                "endpoint" => {
                    let Some(tx) = endpoint.take() else { continue };
                    let _ = tx.send(same_origin(&base, &data));
                }
                "message" if !data.is_empty() => match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                    Ok(m) => {
                        if inbound.send(m).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("SSE stream of {base}: a message that is not JSON-RPC ({e}); skipped"),
                },
                _ => {}
            }
        }
    }
}

/// The endpoint, resolved against the stream's URL; it must stay on the
/// stream's origin, or the headers (credentials) would go elsewhere.
fn same_origin(base: &url::Url, data: &str) -> Result<url::Url, String> {
    let e = base.join(data.trim()).map_err(|e| format!("the `endpoint` event `{data}` is not a URL: {e}"))?;
    if e.origin() != base.origin() {
        return Err(format!(
            "the `endpoint` event points at another origin ({}), refused: messages go only where the stream came from",
            e.origin().ascii_serialization()
        ));
    }
    Ok(e)
}

impl Transport<RoleClient> for SseClient {
    type Error = SseError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl std::future::Future<Output = Result<(), SseError>> + Send + 'static {
        let (http, endpoint) = (self.http.clone(), self.endpoint.clone());
        async move {
            let r = http
                .post(endpoint.clone())
                .timeout(POST_TIMEOUT)
                .json(&item)
                .send()
                .await
                .map_err(|e| SseError(format!("POST {endpoint}: {e}")))?;
            let status = r.status();
            if status.is_success() {
                return Ok(());
            }
            let body: String = r.text().await.unwrap_or_default().chars().take(200).collect();
            Err(SseError(format!("POST {endpoint}: HTTP {status}: {body}")))
        }
    }

    fn receive(&mut self) -> impl std::future::Future<Output = Option<ServerJsonRpcMessage>> + Send {
        self.inbound.recv()
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        Ok(())
    }
}

impl Drop for SseClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Server-sent events (the WHATWG format) from chunks of bytes: lines end
/// in LF, CRLF or CR; `event:` names an event, `data:` lines add to it, a
/// blank line dispatches it, `:` lines are comments.
#[derive(Default)]
struct Parser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to it.
    after_cr: bool,
    name: String,
    data: String,
    /// Bytes of the event being read.
    size: usize,
}

impl Parser {
    /// The events these bytes complete, as (name, data); `message` when
    /// unnamed.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
        let mut out = vec![];
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&String::from_utf8_lossy(&line), &mut out);
                }
                _ => self.line.push(b),
            }
            self.size += 1;
            if self.size > MAX_EVENT_BYTES {
                return Err(format!("an event over {} MiB", MAX_EVENT_BYTES / (1024 * 1024)));
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &str, out: &mut Vec<(String, String)>) {
        if line.is_empty() {
            if !self.data.is_empty() || !self.name.is_empty() {
                let name = std::mem::take(&mut self.name);
                let name = if name.is_empty() { "message".to_string() } else { name };
                out.push((name, std::mem::take(&mut self.data)));
            }
            self.size = 0;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_string(),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks_and_line_endings() {
        let mut p = Parser::default();
        assert!(p.feed(b"event: endpoint\r").unwrap().is_empty());
        let e = p.feed(b"\ndata: /messages?sessionId=1\r\n\r\n: keep-alive\n\ndata: {\"a\"").unwrap();
        assert_eq!(e, vec![("endpoint".to_string(), "/messages?sessionId=1".to_string())]);
        let e = p.feed(b":1}\ndata:x\n\nevent: message\ndata: y\r\r").unwrap();
        let want: Vec<(String, String)> =
            vec![("message".into(), "{\"a\":1}\nx".into()), ("message".into(), "y".into())];
        assert_eq!(e, want);
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut p = Parser::default();
        let big = vec![b'x'; 1024 * 1024];
        assert!(p.feed(b"data: ").is_ok());
        let refused = (0..40).map(|_| p.feed(&big)).find(|r| r.is_err());
        assert!(refused.is_some());
    }

    #[test]
    fn the_endpoint_stays_on_the_origin() {
        let base = url::Url::parse("http://127.0.0.1:3001/sse").unwrap();
        assert_eq!(
            same_origin(&base, "/message?sessionId=a").unwrap().as_str(),
            "http://127.0.0.1:3001/message?sessionId=a"
        );
        assert!(same_origin(&base, "http://127.0.0.1:3001/m").is_ok());
        assert!(same_origin(&base, "http://evil.example/m").unwrap_err().contains("another origin"));
        assert!(same_origin(&base, "//evil.example/m").is_err());
        assert!(same_origin(&base, "https://127.0.0.1:3001/m").is_err());
    }
}
