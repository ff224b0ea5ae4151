//! Protocol abuse over stdio against the real binary: every bad line gets a
//! JSON-RPC error within 2 s, and the server keeps serving.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(2);

struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bookshelf.yaml");
        let mut child = Command::new(env!("CARGO_BIN_EXE_codemode"))
            .args(["serve", "--mock", "--spec"])
            .arg(spec)
            .env("CODEMODE_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the codemode binary starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Server { child, stdin, lines };
        s.send(
            br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"stdio-abuse","version":"1"}}}"#,
        );
        let init = s.next_within(Duration::from_secs(60)).expect("initialize answers");
        assert_eq!(init["id"], 0, "{init}");
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        s.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    /// Writes one line (the `\n` added).
    fn send(&mut self, line: &[u8]) {
        self.stdin.write_all(line).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    fn next_within(&self, wait: Duration) -> Option<Value> {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}")))
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed stdout"),
        }
    }

    /// The error answering the last line: its code and id.
    fn error(&self, what: &str) -> (i64, Value) {
        let Some(v) = self.next_within(WAIT) else { panic!("{what}: no answer within {WAIT:?}") };
        assert_eq!(v["jsonrpc"], "2.0", "{what}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_else(|| panic!("{what}: not an error: {v}"));
        assert!(!message.is_empty(), "{what}: {v}");
        (v["error"]["code"].as_i64().unwrap(), v["id"].clone())
    }

    /// A request that must still answer promptly, and the answer.
    fn ping(&mut self, id: u32) {
        self.send(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#).as_bytes());
        let v = self.next_within(WAIT).unwrap_or_else(|| panic!("ping {id}: no answer within {WAIT:?}"));
        assert_eq!(v["id"], id, "the next line after ping {id} is not its answer: {v}");
        assert!(v["result"].is_object(), "{v}");
    }
}

#[test]
fn every_bad_line_is_answered_and_the_server_keeps_serving() {
    let mut s = Server::start();
    let cases: &[(&str, &[u8], i64, Value)] = &[
        ("params is a string", br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#, -32600, json!(1)),
        ("name is a number", br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":3}}"#, -32602, json!(2)),
        (
            "arguments is a number",
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":5}}"#,
            -32602,
            json!(3),
        ),
        (
            "_meta is a number",
            br#"{"jsonrpc":"2.0","id":"m","method":"tools/call","params":{"name":"search","arguments":{"code":"1"},"_meta":5}}"#,
            -32602,
            json!("m"),
        ),
        ("params is an array", br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":[]}"#, -32602, json!(4)),
        ("no params", br#"{"jsonrpc":"2.0","id":5,"method":"tools/call"}"#, -32602, json!(5)),
        ("invalid JSON", b"{\"jsonrpc\":\"2.0\",", -32700, Value::Null),
        ("truncated request", br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name""#, -32700, json!(6)),
        ("not an object", b"42", -32600, Value::Null),
        ("a string", b"\"tools/call\"", -32600, Value::Null),
        ("a batch", br#"[{"jsonrpc":"2.0","id":7,"method":"ping"}]"#, -32600, Value::Null),
        ("an empty batch", b"[]", -32600, Value::Null),
        ("missing jsonrpc", br#"{"id":8,"method":"ping"}"#, -32600, json!(8)),
        ("wrong jsonrpc", br#"{"jsonrpc":"1.0","id":9,"method":"ping"}"#, -32600, json!(9)),
        ("fractional id", br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, -32600, Value::Null),
        ("method is a number", br#"{"jsonrpc":"2.0","id":10,"method":7}"#, -32600, json!(10)),
        ("not UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"ping\",\"x\":\"\xc3\x28\"}", -32700, json!(11)),
        ("bare bytes", b"\xff\xfe\x00", -32700, Value::Null),
    ];
    for (i, (what, line, code, id)) in cases.iter().enumerate() {
        s.send(line);
        assert_eq!(s.error(what), (*code, id.clone()), "{what}");
        s.ping(1000 + i as u32);
    }

    // An empty line is no message: nothing comes back, and the next request answers.
    s.send(b"");
    s.send(b"   \r");
    s.ping(2000);

    // A 64 MiB line, sent slowly: cut at the 16 MiB limit, the rest discarded,
    // one error naming the limit, with the request's id.
    let head = br#"{"jsonrpc":"2.0","id":"huge","method":"tools/call","params":{"name":"search","arguments":{"code":""#;
    s.stdin.write_all(head).unwrap();
    let chunk = vec![b'a'; 1 << 20];
    for i in 0..64 {
        s.stdin.write_all(&chunk).unwrap();
        if i == 20 {
            s.stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            assert!(s.next_within(Duration::ZERO).is_none(), "answered before the line ended");
        }
    }
    s.send(br#""}}}"#);
    let v = s.next_within(WAIT).expect("the oversized line is answered within 2 s");
    assert_eq!((v["id"].clone(), v["error"]["code"].clone()), (json!("huge"), json!(-32600)), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("16777216 bytes"), "{v}");
    s.ping(3000);

    // A well-formed call still answers.
    s.send(
        br#"{"jsonrpc":"2.0","id":"ok","method":"tools/call","params":{"name":"search","arguments":{"code":"async () => 1"}}}"#,
    );
    let v = s.next_within(Duration::from_secs(10)).expect("search answers");
    assert_eq!(v["id"], "ok", "{v}");
    assert_eq!(v["result"]["isError"], false, "{v}");
    assert_eq!(v["result"]["content"][0]["text"], "1", "{v}");
}

#[test]
fn a_last_message_without_newline_is_answered_before_exit() {
    let mut s = Server::start();
    s.stdin.write_all(br#"{"jsonrpc":"2.0","id":77,"method":"tools/call","params":"x"}"#).unwrap();
    s.stdin.flush().unwrap();
    // Close stdin: the session ends, but the last line is still answered.
    let Server { stdin, .. } = &mut s;
    drop(std::mem::replace(stdin, spare_stdin()));
    assert_eq!(s.error("last line"), (-32600, json!(77)));
}

/// A stand-in `ChildStdin` so the real one can be dropped (closing the pipe).
fn spare_stdin() -> ChildStdin {
    let mut c = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let stdin = c.stdin.take().unwrap();
    let _ = c.wait();
    stdin
}
