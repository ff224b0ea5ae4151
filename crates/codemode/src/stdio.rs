//! The stdio transport, with framing that always answers.
//!
//! rmcp's own stdio transport drops some bad lines without a word (a line
//! over its limit) and answers others without the request's `id` (a
//! `tools/call` whose `params` is a string), so the client waits forever. Here
//! every line read from stdin is bounded and [`screen`]ed first: a good
//! message goes to rmcp already decoded, a bad one is answered at once with a
//! JSON-RPC error that carries the request's `id` whenever it can be
//! recovered. rmcp's responses and ours go through one writer that only ever
//! appends whole lines, so they never interleave.

use std::sync::Arc;

use rmcp::model::{ClientRequest, JsonRpcMessage};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// Longest message line read from stdin (the `\n` included).
pub(crate) const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

/// The requests rmcp decodes into typed client requests (`ClientRequest`).
/// One of these that fails to decode would otherwise fall through to
/// "method not found" or an error without an `id`.
const KNOWN_REQUESTS: [&str; 21] = [
    "initialize",
    "ping",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "resources/directory/read",
    "subscriptions/listen",
    "tools/call",
    "tools/list",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "skills/list",
    "skills/get",
];

/// What to do with one line from stdin.
#[derive(Debug)]
pub(crate) enum Screened {
    /// A well-formed message, for rmcp.
    Pass(Box<RxJsonRpcMessage<RoleServer>>),
    /// A bad message: this JSON-RPC error response (no trailing newline) goes back.
    Answer(String),
    /// Nothing to answer (an empty line, a malformed notification or response): why.
    Ignore(String),
}

