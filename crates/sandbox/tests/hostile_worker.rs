//! The host side of the pipe against a worker that has been taken over: it
//! speaks the protocol's framing but lies. Every lie must end the call with
//! an error, never hang or crash the host, and the worker must be replaced.
//! The fake worker is a small Python program (the real one is Rust; what
//! matters is what the host receives).

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{
    Client, Clock, ErrorKind, ExecuteEnv, Host, HostFuture, Isolation, JsValue, Limits, Sandbox, SandboxConfig,
    SearchCall, WorkerCommand,
};
use serde_json::{json, Value};

struct Echo;
impl Host for Echo {
    fn call(&self, _: &str, _: &str, args: Value) -> HostFuture {
        Box::pin(async move { Ok(args) })
    }
}

/// A worker that does the handshake, then answers its first call with `LIE`
/// (Python statements with `send(obj)`, `send_raw(bytes)` and `msg`, the call).
fn liar(lie: &str) -> WorkerCommand {
    let program = format!(
        r#"
import json, struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
def read():
    n = struct.unpack('<I', inp.read(4))[0]
    return json.loads(inp.read(n))
def send_raw(b):
    out.write(b); out.flush()
def send(obj):
    b = json.dumps(obj).encode(); send_raw(struct.pack('<I', len(b)) + b)
read()
send("Ready")
msg = read()
{lie}
import time
time.sleep(30)
"#
    );
    WorkerCommand { program: "python3".into(), args: vec!["-c".into(), program] }
}

async fn sandbox(worker: WorkerCommand) -> Sandbox {
    let config = SandboxConfig {
        isolation: Isolation::Process,
        limits: Limits { timeout: Duration::from_secs(2), max_host_calls: 3, ..Limits::default() },
        search_workers: 1,
        execute_workers: 1,
        worker: Some(worker),
    };
    Sandbox::start(config, vec![]).await.unwrap()
}

fn env() -> Arc<ExecuteEnv> {
    Arc::new(ExecuteEnv {
        clients: vec![Client { global: "api".into(), methods: vec!["request".into()] }],
        ..ExecuteEnv::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_worker_ends_its_call_and_nothing_else() {
    let lies = [
        ("a length past the frame cap", "send_raw(struct.pack('<I', 0xFFFFFFFF))"),
        ("a frame that is not JSON", "send_raw(struct.pack('<I', 5) + b'nope!')"),
        ("a message of the wrong kind", "send('Ready')"),
        ("a truncated frame, then exit", "send_raw(struct.pack('<I', 100) + b'{}'); sys.exit(0)"),
        (
            "more host calls than the limit",
            "[send({'HostCall': {'id': i, 'client': 'api', 'method': 'request', 'args': '[]'}}) for i in range(10)]",
        ),
        ("a catalog call in an execute", "send({'SyncCall': {'method': 'tools', 'args': '[]'}})"),
        (
            "a host call with arguments that are not JSON",
            "send({'HostCall': {'id': 0, 'client': 'api', 'method': 'request', 'args': '{{'}})",
        ),
        ("silence", "pass"),
        // Only the host's clock can be held: the worker has no such message.
        ("a worker that tries to hold the clock", "send('Hold')"),
        ("a worker that tries to release the clock", "send('Release')"),
    ];
    for (what, lie) in lies {
        let sb = sandbox(liar(lie)).await;
        let t = Instant::now();
        let o = sb.execute("async () => 1".into(), env(), Arc::new(Echo)).await;
        let took = t.elapsed();
        assert!(took < Duration::from_millis(2000 + 350), "{what}: took {took:?}");
        match &o.result {
            Err(e) => assert!(matches!(e.kind, ErrorKind::Internal | ErrorKind::Timeout), "{what}: {e:?}"),
            // A host call with bad JSON is answered with an error completion;
            // the liar never finishes, so the call must still end.
            Ok(v) => panic!("{what}: a lying worker produced a result {v:?}"),
        }
        // The host still serves: a search (its own, also lying, pool) ends too.
        let o = sb.search("async () => 1".into(), SearchCall::default()).await;
        assert!(o.result.is_err(), "{what}: search");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_worker_is_what_answers_after_a_liar_is_replaced() {
    // A pool whose worker program is the real one answers correctly — the
    // control for the test above.
    let real = WorkerCommand { program: env!("CARGO_BIN_EXE_codemode-sandbox-worker").into(), args: vec![] };
    let sb = sandbox(real).await;
    let o = sb.execute("async () => (await api.request({a: 1})).length".into(), env(), Arc::new(Echo)).await;
    assert_eq!(o.result.unwrap(), JsValue::Json(json!(1)));
}

/// Holds the call's clock for `HUMAN` (an approval being asked), then answers.
struct Approver(Clock);
const HUMAN: Duration = Duration::from_secs(1);
impl Host for Approver {
    fn call(&self, _: &str, _: &str, args: Value) -> HostFuture {
        let pause = self.0.pause();
        Box::pin(async move {
            tokio::time::sleep(HUMAN).await;
            drop(pause);
            Ok(args)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_clock_moves_the_kill_by_the_held_time_only() {
    // The worker asks for an approval, then goes silent (or burns CPU): the
    // host kills it at its deadline moved by the time the clock was held,
    // not earlier while the human decides, and not later.
    let lie = "send({'HostCall': {'id': 0, 'client': 'api', 'method': 'request', 'args': '[]'}})";
    let sb = sandbox(liar(lie)).await;
    let clock = Clock::new();
    let t = Instant::now();
    let o =
        sb.execute_with_clock("async () => 1".into(), env(), Arc::new(Approver(clock.clone())), clock.clone()).await;
    let took = t.elapsed();
    assert_eq!(o.result.as_ref().map_err(|e| e.kind), Err(ErrorKind::Timeout), "{:?}", o.result);
    let held = clock.paused_total();
    assert!(held >= HUMAN - Duration::from_millis(20), "{held:?}");
    let limit = Duration::from_secs(2);
    assert!(took >= limit + held, "killed before its extended deadline: {took:?} (held {held:?})");
    assert!(took < limit + held + Duration::from_millis(350), "killed late: {took:?} (held {held:?})");
}
