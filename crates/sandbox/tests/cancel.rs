//! Dropping an `execute` future stops its JavaScript, even a busy loop (its
//! own test binary: it counts the process's sandbox threads).

use std::sync::Arc;
use std::time::Duration;

use codemode_sandbox::{execute, ExecuteEnv, Host, HostFuture, Limits};

struct NoHost;
impl Host for NoHost {
    fn call(&self, _: &str, _: &str, _: serde_json::Value) -> HostFuture {
        Box::pin(async { Ok(serde_json::Value::Null) })
    }
}

fn execute_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("comm")).ok())
        .filter(|c| c.trim().starts_with("codemode-execu"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_execute_stops_a_busy_loop() {
    let limits = Limits { timeout: Duration::from_secs(60), ..Limits::default() };
    let call =
        execute("async () => { while (true) {} }".into(), Arc::new(ExecuteEnv::default()), limits, Arc::new(NoHost));
    assert!(tokio::time::timeout(Duration::from_millis(300), call).await.is_err(), "still running at 300 ms");
    let t = std::time::Instant::now();
    while execute_threads() > 0 && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(execute_threads(), 0, "the dropped call's thread stopped");
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
}