/// Decides what to do with one line (with or without its `\n`).
pub(crate) fn screen(line: &[u8]) -> Screened {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Screened::Ignore("empty line".into());
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            let id = scan_id(line);
            let why = match std::str::from_utf8(line) {
                Err(u) => format!(
                    "the message is not valid UTF-8 (bad byte at offset {}): send JSON text encoded as UTF-8",
                    u.valid_up_to()
                ),
                Ok(_) if e.to_string().starts_with("recursion limit exceeded") => {
                    format!("the message nests arrays/objects more than 128 deep ({e}): send a flatter message")
                }
                Ok(_) => format!("the message is not valid JSON ({e}): send one JSON-RPC message per line"),
            };
            return answer(id.as_ref(), PARSE_ERROR, &why);
        }
    };
    let mut map = match value {
        Value::Object(map) => map,
        Value::Array(a) if a.is_empty() => {
            return answer(
                None,
                INVALID_REQUEST,
                "the message is an empty batch (`[]`): send one JSON-RPC object per line",
            )
        }
        Value::Array(_) => return answer(
            None,
            INVALID_REQUEST,
            "the message is a JSON-RPC batch (an array); MCP does not take batches: send one JSON-RPC object per line",
        ),
        other => {
            return answer(
                None,
                INVALID_REQUEST,
                &format!("the message is a JSON {}, not an object: send one JSON-RPC object per line", kind(&other)),
            )
        }
    };
    // The id, when it is one a response can carry.
    let id = match map.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id.clone()),
        Some(id @ Value::Number(n)) if n.is_i64() => Some(id.clone()),
        Some(other) => {
            return answer(
                None,
                INVALID_REQUEST,
                &format!("`id` is {}; it must be a string or an integer between -2^63 and 2^63-1", describe(other)),
            )
        }
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        let got = map.get("jsonrpc").map(describe).unwrap_or_else(|| "missing".into());
        return answer(id.as_ref(), INVALID_REQUEST, &format!("`jsonrpc` is {got}; it must be the string \"2.0\""));
    }
    let has_result = map.contains_key("result") || map.contains_key("error");
    let method = match map.get("method") {
        None if has_result => None,
        None => {
            return answer(
                id.as_ref(),
                INVALID_REQUEST,
                "the message has no `method` (a request or notification) and no `result` or `error` (a response)",
            )
        }
        Some(Value::String(m)) if !has_result => Some(m.clone()),
        Some(Value::String(_)) => {
            return answer(
                id.as_ref(),
                INVALID_REQUEST,
                "the message has both `method` and `result`/`error`: send a request or a response, not both",
            )
        }
        Some(other) => {
            return answer(
                id.as_ref(),
                INVALID_REQUEST,
                &format!("`method` is {}; it must be a string", describe(other)),
            )
        }
    };
    let Some(method) = method else {
        // A response to one of our requests: never answered.
        return match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(Value::Object(map)) {
            Ok(m) => Screened::Pass(Box::new(m)),
            Err(e) => Screened::Ignore(format!("malformed response from the client: {e}")),
        };
    };
    let known = KNOWN_REQUESTS.contains(&method.as_str());
    match (map.get("params"), &id) {
        (None, _) | (Some(Value::Object(_)), _) => {}
        (Some(Value::Array(_)), Some(_)) if known => {
            return answer(
                id.as_ref(),
                INVALID_PARAMS,
                &format!("`params` of `{method}` is an array; MCP takes named parameters: send an object"),
            )
        }
        (Some(Value::Array(_)), _) => {}
        (Some(Value::Null), _) => {
            // `"params": null` is what some clients send for "none".
            map.remove("params");
        }
        (Some(other), _) => {
            return answer(
                id.as_ref(),
                INVALID_REQUEST,
                &format!("`params` of `{method}` is {}; it must be an object (or left out)", describe(other)),
            )
        }
    }
    let Some(id) = id else {
        // A notification: JSON-RPC never answers one.
        return match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(Value::Object(map)) {
            Ok(m) => Screened::Pass(Box::new(m)),
            Err(e) => Screened::Ignore(format!("malformed notification `{method}`: {e}")),
        };
    };
    match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(Value::Object(map)) {
        Ok(JsonRpcMessage::Request(r)) if known && matches!(r.request, ClientRequest::CustomRequest(_)) => {
            // rmcp fell back to a custom request: the params do not fit the method.
            answer(Some(&id), INVALID_PARAMS, &params_problem(&method, line))
        }
        Ok(m) => Screened::Pass(Box::new(m)),
        Err(_) if known => answer(Some(&id), INVALID_PARAMS, &params_problem(&method, line)),
        Err(e) => answer(Some(&id), INVALID_REQUEST, &format!("the request does not fit JSON-RPC: {e}")),
    }
}

