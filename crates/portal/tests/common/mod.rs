//! Shared helpers: where the real peers are installed, temp dirs, free
//! ports, process checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use codemode_portal::{Portal, ServerConfig, ServerState, Transport};

/// `<repo>/.peers`.
pub fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.peers").canonicalize().unwrap_or_else(|_| missing())
}

fn missing() -> ! {
    panic!("the real MCP servers are not installed: run crates/portal/tests/peers-setup.sh first")
}

/// A file under `.peers/portal-node/node_modules`, which must exist.
pub fn node_module(rel: &str) -> String {
    let p = peers().join("portal-node/node_modules").join(rel);
    if !p.exists() {
        missing();
    }
    p.to_string_lossy().into_owned()
}

/// An executable in `.peers/venv/bin`, which must exist.
pub fn venv_bin(name: &str) -> String {
    let p = peers().join("venv/bin").join(name);
    if !p.exists() {
        missing();
    }
    p.to_string_lossy().into_owned()
}

pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).to_string_lossy().into_owned()
}

/// A fresh empty directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "codemode-portal-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn everything_stdio(name: &str) -> ServerConfig {
    ServerConfig::stdio(name, "node", &[&node_module("@modelcontextprotocol/server-everything/dist/index.js"), "stdio"])
}

pub fn memory(name: &str, file: &Path) -> ServerConfig {
    let mut c = ServerConfig::stdio(name, "node", &[&node_module("@modelcontextprotocol/server-memory/dist/index.js")]);
    if let Transport::Stdio { env, .. } = &mut c.transport {
        env.push(("MEMORY_FILE_PATH".into(), file.to_string_lossy().into_owned()));
    }
    c
}

pub fn filesystem(name: &str, root: &Path) -> ServerConfig {
    ServerConfig::stdio(
        name,
        "node",
        &[&node_module("@modelcontextprotocol/server-filesystem/dist/index.js"), &root.to_string_lossy()],
    )
}

pub fn time(name: &str) -> ServerConfig {
    ServerConfig::stdio(name, &venv_bin("mcp-server-time"), &["--local-timezone", "UTC"])
}

pub fn git(name: &str, repo: &Path) -> ServerConfig {
    ServerConfig::stdio(name, &venv_bin("mcp-server-git"), &["--repository", &repo.to_string_lossy()])
}

pub fn cloudflare_openapi(name: &str) -> ServerConfig {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs/cloudflare-2024-08-06.openapi.json");
    assert!(spec.exists(), "needs ../shared/specs beside the repo ({})", spec.display());
    ServerConfig::stdio(
        name,
        "node",
        &[
            &node_module("@ivotoby/openapi-mcp-server/bin/mcp-server.js"),
            "--transport",
            "stdio",
            "--api-base-url",
            "http://127.0.0.1:9",
            "--openapi-spec",
            &spec.to_string_lossy(),
        ],
    )
}

pub fn flaky(name: &str, extra: &[&str]) -> ServerConfig {
    let script = fixture("flaky_server.js");
    let mut args = vec![script.as_str()];
    args.extend_from_slice(extra);
    ServerConfig::stdio(name, "node", &args)
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Live (not zombie) processes whose process group is `pgid`.
pub fn live_in_group(pgid: u32) -> Vec<u32> {
    let mut out = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid pgrp …; comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" && fields[0] != "X" {
            out.push(pid);
        }
    }
    out
}

/// Waits until `name` is Ready (panics with its status otherwise).
pub async fn wait_ready(portal: &Portal, name: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let st = portal.status().into_iter().find(|s| s.name == name).expect("server configured");
        if st.state == ServerState::Ready {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "`{name}` not ready: {st:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn state_of(portal: &Portal, name: &str) -> ServerState {
    portal.status().into_iter().find(|s| s.name == name).expect("server configured").state
}

/// Runs tsc (from .peers) on a declaration file; returns its output on failure.
pub fn tsc_check(ts: &str, tag: &str) -> Result<(), String> {
    let dir = temp_dir(tag);
    let file = dir.join("decl.ts");
    // A declaration is checked as a module body with one use, so unused types are fine.
    std::fs::write(&file, format!("{ts}\nexport {{}};\n")).unwrap();
    let out = std::process::Command::new("node")
        .arg(node_module("typescript/bin/tsc"))
        .args(["--noEmit", "--strict", "--target", "es2022", "--skipLibCheck"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

/// Waits until no live process is left in group `pgid` (SIGKILL is
/// delivered asynchronously, and a loaded machine reaps late); panics with
/// what is left after 30 s.
pub async fn assert_group_gone(pgid: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = live_in_group(pgid);
        if left.is_empty() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let what: Vec<String> =
                left.iter().map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default()).collect();
            panic!("process group {pgid} still has {what:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs to the test's output when `RUST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
