//! Our mock next to Stoplight Prism's, on the Cloudflare spec: status codes
//! and top-level body shapes for the same requests.
//!
//! Needs the test peers (`tests/peers/setup.sh` installs them into
//! `<repo>/.peers`); fails with that instruction when they are missing.
//!
//! Intentional differences, each checked below:
//! - **Security.** Prism requires every scheme of one `security` alternative
//!   literally. Cloudflare's spec lists `api_email` + `api_key` as the only
//!   alternative on 653 operations and `api_email` + `api_key` + `api_token`
//!   *together* on 436 more, although the real API takes an API token
//!   (`Authorization: Bearer …`) on them: Prism answers those 401 to a bearer
//!   token. We accept any credential an alternative could use and answer 401
//!   only when there is none (see `security.rs`): a rehearsal must not fail
//!   where the real call works.
//! - **Invalid requests.** Prism answers 422 with the operation's documented
//!   4XX example (Cloudflare's envelope, `success: false`) and puts the
//!   violations in an `sl-violations` header. We answer 400 with
//!   `{"message", "errors"}`, naming each problem, because the model only
//!   sees the body and the status (and the upstream turns `message` into the
//!   thrown error's text).
//! - **`readOnly` in requests.** OpenAPI says read-only properties are not
//!   sent in requests, so a `required` read-only property is not required
//!   there; we apply that through `allOf`/`oneOf` compositions. Prism
//!   requires them, so it rejects creating a Cloudflare DNS record unless the
//!   request invents `proxiable`, `created_on` and `modified_on`.
//! - **Schemas without `type`.** For `allOf: [{properties: {..}}]` Prism
//!   answers `null`; we infer an object from `properties`.
//! - **No route / no credential.** Same status (404 / 401); Prism's body is
//!   its problem+json or the documented 4XX example, ours `{"message"}` naming
//!   the closest operations or the accepted schemes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use codemode_mock::MockApi;
use codemode_upstream::{ApiRequest, Body, Responder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spec_path() -> PathBuf {
    repo().join("../shared/specs/cloudflare-2024-08-06.openapi.json")
}

/// Prism started through `tests/peers/peers.py --stdin`; dropping it closes
/// stdin, which stops the peer (and Prism's whole process group).
struct Prism {
    url: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Prism {
    fn start() -> Prism {
        let python = repo().join(".peers/venv/bin/python");
        let prism = repo().join(".peers/node/node_modules/.bin/prism");
        assert!(
            python.exists() && prism.exists(),
            "the test peers are not installed ({} / {} missing): run tests/peers/setup.sh first",
            python.display(),
            prism.display()
        );
        let mut child = Command::new(&python)
            .arg(repo().join("tests/peers/peers.py"))
            .arg("prism")
            .arg(spec_path())
            .arg("--stdin")
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
        let mut guard = Prism { url: String::new(), child, stdin };
        // Prism loads Cloudflare's 4 MB spec for 10-60 s on a busy machine.
        let line =
            rx.recv_timeout(Duration::from_secs(240)).unwrap_or_else(|_| panic!("Prism did not start within 240 s"));
        let info: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("peers.py printed {line:?} instead of {{\"url\": ...}}: {e}"));
        guard.url = info["url"].as_str().expect("url").to_string();
        guard
    }
}

impl Drop for Prism {
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

/// What one side answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    keys: Vec<String>,
    /// The start of the body, for the report.
    text: String,
}

fn keys_of(body: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => {
            let mut k: Vec<String> = m.keys().cloned().collect();
            k.sort();
            k
        }
        Ok(Value::Array(_)) => vec!["[array]".into()],
        Ok(_) | Err(_) => vec![],
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(120).collect()
}

fn ours(mock: &MockApi, req: &ApiRequest, creds: &[(&str, &str)]) -> Answer {
    let mut headers = HeaderMap::new();
    for (k, v) in creds.iter().copied().chain(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        headers.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    if let Body::Json(_, _) = req.body {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    let r = mock.respond(req, &headers);
    Answer { status: r.status, keys: keys_of(&r.body), text: snippet(&r.body) }
}

async fn theirs(http: &reqwest::Client, prism: &str, req: &ApiRequest, creds: &[(&str, &str)]) -> Answer {
    let mut url = reqwest::Url::parse(&format!("{prism}{}", req.path)).unwrap();
    if !req.query.is_empty() {
        url.query_pairs_mut().extend_pairs(req.query.iter());
    }
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut b = http.request(method, url).timeout(Duration::from_secs(60));
    for (k, v) in creds.iter().copied().chain(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        b = b.header(k, v);
    }
    if let Body::Json(v, _) = &req.body {
        b = b.header("content-type", "application/json").body(serde_json::to_vec(v).unwrap());
    }
    let r = b.send().await.expect("Prism answers");
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    Answer { status, keys: keys_of(&body), text: snippet(&body) }
}

/// Whether Prism's literal reading of `security` lets a bearer token alone through.
fn bearer_alone_suffices(mock: &MockApi, method: &str, template: &str) -> bool {
    let g = &mock.spec().graph;
    let root = g.root();
    let op = g
        .get(root, "paths")
        .and_then(|p| g.get(p, template))
        .and_then(|i| g.get(i, &method.to_ascii_lowercase()))
        .expect("operation");
    let Some(sec) = g.get(op, "security").or_else(|| g.get(root, "security")) else { return true };
    let alternatives = g.to_value(sec);
    alternatives.as_array().is_none_or(|alts| {
        alts.is_empty() || alts.iter().any(|a| a.as_object().is_some_and(|o| o.keys().all(|k| k == "api_token")))
    })
}

const BEARER: (&str, &str) = ("authorization", "Bearer x");
const ALL_CREDENTIALS: [(&str, &str); 3] =
    [("authorization", "Bearer x"), ("x-auth-email", "user@example.com"), ("x-auth-key", "0123456789abcdef")];

#[test]
fn our_mock_answers_like_prism() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let prism = Prism::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let spec = rt.block_on(codemode_spec::load(spec_path().to_str().unwrap(), &http)).unwrap();
    let mock = MockApi::new(Arc::new(spec));

    let ops: Vec<(String, String)> = mock.operations().map(|(m, t)| (m.to_string(), t.to_string())).collect();
    let gets: Vec<&(String, String)> = ops.iter().filter(|(m, _)| m == "GET").collect();
    let posts: Vec<&(String, String)> = ops
        .iter()
        .filter(|(m, t)| m == "POST" && matches!(mock.sample_request(m, t, 1).map(|r| r.body), Some(Body::Json(..))))
        .collect();
    let mut sample: Vec<&(String, String)> = gets.iter().step_by(gets.len() / 20).take(20).copied().collect();
    sample.extend(posts.iter().step_by(posts.len() / 5).take(5).copied());

    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut same_keys = 0;
    for (i, (method, template)) in sample.iter().enumerate() {
        let req = mock.sample_request(method, template, i as u64).unwrap();
        let label = format!("{method} {template}");
        let expected = mock.success_status(method, template).unwrap();

        // 1. Every credential Prism could want: both answer the documented success.
        let (a, b) =
            (ours(&mock, &req, &ALL_CREDENTIALS), rt.block_on(theirs(&http, &prism.url, &req, &ALL_CREDENTIALS)));
        lines.push(format!(
            "{label}\n    credentials: ours {} {:?} | prism {} {:?}",
            a.status, a.keys, b.status, b.keys
        ));
        if a.status != expected || b.status != a.status {
            problems.push(format!(
                "{label}: with credentials ours {} prism {} (documented {expected})",
                a.status, b.status
            ));
        }
        if a.keys == b.keys {
            same_keys += 1;
        } else if b.keys.is_empty() && !a.keys.is_empty() {
            // Prism wrote no JSON object where the schema has `properties`
            // but no `type` (Cloudflare's `access_empty_response`:
            // `allOf: [{properties: {result, success}}]`); we infer an
            // object from `properties`, which the schema accepts.
            lines.push(format!("    (prism body: {:?}; ours: {:?})", b.text, a.text));
        } else if a.keys.iter().any(|k| k == "result") != b.keys.iter().any(|k| k == "result")
            || ["success", "errors", "messages"]
                .iter()
                .any(|k| a.keys.contains(&k.to_string()) != b.keys.contains(&k.to_string()))
        {
            // The envelope must agree; optional extras (`result_info`) may differ.
            problems.push(format!("{label}: top-level keys ours {:?} prism {:?}", a.keys, b.keys));
        }

        // 2. A bearer token alone: ours always succeeds; Prism only where the
        // spec lists `api_token` as an alternative of its own.
        let (a, b) = (ours(&mock, &req, &[BEARER]), rt.block_on(theirs(&http, &prism.url, &req, &[BEARER])));
        lines.push(format!("    bearer only: ours {} | prism {}", a.status, b.status));
        let prism_expected = if bearer_alone_suffices(&mock, method, template) { expected } else { 401 };
        if a.status != expected || b.status != prism_expected {
            problems.push(format!(
                "{label}: bearer only: ours {} prism {} (expected {expected} / {prism_expected})",
                a.status, b.status
            ));
        }

        // 3. No credential: both 401.
        let (a, b) = (ours(&mock, &req, &[]), rt.block_on(theirs(&http, &prism.url, &req, &[])));
        lines.push(format!("    no credential: ours {} {:?} | prism {} {:?}", a.status, a.keys, b.status, b.keys));
        if a.status != 401 || b.status != 401 {
            problems.push(format!("{label}: without credential ours {} prism {}", a.status, b.status));
        }
        if a.keys != ["message"] {
            problems.push(format!("{label}: our 401 body has keys {:?}", a.keys));
        }
    }

    // 4. A missing required parameter / body: ours 400, Prism 422.
    let mut missing = 0;
    for (method, template) in ops.iter() {
        if missing == 3 {
            break;
        }
        let Some(mut req) = mock.sample_request(method, template, 3) else { continue };
        let label = format!("{method} {template}");
        if !req.query.is_empty() {
            req.query.clear();
        } else if matches!(req.body, Body::Json(..)) && method == "POST" {
            req.body = Body::None;
        } else {
            continue;
        }
        missing += 1;
        let (a, b) =
            (ours(&mock, &req, &ALL_CREDENTIALS), rt.block_on(theirs(&http, &prism.url, &req, &ALL_CREDENTIALS)));
        lines.push(format!(
            "{label} without its required parameter/body\n    ours {} {:?} | prism {} {:?}",
            a.status, a.keys, b.status, b.keys
        ));
        if a.status != 400 || !matches!(b.status, 400 | 422) || a.keys != ["errors", "message"] {
            problems.push(format!("{label}: missing required: ours {} {:?} prism {}", a.status, a.keys, b.status));
        }
    }
    assert_eq!(missing, 3, "found operations with required parameters");

    // 5. `readOnly` in a request: Cloudflare's DNS record schema requires
    // `id` (not read-only: a spec slip, but the spec) and the read-only
    // `proxiable`, `created_on`, `modified_on`. OpenAPI says read-only
    // properties are not sent in requests, so we do not require them; Prism
    // does, and rejects every record creation that omits them.
    let req = ApiRequest {
        method: "POST".into(),
        path: "/zones/023e105f4ecef8ad9ca31a8372d0c353/dns_records".into(),
        query: vec![],
        headers: vec![],
        body: Body::Json(
            serde_json::json!({"id": "023e105f4ecef8ad9ca31a8372d0c353", "type": "A", "name": "www.example.com", "content": "198.51.100.4", "ttl": 3600}),
            None,
        ),
    };
    let (a, b) = (ours(&mock, &req, &ALL_CREDENTIALS), rt.block_on(theirs(&http, &prism.url, &req, &ALL_CREDENTIALS)));
    lines.push(format!(
        "POST /zones/{{zone_id}}/dns_records without read-only fields\n    ours {} | prism {} {}",
        a.status, b.status, b.text
    ));
    if a.status != 200 || b.status != 422 {
        problems.push(format!("readOnly in requests: ours {} prism {}", a.status, b.status));
    }

    // 6. An unknown path: both 404.
    let req = ApiRequest {
        method: "GET".into(),
        path: "/zones/abc/dns_record".into(),
        query: vec![],
        headers: vec![],
        body: Body::None,
    };
    let (a, b) = (ours(&mock, &req, &ALL_CREDENTIALS), rt.block_on(theirs(&http, &prism.url, &req, &ALL_CREDENTIALS)));
    lines.push(format!(
        "GET /zones/abc/dns_record (no such path)\n    ours {} {:?} | prism {} {:?}",
        a.status, a.keys, b.status, b.keys
    ));
    if a.status != 404 || b.status != 404 {
        problems.push(format!("unknown path: ours {} prism {}", a.status, b.status));
    }

    for l in &lines {
        println!("{l}");
    }
    println!("{} operations compared; identical top-level keys on {same_keys}", sample.len());
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}
