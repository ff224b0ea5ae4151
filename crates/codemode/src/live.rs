//! Live reload: the served state behind one swappable handle.
//!
//! [`Live`] is the MCP handler both transports serve. It holds the current
//! [`CodemodeServer`] (service, tools, server info) behind a lock that is
//! only ever held to clone or replace it: every request clones the current
//! server at its start and runs on that clone to its end. A reload builds
//! the next server completely (config, specs, sandbox, portal) beside the
//! running one and swaps it in at once; calls already running finish on the
//! old one, which is shut down ([`retire`]) once nothing holds it any more.
//! A reload that fails — a config that does not parse, a spec that does not
//! load — is logged and changes nothing.
//!
//! What asks for a reload ([`Trigger`]): SIGHUP ([`hangups`]), the opt-in
//! file watcher ([`watch`], `serve --watch`), and the periodic refresh of
//! remote specs ([`refresh`], `[[api]] refresh_secs`). [`reloads`] runs them
//! one at a time: triggers that arrive during a reload make one more.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, GetTaskParams, GetTaskResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerConfig, Tool, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use tokio::sync::mpsc;

use crate::server::CodemodeServer;

/// The handler the transports serve: the current [`CodemodeServer`],
/// replaced whole by a reload. Cloning shares the handle.
#[derive(Clone)]
pub struct Live {
    current: Arc<RwLock<CodemodeServer>>,
}

impl Live {
    /// Serves `server` until a reload replaces it.
    pub fn new(server: CodemodeServer) -> Self {
        Live { current: Arc::new(RwLock::new(server)) }
    }

    /// The server new requests run on (a cheap clone of shared parts).
    pub fn current(&self) -> CodemodeServer {
        // A poisoned lock still holds a whole server: the only writer
        // replaces it in one assignment.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `next` in place and returns the one it replaced.
    fn swap(&self, next: CodemodeServer) -> CodemodeServer {
        let mut slot = self.current.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *slot, next)
    }
}

// Every method `CodemodeServer` implements, on the server current when the
// request arrived. A method added there must be added here, or clients get
// rmcp's default for it (tests/integration/test_reload.py lists tools,
// searches and executes through this handler).
impl ServerHandler for Live {
    fn get_info(&self) -> ServerConfig {
        self.current().get_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.current().supported_protocol_versions()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        self.current().list_tools(request, context).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.current().get_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.current().call_tool(request, context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        self.current().get_task(request, context).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.current().update_task(request, context).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.current().cancel_task(request, context).await
    }
}

/// Why a reload was asked for (logged with it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Hangup,
    /// A watched file changed (`serve --watch`).
    Changed(PathBuf),
    /// A remote spec with `refresh_secs` changed on its server.
    Refreshed {
        /// The API whose spec changed.
        api: String,
    },
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Hangup => write!(f, "SIGHUP"),
            Trigger::Changed(p) => write!(f, "{} changed", p.display()),
            Trigger::Refreshed { api } => write!(f, "the spec of `{api}` changed on its server"),
        }
    }
}

/// One built state: the server, and what the next reloads watch.
pub struct Generation {
    /// The server to swap in.
    pub server: CodemodeServer,
    /// Local files whose change reloads (`serve --watch`): the config, the
    /// `--mcp-config` file, local spec files.
    pub watched: Vec<PathBuf>,
    /// Remote specs revalidated periodically (`refresh_secs`).
    pub refresh: Vec<Refresh>,
    /// What of the config only a restart applies (`[server]`, `[auth]`):
    /// a reload that changes it says so.
    pub restart_only: String,
}

/// A remote spec (or introspected schema) to revalidate every `every`.
#[derive(Clone, Debug)]
pub struct Refresh {
    /// The API it belongs to.
    pub api: String,
    /// What is asked again.
    pub of: RefreshOf,
    /// The interval.
    pub every: Duration,
}

/// What a refresh asks again.
#[derive(Clone)]
pub enum RefreshOf {
    /// A spec (or GraphQL schema) at an http(s) URL: a conditional GET
    /// through the cache.
    Url(url::Url),
    /// A GraphQL API's introspected schema: introspected again through the
    /// API's own client and compared with the cached copy.
    Introspection(Box<codemode_upstream::Upstream>),
}

