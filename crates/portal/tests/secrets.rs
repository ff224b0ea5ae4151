//! Credentials given to upstream MCP servers (`env_from` / `headers_env` in
//! the codemode config) never come back to the code, in any form, and tool
//! results are bounded like HTTP responses. Uses tests/fixtures/flaky_server.js.

mod common;

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use codemode_portal::{Portal, PortalOptions, Transport};
use common::*;
use serde_json::{json, Value};

const CANARY: &str = "mcp-Canary/T0ken+5d8a91c3";

/// The canary in every form worth looking for: raw, hex, every byte
/// percent-encoded, and 8-character windows of what base64 and base64url
/// encode from the canary alone at each alignment.
fn forms() -> Vec<String> {
    let b = CANARY.as_bytes();
    let mut out = vec![
        CANARY.to_ascii_lowercase(),
        b.iter().map(|x| format!("{x:02x}")).collect(),
        b.iter().map(|x| format!("%{x:02x}")).collect(),
    ];
    for k in 0..3 {
        let mut input = vec![b'x'; k];
        input.extend_from_slice(b);
        let (start, end) = ((8 * k).div_ceil(6), 8 * (k + b.len()) / 6);
        for e in [&STANDARD, &URL_SAFE] {
            let enc = e.encode(&input);
            out.extend(enc.as_bytes()[start..end].windows(8).map(|w| String::from_utf8_lossy(w).to_ascii_lowercase()));
        }
    }
    out
}

fn assert_clean(v: &Value, what: &str) {
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
    for t in texts {
        let lower = t.to_ascii_lowercase();
        for f in forms() {
            assert!(!lower.contains(&f), "{what}: a form of the canary (`{f}`) came back in {t}");
        }
    }
}

fn options(max_result_bytes: usize) -> PortalOptions {
    PortalOptions {
        // Patience for a slow start on a busy machine; nothing here tests it.
        connect_timeout: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(100),
        max_result_bytes,
        ..PortalOptions::default()
    }
}

fn with_canary() -> codemode_portal::ServerConfig {
    let mut cfg = flaky("flaky", &[]);
    let Transport::Stdio { env, .. } = &mut cfg.transport else { unreachable!() };
    env.push(("FLAKY_TOKEN".into(), CANARY.into()));
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_come_back_from_results_errors_or_status() {
    let portal = Portal::start_with(vec![with_canary()], Duration::from_secs(10), options(8 << 20)).await.unwrap();
    wait_ready(&portal, "flaky", Duration::from_secs(60)).await;

    let r = portal.call("flaky_leak", json!({"name": "FLAKY_TOKEN"})).await.unwrap();
    assert_clean(&r, "result");
    // The server really sent it, in all those forms, and they were replaced.
    let encodings = &r[0];
    assert_eq!(encodings["raw"], "[REDACTED]", "{r}");
    for key in ["b64", "b64url", "hex", "HEX", "uri", "every_byte", "u_escaped_text", "slashes", "upper"] {
        assert!(encodings[key].as_str().unwrap().contains("[REDACTED]"), "{key}: {r}");
    }
    assert!(encodings.get("[REDACTED]").is_some(), "a key: {r}");
    assert_eq!(r[1], json!({"escaped": "[REDACTED]"}));
    assert_eq!(r[2], "plain [REDACTED]");

    let e = portal.call("flaky_leak_error", json!({"name": "FLAKY_TOKEN"})).await.unwrap_err();
    assert_clean(&e, "tool error");
    assert_eq!(e["name"], "ToolError");
    assert!(e["message"].as_str().unwrap().contains("bad credential [REDACTED]"), "{e}");

    // Quoted stderr (the server prints it and dies): scrubbed in the error…
    let e = portal.call("flaky_leak_stderr", json!({"name": "FLAKY_TOKEN"})).await.unwrap_err();
    assert_clean(&e, "crash error");
    assert!(e["message"].as_str().unwrap().contains("token [REDACTED] rejected"), "{e}");
    // …and in the status the code can read through codemode.tools().
    assert_clean(&serde_json::to_value(portal.status()).unwrap(), "status");
    assert_clean(&serde_json::to_value(portal.tools()).unwrap(), "tools");
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_are_bounded_by_max_response_kib() {
    let limit = 2 * 1024 * 1024;
    let portal = Portal::start_with(vec![with_canary()], Duration::from_secs(10), options(limit)).await.unwrap();
    wait_ready(&portal, "flaky", Duration::from_secs(60)).await;
    let e = portal.call("flaky_big", json!({"bytes": 10 * 1024 * 1024})).await.unwrap_err();
    assert_eq!(e["name"], "ResultTooLarge", "{}", &e.to_string()[..300.min(e.to_string().len())]);
    let m = e["message"].as_str().unwrap();
    assert!(m.contains("limit of 2097152 bytes") && m.contains("max_response_kib = 2048"), "{m}");
    assert!(m.contains("10485762 bytes"), "the measured size: {m}");
    assert_eq!((e["server"].as_str(), e["tool"].as_str()), (Some("flaky"), Some("big")));
    assert!(e.to_string().len() < 2000, "the error carries none of the result");
    // Under the limit passes whole.
    let r = portal.call("flaky_big", json!({"bytes": 1024 * 1024})).await.unwrap();
    assert_eq!(r.as_str().unwrap().len(), 1024 * 1024);
    portal.shutdown().await;
}
