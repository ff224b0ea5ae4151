//! Request policy against a real socket: method overrides, the whole-request
//! size cap and redirects. A tiny HTTP/1.1 server on loopback records every
//! request it receives, so "nothing was sent" is checked, not assumed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use codemode_upstream::{Auth, Secret, Upstream, UpstreamConfig};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "canary-tok-7b1e9d44c2";

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The answer for one request: status, extra headers, body.
type Route = dyn Fn(&Seen) -> (u16, Vec<(String, String)>, String) + Send + Sync;

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn serve(route: Arc<Route>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let route = route.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                let head_end = loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or_default().split(' ');
                let method = first.next().unwrap_or_default().to_string();
                let target = first.next().unwrap_or_default().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
                let mut body = buf[head_end + 4..].to_vec();
                while body.len() < len {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    body.extend_from_slice(&chunk[..n]);
                }
                let req = Seen { method, target, headers, body };
                log.lock().unwrap().push(req.clone());
                let (status, extra, text) = route(&req);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    text.len()
                );
                for (k, v) in extra {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&text);
                let _ = sock.write_all(out.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { url, seen }
}

fn upstream(base: &str, _writes: bool) -> Upstream {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut c = UpstreamConfig::new("shop", base.parse().unwrap());
    c.auth = Auth::Bearer { token: Secret::new(TOKEN.into()), source: "$SHOP_TOKEN".into() };
    c.timeout = Duration::from_secs(10);
    Upstream::new(c).unwrap()
}

fn echo() -> Arc<Route> {
    Arc::new(|r: &Seen| (200, vec![], json!({"method": r.method, "target": r.target}).to_string()))
}

#[tokio::test]
async fn method_overrides_are_refused_and_nothing_is_sent() {
    let server = serve(echo()).await;
    let api = upstream(&server.url, false);
    for h in ["X-HTTP-Method-Override", "x-method-override", "X-Http-Method"] {
        let e = api.request(&json!([{"path": "/items/1", "headers": {h: "DELETE"}}])).await.unwrap_err();
        assert_eq!(e["name"], "PolicyError", "{e}");
        let m = e["message"].as_str().unwrap();
        assert!(m.contains(h) && m.contains("send the real method"), "{m}");
    }
    for args in [
        json!([{"path": "/items/1?_method=DELETE"}]),
        json!([{"path": "/items/1", "query": {"_method": "DELETE"}}]),
        json!(["GET /items/{id}", {"id": 1, "_method": "DELETE"}]),
    ] {
        let e = api.request(&args).await.unwrap_err();
        assert!(e["message"].as_str().unwrap().contains("`_method` query parameter"), "{e}");
    }
    assert!(server.seen.lock().unwrap().is_empty(), "a refused request reached the server");
    // The plain GET still works.
    let ok = api.request(&json!([{"path": "/items/1"}])).await.unwrap();
    assert_eq!(ok["data"]["method"], "GET");
}

#[tokio::test]
async fn the_whole_request_counts_against_max_request_kib() {
    let server = serve(echo()).await;
    let mut c = UpstreamConfig::new("shop", server.url.parse().unwrap());
    c.max_request_bytes = 16 * 1024;
    let api = Upstream::new(c).unwrap();
    let big = "q".repeat(48 * 1024);
    let cases = [
        ("query", json!([{"path": "/search", "query": {"q": big}}])),
        ("header", json!([{"path": "/search", "headers": {"X-Big": big}}])),
        ("body", json!([{"method": "GET", "path": "/search", "rawBody": big}])),
    ];
    for (what, args) in cases {
        let e = api.request(&args).await.unwrap_err();
        let m = e["message"].as_str().unwrap();
        assert_eq!(e["name"], "PolicyError", "{what}: {m}");
        assert!(m.contains("limit of 16384 bytes") && m.contains("max_request_kib = 16"), "{what}: {m}");
        assert!(m.contains("the request is 49"), "{what}: the measured size is missing: {m}");
    }
    // A query of a few KB is fine.
    api.request(&json!([{"path": "/search", "query": {"q": "q".repeat(4000)}}])).await.unwrap();
    assert_eq!(server.seen.lock().unwrap().len(), 1);

    // 3 MB of query: the same clear error under the default 1 MiB limit…
    let api = upstream(&server.url, false);
    let huge = "z".repeat(3 * 1024 * 1024);
    let e = api.request(&json!([{"path": "/search", "query": {"q": huge}}])).await.unwrap_err();
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("limit of 1048576 bytes") && m.contains("max_request_kib = 1024"), "{m}");
    // …and with the limit raised, what the HTTP client can carry, said plainly.
    let mut c = UpstreamConfig::new("shop", server.url.parse().unwrap());
    c.max_request_bytes = 8 * 1024 * 1024;
    let e = Upstream::new(c).unwrap().request(&json!([{"path": "/search", "query": {"q": huge}}])).await.unwrap_err();
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("the URL is") && m.contains("65534 bytes") && !m.contains("Uri"), "{m}");
    assert_eq!(server.seen.lock().unwrap().len(), 1, "an oversized request reached the server");
}

