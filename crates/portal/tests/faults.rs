//! Misbehaving upstreams (tests/fixtures/flaky_server.js): crashes mid-call,
//! hangs, garbage on stdout, exits at start, bad schemas, name collisions,
//! tool-list changes, pagination; and that nothing outlives the portal.

mod common;

use std::time::{Duration, Instant};

use codemode_portal::{Portal, PortalOptions, ServerState};
use common::*;
use serde_json::{json, Value};

/// Quick reconnects, and patience for everything else. How long a server
/// takes to start is the machine's business (server-everything took over
/// 3 s to list its tools on a busy 2-core machine): what these tests check
/// is what the portal does, so no wait here is a guess at machine speed.
/// They end as soon as the thing they wait for happens; the bounds only
/// keep a broken portal from hanging the suite.
fn fast() -> PortalOptions {
    PortalOptions {
        connect_timeout: PATIENCE,
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
        max_attempts: 3,
        stable_after: Duration::from_secs(5),
        ready_wait: PATIENCE,
        ..PortalOptions::default()
    }
}

/// The longest any wait in these tests may take before it is a failure.
const PATIENCE: Duration = Duration::from_secs(60);

/// How long `start` waits for the first connection attempts.
const START_WAIT: Duration = Duration::from_secs(10);

async fn start(servers: Vec<codemode_portal::ServerConfig>) -> Portal {
    Portal::start_with(servers, START_WAIT, fast()).await.unwrap()
}

/// Polls `probe` until it returns `Some`, for at most [`PATIENCE`].
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How many `notifications/cancelled` the flaky fixture `server` has seen.
async fn cancelled(portal: &Portal, tool: &str) -> usize {
    portal.call(tool, json!({})).await.unwrap().as_array().map(Vec::len).unwrap_or(0)
}

fn err_name(e: &Value) -> &str {
    e["name"].as_str().unwrap_or_default()
}