/// Why the `params` of `line` do not fit a known method, as precisely as serde
/// can say (only on this error path is the line parsed a second time).
fn params_problem(method: &str, line: &[u8]) -> String {
    fn why<T: serde::de::DeserializeOwned>(v: Value) -> Option<String> {
        serde_json::from_value::<T>(v).err().map(|e| e.to_string())
    }
    use rmcp::model as m;
    let params = serde_json::from_slice::<Value>(line).ok().and_then(|mut v| v.get_mut("params").map(Value::take));
    let mut v = json!({"method": method});
    if let Some(p) = params.filter(|p| !p.is_null()) {
        v["params"] = p;
    }
    let reason = match method {
        "tools/call" => why::<m::CallToolRequest>(v),
        "initialize" => why::<m::InitializeRequest>(v),
        "tools/list" => why::<m::ListToolsRequest>(v),
        "ping" => why::<m::PingRequest>(v),
        _ => None,
    };
    let hint = match method {
        "tools/call" => "; send {\"name\": \"search\", \"arguments\": {\"code\": \"async () => ...\"}}",
        _ => "",
    };
    match reason {
        Some(r) => format!("`params` of `{method}` do not fit MCP: {r}{hint}"),
        None => format!("`params` of `{method}` do not fit MCP{hint}"),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `a string ("x")`, `a number (1.5)`…, shortened.
fn describe(v: &Value) -> String {
    let mut text = v.to_string();
    if text.len() > 40 {
        let cut = (0..=37).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    match v {
        Value::Null => "null".into(),
        Value::Array(_) | Value::Object(_) => format!("an {} ({text})", kind(v)),
        _ => format!("a {} ({text})", kind(v)),
    }
}

fn answer(id: Option<&Value>, code: i64, message: &str) -> Screened {
    Screened::Answer(error_line(id, code, message, None))
}

fn error_line(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> String {
    let mut error = json!({"code": code, "message": message});
    if let Some(d) = data {
        error["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": error}).to_string()
}

/// The answer to a line over `limit` bytes.
fn too_long(id: Option<&Value>, limit: usize) -> String {
    error_line(
        id,
        INVALID_REQUEST,
        &format!(
            "the message line is longer than the stdio limit of {limit} bytes ({} MiB) and was discarded: send a smaller message (shorter `code`)",
            limit / (1024 * 1024)
        ),
        Some(json!({"max_line_bytes": limit})),
    )
}

/// The top-level `id` of a message that does not parse (truncated, too long,
/// not UTF-8), found by a constant-memory scan fed chunk by chunk.
#[derive(Default)]
struct IdScan {
    started: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, between `{`/`,` and `:`.
    expecting_key: bool,
    key: Vec<u8>,
    capturing: bool,
    value: Vec<u8>,
    done: bool,
    found: Option<Value>,
}

impl IdScan {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.done {
                return;
            }
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if !self.started {
            match b {
                b'{' => {
                    self.started = true;
                    self.depth = 1;
                    self.expecting_key = true;
                }
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ => self.done = true,
            }
            return;
        }
        if self.capturing {
            if self.value.len() >= 256 {
                self.done = true;
                return;
            }
            if !(self.depth == 1 && !self.in_string && matches!(b, b',' | b'}')) {
                self.value.push(b);
            }
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            } else if self.depth == 1 && self.expecting_key && self.key.len() < 8 {
                self.key.push(b);
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expecting_key {
                    self.key.clear();
                }
            }
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                if self.depth == 1 {
                    self.finish_value();
                    self.done = true;
                }
                self.depth = self.depth.saturating_sub(1);
            }
            b':' if self.depth == 1 && self.expecting_key => {
                self.expecting_key = false;
                self.capturing = self.key == b"id";
            }
            b',' if self.depth == 1 => {
                self.finish_value();
                self.expecting_key = true;
            }
            _ => {}
        }
    }

    fn finish_value(&mut self) {
        if !self.capturing {
            return;
        }
        self.capturing = false;
        self.done = true;
        if let Ok(v) = serde_json::from_slice::<Value>(&self.value) {
            if v.is_string() || v.is_i64() {
                self.found = Some(v);
            }
        }
    }
}

fn scan_id(line: &[u8]) -> Option<Value> {
    let mut scan = IdScan::default();
    scan.feed(line);
    scan.found
}

/// Whole lines out, in order: a line is appended to `pending` in one step
/// and `pending` is drained front to back, so a write cut short by
/// cancellation is finished by the next writer instead of being interleaved.
struct Out<W> {
    writer: W,
    pending: Vec<u8>,
    written: usize,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    async fn drain(&mut self) -> std::io::Result<()> {
        while self.written < self.pending.len() {
            let n = self.writer.write(&self.pending[self.written..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        if self.pending.capacity() > 1024 * 1024 {
            self.pending.shrink_to(64 * 1024);
        }
        self.writer.flush().await
    }
}

/// The rmcp transport over a byte reader and writer (stdin and stdout).
pub(crate) struct Framed<R, W> {
    reader: BufReader<R>,
    line: Vec<u8>,
    max_line: usize,
    /// Inside a line already over the limit, until its `\n`.
    discarding: Option<IdScan>,
    /// Answers to bad lines not yet handed to `out`.
    answers: Vec<String>,
    out: Arc<Mutex<Out<W>>>,
    eof: bool,
}

/// stdin and stdout, framed.
pub(crate) fn transport() -> Framed<tokio::io::Stdin, tokio::io::Stdout> {
    Framed::new(tokio::io::stdin(), tokio::io::stdout(), MAX_LINE_BYTES)
}

enum Read {
    Line,
    TooLong(Option<Value>),
    Eof,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Framed<R, W> {
    pub(crate) fn new(reader: R, writer: W, max_line: usize) -> Self {
        Framed {
            reader: BufReader::with_capacity(64 * 1024, reader),
            line: Vec::new(),
            max_line,
            discarding: None,
            answers: Vec::new(),
            out: Arc::new(Mutex::new(Out { writer, pending: Vec::new(), written: 0 })),
            eof: false,
        }
    }

    /// One line into `self.line`, never more than `max_line` bytes of it.
    /// Cancel-safe: every state change happens between awaits.
    async fn read_line(&mut self) -> std::io::Result<Read> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                if let Some(scan) = self.discarding.take() {
                    return Ok(Read::TooLong(scan.found));
                }
                return Ok(Read::Eof);
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let chunk = &available[..take];
            let mut result = None;
            if let Some(scan) = &mut self.discarding {
                scan.feed(chunk);
                if newline.is_some() {
                    result = Some(Read::TooLong(self.discarding.take().and_then(|s| s.found)));
                }
            } else if self.line.len() + take > self.max_line {
                let mut scan = IdScan::default();
                scan.feed(&self.line);
                scan.feed(chunk);
                self.line = Vec::new();
                if newline.is_some() {
                    result = Some(Read::TooLong(scan.found));
                } else {
                    self.discarding = Some(scan);
                }
            } else {
                self.line.extend_from_slice(chunk);
                if newline.is_some() {
                    result = Some(Read::Line);
                }
            }
            self.reader.consume(take);
            if let Some(r) = result {
                return Ok(r);
            }
        }
    }

    /// Hands queued answers to the writer and writes them out.
    async fn flush_answers(&mut self) -> std::io::Result<()> {
        let mut out = self.out.lock().await;
        for a in self.answers.drain(..) {
            out.pending.extend_from_slice(a.as_bytes());
            out.pending.push(b'\n');
        }
        out.drain().await
    }

    fn take_line(&mut self) -> Vec<u8> {
        let line = std::mem::take(&mut self.line);
        if line.capacity() <= 1024 * 1024 {
            self.line = Vec::with_capacity(line.capacity());
        }
        line
    }
}

impl<R, W> Transport<RoleServer> for Framed<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let line = serde_json::to_vec(&item).map_err(std::io::Error::other);
        let out = self.out.clone();
        async move {
            let mut line = line?;
            line.push(b'\n');
            let mut out = out.lock().await;
            out.pending.extend_from_slice(&line);
            out.drain().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if !self.answers.is_empty() {
                if let Err(e) = self.flush_answers().await {
                    tracing::error!("stdout: cannot write an error response: {e}");
                    return None;
                }
            }
            if self.eof {
                return None;
            }
            let line = match self.read_line().await {
                Ok(Read::Line) => self.take_line(),
                Ok(Read::TooLong(id)) => {
                    tracing::warn!(
                        max_line_bytes = self.max_line,
                        "stdin: a message line over the limit was discarded"
                    );
                    self.answers.push(too_long(id.as_ref(), self.max_line));
                    continue;
                }
                Ok(Read::Eof) => {
                    // A last message without its `\n` still counts.
                    self.eof = true;
                    self.take_line()
                }
                Err(e) => {
                    tracing::error!("stdin: {e}");
                    return None;
                }
            };
            if self.eof && line.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            match screen(&line) {
                Screened::Pass(m) => return Some(*m),
                Screened::Answer(a) => {
                    tracing::warn!("stdin: answered a bad message: {a}");
                    self.answers.push(a);
                }
                Screened::Ignore(why) => tracing::debug!("stdin: ignored: {why}"),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        if !self.answers.is_empty() {
            self.flush_answers().await?;
        }
        self.out.lock().await.drain().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(line: &str) -> Value {
        match screen(line.as_bytes()) {
            Screened::Answer(a) => serde_json::from_str(&a).unwrap(),
            other => panic!("{line}: expected an answer, got {other:?}"),
        }
    }

    fn code_and_id(line: &str) -> (i64, Value) {
        let a = answered(line);
        assert_eq!(a["jsonrpc"], "2.0");
        assert!(a["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{a}");
        (a["error"]["code"].as_i64().unwrap(), a["id"].clone())
    }

    #[test]
    fn good_messages_pass() {
        for line in [
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":null}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"code":"async () => 1"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}\r\n",
            r#"{"jsonrpc":"2.0","id":6,"method":"no/such/method"}"#,
            r#"{"jsonrpc":"2.0","id":7,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":8,"error":{"code":-1,"message":"x"}}"#,
        ] {
            assert!(matches!(screen(line.as_bytes()), Screened::Pass(_)), "{line}");
        }
    }

    #[test]
    fn bad_envelopes_are_answered_with_the_id_when_there_is_one() {
        assert_eq!(code_and_id("{not json"), (PARSE_ERROR, Value::Null));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"#), (PARSE_ERROR, json!(9)));
        assert_eq!(code_and_id("[]"), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id("5"), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id("\"x\""), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id("null"), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id(r#"{"id":1,"method":"ping"}"#), (INVALID_REQUEST, json!(1)));
        assert_eq!(code_and_id(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#), (INVALID_REQUEST, json!(1)));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#), (INVALID_REQUEST, Value::Null));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":1,"method":5}"#), (INVALID_REQUEST, json!(1)));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":1}"#), (INVALID_REQUEST, json!(1)));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}"#), (INVALID_REQUEST, json!(1)));
        assert_eq!(code_and_id(r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#), (INVALID_REQUEST, Value::Null));
        let a = answered(r#"{"jsonrpc":"2.0","id":1,"method":"ping"#);
        assert!(a["error"]["message"].as_str().unwrap().contains("not valid JSON"), "{a}");
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(answered(&deep)["error"]["message"].as_str().unwrap().contains("128 deep"));
    }

    #[test]
    fn not_utf8_is_a_parse_error_naming_the_byte() {
        let line = b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"x\":\"\xff\"}";
        let Screened::Answer(a) = screen(line) else { panic!() };
        let a: Value = serde_json::from_str(&a).unwrap();
        assert_eq!((a["error"]["code"].as_i64(), &a["id"]), (Some(PARSE_ERROR), &json!(3)));
        assert!(a["error"]["message"].as_str().unwrap().contains("UTF-8"), "{a}");
    }

    #[test]
    fn params_that_do_not_fit_are_invalid_params_with_the_id() {
        // Not structured at all: not a valid request object.
        assert_eq!(
            code_and_id(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#),
            (INVALID_REQUEST, json!(1))
        );
        assert_eq!(
            code_and_id(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":5}"#),
            (INVALID_REQUEST, json!(2))
        );
        for (line, id) in [
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}"#, json!(1)),
            (r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":3}}"#, json!(2)),
            (
                r#"{"jsonrpc":"2.0","id":"t","method":"tools/call","params":{"name":"search","arguments":5}}"#,
                json!("t"),
            ),
            (r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search","_meta":5}}"#, json!(4)),
            (r#"{"jsonrpc":"2.0","id":5,"method":"tools/call"}"#, json!(5)),
            (r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{}}"#, json!(6)),
            (r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}"#, json!(7)),
        ] {
            assert_eq!(code_and_id(line), (INVALID_PARAMS, id), "{line}");
        }
        let a = answered(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":3}}"#);
        assert!(a["error"]["message"].as_str().unwrap().contains("invalid type"), "{a}");
    }

    #[test]
    fn nothing_is_answered_for_empty_lines_notifications_or_responses() {
        for line in [
            "",
            "\n",
            "\r\n",
            "   \t",
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{}}"#,
        ] {
            assert!(!matches!(screen(line.as_bytes()), Screened::Answer(_)), "{line:?}");
        }
    }

    #[test]
    fn the_id_scan_finds_top_level_ids_only() {
        assert_eq!(scan_id(br#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"#), Some(json!(12)));
        assert_eq!(scan_id(br#"{"params":{"id":1,"x":"}\","},"id":"a\"b"}"#), Some(json!("a\"b")));
        assert_eq!(scan_id(br#" { "id" : -3 }"#), Some(json!(-3)));
        assert_eq!(scan_id(br#"{"id":1.5}"#), None);
        assert_eq!(scan_id(br#"{"id":{"a":1}}"#), None);
        assert_eq!(scan_id(br#"{"method":"x","params":{"#), None);
        assert_eq!(scan_id(br#"[{"id":1}]"#), None);
    }

    #[test]
    fn screening_never_panics_on_prefixes_and_mangled_bytes() {
        let good = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"code":"async () => \"\\u00e9\""}}}"#;
        for cut in 0..=good.len() {
            let _ = screen(&good[..cut]);
        }
        let mut seed = 7u64;
        for _ in 0..2000 {
            let mut line = good.to_vec();
            for _ in 0..3 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % line.len();
                line[i] = (seed >> 20) as u8;
            }
            if let Screened::Answer(a) = screen(&line) {
                let v: Value = serde_json::from_str(&a).expect("answers are JSON");
                assert!(v["error"]["code"].is_i64());
            }
        }
    }

    async fn exchange(input: Vec<u8>, max_line: usize) -> (Vec<Value>, Vec<String>) {
        let (out_w, mut out_r) = tokio::io::duplex(1 << 16);
        let mut framed = Framed::new(std::io::Cursor::new(input), out_w, max_line);
        let mut passed = Vec::new();
        while let Some(m) = framed.receive().await {
            passed.push(serde_json::to_value(&m).unwrap()["method"].as_str().unwrap_or("").to_string());
        }
        framed.close().await.unwrap();
        drop(framed);
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut out_r, &mut text).await.unwrap();
        (text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), passed)
    }

    #[tokio::test]
    async fn long_lines_are_cut_at_the_limit_and_answered_with_their_id() {
        let long =
            format!(r#"{{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{{"x":"{}"}}}}"#, "a".repeat(5000));
        let tail_id =
            format!(r#"{{"jsonrpc":"2.0","method":"tools/call","params":{{"x":"{}"}},"id":"end"}}"#, "a".repeat(5000));
        let unterminated = format!(r#"{{"jsonrpc":"2.0","id":43,"x":"{}"#, "b".repeat(5000));
        let input =
            format!("{long}\n{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}}\n{tail_id}\n\n{unterminated}")
                .into_bytes();
        let (answers, passed) = exchange(input, 1024).await;
        assert_eq!(passed, ["ping"]);
        let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
        assert_eq!(ids, [&json!(41), &json!("end"), &json!(43)]);
        for a in &answers {
            assert_eq!(a["error"]["code"], INVALID_REQUEST);
            assert_eq!(a["error"]["data"]["max_line_bytes"], 1024);
            assert!(a["error"]["message"].as_str().unwrap().contains("1024 bytes"), "{a}");
        }
    }

    #[tokio::test]
    async fn a_last_line_without_newline_is_still_read() {
        let (answers, passed) =
            exchange(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n{bad".to_vec(), 1024).await;
        assert_eq!(passed, ["ping"]);
        assert_eq!(answers.len(), 1);
        assert_eq!(answers[0]["error"]["code"], PARSE_ERROR);
    }
}
