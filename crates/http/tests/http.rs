//! codemode-http over real sockets on loopback, with a small MCP handler:
//! readiness, sessions and stateless mode, Host/Origin, static tokens, JWTs
//! against a JWKS served over HTTP (rotation included), limits, slow and
//! disconnecting clients, graceful shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use codemode_http::{AuthConfig, HttpServer, OAuthConfig, ServerConfig};
use common::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_at_once_readyz_and_mcp_once_the_handler_is_there() {
    let (h, ready) = start_with(ServerConfig::default(), AuthConfig::default(), false).await;
    let get = |p: &str| h.http.get(format!("{}{p}", h.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    let r = h.post(None, None, &init()).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    ready.set(h.server.clone());
    assert_eq!(get("/readyz").await.unwrap().text().await.unwrap(), "ready");
    assert!(h.initialize(None).await.is_some());
    assert_eq!(get("/nope").await.unwrap().status(), 404);
    // No OAuth configured: no resource metadata.
    assert_eq!(get("/.well-known/oauth-protected-resource").await.unwrap().status(), 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_call_and_delete() {
    let h = start(ServerConfig::default(), AuthConfig::default()).await;
    let sid = h.initialize(None).await.unwrap();
    let r = h.post(None, Some(&sid), &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let tools = message(r).await;
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 2);
    // Over loopback without auth: the anonymous principal, unrestricted.
    assert_eq!(text_of(&h.call(None, Some(&sid), "whoami", json!({})).await), "anonymous all");
    let r = h.http.delete(h.mcp()).header("mcp-session-id", &sid).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = h.post(None, Some(&sid), &call("whoami", json!({}))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // Without a session id, only initialize is accepted.
    let r = h.post(None, None, &call("whoami", json!({}))).send().await.unwrap();
    assert_eq!(r.status(), 400, "{:?}", r.text().await);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_mode_answers_json_without_sessions() {
    let h =
        start(ServerConfig { stateless: true, json_response: true, ..Default::default() }, AuthConfig::default()).await;
    assert_eq!(h.initialize(None).await, None);
    let r = h.post(None, None, &call("whoami", json!({}))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(text_of(&message(r).await), "anonymous all");
    assert_eq!(h.http.delete(h.mcp()).send().await.unwrap().status(), 405);
    h.stop().await;
    // And with SSE responses.
    let h = start(ServerConfig { stateless: true, ..Default::default() }, AuthConfig::default()).await;
    let r = h.post(None, None, &call("whoami", json!({}))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(text_of(&message(r).await), "anonymous all");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_origin_are_checked_before_anything_else() {
    let h = start(ServerConfig::default(), AuthConfig::default()).await;
    let body = init().to_string();
    let port = h.base.rsplit(':').next().unwrap().to_string();
    let ok =
        raw(&h.base, &raw_post(&format!("127.0.0.1:{port}"), Some(&format!("http://127.0.0.1:{port}")), &body)).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let evil = raw(&h.base, &raw_post("evil.example.com", Some("http://evil.example.com"), &body)).await;
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    let evil_origin =
        raw(&h.base, &raw_post(&format!("localhost:{port}"), Some("https://evil.example.com"), &body)).await;
    assert!(evil_origin.starts_with("HTTP/1.1 403"), "{evil_origin}");
    // Probes need no particular Host.
    let probe = raw(&h.base, "GET /healthz HTTP/1.1\r\nHost: 10.0.0.7:8080\r\nConnection: close\r\n\r\n").await;
    assert!(probe.starts_with("HTTP/1.1 200"), "{probe}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_headers_with_userinfo_or_a_second_authority_are_refused() {
    let h = start(ServerConfig::default(), AuthConfig::default()).await;
    let body = init().to_string();
    let port = h.base.rsplit(':').next().unwrap().to_string();
    let userinfo = raw(&h.base, &raw_post(&format!("evil@127.0.0.1:{port}"), None, &body)).await;
    assert!(userinfo.starts_with("HTTP/1.1 400"), "{userinfo}");
    assert!(userinfo.contains("must not contain userinfo"), "{userinfo}");
    let empty = raw(&h.base, &raw_post(&format!(":{port}"), None, &body)).await;
    assert!(empty.starts_with("HTTP/1.1 400"), "{empty}");
    let dot = raw(&h.base, &raw_post(&format!("localhost.:{port}"), None, &body)).await;
    assert!(dot.starts_with("HTTP/1.1 403"), "{dot}");
    let two = raw(
        &h.base,
        &raw_post(&format!("127.0.0.1:{port}"), None, &body).replacen("\r\n", "\r\nHost: evil.example.com\r\n", 1),
    )
    .await;
    assert!(two.starts_with("HTTP/1.1 400"), "{two}");
    let absolute = raw(
        &h.base,
        &raw_post(&format!("127.0.0.1:{port}"), None, &body).replacen("/mcp", "http://evil.example.com/mcp", 1),
    )
    .await;
    assert!(absolute.starts_with("HTTP/1.1 400"), "{absolute}");
    assert!(absolute.contains("differs from the Host header"), "{absolute}");
    // The same request, well formed, still answers.
    let ok = raw(&h.base, &raw_post(&format!("127.0.0.1:{port}"), None, &body)).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_tokens_establish_the_principal() {
    let auth = AuthConfig {
        tokens: vec![
            token("reader", "reader-secret-0123456789", &["books:read"]),
            token("admin", "admin-secret-0123456789", &["*"]),
        ],
        oauth: None,
        ..Default::default()
    };
    let h = start(ServerConfig::default(), auth).await;
    let r = h.post(None, None, &init()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"codemode\"");
    let r = h.post(Some("wrong-token"), None, &init()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    let sid = h.initialize(Some("reader-secret-0123456789")).await.unwrap();
    assert_eq!(
        text_of(&h.call(Some("reader-secret-0123456789"), Some(&sid), "whoami", json!({})).await),
        "reader books:read"
    );
    // A session belongs to its principal.
    let r = h.post(Some("admin-secret-0123456789"), Some(&sid), &call("whoami", json!({}))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let sid2 = h.initialize(Some("admin-secret-0123456789")).await.unwrap();
    assert_eq!(text_of(&h.call(Some("admin-secret-0123456789"), Some(&sid2), "whoami", json!({})).await), "admin all");
    h.stop().await;
}

// --- OAuth -----------------------------------------------------------------

struct Signer {
    kid: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer {
            kid: kid.into(),
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap(),
        }
    }
    fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
               "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
    }
    fn sign(&self, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}).to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let msg = format!("{h}.{c}");
        let sig = self.pair.sign(&SystemRandom::new(), msg.as_bytes()).unwrap();
        format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// An issuer on loopback: RFC 8414 metadata and a JWKS that can change.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys: Arc<Mutex<Vec<Value>>> = Arc::default();
    let hits = Arc::new(AtomicUsize::new(0));
    let (k, n, u) = (keys.clone(), hits.clone(), url.clone());
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let (k, n) = (k.clone(), n.clone());
                async move {
                    n.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"keys": *k.lock().unwrap()}))
                }
            }),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(move || {
                let u = u.clone();
                async move { axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")})) }
            }),
        );
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let svc = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Issuer { url, keys, hits }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_access_tokens_against_a_jwks_over_http() {
    let iss = issuer().await;
    let k1 = Signer::new("k1");
    iss.keys.lock().unwrap().push(k1.jwk());
    let oauth = OAuthConfig {
        issuer: iss.url.clone(),
        jwks_url: None, // discovered from RFC 8414 metadata
        resource: Some("http://127.0.0.1:1/mcp".into()),
        leeway_secs: 30,
        algorithms: vec![],
        jwks_min_refresh_secs: 1.0,
        jwks_max_age_secs: 600.0,
        groups_claim: "groups".into(),
    };
    let h =
        start(ServerConfig::default(), AuthConfig { tokens: vec![], oauth: Some(oauth), ..Default::default() }).await;
    let aud = "http://127.0.0.1:1/mcp";
    let claims = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = json!({"iss": iss.url, "aud": aud, "sub": "alice", "exp": now() + 300, "scope": "books:read"});
        f(c.as_object_mut().unwrap());
        c
    };
    let status_and_challenge = |t: Option<String>| {
        let r = h.post(t.as_deref(), None, &init()).send();
        async move {
            let r = r.await.unwrap();
            let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            (r.status().as_u16(), www)
        }
    };
    let rm = format!("resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"", h.base);

    // Protected Resource Metadata (RFC 9728), at both locations.
    for p in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let m: Value = h.http.get(format!("{}{p}", h.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(m["resource"], aud);
        assert_eq!(m["authorization_servers"], json!([iss.url]));
        assert_eq!(m["scopes_supported"], json!(["books:read", "books:write", "cf:read", "cf:write"]));
    }

    let (s, www) = status_and_challenge(None).await;
    assert_eq!(s, 401);
    assert!(www.contains(&rm) && www.contains("scope=\"books:read") && !www.contains("error="), "{www}");

    let good = k1.sign(&claims(&|_| {}));
    let sid = h.initialize(Some(&good)).await.unwrap();
    assert_eq!(text_of(&h.call(Some(&good), Some(&sid), "whoami", json!({})).await), "alice books:read");

    let cases: Vec<(&str, String, &str)> = vec![
        ("opaque", "not-a-jwt".into(), "opaque access tokens are not accepted"),
        ("malformed", "a.b.c".into(), "opaque"),
        ("bad signature", Signer::new("k1").sign(&claims(&|_| {})), "signature does not verify"),
        (
            "wrong issuer",
            k1.sign(&claims(&|c| drop(c.insert("iss".into(), json!("https://evil.example"))))),
            "issued by",
        ),
        ("wrong audience", k1.sign(&claims(&|c| drop(c.insert("aud".into(), json!("https://other/mcp"))))), "audience"),
        ("expired", k1.sign(&claims(&|c| drop(c.insert("exp".into(), json!(now() - 120))))), "expired"),
        ("not yet valid", k1.sign(&claims(&|c| drop(c.insert("nbf".into(), json!(now() + 600))))), "nbf"),
    ];
    for (what, t, expect) in cases {
        let (s, www) = status_and_challenge(Some(t)).await;
        assert_eq!(s, 401, "{what}");
        assert!(www.contains("error=\"invalid_token\"") && www.contains(expect) && www.contains(&rm), "{what}: {www}");
    }

    // No scope for any API here: 403 insufficient_scope at the HTTP layer.
    let (s, www) =
        status_and_challenge(Some(k1.sign(&claims(&|c| drop(c.insert("scope".into(), json!("openid"))))))).await;
    assert_eq!(s, 403);
    assert!(
        www.contains("error=\"insufficient_scope\"")
            && www.contains("scope=\"books:read books:write cf:read cf:write\""),
        "{www}"
    );

    // Key rotation: an unknown kid fetches the set again, at most once per
    // jwks_min_refresh_secs however many requests ask.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let k2 = Signer::new("k2");
    let t2 = k2.sign(&claims(&|_| {}));
    let before = iss.hits.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(tokio::spawn(status_and_challenge(Some(t2.clone()))));
    }
    for t in tasks {
        let (s, www) = t.await.unwrap();
        assert_eq!(s, 401);
        assert!(www.contains("`k2` is not among"), "{www}");
    }
    assert_eq!(iss.hits.load(Ordering::SeqCst) - before, 1, "one fetch for twenty unknown-kid requests");
    iss.keys.lock().unwrap().push(k2.jwk());
    // Still within the refresh floor: refused without fetching.
    let (s, _) = status_and_challenge(Some(t2.clone())).await;
    assert_eq!(s, 401);
    assert_eq!(iss.hits.load(Ordering::SeqCst) - before, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, _) = status_and_challenge(Some(t2.clone())).await;
    assert_eq!(s, 200, "the rotated key is picked up");
    assert_eq!(iss.hits.load(Ordering::SeqCst) - before, 2);
    h.stop().await;
}

// --- limits ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rate_is_limited_per_principal() {
    let auth = AuthConfig {
        tokens: vec![token("a", "token-a-0123456789", &["*"]), token("b", "token-b-0123456789", &["*"])],
        oauth: None,
        ..Default::default()
    };
    let h = start(ServerConfig { requests_per_minute: 6, burst: 3, ..Default::default() }, auth).await;
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    let sid = h.initialize(Some("token-a-0123456789")).await.unwrap(); // 2 requests
    assert_eq!(h.post(Some("token-a-0123456789"), Some(&sid), &ping).send().await.unwrap().status(), 200);
    let r = h.post(Some("token-a-0123456789"), Some(&sid), &ping).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&after), "{after}");
    assert!(h.initialize(Some("token-b-0123456789")).await.is_some(), "b has its own bucket");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tool_calls_are_limited_per_principal() {
    let h =
        Arc::new(start(ServerConfig { max_concurrent_calls: 1, ..Default::default() }, AuthConfig::default()).await);
    let sid = h.initialize(None).await.unwrap();
    let (h2, s2) = (h.clone(), sid.clone());
    let slow = tokio::spawn(async move { h2.call(None, Some(&s2), "sleep", json!({"ms": 600})).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = h.post(None, Some(&sid), &call("whoami", json!({}))).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(text_of(&slow.await.unwrap()), "slept");
    assert_eq!(text_of(&h.call(None, Some(&sid), "whoami", json!({})).await), "anonymous all");
    Arc::try_unwrap(h).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_capped_in_all_and_per_principal() {
    let auth = AuthConfig {
        tokens: vec![token("a", "token-a-0123456789", &["*"]), token("b", "token-b-0123456789", &["*"])],
        oauth: None,
        ..Default::default()
    };
    let h = start(ServerConfig { max_sessions: 3, max_sessions_per_principal: 2, ..Default::default() }, auth).await;
    let a1 = h.initialize(Some("token-a-0123456789")).await.unwrap();
    h.initialize(Some("token-a-0123456789")).await.unwrap();
    let r = h.post(Some("token-a-0123456789"), None, &init()).send().await.unwrap();
    assert_eq!(r.status(), 429, "a third session for a");
    h.initialize(Some("token-b-0123456789")).await.unwrap();
    let r = h.post(Some("token-b-0123456789"), None, &init()).send().await.unwrap();
    assert_eq!(r.status(), 503, "the server holds as many sessions as it allows");
    // Ending one makes room.
    let r =
        h.http.delete(h.mcp()).bearer_auth("token-a-0123456789").header("mcp-session-id", &a1).send().await.unwrap();
    assert!(r.status().is_success());
    h.initialize(Some("token-b-0123456789")).await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_slow_bodies_are_refused() {
    let h = start(
        ServerConfig { max_body_kib: 1, body_read_timeout_secs: 0.5, ..Default::default() },
        AuthConfig::default(),
    )
    .await;
    let big = call("sleep", json!({"pad": "x".repeat(4096)}));
    let r = h.post(None, None, &big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    // Chunked, without Content-Length: counted as it arrives.
    let body = big.to_string();
    let chunked = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let out = raw(&h.base, &chunked).await;
    assert!(out.starts_with("HTTP/1.1 413"), "{out}");
    // A body that stops arriving.
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"").await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(3));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_connections_are_closed_and_others_are_served() {
    let h = start(ServerConfig { header_read_timeout_secs: 0.5, ..Default::default() }, AuthConfig::default()).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut lorises = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
        lorises.push(s);
    }
    // Meanwhile a normal client is served promptly.
    let t = Instant::now();
    assert!(h.initialize(None).await.is_some());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // Dribbling bytes does not keep a connection open past the timeout.
    let t = Instant::now();
    for (i, s) in lorises.iter_mut().enumerate() {
        if i % 2 == 0 {
            let _ = s.write_all(b"a").await;
        }
    }
    for mut s in lorises {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await.expect("closed by the server");
        // Either closed outright or answered with an error, then closed.
        assert!(matches!(n, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408"), "{n:?}");
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed() {
    let h = start(ServerConfig { max_connections: 3, ..Default::default() }, AuthConfig::default()).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "the fourth connection is closed: {n:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.http.get(format!("{}/healthz", h.base)).send().await.unwrap().status(), 200);
    h.stop().await;
}

async fn disconnect_mid_call(stateless: bool) {
    let h =
        start(ServerConfig { stateless, max_concurrent_calls: 1, ..Default::default() }, AuthConfig::default()).await;
    let sid = h.initialize(None).await;
    let mut r = h.post(None, sid.as_deref(), &call("sleep", json!({"ms": 30000}))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    if !stateless {
        // The priming event arrives at once; the answer would take 30 s.
        let _ = tokio::time::timeout(Duration::from_millis(300), r.chunk()).await;
    } else {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(r); // the client goes away
    let t = Instant::now();
    while h.server.cancelled.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.server.cancelled.load(Ordering::SeqCst), 1, "the tool call was cancelled");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(h.server.finished.load(Ordering::SeqCst), 0);
    // Its slot is free again (max_concurrent_calls = 1).
    assert_eq!(text_of(&h.call(None, sid.as_deref(), "sleep", json!({"ms": 1})).await), "slept");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_call_cancels_it_in_a_session() {
    disconnect_mid_call(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_call_cancels_it_stateless() {
    disconnect_mid_call(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_before_a_json_answer_cancels_the_call() {
    let config = ServerConfig { stateless: true, json_response: true, max_concurrent_calls: 1, ..Default::default() };
    let h = Arc::new(start(config, AuthConfig::default()).await);
    let h2 = h.clone();
    let pending = tokio::spawn(async move { h2.post(None, None, &call("sleep", json!({"ms": 30000}))).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    pending.abort(); // the connection closes before any answer
    let _ = pending.await;
    let t = Instant::now();
    while h.server.cancelled.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.server.cancelled.load(Ordering::SeqCst), 1, "the tool call was cancelled");
    assert_eq!(text_of(&h.call(None, None, "sleep", json!({"ms": 1})).await), "slept", "and its slot freed");
    Arc::try_unwrap(h).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_running_calls_finish_within_the_grace_period() {
    let h = start(ServerConfig { shutdown_grace_secs: 5.0, ..Default::default() }, AuthConfig::default()).await;
    let sid = h.initialize(None).await.unwrap();
    let r = h.post(None, Some(&sid), &call("sleep", json!({"ms": 700}))).send().await.unwrap();
    let body = tokio::spawn(message(r));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (base, http) = (h.base.clone(), h.http.clone());
    let server = h.server.clone();
    let stopping = tokio::spawn(h.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Draining: new connections are refused, and a kept-alive one is told
    // 503. Poll: under load the listener may take a moment to close.
    let t = Instant::now();
    loop {
        match http.get(format!("{base}/readyz")).send().await {
            Err(_) => break,
            Ok(r) if r.status() == 503 => break,
            Ok(r) => assert!(t.elapsed() < Duration::from_secs(2), "still ready while draining: {}", r.status()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(text_of(&body.await.unwrap()), "slept", "the running call finished");
    let took = stopping.await.unwrap();
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(4), "{took:?}");
    assert_eq!(server.finished.load(Ordering::SeqCst), 1);
    assert_eq!(server.cancelled.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancels_calls_still_running_after_the_grace_period() {
    let h =
        start(ServerConfig { shutdown_grace_secs: 0.3, stateless: true, ..Default::default() }, AuthConfig::default())
            .await;
    let r = h.post(None, None, &call("sleep", json!({"ms": 30000}))).send();
    let pending = tokio::spawn(r);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let server = h.server.clone();
    let took = h.stop().await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(server.cancelled.load(Ordering::SeqCst), 1);
    let _ = pending.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_listener_needs_auth_and_host_names() {
    let e = HttpServer::<TestServer>::bind(
        &ServerConfig { listen: "0.0.0.0:0".into(), ..Default::default() },
        &AuthConfig::default(),
        &["books".into()],
    )
    .await
    .err()
    .expect("refused");
    let text = e.to_string();
    assert!(text.contains("auth:") && text.contains("server.allowed_hosts:"), "{text}");
}
