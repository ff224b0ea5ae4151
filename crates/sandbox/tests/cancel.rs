//! Dropping an `execute` future stops its JavaScript, even a busy loop:
//! in-process the thread is free again at once; behind the process wall the
//! worker is killed and replaced (its own test binary: it counts the
//! process's threads and children).

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_sandbox::{ExecuteEnv, Host, HostFuture, Isolation, Limits, Sandbox};

struct NoHost;
impl Host for NoHost {
    fn call(&self, _: &str, _: &str, _: serde_json::Value) -> HostFuture {
        Box::pin(async { Ok(serde_json::Value::Null) })
    }
}

mod common;

async fn sandbox(isolation: Isolation) -> Sandbox {
    common::sandbox(isolation, Limits { timeout: Duration::from_secs(60), ..Limits::default() }, vec![], 1).await
}

/// Pids of this process's children that are sandbox workers.
fn workers() -> Vec<u32> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // pid (comm) state ppid ...
            let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            after.split_whitespace().nth(1) == Some(me.as_str()) && !after.starts_with('Z')
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_execute_stops_a_busy_loop_in_process() {
    let sb = Arc::new(sandbox(Isolation::InProcess).await);
    let busy = "async () => { while (true) {} }".to_string();
    let call = sb.execute(busy, Arc::new(ExecuteEnv::default()), Arc::new(NoHost));
    assert!(tokio::time::timeout(Duration::from_millis(300), call).await.is_err(), "still running at 300 ms");
    // The only execute thread is free again: a new call answers at once.
    let t = Instant::now();
    let o = sb.execute("async () => 1".into(), Arc::new(ExecuteEnv::default()), Arc::new(NoHost)).await;
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_execute_kills_and_replaces_its_worker() {
    let sb = Arc::new(sandbox(Isolation::Process).await);
    let before = workers();
    assert_eq!(before.len(), 2, "one search and one execute worker: {before:?}");
    let busy = "async () => { while (true) {} }".to_string();
    let call = sb.execute(busy, Arc::new(ExecuteEnv::default()), Arc::new(NoHost));
    assert!(tokio::time::timeout(Duration::from_millis(300), call).await.is_err(), "still running at 300 ms");
    let t = Instant::now();
    let o = sb.execute("async () => 1".into(), Arc::new(ExecuteEnv::default()), Arc::new(NoHost)).await;
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert!(t.elapsed() < Duration::from_millis(500), "replacement took {:?}", t.elapsed());
    let mut after = workers();
    while after.len() != 2 && t.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = workers();
    }
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().any(|p| !before.contains(p)), "the busy worker was replaced: {before:?} → {after:?}");
}
