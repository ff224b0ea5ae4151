//! The JSON-RPC surface over stdio: `screen`, the framing's pure decision
//! for one line (compiled from crates/codemode/src/stdio.rs itself), the
//! whole framed transport over an in-memory stream, and rmcp's own
//! `ClientJsonRpcMessage` decoding.
//!
//! Invariants checked: every answer is one line of JSON-RPC error response
//! with a code of -32700/-32600/-32602 and an id that is null, a string or
//! an i64; a request (an object with a string `method`, an `id` and no
//! `result`/`error`) is never ignored, and its answer (or the message passed
//! on) carries its id; a line is only ignored when it is blank, a
//! notification or a response. The framed transport, fed the bytes in
//! chunks of any size with a small line limit, writes exactly one answer per
//! bad or over-long line, in order, and passes every good message on.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/codemode/src/stdio.rs"]
mod stdio;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libfuzzer_sys::fuzz_target;
use rmcp::transport::Transport;
use serde_json::Value;
use stdio::{screen, Framed, Screened};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, stream)) = data.split_first() else { return };
    for line in stream.split_inclusive(|b| *b == b'\n') {
        check_screen(line);
    }
    framed(knob, stream);
    if let Ok(m) = serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(stream) {
        let text = serde_json::to_string(&m).expect("a decoded message encodes");
        let _ = serde_json::from_str::<rmcp::model::ClientJsonRpcMessage>(&text);
    }
});

/// The line with `screen`'s own trimming.
fn trimmed(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

fn check_screen(line: &[u8]) -> Option<String> {
    let parsed: Option<serde_json::Map<String, Value>> = match serde_json::from_slice(trimmed(line)) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let valid_id = parsed.as_ref().and_then(|m| m.get("id")).filter(|id| id.is_string() || id.is_i64()).cloned();
    let is_request = parsed.as_ref().is_some_and(|m| {
        m.get("method").is_some_and(Value::is_string)
            && m.contains_key("id")
            && !m.contains_key("result")
            && !m.contains_key("error")
    });
    match screen(line) {
        Screened::Answer(a) => {
            let v = check_answer(&a);
            if let Some(id) = &valid_id {
                assert_eq!(&v["id"], id, "answer to {:?} lost its id: {a}", String::from_utf8_lossy(line));
            }
            Some(a)
        }
        Screened::Pass(m) => {
            let v = serde_json::to_value(&*m).expect("a passed message encodes");
            if is_request {
                assert_eq!(v.get("id"), valid_id.as_ref(), "passed request changed its id");
            }
            None
        }
        Screened::Ignore(why) => {
            let blank = trimmed(line).iter().all(u8::is_ascii_whitespace);
            assert!(!is_request, "request ignored ({why}): {:?}", String::from_utf8_lossy(line));
            assert!(
                blank
                    || parsed.as_ref().is_some_and(|m| {
                        !m.contains_key("id") || m.contains_key("result") || m.contains_key("error")
                    }),
                "ignored a line that is not blank, a notification or a response ({why}): {:?}",
                String::from_utf8_lossy(line)
            );
            None
        }
    }
}

/// One JSON-RPC error response line; returns it parsed.
fn check_answer(a: &str) -> Value {
    assert!(!a.contains('\n'), "answer spans lines: {a:?}");
    let v: Value = serde_json::from_str(a).expect("an answer is JSON");
    assert_eq!(v["jsonrpc"], "2.0", "{a}");
    let id = &v["id"];
    assert!(id.is_null() || id.is_string() || id.is_i64(), "answer id {id}");
    let code = v["error"]["code"].as_i64().expect("error code");
    assert!([-32700, -32600, -32602].contains(&code), "{a}");
    assert!(v["error"]["message"].is_string(), "{a}");
    v
}

/// Runs the framed transport over `stream` and checks its answers.
fn framed(knob: u8, stream: &[u8]) {
    let max_line = [40, 100, 300, 1 << 20][usize::from(knob & 3)];
    let step = 1 + usize::from(knob >> 2) * 5;
    // What read_line and receive should make of it.
    let mut expected: Vec<Option<String>> = Vec::new();
    let mut passes = 0;
    for line in stream.split_inclusive(|b| *b == b'\n') {
        if line.len() > max_line {
            expected.push(None);
        } else if !line.ends_with(b"\n") && line.iter().all(u8::is_ascii_whitespace) {
        } else {
            match screen(line) {
                Screened::Answer(a) => expected.push(Some(a)),
                Screened::Pass(_) => passes += 1,
                Screened::Ignore(_) => {}
            }
        }
    }

    let out = Arc::new(Mutex::new(Vec::new()));
    let reader = Chunked { data: stream.to_vec(), at: 0, step };
    let writer = Sink { out: out.clone(), step: step.max(3) };
    let mut t = Framed::new(reader, writer, max_line);
    let got = runtime().block_on(async {
        let mut got = 0;
        while let Some(m) = Transport::<rmcp::RoleServer>::receive(&mut t).await {
            let _ = m;
            got += 1;
        }
        Transport::<rmcp::RoleServer>::close(&mut t).await.expect("close");
        got
    });
    assert_eq!(got, passes, "messages passed on");
    let out = out.lock().unwrap();
    assert!(out.is_empty() || out.ends_with(b"\n"), "output ends mid-line");
    let lines: Vec<&[u8]> = if out.is_empty() { vec![] } else { out[..out.len() - 1].split(|b| *b == b'\n').collect() };
    assert_eq!(lines.len(), expected.len(), "one answer per bad line: {:?}", String::from_utf8_lossy(&out));
    for (line, want) in lines.iter().zip(&expected) {
        let text = std::str::from_utf8(line).expect("answers are UTF-8");
        let v = check_answer(text);
        match want {
            Some(want) => assert_eq!(text, want),
            None => assert_eq!(v["error"]["data"]["max_line_bytes"], max_line, "{text}"),
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("runtime"))
}

/// Hands out its bytes at most `step` at a time.
struct Chunked {
    data: Vec<u8>,
    at: usize,
    step: usize,
}

impl AsyncRead for Chunked {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = self.step.min(buf.remaining()).min(self.data.len() - self.at);
        let at = self.at;
        buf.put_slice(&self.data[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

/// Takes at most `step` bytes per write.
struct Sink {
    out: Arc<Mutex<Vec<u8>>>,
    step: usize,
}

impl AsyncWrite for Sink {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.step);
        self.out.lock().unwrap().extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