impl std::fmt::Debug for RefreshOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefreshOf::Url(u) => write!(f, "Url({u})"),
            RefreshOf::Introspection(u) => write!(f, "Introspection({})", u.config().base_url),
        }
    }
}

/// A sender of reload requests: the channel holds one pending request, so
/// any number of triggers during a reload make exactly one more.
pub type Triggers = mpsc::Sender<Trigger>;

/// The channel [`reloads`] reads.
pub fn channel() -> (Triggers, mpsc::Receiver<Trigger>) {
    mpsc::channel(1)
}

/// Sends `why` unless a reload is already pending (which will see the same
/// files).
fn ask(tx: &Triggers, why: Trigger) {
    let _ = tx.try_send(why);
}

/// Runs reloads as they are asked for, one at a time, until every sender is
/// gone. `rebuild` builds the next generation from the files as they are
/// now (handed the current server, whose tasks and parked approval rounds
/// carry over). `first` is the generation already serving.
pub async fn reloads<F, Fut>(live: Live, tx: Triggers, mut rx: mpsc::Receiver<Trigger>, first: Generation, rebuild: F)
where
    F: Fn(CodemodeServer) -> Fut,
    Fut: std::future::Future<Output = Result<Generation, Vec<String>>>,
{
    let mut restart_only = first.restart_only.clone();
    let mut helpers = Helpers::start(&first, &tx);
    drop(first);
    drop(tx);
    while let Some(why) = rx.recv().await {
        let started = Instant::now();
        tracing::info!(trigger = %why, "reloading the config and specs");
        match rebuild(live.current()).await {
            Ok(next) => {
                if next.restart_only != restart_only {
                    tracing::warn!("[server] and [auth] changed: they apply only after a restart (the rest of the new config is serving)");
                }
                restart_only = next.restart_only.clone();
                let triggers = helpers.triggers.clone();
                helpers.stop();
                helpers = Helpers::start(&next, &triggers);
                let apis = next.server.service().apis.len();
                let old = live.swap(next.server);
                retire(old);
                tracing::info!(
                    trigger = %why,
                    apis,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "reloaded: new calls use the new config; running calls finish on the old one"
                );
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!("reload: {p}");
                }
                tracing::error!(
                    trigger = %why,
                    problems = problems.len(),
                    "reload failed: still serving the previous config (fix the problems above, then reload again)"
                );
            }
        }
    }
    helpers.stop();
}

/// The watcher and refresh tasks of one generation.
struct Helpers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    triggers: Triggers,
}

impl Helpers {
    fn start(generation: &Generation, tx: &Triggers) -> Helpers {
        let mut tasks = Vec::new();
        if !generation.watched.is_empty() {
            tasks.push(tokio::spawn(watch(generation.watched.clone(), WATCH_EVERY, tx.clone())));
        }
        for r in &generation.refresh {
            tasks.push(tokio::spawn(refresh(r.clone(), tx.clone())));
        }
        Helpers { tasks, triggers: tx.clone() }
    }

    fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// Shuts `old` down once no request holds it any more: a running call (or a
/// task, or a parked approval round) keeps it — its sandbox, its portal
/// connections, its audit store — until it ends.
pub fn retire(old: CodemodeServer) {
    let service = old.service_handle();
    drop(old);
    tokio::spawn(async move {
        let started = Instant::now();
        // Every clone of the old server holds the service: the count falls
        // to one (this task's) when the last of them is dropped.
        while Arc::strong_count(&service) > 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        service.shutdown().await;
        tracing::info!(waited_ms = started.elapsed().as_millis() as u64, "previous config retired");
    });
}

/// Asks for a reload on every SIGHUP (a no-op where there is none). Call
/// before start-up: from then on SIGHUP no longer ends the process, and one
/// that arrives while the APIs load is kept for the reload loop.
pub fn hangups(tx: Triggers) {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP received: reloading");
                        ask(&tx, Trigger::Hangup);
                    }
                });
            }
            Err(e) => tracing::warn!("cannot listen for SIGHUP, so it cannot reload: {e}"),
        }
    }
    #[cfg(not(unix))]
    drop(tx);
}