fn redirects(other_origin: String) -> Arc<Route> {
    Arc::new(move |r: &Seen| {
        let to = |loc: String| (302, vec![("location".to_string(), loc)], "{}".to_string());
        let path = r.target.split('?').next().unwrap_or_default();
        match path {
            "/api/in" => to("/api/landed?x=1".into()),
            "/api/relative" => to("landed".into()),
            "/api/out" => to("/admin/keys".into()),
            "/api/prefix" => to("/apifoo/keys".into()),
            "/api/dots" => to("/api/%2e%2e/admin".into()),
            "/api/away" => to(format!("{other_origin}/api/landed")),
            "/api/leak" => to(format!("/elsewhere?token={TOKEN}")),
            "/api/loop" => to("/api/loop".into()),
            "/api/see-other" => (303, vec![("location".into(), "/api/landed".into())], "{}".into()),
            "/api/temporary" => (307, vec![("location".into(), "/api/landed".into())], "{}".into()),
            _ => (
                200,
                vec![],
                json!({"method": r.method, "target": r.target, "auth": r.header("authorization"), "body": String::from_utf8_lossy(&r.body)}).to_string(),
            ),
        }
    })
}

#[tokio::test]
async fn redirects_are_followed_only_within_the_api() {
    let elsewhere = serve(echo()).await;
    let server = serve(redirects(elsewhere.url.clone())).await;
    let api = upstream(&format!("{}/api", server.url), true);
    let seen = || server.seen.lock().unwrap().clone();

    // Within the base path: followed, and the host added the credential again.
    for path in ["/in", "/relative"] {
        let r = api.request(&json!([{"path": path}])).await.unwrap();
        assert_eq!(r["status"], 200, "{path}: {r}");
        assert!(r["data"]["target"].as_str().unwrap().starts_with("/api/landed"), "{r}");
        assert_eq!(
            r["data"]["auth"], "Bearer [REDACTED]",
            "the credential travels to in-scope targets (and is scrubbed)"
        );
        let last = seen().pop().unwrap();
        assert_eq!(last.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    }

    // Same origin outside the base path, a base-path prefix that is not a
    // segment, encoded dot segments, another origin: not followed; the code
    // gets the 3xx itself.
    for (path, location) in [
        ("/out", "/admin/keys".to_string()),
        ("/prefix", "/apifoo/keys".into()),
        ("/dots", "/api/%2e%2e/admin".into()),
        ("/away", format!("{}/api/landed", elsewhere.url)),
    ] {
        let before = seen().len();
        let r = api.request(&json!([{"path": path}])).await.unwrap();
        assert_eq!(r["status"], 302, "{path}: {r}");
        assert_eq!(r["headers"]["location"], location.as_str(), "{path}");
        assert_eq!(seen().len(), before + 1, "{path}: the redirect was followed");
    }
    assert!(elsewhere.seen.lock().unwrap().is_empty(), "a request reached another origin");

    // A Location carrying the credential is scrubbed like everything else.
    let r = api.request(&json!([{"path": "/leak"}])).await.unwrap();
    assert_eq!(r["headers"]["location"], "/elsewhere?token=[REDACTED]");

    // Bounded: a loop ends after MAX_REDIRECTS hops with the last 3xx.
    let before = seen().len();
    let r = api.request(&json!([{"path": "/loop"}])).await.unwrap();
    assert_eq!(r["status"], 302);
    assert_eq!(seen().len() - before, codemode_upstream::MAX_REDIRECTS + 1);

    // 303 turns a POST into a GET without body (followed); 307 would send
    // the POST on to a path the host pipeline never saw: not followed, the
    // code gets the 307 and nothing reaches the new location.
    let r = api.request(&json!([{"method": "POST", "path": "/see-other", "body": {"a": 1}}])).await.unwrap();
    assert_eq!((r["data"]["method"].as_str(), r["data"]["body"].as_str()), (Some("GET"), Some("")));
    let before = seen().len();
    let r = api.request(&json!([{"method": "POST", "path": "/temporary", "body": {"a": 1}}])).await.unwrap();
    assert_eq!(r["status"], 307);
    assert_eq!(r["headers"]["location"], "/api/landed");
    assert_eq!(seen().len() - before, 1, "the POST was sent on to the redirect target");
    // A GET is followed through a 307.
    let r = api.request(&json!([{"path": "/temporary"}])).await.unwrap();
    assert_eq!(r["data"]["method"], "GET");
}

#[tokio::test]
async fn echoed_credentials_never_come_back() {
    // An upstream that echoes the credential in a header name, a header
    // value, a JSON body with escapes and an error body.
    let escaped: String = TOKEN.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    let route: Arc<Route> = Arc::new(move |r: &Seen| {
        let auth = r.header("authorization").unwrap_or_default().to_string();
        let status = if r.target.starts_with("/denied") { 403 } else { 200 };
        let b64 = base64::engine::general_purpose::STANDARD.encode(&auth);
        (
            status,
            vec![(format!("x-echo-{TOKEN}"), "1".into()), ("x-auth-b64".into(), b64)],
            format!("{{\"message\": \"bad token {escaped}\", \"raw\": \"{auth}\"}}"),
        )
    });
    let server = serve(route).await;
    let api = upstream(&server.url, false);
    let ok = api.request(&json!([{"path": "/echo"}])).await.unwrap();
    let err = api.request(&json!([{"path": "/denied"}])).await.unwrap_err();
    for v in [&ok, &err] {
        let text = v.to_string();
        assert!(!text.contains("canary-tok") && !text.contains("7b1e9d44c2"), "{text}");
    }
    assert_eq!(err["status"], 403);
    assert!(err["message"].as_str().unwrap().contains("bad token [REDACTED]"), "{err}");
    assert!(ok["headers"].as_object().unwrap().keys().any(|k| k == "x-echo-[redacted]" || k == "x-echo-[REDACTED]"));
}