fn err_msg(e: &Value) -> &str {
    e["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_call_is_a_clear_error_and_the_server_comes_back() {
    let portal = start(vec![flaky("flaky", &[]), everything_stdio("everything")]).await;
    wait_ready(&portal, "flaky", PATIENCE).await;
    wait_ready(&portal, "everything", PATIENCE).await;
    let pid_before = portal.call("flaky_pid", json!({})).await.unwrap();

    // A call in flight on the same session when it crashes fails too, clearly.
    let (crash, inflight, other) = tokio::join!(
        portal.call("flaky_crash", json!({})),
        portal.call("flaky_slow", json!({"ms": 3000})),
        portal.call("everything_echo", json!({"message": "still here"})),
    );
    let e = crash.unwrap_err();
    assert_eq!(err_name(&e), "UpstreamError", "{e}");
    assert!(err_msg(&e).contains("closed during the call"), "{e}");
    assert!(err_msg(&e).contains("crashing on purpose"), "stderr is quoted: {e}");
    assert_eq!(e["server"], "flaky");
    assert_eq!(e["tool"], "crash");
    assert_eq!(err_name(&inflight.unwrap_err()), "UpstreamError");
    // The rest keeps working.
    assert_eq!(other.unwrap(), json!("Echo: still here"));

    // Reconnects with backoff; the next call waits for it (up to
    // `ready_wait`) instead of failing, and works.
    let pid_after = portal.call("flaky_pid", json!({})).await.unwrap();
    assert_ne!(pid_before, pid_after, "a new process");
    assert_eq!(state_of(&portal, "flaky"), ServerState::Ready);
    // Tools stayed listed throughout.
    assert!(portal.tool("flaky_echo").is_some());
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_call_times_out_is_cancelled_upstream_and_others_run() {
    let mut cfg = flaky("flaky", &[]);
    cfg.call_timeout = Duration::from_millis(500);
    let portal = start(vec![cfg]).await;
    let t = Instant::now();
    let (hang, echo) = tokio::join!(portal.call("flaky_hang", json!({})), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        portal.call("flaky_echo", json!({"text": "x"})).await
    });
    let e = hang.unwrap_err();
    assert_eq!(err_name(&e), "TimeoutError", "{e}");
    assert!(err_msg(&e).contains("0.5s") && err_msg(&e).contains("cancelled"), "{e}");
    // The fixture never answers: only the call timeout can have ended it.
    assert!(t.elapsed() >= Duration::from_millis(500), "{:?}", t.elapsed());
    assert_eq!(echo.unwrap(), json!("echo: x"), "a hanging call blocks nothing");

    // The upstream was told (notifications/cancelled), once.
    eventually("the cancellation reaches the server", || async {
        (cancelled(&portal, "flaky_cancelled").await >= 1).then_some(())
    })
    .await;
    assert_eq!(cancelled(&portal, "flaky_cancelled").await, 1);

    // Dropping the call future cancels it upstream as well.
    let mut cfg = flaky("flaky2", &[]);
    cfg.call_timeout = Duration::from_secs(30);
    let p2 = start(vec![cfg]).await;
    let r = tokio::time::timeout(Duration::from_millis(200), p2.call("flaky2_hang", json!({}))).await;
    assert!(r.is_err());
    eventually("the dropped call's cancellation reaches the server", || async {
        (cancelled(&p2, "flaky2_cancelled").await >= 1).then_some(())
    })
    .await;
    assert_eq!(cancelled(&p2, "flaky2_cancelled").await, 1);
    portal.shutdown().await;
    p2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_stops_answering_is_replaced() {
    let mut cfg = flaky("f", &[]);
    cfg.call_timeout = Duration::from_millis(500);
    let portal = start(vec![cfg]).await;
    let pid = portal.call("f_pid", json!({})).await.unwrap();
    let e = portal.call("f_freeze", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "TimeoutError", "{e}");
    // The ping after the timeout gets no answer either: the session is
    // dropped and a new process started; calls work again.
    let deadline = Instant::now() + PATIENCE;
    let again = loop {
        match portal.call("f_pid", json!({})).await {
            Ok(v) => break v,
            Err(e) => {
                assert!(Instant::now() < deadline, "never recovered: {e} {:?}", portal.status());
            }
        }
    };
    assert_ne!(pid, again);
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_stdout() {
    // Only garbage: never becomes ready; the error says why; start is not
    // blocked. The connect timeout is what ends each attempt here, so it is
    // short: start returns once the first attempt failed, well before its
    // own wait is over (it would wait START_WAIT for a server still trying).
    let junk_options = PortalOptions { connect_timeout: Duration::from_secs(1), ..fast() };
    let t = Instant::now();
    let junk =
        Portal::start_with(vec![flaky("junk", &["--mode", "garbage-only"])], START_WAIT, junk_options).await.unwrap();
    assert!(t.elapsed() < START_WAIT, "start waited {:?}", t.elapsed());
    let portal = start(vec![flaky("noisy", &["--mode", "noisy"])]).await;
    // Noise between valid messages is skipped: that server works.
    assert_eq!(portal.call("noisy_echo", json!({"text": "a"})).await.unwrap(), json!("echo: a"));
    assert_eq!(portal.call("noisy_garbage", json!({})).await.unwrap(), json!("after garbage"));
    match state_of(&junk, "junk") {
        ServerState::Reconnecting { last_error, .. } | ServerState::Failed(last_error) => {
            assert!(last_error.contains("initialize"), "{last_error}")
        }
        other => panic!("junk: {other:?}"),
    }
    let e = junk.call("junk_echo", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolNotFound", "never listed: {e}");
    assert!(err_msg(&e).contains("junk"), "{e}");
    portal.shutdown().await;
    junk.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_exits_at_start_fails_with_its_stderr_and_gives_up() {
    let portal = start(vec![flaky("dead", &["--mode", "exit-on-start"]), flaky("ok", &[])]).await;
    wait_ready(&portal, "ok", PATIENCE).await;
    // Three quick attempts (100, 200 ms backoff), then Failed.
    let deadline = Instant::now() + PATIENCE;
    let err = loop {
        if let ServerState::Failed(e) = state_of(&portal, "dead") {
            break e;
        }
        assert!(Instant::now() < deadline, "{:?}", portal.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(err.contains("missing configuration file"), "{err}");
    let st = portal.status();
    assert_eq!(st[0].tools, 0);
    // Missing command: a clear error too.
    let p2 = start(vec![codemode_portal::ServerConfig::stdio("nope", "/nonexistent/mcp-server", &[])]).await;
    match state_of(&p2, "nope") {
        ServerState::Reconnecting { last_error, .. } | ServerState::Failed(last_error) => {
            assert!(last_error.contains("cannot start `/nonexistent/mcp-server`"), "{last_error}")
        }
        other => panic!("{other:?}"),
    }
    portal.shutdown().await;
    p2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schemas_collisions_and_dropped_tools_are_reported() {
    let portal = start(vec![flaky("f", &[])]).await;
    let bad = portal.tool("f_bad_schema").expect("still listed");
    assert!(bad.schema_problem.as_deref().unwrap().contains("a string"), "{bad:?}");
    assert_eq!(portal.call("f_bad_schema", json!({"x": 1})).await.unwrap(), json!({"got": {"x": 1}}), "still callable");
    let untyped = portal.tool("f_untyped_schema").unwrap();
    assert!(untyped.schema_problem.is_some());
    // The schema it has is still used for validation.
    let e = portal.call("f_untyped_schema", json!({"a": "x"})).await.unwrap_err();
    assert!(err_msg(&e).contains("args.a: expected number"), "{e}");
    // Both colliding tools are withheld, and the error names both.
    assert!(portal.tool("f_get_file").is_none());
    let e = portal.call("f_get_file", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "NameCollision");
    assert!(err_msg(&e).contains("`get-file`") && err_msg(&e).contains("`get_file`"), "{e}");
    assert!(portal.types(Some("f_get_file")).unwrap_err().contains("ambiguous"));
    let st = &portal.status()[0];
    assert!(st.problems.iter().any(|p| p.contains("ambiguous")), "{st:?}");
    assert!(st.problems.iter().any(|p| p.contains("without a name")), "{st:?}");
    assert!(st.problems.iter().any(|p| p.contains("schema problems")), "{st:?}");
    assert_eq!(st.upstream.as_deref(), Some("flaky-fixture 1.0.0"));
    // Types render for the broken ones and type-check.
    let ts = portal.types(None).unwrap();
    assert!(ts.contains("f_bad_schema(args?: FBadSchemaInput): Promise<unknown>;"), "{ts}");
    tsc_check(&ts, "flaky-ts").unwrap();
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_and_errors_unwrap() {
    let portal = start(vec![flaky("f", &[])]).await;
    assert_eq!(portal.call("f_json", json!({"value": {"a": [1, 2]}})).await.unwrap(), json!({"a": [1, 2]}));
    assert_eq!(portal.call("f_texts", json!({})).await.unwrap(), json!([{"a": 1}, "plain"]));
    assert_eq!(
        portal.call("f_image", json!(null)).await.unwrap(),
        json!([{"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"}, "caption"])
    );
    assert_eq!(portal.call("f_structured", json!({})).await.unwrap(), json!({"n": 42}));
    let e = portal.call("f_fail", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolError");
    assert_eq!(err_msg(&e), "codemode.f_fail failed: disk is full");
    let e = portal.call("f_rpc_error", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "UpstreamError");
    assert!(err_msg(&e).contains("boom"), "{e}");
    assert_eq!(e["code"], -32000);
    assert_eq!(e["data"], json!({"why": "testing"}));
    let e = portal.call("f_echo", json!([1])).await.unwrap_err();
    assert_eq!(err_name(&e), "InvalidArguments");
    assert!(err_msg(&e).contains("an array"), "{e}");
    let e = portal.call("f_ecko", json!({})).await.unwrap_err();
    assert_eq!(err_name(&e), "ToolNotFound");
    assert!(err_msg(&e).contains("did you mean codemode.f_echo"), "{e}");
    // `codemode.` prefix accepted.
    assert_eq!(portal.call("codemode.f_echo", json!({"text": "p"})).await.unwrap(), json!("echo: p"));
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_list_changes_are_picked_up_and_pages_are_followed() {
    let portal = start(vec![flaky("f", &["--page-size", "3"])]).await;
    let before = portal.tools().len();
    assert_eq!(before, 21, "24 definitions over 8 pages: 23 named, minus the colliding pair");
    let mut changes = portal.changes();
    changes.borrow_and_update();
    portal.call("f_add_tool", json!({"name": "fresh-tool"})).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while portal.tool("f_fresh_tool").is_none() {
        assert!(Instant::now() < deadline, "list_changed not applied");
        let _ = tokio::time::timeout(Duration::from_millis(200), changes.changed()).await;
    }
    assert_eq!(portal.tools().len(), before + 1);
    assert_eq!(portal.call("f_fresh_tool", json!({})).await.unwrap(), json!("fresh-tool ok"));
    portal.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_orphans_after_shutdown_or_drop() {
    // Each fixture starts a grandchild (`sleep 600`) in its process group.
    let portal = start(vec![flaky("a", &["--grandchild"]), flaky("b", &["--grandchild"])]).await;
    let groups = portal.process_groups();
    assert_eq!(groups.len(), 2, "{groups:?}");
    for (_, g) in &groups {
        assert_eq!(live_in_group(*g).len(), 2, "node + sleep in group {g}");
    }
    let t = Instant::now();
    portal.shutdown().await;
    let took = t.elapsed();
    for (_, g) in &groups {
        assert_group_gone(*g).await;
    }
    assert!(portal.status().iter().all(|s| s.state == ServerState::Stopped));
    // Children that exit on stdin EOF end well before the portal's own
    // bound for those that ignore everything (about 10 s each).
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}: the children did not exit on EOF");
    let e = portal.call("a_echo", json!({"text": "x"})).await.unwrap_err();
    assert!(err_msg(&e).contains("shut down"), "{e}");

    // Dropping the portal without shutdown kills the groups at once.
    let portal = start(vec![flaky("c", &["--grandchild"])]).await;
    let groups = portal.process_groups();
    assert_eq!(groups.len(), 1);
    drop(portal);
    for (_, g) in &groups {
        assert_group_gone(*g).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_run_in_parallel_on_one_session() {
    let portal = start(vec![flaky("f", &[])]).await;
    wait_ready(&portal, "f", PATIENCE).await;
    let t = Instant::now();
    let calls = (0..20).map(|i| portal.call("f_slow", json!({"ms": 300 + i})));
    let results = futures::future::join_all(calls).await;
    let took = t.elapsed();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    // One after the other they take 6.2 s; in parallel about 0.3 s. Half
    // the serial time tells the two apart on any machine.
    let serial: Duration = (0..20).map(|i| Duration::from_millis(300 + i)).sum();
    assert!(took < serial / 2, "20 × 300 ms took {took:?}: not parallel");
    println!("20 parallel 300 ms calls on one stdio session: {took:?}");
    portal.shutdown().await;
}
