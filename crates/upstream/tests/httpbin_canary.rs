//! A canary credential against a real echo server: httpbin (started by
//! `tests/peers/peers.py`, installed by `tests/peers/setup.sh` into
//! `<repo>/.peers`; fails with that instruction when it is missing) is asked
//! to hand the credential back in every way it can — echoed headers and
//! URLs, decoded base64, response headers, redirect `Location`s, error
//! bodies — and no form of it may appear in anything `Upstream::request`
//! returns.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use codemode_upstream::{Auth, Secret, Upstream, UpstreamConfig};
use serde_json::{json, Value};

const TOKEN: &str = "cnry-Tok3n/Zq+8xw_4e7f";
const PASSWORD: &str = "pa55-w0rd+canary";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// httpbin under gunicorn; dropping it closes stdin, which stops the peer.
struct Httpbin {
    url: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Httpbin {
    fn start() -> Httpbin {
        let python = repo().join(".peers/venv/bin/python");
        assert!(
            python.exists(),
            "the test peers are not installed ({} missing): run tests/peers/setup.sh first",
            python.display()
        );
        let mut child = Command::new(&python)
            .arg(repo().join("tests/peers/peers.py"))
            .args(["httpbin", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/peers/peers.py");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut guard = Httpbin { url: String::new(), child, stdin };
        let line = rx.recv_timeout(Duration::from_secs(120)).expect("httpbin did not start within 120 s");
        let info: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("peers.py printed {line:?} instead of {{\"url\": ...}}: {e}"));
        guard.url = info["url"].as_str().expect("url").to_string();
        guard
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        drop(self.stdin.take());
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every form of `secret` a leak could take, for searching the output:
/// raw, hex, percent-encoded, and the secret-only characters of base64 and
/// base64url at each alignment (8-character windows, so a partial leak
/// counts too).
fn forms(secret: &str) -> Vec<String> {
    let b = secret.as_bytes();
    let mut out = vec![
        secret.to_ascii_lowercase(),
        b.iter().map(|x| format!("{x:02x}")).collect(),
        b.iter().map(|x| format!("%{x:02x}")).collect(),
        url::form_urlencoded::byte_serialize(b).collect::<String>().to_ascii_lowercase(),
    ];
    for k in 0..3 {
        let mut input = vec![b'x'; k];
        input.extend_from_slice(b);
        let (start, end) = ((8 * k).div_ceil(6), 8 * (k + b.len()) / 6);
        for e in [&STANDARD, &URL_SAFE] {
            let enc = e.encode(&input);
            for w in enc.as_bytes()[start..end].windows(8) {
                out.push(String::from_utf8_lossy(w).to_ascii_lowercase());
            }
        }
    }
    out
}

/// Panics when any form of `secret` is in `v`: its JSON text or any decoded
/// string or key.
fn assert_clean(v: &Value, secret: &str, what: &str) {
    let mut texts = vec![v.to_string()];
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match x {
            Value::String(s) => texts.push(s.clone()),
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => {
                texts.extend(m.keys().cloned());
                stack.extend(m.values());
            }
            _ => {}
        }
    }
    for text in texts {
        let lower = text.to_ascii_lowercase();
        for f in forms(secret) {
            assert!(!lower.contains(&f), "{what}: a form of the canary (`{f}`) came back in {text}");
        }
    }
}

fn client(base: &str, auth: Auth) -> Upstream {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut c = UpstreamConfig::new("httpbin", base.parse().unwrap());
    c.auth = auth;
    c.timeout = Duration::from_secs(20);
    Upstream::new(c).unwrap()
}

/// Requests that make httpbin return `secret` in some form (the code would
/// not know the secret; an upstream that echoes it is what is simulated).
fn echoing_requests(secret: &str) -> Vec<Value> {
    let hex: String = secret.bytes().map(|b| format!("{b:02X}")).collect();
    let mut v = vec![
        json!([{"path": "/anything"}]),
        json!([{"path": "/headers"}]),
        json!([{"path": "/bearer"}]),
        json!([{"path": "/anything", "query": {"echo": secret, "hex": hex}}]),
        json!([{"method": "GET", "path": "/anything", "rawBody": format!("{{\"t\": \"{secret}\"}}"), "contentType": "application/json"}]),
        json!([{"path": "/response-headers", "query": {"X-Token": secret, secret: "as-a-name"}}]),
        json!([{"path": "/response-headers", "query": {"Location": format!("https://evil.example/?t={secret}")}}]),
        // Off-origin redirect: returned, with the Location scrubbed.
        json!([{"path": "/redirect-to", "query": {"url": format!("https://evil.example/cb?token={secret}")}}]),
        // Same origin, in scope: followed; the echo must be scrubbed.
        json!([{"path": "/redirect-to", "query": {"url": format!("/anything?token={secret}"), "status_code": "307"}}]),
        json!([{"path": "/status/403"}]),
    ];
    for prefix in ["", "a", "ab", "Bearer "] {
        let text = format!("{prefix}{secret} and more");
        for e in [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            // httpbin decodes URL-safe base64 in the path and returns the text.
            let path_b64 = URL_SAFE.encode(e.encode(&text));
            v.push(json!([{"path": format!("/base64/{path_b64}")}]));
        }
        v.push(json!([{"path": format!("/base64/{}", URL_SAFE.encode(&text))}]));
    }
    v
}

async fn run_all(api: &Upstream, secrets: &[&str]) -> usize {
    let mut answered = 0;
    for args in echoing_requests(secrets[0]) {
        let result = api.request(&args).await;
        let v = match &result {
            Ok(v) => v,
            Err(e) => e,
        };
        assert!(v.get("status").is_some(), "{args}: no answer from httpbin: {v}");
        for s in secrets {
            assert_clean(v, s, &args.to_string());
        }
        answered += 1;
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httpbin_never_hands_the_canary_back() {
    let httpbin = tokio::task::spawn_blocking(Httpbin::start).await.unwrap();

    // Bearer: the token, and the whole header value.
    let api = client(&httpbin.url, Auth::Bearer { token: Secret::new(TOKEN.into()), source: "$T".into() });
    // The echo really happens (so the test tests something).
    let raw = reqwest::Client::new()
        .get(format!("{}/headers", httpbin.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.contains(TOKEN));
    let r = api.request(&json!([{"path": "/headers"}])).await.unwrap();
    assert_eq!(r["data"]["headers"]["Authorization"], "Bearer [REDACTED]", "{r}");
    let r = api
        .request(&json!([{"path": "/redirect-to", "query": {"url": format!("https://evil.example/?t={TOKEN}")}}]))
        .await
        .unwrap();
    assert_eq!(r["status"], 302);
    assert_eq!(r["headers"]["location"], "https://evil.example/?t=[REDACTED]");
    let r = api.request(&json!([{"path": "/redirect-to", "query": {"url": "/anything/landed"}}])).await.unwrap();
    assert_eq!(r["status"], 200, "an in-scope redirect is followed: {r}");
    assert_eq!(r["data"]["headers"]["Authorization"], "Bearer [REDACTED]", "and carries the credential: {r}");
    assert!(run_all(&api, &[TOKEN]).await > 20);

    // A credential header.
    let api = client(
        &httpbin.url,
        Auth::Header { name: "X-Api-Key".into(), value: Secret::new(TOKEN.into()), source: "$K".into() },
    );
    run_all(&api, &[TOKEN]).await;

    // Basic: the password alone and `user:password`, in every form.
    let api = client(
        &httpbin.url,
        Auth::Basic { user: "alice".into(), password: Secret::new(PASSWORD.into()), source: "$P".into() },
    );
    let r = api.request(&json!([{"path": "/basic-auth/alice/pa55-w0rd+canary"}])).await.unwrap();
    assert_eq!(r["data"]["authenticated"], true, "{r}");
    let mut answered = 0;
    for args in echoing_requests(PASSWORD) {
        let v = match api.request(&args).await {
            Ok(v) | Err(v) => v,
        };
        assert_clean(&v, PASSWORD, &args.to_string());
        assert_clean(&v, &format!("alice:{PASSWORD}"), &args.to_string());
        answered += 1;
    }
    assert!(answered > 20);
}
