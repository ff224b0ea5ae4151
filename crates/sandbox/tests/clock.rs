//! The held clock behind both walls: time the code waits idle for a human
//! (the host holds the call's `Clock`) does not spend its time limit, while
//! JavaScript that runs meanwhile — a busy loop, a chain of microtasks —
//! still does and is stopped at the deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{Client, Clock, ErrorKind, ExecuteEnv, Host, HostFuture, Isolation, JsValue, Limits, Sandbox};
use serde_json::{json, Value};

mod common;

const TIMEOUT: Duration = Duration::from_millis(300);
/// How long the "human" takes.
const HUMAN: Duration = Duration::from_secs(1);
/// How late past its limit a stopped call may end (two busy cores).
const SLACK: Duration = Duration::from_millis(500);

const WALLS: [Isolation; 2] = [Isolation::Process, Isolation::InProcess];

/// `api.approve()` holds the call's clock for [`HUMAN`] (an approval being
/// asked), then answers; `api.slow()` takes as long without holding it.
struct Approver {
    clock: Clock,
}

impl Host for Approver {
    fn call(&self, _: &str, method: &str, _: Value) -> HostFuture {
        let pause = (method == "approve").then(|| self.clock.pause());
        Box::pin(async move {
            tokio::time::sleep(HUMAN).await;
            drop(pause);
            Ok(json!({"approved": true}))
        })
    }
}

fn env() -> Arc<ExecuteEnv> {
    Arc::new(ExecuteEnv {
        clients: vec![Client { global: "api".into(), methods: vec!["approve".into(), "slow".into()] }],
        aliases: vec![],
        dynamic_clients: vec![],
    })
}

async fn sandbox(isolation: Isolation) -> Sandbox {
    let limits = Limits { timeout: TIMEOUT, ..Limits::default() };
    common::sandbox(isolation, limits, vec![], 1).await
}

/// Runs `code` with a fresh clock the host holds while it "asks".
async fn run(sb: &Sandbox, code: &str) -> (codemode_sandbox::Outcome, Clock, Duration) {
    let clock = Clock::new();
    let host = Arc::new(Approver { clock: clock.clone() });
    let t = Instant::now();
    let outcome = sb.execute_with_clock(code.into(), env(), host, clock.clone()).await;
    (outcome, clock, t.elapsed())
}

fn assert_timed_out(outcome: &codemode_sandbox::Outcome, took: Duration, what: &str) {
    let err = outcome.result.as_ref().expect_err(what);
    assert_eq!(err.kind, ErrorKind::Timeout, "{what}: {err:?}");
    assert!(err.message.contains("time limit of 300 ms"), "{what}: {}", err.message);
    assert!(took < TIMEOUT + SLACK, "{what}: stopped only after {took:?}");
}

/// Once the call ended, nothing of it still holds the clock (its host call
/// was dropped with it).
async fn released(clock: &Clock) {
    let t = Instant::now();
    while clock.is_held() {
        assert!(t.elapsed() < Duration::from_secs(2), "the clock stayed held after the call");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_human_does_not_spend_the_time_limit() {
    for wall in WALLS {
        let sb = sandbox(wall).await;
        let (o, clock, took) = run(&sb, "async () => await api.approve()").await;
        assert_eq!(o.result, Ok(JsValue::Json(json!({"approved": true}))), "{wall}");
        let held = clock.paused_total();
        assert!(
            held >= HUMAN - Duration::from_millis(20) && held < HUMAN + Duration::from_millis(300),
            "{wall}: {held:?}"
        );
        assert!(took >= HUMAN, "{wall}: {took:?}");
        // Overlapping holds, a held wait resumed more than once.
        let code = "async () => { const a = await Promise.all([api.approve(), api.approve()]); return [a, await api.approve()] }";
        let (o, clock, _) = run(&sb, code).await;
        assert!(o.result.is_ok(), "{wall}: {:?}", o.result);
        assert!(clock.paused_total() >= HUMAN * 2 - Duration::from_millis(40), "{wall}: {:?}", clock.paused_total());
        // The worker (or thread) serves the next call as usual.
        let (o, _, _) = run(&sb, "async () => 1").await;
        assert_eq!(o.result, Ok(JsValue::Json(json!(1))), "{wall}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_gives_no_free_cpu_time() {
    for wall in WALLS {
        let sb = sandbox(wall).await;
        let code = "async () => { const p = api.approve(); let t = Date.now(); while (Date.now() - t < 2000) {}; return await p }";
        let (o, clock, took) = run(&sb, code).await;
        assert_timed_out(&o, took, &format!("{wall}: busy loop while held"));
        released(&clock).await;
        let code = "async () => { const p = api.approve(); for (;;) { await Promise.resolve(); let t = Date.now(); while (Date.now() - t < 5) {} } }";
        let (o, clock, took) = run(&sb, code).await;
        assert_timed_out(&o, took, &format!("{wall}: microtasks while held"));
        released(&clock).await;
        // Waiting while held, then running: the run after the wait is
        // counted again (the budget was extended by the wait, no more).
        let code = "async () => { await api.approve(); let t = Date.now(); while (Date.now() - t < 2000) {} }";
        let (o, _, took) = run(&sb, code).await;
        let err = o.result.as_ref().expect_err("busy after the approval");
        assert_eq!(err.kind, ErrorKind::Timeout, "{wall}: {err:?}");
        assert!(took < HUMAN + TIMEOUT + SLACK, "{wall}: {took:?}");
        // A held call left unawaited disturbs nothing after the call.
        let (o, clock, _) = run(&sb, "async () => { api.approve(); return 2 }").await;
        assert_eq!(o.result, Ok(JsValue::Json(json!(2))), "{wall}");
        released(&clock).await;
        let (o, _, _) = run(&sb, "async () => await api.slow().then(() => 3, () => 3)").await;
        assert!(o.result.is_err(), "{wall}: slow still times out after all that: {:?}", o.result);
        let (o, _, _) = run(&sb, "async () => 4").await;
        assert_eq!(o.result, Ok(JsValue::Json(json!(4))), "{wall}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_call_without_a_pause_still_times_out() {
    for wall in WALLS {
        let sb = sandbox(wall).await;
        let (o, clock, took) = run(&sb, "async () => await api.slow()").await;
        assert_timed_out(&o, took, &format!("{wall}: slow host call"));
        assert_eq!(clock.paused_total(), Duration::ZERO, "{wall}");
        // The plain entry point behaves the same.
        let host = Arc::new(Approver { clock: Clock::new() });
        let t = Instant::now();
        let o = sb.execute("async () => await api.slow()".into(), env(), host).await;
        assert_timed_out(&o, t.elapsed(), &format!("{wall}: execute without a clock"));
    }
}