/// How often `serve --watch` looks at the watched files.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// What a watched file looks like: its modification time and length (or
/// that it is missing — an editor's rename-over leaves a gap).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Polls `paths` every `every` and asks for a reload when one changed and
/// then held still for one more look (an editor writing in several steps
/// makes one reload). Polling, not inotify: it sees files replaced by
/// rename, on every platform and file system, for a handful of `stat`s.
///
/// The files are looked at once when this is called, not when the future
/// first runs: a change in between is a change.
pub fn watch(paths: Vec<PathBuf>, every: Duration, tx: Triggers) -> impl std::future::Future<Output = ()> {
    let seen: Vec<Stamp> = paths.iter().map(|p| stamp(p)).collect();
    watching(paths, seen, every, tx)
}

async fn watching(paths: Vec<PathBuf>, mut seen: Vec<Stamp>, every: Duration, tx: Triggers) {
    let mut settling: Option<usize> = None;
    loop {
        tokio::time::sleep(every).await;
        let now: Vec<Stamp> = paths.iter().map(|p| stamp(p)).collect();
        let changed = now.iter().zip(&seen).position(|(a, b)| a != b);
        match (changed, settling) {
            (Some(_), _) => settling = changed,
            (None, Some(i)) => {
                // Still since the last look: the write is done.
                settling = None;
                if now[i].is_some() {
                    tracing::info!(file = %paths[i].display(), "watched file changed");
                    ask(&tx, Trigger::Changed(paths[i].clone()));
                }
            }
            (None, None) => {}
        }
        seen = now;
    }
}

/// Revalidates `r`'s spec every `r.every` through the spec cache and asks
/// for a reload when its server has a new one (a 304 costs one request and
/// changes nothing). The reload then reads the new copy from the cache.
pub async fn refresh(r: Refresh, tx: Triggers) {
    use codemode_spec::cache::Origin;
    let http = reqwest::Client::new();
    let what = match r.of {
        RefreshOf::Url(_) => "spec",
        RefreshOf::Introspection(_) => "schema",
    };
    loop {
        tokio::time::sleep(r.every).await;
        let limit = 256 * 1024 * 1024;
        let origin = match &r.of {
            RefreshOf::Url(url) => codemode_spec::cache::fetch(url, &http, limit).await.map(|f| f.origin),
            RefreshOf::Introspection(upstream) => crate::graphql::reintrospect(&r.api, upstream).await,
        };
        match origin {
            Ok(origin) => match origin {
                Origin::Revalidated => tracing::debug!(api = %r.api, "refresh: the {what} is unchanged"),
                Origin::Downloaded | Origin::Uncached => {
                    tracing::info!(api = %r.api, "refresh: the {what} changed on its server");
                    ask(&tx, Trigger::Refreshed { api: r.api.clone() });
                }
                Origin::Stale { reason, .. } => {
                    tracing::warn!(api = %r.api, "refresh: {reason}; still serving the {what} loaded before")
                }
            },
            Err(e) => tracing::warn!(api = %r.api, "refresh: {e}; still serving the {what} loaded before"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next reload request; only a watcher that never reports waits
    /// the whole bound.
    async fn next(rx: &mut mpsc::Receiver<Trigger>) -> Option<Trigger> {
        tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("no reload asked for")
    }

    #[tokio::test]
    async fn a_watched_file_reloads_once_per_settled_change() {
        let dir = std::env::temp_dir().join(format!("codemode-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("codemode.toml");
        std::fs::write(&file, "a").unwrap();
        let (tx, mut rx) = channel();
        let task = tokio::spawn(watch(vec![file.clone()], Duration::from_millis(20), tx));
        // Two writes in a row (different lengths: mtime granularity does
        // not matter) make one reload, once the file holds still.
        std::fs::write(&file, "bb").unwrap();
        std::fs::write(&file, "ccc").unwrap();
        assert_eq!(next(&mut rx).await, Some(Trigger::Changed(file.clone())));
        // Removing it (an editor's rename gap) asks for nothing; its return does.
        std::fs::remove_file(&file).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(rx.try_recv().is_err(), "a missing file is not a change to reload");
        std::fs::write(&file, "dddd").unwrap();
        assert_eq!(next(&mut rx).await, Some(Trigger::Changed(file.clone())));
        task.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
