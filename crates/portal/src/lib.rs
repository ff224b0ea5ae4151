//! Portal mode: many upstream MCP servers behind codemode's two tools.
//!
//! A [`Portal`] connects to every configured upstream ([`ServerConfig`]:
//! a child process over stdio, Streamable HTTP, or the legacy HTTP+SSE
//! transport of 2024-11-05) in the background and
//! exposes their tools under one namespace, as Cloudflare's MCP server
//! portals do in Code Mode:
//! - in `search`, the model reads [`Portal::tools`] (every tool, names
//!   sanitised to `<server>_<tool>`) and [`Portal::types`] (TypeScript
//!   declarations with JSDoc, generated from the JSON Schemas);
//! - in `execute`, `codemode.<server>_<tool>(args)` becomes [`Portal::call`]:
//!   arguments are checked against the input schema, the call goes out on
//!   the server's session with its per-call timeout, and the result is
//!   unwrapped (`structuredContent`, JSON text, …) or turned into an error
//!   object the sandbox throws.
//!
//! Upstreams are untrusted and unreliable. One that is slow, broken or
//! crashing blocks nothing else: it is reconnected with bounded exponential
//! backoff (see [`PortalOptions`]), its last tool list stays visible
//! meanwhile, and its state is in [`Portal::status`]. A tool list is
//! refreshed on `notifications/tools/list_changed`. Tools with invalid
//! schemas stay callable and say so in [`ToolInfo::schema_problem`].
//!
//! **Names.** Two exposed tools whose names sanitise to the same identifier
//! (`a-b` and `a_b`, or server `x` tool `y_z` and server `x_y` tool `z`) are
//! *both* withheld: neither appears in [`Portal::tools`], a call to the name
//! fails with a `NameCollision` error naming both, and the collision is
//! logged and listed in [`ServerStatus::problems`]. This is deterministic
//! (no "first one wins" that changes with connection order) and the fix is
//! in the config (rename a server, or deny one of the tools). Two configured
//! servers whose *names* collide are known up front: [`Portal::start`]
//! refuses them.
//!
//! **Per user.** A Streamable HTTP server with [`ServerConfig::per_user`]
//! has no shared session: each principal's own is opened with the
//! credential chosen for it (a pass-through of what its client presented,
//! or a per-principal table) on its first use — [`Portal::open_for`] before
//! a call, [`Portal::tools_for`] / [`Portal::types_for`] in `search` — and
//! used for it alone ([`Portal::call_as`]). Its tools are that session's
//! list; [`Portal::tools`] (the shared view) has none of them. See
//! `sessions.rs` for the bounds.
//!
//! **Processes.** Each stdio upstream runs in its own process group with a
//! minimal environment; [`Portal::shutdown`] closes every session (stdin
//! EOF, then SIGTERM, then SIGKILL) and kills what is left of each group.
//! Dropping the last [`Portal`] clone SIGKILLs every group at once, and on
//! Linux a child also dies if the portal's process dies
//! (`PR_SET_PDEATHSIG`), so no upstream outlives the portal.

#![warn(missing_docs)]

mod config;
mod names;
pub mod oauth;
mod result;
mod sessions;
mod sse;
pub mod typescript;
mod upstream;
mod validate;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use config::{
    parse_mcp_servers_json, PerUser, PortalOptions, ServerConfig, Transport, DEFAULT_CALL_TIMEOUT,
    DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE,
};
pub use names::{is_unreserved_identifier, sanitize_identifier, sanitize_name};

use codemode_pipeline::rules::glob_match;
use codemode_upstream::{Scrubber, Who};
use sessions::Person;
use upstream::{lock, Server};

/// True where waiting for the runtime would wait for this very thread: on a
/// current-thread runtime (a multi-thread runtime's other workers, or its
/// blocking threads, make progress meanwhile).
fn blocking_would_deadlock() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
}

/// One upstream tool as the sandbox sees it. Serialises with camelCase keys
/// (`inputSchema`, `schemaProblem`…), absent options omitted, for
/// `codemode.tools()`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolInfo {
    /// The sanitised `<server>_<tool>` name: `codemode.<name>(args)`.
    pub name: String,
    /// The configured server name.
    pub server: String,
    /// The tool's name at the upstream.
    pub tool: String,
    /// The upstream's description (or title).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The input JSON Schema as the upstream sent it (a `{"type":"object"}`
    /// stand-in when it sent none).
    pub input_schema: Value,
    /// The output JSON Schema, when published (results then are the
    /// `structuredContent` it describes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The MCP annotations (`readOnlyHint`, `destructiveHint`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    /// What is wrong with the definition, e.g. an `inputSchema` that is not
    /// `type: "object"`; such a tool is still callable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_problem: Option<String>,
}

/// The connection state of one upstream. Serialises as
/// `{"state": "ready"}`, `{"state": "reconnecting", "attempt": 2, "lastError": "…"}`,
/// `{"state": "failed", "error": "…"}`…
#[derive(Clone, Debug, PartialEq)]
pub enum ServerState {
    /// The first connection attempt is under way.
    Connecting,
    /// Connected; its tools are callable.
    Ready,
    /// Gave up after [`PortalOptions::max_attempts`] consecutive failures;
    /// the next call to one of its tools (or [`Portal::reconnect`]) tries
    /// again. Holds the last error.
    Failed(String),
    /// Waiting to retry after a failure or a lost connection.
    Reconnecting {
        /// Consecutive failures so far.
        attempt: u32,
        /// Why the last attempt or connection ended.
        last_error: String,
    },
    /// An OAuth server that needs a person to sign in (`codemode login
    /// <server>`): no token yet, or the stored one was refused and could not
    /// be refreshed (or its client credentials were refused). Not retried on
    /// a timer; a call after a new sign-in connects again. Holds the
    /// model-facing message, which names the command.
    NeedsSignIn(String),
    /// Authenticated per user ([`ServerConfig::per_user`]): no shared
    /// session; each principal's own is opened on its first use. Holds how
    /// many are open.
    PerPrincipal {
        /// Sessions open (or being opened) now.
        sessions: usize,
    },
    /// [`Portal::shutdown`] has closed it.
    Stopped,
}

impl serde::Serialize for ServerState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        match self {
            ServerState::Connecting => m.serialize_entry("state", "connecting")?,
            ServerState::Ready => m.serialize_entry("state", "ready")?,
            ServerState::Failed(e) => {
                m.serialize_entry("state", "failed")?;
                m.serialize_entry("error", e)?;
            }
            ServerState::Reconnecting { attempt, last_error } => {
                m.serialize_entry("state", "reconnecting")?;
                m.serialize_entry("attempt", attempt)?;
                m.serialize_entry("lastError", last_error)?;
            }
            ServerState::NeedsSignIn(e) => {
                m.serialize_entry("state", "needs_sign_in")?;
                m.serialize_entry("error", e)?;
            }
            ServerState::PerPrincipal { sessions } => {
                m.serialize_entry("state", "per_principal")?;
                m.serialize_entry("sessions", sessions)?;
            }
            ServerState::Stopped => m.serialize_entry("state", "stopped")?,
        }
        m.end()
    }
}

/// What [`Portal::status`] reports for one upstream (serialises with the
/// state flattened in: `{"name", "state", …, "tools", "problems", "upstream"}`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ServerStatus {
    /// The configured name.
    pub name: String,
    /// Connection state.
    #[serde(flatten)]
    pub state: ServerState,
    /// Tools exposed from it (after policy and collisions).
    pub tools: usize,
    /// Problems worth a look: name collisions, dropped tool definitions, how
    /// many tools have schema problems.
    pub problems: Vec<String>,
    /// The upstream's `serverInfo` (`name version`), once connected.
    pub upstream: Option<String>,
}

/// Why a sanitised name is not callable.
#[derive(Clone, Debug)]
pub(crate) enum Hidden {
    Policy { server: String, tool: String, reason: String },
    Collision(Vec<(String, String)>),
}

/// The callable tools, rebuilt whenever a server's list or state changes.
#[derive(Default)]
struct Index {
    tools: Vec<ToolInfo>,
    /// TypeScript base type name per tool (same order).
    type_names: Vec<String>,
    by_name: HashMap<String, usize>,
    hidden: HashMap<String, Hidden>,
    /// Per server: collision messages.
    collisions: HashMap<String, Vec<String>>,
    /// What it was built from (a principal's index adds its own sessions').
    parts: Vec<Arc<Candidates>>,
}

struct Core {
    servers: Vec<Arc<Server>>,
    options: PortalOptions,
    /// Every server's credentials ([`ServerConfig::secrets`]), scrubbed from
    /// everything the portal hands out.
    scrubber: Scrubber,
    index: RwLock<Arc<Index>>,
    changes: watch::Sender<u64>,
}

impl Core {
    fn server(&self, name: &str) -> Option<&Arc<Server>> {
        self.servers.iter().find(|s| s.config.name == name)
    }

    /// The token scrubbers of the OAuth servers (those that have seen a token).
    fn token_scrubbers(&self) -> Vec<Scrubber> {
        self.servers.iter().filter_map(|s| s.token_scrubber()).filter(|t| !t.is_empty()).collect()
    }

    fn rebuild(&self) {
        // Servers authenticated per user have no shared tools: each
        // principal's come from its own session (`Portal::index_for`).
        let shared: Vec<Arc<Candidates>> = self
            .servers
            .iter()
            .filter(|s| s.config.per_user.is_none())
            .map(|server| Arc::new(candidates(&server.config, &lock(&server.shared).tools, &[&self.scrubber])))
            .collect();
        let index = build_index(shared);
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        self.changes.send_modify(|n| *n += 1);
    }

    fn index(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One server's tools as they would be exposed: named, scrubbed, and what
/// its own policy (or a credential in a name) hides; before collisions,
/// which depend on every server's tools together.
#[derive(Default)]
pub(crate) struct Candidates {
    tools: Vec<ToolInfo>,
    hidden: Vec<(String, Hidden)>,
}

/// The [`Candidates`] of `cfg`'s tool list `raw`; `scrubbers` remove every
/// credential they know from names, descriptions and schemas.
pub(crate) fn candidates(cfg: &ServerConfig, raw: &[upstream::RawTool], scrubbers: &[&Scrubber]) -> Candidates {
    let scrub_str =
        |s: &str| -> String { scrubbers.iter().fold(s.to_string(), |acc, sc| sc.scrub_str(&acc).into_owned()) };
    let scrub = |v: &Value| scrubbers.iter().fold(v.clone(), |acc, sc| sc.scrubbed(acc));
    let mut out = Candidates::default();
    for raw in raw {
        let name = sanitize_name(&cfg.name, &raw.name);
        if scrubbers.iter().any(|sc| sc.finds(&raw.name)) {
            // A name cannot be scrubbed and stay callable: withhold it.
            let (name, tool) = (scrub_str(&name), scrub_str(&raw.name));
            let reason = "its name contains a credential configured for this server".to_string();
            tracing::warn!(server = %cfg.name, "a tool name contains a configured credential: withheld");
            out.hidden.push((name, Hidden::Policy { server: cfg.name.clone(), tool, reason }));
            continue;
        }
        if let Some(reason) = policy_rejects(cfg, raw, &name) {
            out.hidden.push((name, Hidden::Policy { server: cfg.name.clone(), tool: raw.name.clone(), reason }));
            continue;
        }
        out.tools.push(ToolInfo {
            name,
            server: cfg.name.clone(),
            tool: raw.name.clone(),
            description: raw.description.as_deref().map(scrub_str),
            input_schema: scrub(&raw.input_schema),
            output_schema: raw.output_schema.as_ref().map(scrub),
            annotations: raw.annotations.as_ref().map(scrub),
            schema_problem: raw.schema_problem.as_deref().map(scrub_str),
        });
    }
    out
}

/// The callable tools of these servers' candidates: two tools whose names
/// collide are both withheld, and each gets its TypeScript type name.
fn build_index(parts: Vec<Arc<Candidates>>) -> Index {
    let mut tools: Vec<ToolInfo> = parts.iter().flat_map(|c| c.tools.iter().cloned()).collect();
    let mut hidden: HashMap<String, Hidden> = parts.iter().flat_map(|c| c.hidden.iter().cloned()).collect();
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in tools.iter().enumerate() {
        groups.entry(t.name.as_str()).or_default().push(i);
    }
    let mut drop: HashSet<usize> = HashSet::new();
    let mut collisions: HashMap<String, Vec<String>> = HashMap::new();
    let mut colliding: Vec<(String, Vec<(String, String)>)> = vec![];
    for (name, idx) in &groups {
        if idx.len() > 1 {
            let who: Vec<(String, String)> =
                idx.iter().map(|&i| (tools[i].server.clone(), tools[i].tool.clone())).collect();
            colliding.push((name.to_string(), who));
            drop.extend(idx.iter().copied());
        }
    }
    colliding.sort();
    for (name, who) in colliding {
        let msg = collision_message(&name, &who);
        tracing::warn!("{msg}");
        let servers: HashSet<&String> = who.iter().map(|(s, _)| s).collect();
        for s in servers {
            collisions.entry(s.clone()).or_default().push(msg.clone());
        }
        hidden.insert(name, Hidden::Collision(who));
    }
    tools = tools.into_iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, t)| t).collect();
    let mut used = HashSet::new();
    let type_names = tools
        .iter()
        .map(|t| {
            let stem = names::pascal_case(&t.name);
            let mut n = stem.clone();
            let mut k = 2;
            while !used.insert(n.clone()) {
                n = format!("{stem}{k}");
                k += 1;
            }
            n
        })
        .collect();
    let by_name = tools.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
    Index { tools, type_names, by_name, hidden, collisions, parts }
}

/// A shared, unchanging view of the callable tools (see
/// [`Portal::tools_snapshot`]).
#[derive(Clone)]
pub struct ToolSnapshot(Arc<Index>);

impl ToolSnapshot {
    /// The tools, as [`Portal::tools`] lists them.
    pub fn tools(&self) -> &[ToolInfo] {
        &self.0.tools
    }

    /// True when both are the same list (no change in between).
    pub fn same(&self, other: &ToolSnapshot) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

fn collision_message(name: &str, who: &[(String, String)]) -> String {
    let list: Vec<String> = who.iter().map(|(s, t)| format!("tool `{t}` of server `{s}`")).collect();
    format!(
        "`{name}` is ambiguous: {} all become `codemode.{name}`, so none of them is callable; \
         rename a server or deny one of the tools in the portal config",
        list.join(" and ")
    )
}

/// Why policy hides a tool, if it does.
fn policy_rejects(cfg: &ServerConfig, raw: &upstream::RawTool, full: &str) -> Option<String> {
    // Without case, as the host pipeline's rules match: a tool the pipeline
    // would refuse is not listed either.
    let (name, local, full) =
        (raw.name.to_lowercase(), sanitize_identifier(&raw.name).to_lowercase(), full.to_lowercase());
    let matches = |g: &String| {
        let g = g.to_lowercase();
        glob_match(&g, &name) || glob_match(&g, &local) || glob_match(&g, &full)
    };
    if let Some(g) = cfg.deny.iter().find(|g| matches(g)) {
        return Some(format!("it matches the deny pattern `{g}`"));
    }
    if !cfg.allow.is_empty() && !cfg.allow.iter().any(matches) {
        return Some(format!("it matches none of the allowed patterns ({})", cfg.allow.join(", ")));
    }
    if cfg.read_only
        && raw.annotations.as_ref().and_then(|a| a.get("readOnlyHint")).and_then(Value::as_bool) != Some(true)
    {
        return Some(
            "the server is read-only in this portal and the tool is not annotated `readOnlyHint: true`".into(),
        );
    }
    None
}

struct Inner {
    core: Arc<Core>,
    /// Where the synchronous views (`tools_for`, `types_for`, called from a
    /// blocking thread of `search`) open principals' sessions.
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
        for s in &self.core.servers {
            s.kill_group();
        }
    }
}

/// Many upstream MCP servers behind one `codemode.<server>_<tool>`
/// namespace. Cheap to clone (shared state); `Send + Sync`.
#[derive(Clone)]
pub struct Portal {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").field("servers", &self.server_names()).finish()
    }
}

impl Portal {
    /// Connects to every server in parallel in the background; returns after
    /// all have connected or failed their first attempt, or after `wait`
    /// (whichever first): a slow or broken upstream blocks nothing. `Err`
    /// only for configuration problems known up front (empty or duplicate
    /// names, namespaces that collide once sanitised, malformed URLs).
    pub async fn start(servers: Vec<ServerConfig>, wait: Duration) -> Result<Portal, String> {
        Portal::start_with(servers, wait, PortalOptions::default()).await
    }

    /// [`Portal::start`] with explicit [`PortalOptions`].
    pub async fn start_with(
        servers: Vec<ServerConfig>,
        wait: Duration,
        options: PortalOptions,
    ) -> Result<Portal, String> {
        config::check(&servers)?;
        let scrubber = Scrubber::new(servers.iter().flat_map(ServerConfig::secrets));
        let core = Arc::new(Core {
            servers: servers.into_iter().map(|c| Arc::new(Server::new(c, scrubber.clone()))).collect(),
            options: options.clone(),
            scrubber,
            index: RwLock::new(Arc::new(Index::default())),
            changes: watch::channel(0).0,
        });
        let shutdown = CancellationToken::new();
        let mut rx = core.changes.subscribe();
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = core
            .servers
            .iter()
            .filter(|s| s.sessions.is_some())
            .map(|s| {
                tracing::info!(
                    server = %s.config.name,
                    "authenticated per user: one upstream session per principal, opened on its first use"
                );
                s.set_state(ServerState::PerPrincipal { sessions: 0 });
                tokio::spawn(sweep(s.clone(), shutdown.clone()))
            })
            .collect();
        tasks.extend(core.servers.iter().filter(|s| s.sessions.is_none()).map(|s| {
            let weak = Arc::downgrade(&core);
            let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
                if let Some(core) = weak.upgrade() {
                    core.rebuild();
                }
            });
            let supervisor =
                tokio::spawn(upstream::supervise(s.clone(), options.clone(), shutdown.clone(), on_change.clone()));
            let server = s.clone();
            // A bug that panics a supervisor must not leave its server "connecting" forever.
            tokio::spawn(async move {
                if let Err(e) = supervisor.await {
                    if e.is_panic() {
                        tracing::error!(server = %server.config.name, "supervisor panicked: {e}");
                        server.kill_group();
                        server.set_state(ServerState::Failed(format!("internal error in codemode-portal: {e}")));
                        on_change();
                    }
                }
            })
        }));
        let portal = Portal {
            inner: Arc::new(Inner {
                core,
                runtime: tokio::runtime::Handle::current(),
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if portal.inner.core.servers.iter().all(|s| s.state() != ServerState::Connecting) {
                break;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                break;
            }
        }
        Ok(portal)
    }

    fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Every callable tool (policy applied, collisions withheld), in config
    /// order of servers and upstream order of tools. Tools of a server that
    /// is reconnecting stay listed.
    pub fn tools(&self) -> Vec<ToolInfo> {
        self.core().index().tools.clone()
    }

    /// The same tools as [`tools`](Self::tools), without copying them: a
    /// snapshot that stays the same until the tool list changes, so a cache
    /// built from it (the `codemode.find` index) can tell when to rebuild.
    pub fn tools_snapshot(&self) -> ToolSnapshot {
        ToolSnapshot(self.core().index())
    }

    /// The servers authenticated per user ([`ServerConfig::per_user`]), in
    /// config order.
    pub fn per_user_servers(&self) -> Vec<String> {
        self.core().servers.iter().filter(|s| s.sessions.is_some()).map(|s| s.config.name.clone()).collect()
    }

    /// True when `name` (`<server>_<tool>`) is in the namespace of a server
    /// authenticated per user: [`Portal::open_for`] before looking it up.
    pub fn is_per_user_tool(&self, name: &str) -> bool {
        self.per_user_server(name).is_some()
    }

    /// The per-user server whose namespace `name` is in.
    fn per_user_server(&self, name: &str) -> Option<&Arc<Server>> {
        let name = strip_prefix(name);
        self.core()
            .servers
            .iter()
            .find(|s| s.sessions.is_some() && name.starts_with(&format!("{}_", sanitize_identifier(&s.config.name))))
    }

    /// `person`'s session with `server` (authenticated per user), opened now
    /// if it has none; the error object names the server.
    async fn open_session(
        &self,
        server: &Arc<Server>,
        person: &Person,
    ) -> Result<Arc<sessions::Live>, Map<String, Value>> {
        let Some(sessions) = &server.sessions else {
            return Err(upstream::error("UpstreamUnavailable", format!("server `{}` is shared", server.config.name)));
        };
        let core = self.core();
        let opened = sessions.open(server, &core.options, &core.scrubber, person).await;
        server.set_state(ServerState::PerPrincipal { sessions: sessions.len() });
        opened.map_err(|mut e| {
            e.insert("server".into(), json!(server.config.name));
            e
        })
    }

    /// Opens `who`'s session with the per-user server `name` (a tool name,
    /// `<server>_<tool>`) belongs to, if it is one and `who` has none: the
    /// host calls this before it looks the tool up, so the principal's own
    /// tool list decides. `Err`: the error object for the code (no
    /// credential for `who`, or the upstream refused or did not answer).
    pub async fn open_for(&self, name: &str, who: &Who<'_>) -> Result<(), Value> {
        match self.per_user_server(name) {
            Some(server) => self.open_session(server, &Person::of(who)).await.map(|_| ()).map_err(Value::Object),
            None => Ok(()),
        }
    }

    /// Opens, from a thread outside the runtime (a `search` catalog call),
    /// `person`'s sessions with every per-user server `visible` lets
    /// through that it has none with yet; waits at most the connect timeout.
    /// A session that cannot be opened leaves that server's tools out of
    /// this view (a call says why).
    fn open_blocking(&self, person: &Person, visible: &dyn Fn(&str) -> bool) {
        let wanted: Vec<Arc<Server>> = self
            .core()
            .servers
            .iter()
            .filter(|s| visible(&s.config.name))
            .filter(|s| s.sessions.as_ref().is_some_and(|m| m.existing(s, person).is_none()))
            .cloned()
            .collect();
        if wanted.is_empty() || blocking_would_deadlock() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let portal = self.clone();
        let owned = person.clone();
        self.inner.runtime.spawn(async move {
            let opens = wanted.iter().map(|s| portal.open_session(s, &owned));
            let _ = futures::future::join_all(opens).await;
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(self.core().options.connect_timeout + Duration::from_secs(1));
    }

    /// The callable tools for `person`: the shared servers' and those of its
    /// own open sessions (collisions decided over both, for it alone).
    fn index_for(&self, person: &Person) -> Arc<Index> {
        let shared = self.core().index();
        let mine: Vec<Arc<Candidates>> = self
            .core()
            .servers
            .iter()
            .filter_map(|s| s.sessions.as_ref()?.existing(s, person))
            .map(|live| live.candidates())
            .collect();
        if mine.is_empty() {
            return shared;
        }
        Arc::new(build_index(shared.parts.iter().cloned().chain(mine).collect()))
    }

    /// Every tool `who` can call: [`Portal::tools`] plus the tools of its own
    /// sessions with servers authenticated per user, each opened now (from
    /// a blocking thread) when `visible` lets its server through and `who`
    /// has none yet.
    pub fn tools_for(&self, who: &Who<'_>, visible: &dyn Fn(&str) -> bool) -> Vec<ToolInfo> {
        let person = Person::of(who);
        self.open_blocking(&person, visible);
        self.index_for(&person).tools.clone()
    }

    /// [`Portal::tool`] for `who`, with the tools of its open sessions.
    pub fn tool_for(&self, name: &str, who: &Who<'_>) -> Option<ToolInfo> {
        let index = self.index_for(&Person::of(who));
        index.by_name.get(strip_prefix(name)).map(|&i| index.tools[i].clone())
    }

    /// [`Portal::hidden_by_policy`] for `who`.
    pub fn hidden_by_policy_for(&self, name: &str, who: &Who<'_>) -> Option<(String, String, String)> {
        match self.index_for(&Person::of(who)).hidden.get(strip_prefix(name)) {
            Some(Hidden::Policy { server, tool, reason }) => Some((server.clone(), tool.clone(), reason.clone())),
            _ => None,
        }
    }

    /// [`Portal::unknown_tool_error`] for `who`.
    pub fn unknown_tool_error_for(&self, name: &str, who: &Who<'_>) -> Value {
        let name = strip_prefix(name);
        let index = self.index_for(&Person::of(who));
        let (kind, message) = self.not_found(name, &index);
        let mut e = upstream::error(kind, message);
        if let Some(Hidden::Policy { server, tool, .. }) = index.hidden.get(name) {
            e.insert("server".into(), json!(server));
            e.insert("tool".into(), json!(tool));
        }
        Value::Object(e)
    }

    /// [`Portal::status`] as `who` sees it: a server authenticated per user
    /// is `ready` with the tools of `who`'s own session when it has one
    /// (its problems too), else `per_principal`.
    pub fn status_for(&self, who: &Who<'_>) -> Vec<ServerStatus> {
        let person = Person::of(who);
        let index = self.index_for(&person);
        let mut all = self.status();
        for (st, s) in all.iter_mut().zip(&self.core().servers) {
            let Some(sessions) = &s.sessions else { continue };
            st.problems.clear();
            match sessions.existing(s, &person) {
                Some(live) => {
                    st.state = ServerState::Ready;
                    st.tools = index.tools.iter().filter(|t| t.server == s.config.name).count();
                    st.problems = lock(&live.problems).clone();
                }
                None => st.state = ServerState::PerPrincipal { sessions: 0 },
            }
        }
        all
    }

    /// One callable tool by its sanitised name.
    pub fn tool(&self, name: &str) -> Option<ToolInfo> {
        let index = self.core().index();
        index.by_name.get(strip_prefix(name)).map(|&i| index.tools[i].clone())
    }

    /// The state of every configured server, in config order (credentials
    /// scrubbed from its errors and problems).
    pub fn status(&self) -> Vec<ServerStatus> {
        let index = self.core().index();
        let sc = &self.core().scrubber;
        let tokens = self.core().token_scrubbers();
        let scrub = |s: &str| {
            let mut out = sc.scrub_str(s).into_owned();
            for t in &tokens {
                out = t.scrub_str(&out).into_owned();
            }
            out
        };
        self.core()
            .servers
            .iter()
            .map(|s| {
                let shared = lock(&s.shared);
                let mut problems = shared.problems.clone();
                if let Some(c) = index.collisions.get(&s.config.name) {
                    problems.extend(c.iter().cloned());
                }
                let bad =
                    index.tools.iter().filter(|t| t.server == s.config.name && t.schema_problem.is_some()).count();
                if bad > 0 {
                    problems.push(format!(
                        "{bad} tool(s) have schema problems (still callable; see ToolInfo::schema_problem)"
                    ));
                }
                let state = match &shared.state {
                    ServerState::Failed(e) => ServerState::Failed(scrub(e)),
                    ServerState::Reconnecting { attempt, last_error } => {
                        ServerState::Reconnecting { attempt: *attempt, last_error: scrub(last_error) }
                    }
                    other => other.clone(),
                };
                ServerStatus {
                    name: s.config.name.clone(),
                    state,
                    tools: index.tools.iter().filter(|t| t.server == s.config.name).count(),
                    problems: problems.iter().map(|p| scrub(p)).collect(),
                    upstream: shared.upstream.as_deref().map(scrub),
                }
            })
            .collect()
    }

    /// The configured server names, in config order.
    pub fn server_names(&self) -> Vec<String> {
        self.core().servers.iter().map(|s| s.config.name.clone()).collect()
    }

    /// A receiver that sees a new value whenever the tool list or a server's
    /// state changes (for re-rendering descriptions, or telling the client
    /// `notifications/tools/list_changed`).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.core().changes.subscribe()
    }

    /// Process group ids of the running stdio upstreams (server, pgid), for
    /// diagnostics and for checking that nothing outlives the portal.
    pub fn process_groups(&self) -> Vec<(String, u32)> {
        self.core()
            .servers
            .iter()
            .filter_map(|s| s.process_group().map(|g| (s.config.name.clone(), g as u32)))
            .collect()
    }

    /// Starts a new round of connection attempts for a server in
    /// [`ServerState::Failed`] (no effect in other states).
    pub fn reconnect(&self, server: &str) -> bool {
        match self.core().server(server) {
            Some(s) => {
                s.wake();
                true
            }
            None => false,
        }
    }

    /// TypeScript declarations: for `None`, every tool (named `…Input` /
    /// `…Output` types, then `declare const codemode: {…}` with one method
    /// per tool and its JSDoc); for `Some(name)` (`server_tool`, with or
    /// without `codemode.`), the same for that tool only. `Err` says why a
    /// name is not callable, with suggestions.
    pub fn types(&self, name: Option<&str>) -> Result<String, String> {
        self.types_where(name, &|_| true)
    }

    /// [`Portal::types`] over the tools `allowed` accepts only (a
    /// principal's view); any other tool reads as unknown.
    pub fn types_where(&self, name: Option<&str>, allowed: &dyn Fn(&ToolInfo) -> bool) -> Result<String, String> {
        self.types_in(&self.core().index(), name, allowed)
    }

    /// [`Portal::types_where`] for `who`: with the tools of its own sessions
    /// of servers authenticated per user (opened now when `visible` lets
    /// their server through and it has none yet).
    pub fn types_for(
        &self,
        name: Option<&str>,
        allowed: &dyn Fn(&ToolInfo) -> bool,
        who: &Who<'_>,
        visible: &dyn Fn(&str) -> bool,
    ) -> Result<String, String> {
        let person = Person::of(who);
        self.open_blocking(&person, visible);
        self.types_in(&self.index_for(&person), name, allowed)
    }

    fn types_in(
        &self,
        index: &Index,
        name: Option<&str>,
        allowed: &dyn Fn(&ToolInfo) -> bool,
    ) -> Result<String, String> {
        let selected: Vec<usize> = match name {
            None => (0..index.tools.len()).filter(|&i| allowed(&index.tools[i])).collect(),
            Some(n) => match index.by_name.get(strip_prefix(n)) {
                Some(&i) if allowed(&index.tools[i]) => vec![i],
                _ => return Err(self.not_found(strip_prefix(n), index).1),
            },
        };
        let mut decls = String::new();
        let mut methods = String::new();
        for &i in &selected {
            let t = &index.tools[i];
            let base = &index.type_names[i];
            let input = format!("{base}Input");
            decls.push_str(&typescript::declaration(&input, &t.input_schema));
            let output = match &t.output_schema {
                Some(s) => {
                    let output = format!("{base}Output");
                    decls.push_str(&typescript::declaration(&output, s));
                    output
                }
                None => "unknown".to_string(),
            };
            decls.push('\n');
            methods.push_str(&typescript::jsdoc(Some(&method_doc(t)), "  "));
            let opt = if typescript::args_optional(&t.input_schema) { "?" } else { "" };
            methods.push_str(&format!("  {}(args{opt}: {input}): Promise<{output}>;\n", t.name));
        }
        Ok(format!("{decls}declare const codemode: {{\n{methods}}};\n"))
    }

    /// Calls `codemode.<name>(args)`: validates `args` (`null` means `{}`)
    /// against the input schema, calls the upstream with the server's
    /// per-call timeout, and unwraps the result: `isError` → `Err`;
    /// `structuredContent` when present; text content parsed as JSON when it
    /// is JSON (else the text; several blocks → an array); images and other
    /// content kept as objects. Calls run concurrently on one session.
    ///
    /// `Err` is a JSON object `{name, message, server, tool, …}` for the
    /// sandbox to throw as an `Error`. `name` is one of `ToolNotFound`,
    /// `ToolNotAllowed`, `NameCollision`, `InvalidArguments` (with
    /// `problems: [{path, message}]`), `UpstreamUnavailable`, `TimeoutError`,
    /// `UpstreamError` (protocol error or lost connection; may carry `code`
    /// and `data`), `ToolError` (the tool's own `isError` result) or
    /// `ResultTooLarge` (the result or error is over
    /// [`PortalOptions::max_result_bytes`]).
    ///
    /// Every configured credential ([`ServerConfig::secrets`]) is scrubbed
    /// from the result and the error, in every form a
    /// [`codemode_upstream::Scrubber`] knows.
    ///
    /// Dropping the future cancels the upstream call
    /// (`notifications/cancelled`).
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, Value> {
        self.call_with_meta(name, args, None).await
    }

    /// [`Portal::call`] with `meta` sent as the request's `params._meta`:
    /// the host's W3C trace context (`traceparent`, `tracestate`, SEP-414),
    /// so the upstream server's spans join the caller's trace.
    pub async fn call_with_meta(
        &self,
        name: &str,
        args: Value,
        meta: Option<Map<String, Value>>,
    ) -> Result<Value, Value> {
        self.call_as(name, args, meta, &Who::nobody()).await
    }

    /// [`Portal::call_with_meta`] for `who`: a tool of a server
    /// authenticated per user goes out on `who`'s own session (opened now
    /// if it has none), never on anyone else's; its credential is scrubbed
    /// from the result and the error like every configured one.
    pub async fn call_as(
        &self,
        name: &str,
        args: Value,
        meta: Option<Map<String, Value>>,
        who: &Who<'_>,
    ) -> Result<Value, Value> {
        let out = self.call_unchecked(name, args, meta, &Person::of(who)).await;
        let limit = self.core().options.max_result_bytes;
        let sc = &self.core().scrubber;
        let too_large = |v: &Value, what: &str| -> Option<Value> {
            let size = json_size(v);
            (size > limit).then(|| {
                let mut e = upstream::error(
                    "ResultTooLarge",
                    format!(
                        "codemode.{} returned {what} of {size} bytes, over the limit of {limit} bytes for one tool result \
                         (`max_response_kib = {}` in the codemode config's [limits]); nothing of it was kept. \
                         Ask the tool for less (filters, paging, fewer fields) if its arguments allow",
                        strip_prefix(name),
                        limit / 1024
                    ),
                );
                if let Some(t) = self.tool(name) {
                    e.insert("server".into(), json!(t.server));
                    e.insert("tool".into(), json!(t.tool));
                }
                e.insert("bytes".into(), json!(size));
                e.insert("limit".into(), json!(limit));
                Value::Object(e)
            })
        };
        // The configured secrets, then every OAuth token an upstream was
        // given (an upstream that echoes its bearer token must not hand it to
        // the code).
        let tokens = self.core().token_scrubbers();
        let scrub = |v: Value| tokens.iter().fold(sc.scrubbed(v), |v, t| t.scrubbed(v));
        match out {
            Ok(v) => match too_large(&v, "a result") {
                Some(e) => Err(scrub(e)),
                None => Ok(scrub(v)),
            },
            Err(e) => Err(scrub(too_large(&e, "an error").unwrap_or(e))),
        }
    }

    async fn call_unchecked(
        &self,
        name: &str,
        args: Value,
        meta: Option<Map<String, Value>>,
        person: &Person,
    ) -> Result<Value, Value> {
        let name = strip_prefix(name);
        if let Some(server) = self.per_user_server(name) {
            // The principal's own tool list decides what `name` is.
            self.open_session(server, person).await.map_err(Value::Object)?;
        }
        let mut index = self.index_for(person);
        if !index.by_name.contains_key(name) && self.woke_after_sign_in(name).await {
            index = self.core().index();
        }
        let Some(&i) = index.by_name.get(name) else {
            let (kind, message) = self.not_found(name, &index);
            let mut e = upstream::error(kind, message);
            match index.hidden.get(name) {
                Some(Hidden::Policy { server, tool, .. }) => {
                    e.insert("server".into(), json!(server));
                    e.insert("tool".into(), json!(tool));
                }
                Some(Hidden::Collision(who)) => {
                    e.insert(
                        "candidates".into(),
                        json!(who.iter().map(|(s, t)| json!({"server": s, "tool": t})).collect::<Vec<_>>()),
                    );
                }
                None => {}
            }
            return Err(Value::Object(e));
        };
        // The index is an immutable snapshot: borrow from it, no copy of the schema.
        let tool = &index.tools[i];
        let finish = |mut e: Map<String, Value>| {
            e.insert("server".into(), json!(tool.server));
            e.insert("tool".into(), json!(tool.tool));
            Value::Object(e)
        };
        let args = if args.is_null() { json!({}) } else { args };
        if !args.is_object() {
            return Err(finish(upstream::error(
                "InvalidArguments",
                format!("codemode.{}(args) takes an object of arguments, got {}", tool.name, upstream::kind(&args)),
            )));
        }
        if tool.input_schema.is_object() {
            let problems = validate::validate(&tool.input_schema, &args);
            if !problems.is_empty() {
                let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.path, p.message)).collect();
                let mut e = upstream::error(
                    "InvalidArguments",
                    format!(
                        "invalid arguments for codemode.{}: {} (types(\"{}\") shows the expected input)",
                        tool.name,
                        list.join("; "),
                        tool.name
                    ),
                );
                e.insert(
                    "problems".into(),
                    Value::Array(problems.iter().map(|p| json!({"path": p.path, "message": p.message})).collect()),
                );
                return Err(finish(e));
            }
        }
        let Some(server) = self.core().server(&tool.server).cloned() else {
            return Err(finish(upstream::error("ToolNotFound", format!("server `{}` is gone", tool.server))));
        };
        let raw = match &server.sessions {
            None => upstream::call(&server, &self.core().options, &tool.tool, args, meta).await,
            Some(sessions) => {
                let live = self.open_session(&server, person).await.map_err(&finish)?;
                let running = live.begin();
                let deadline = tokio::time::Instant::now() + server.config.call_timeout;
                let ends = Some(live.ct.clone());
                let out = upstream::call_on(&server, &live.peer, None, ends, deadline, &tool.tool, args, meta).await;
                drop(running);
                sessions.touch(person);
                if live.peer.is_transport_closed() {
                    sessions.forget(person, &live);
                }
                // This principal's credential, before anything else sees the answer.
                match out {
                    Ok(v) => Ok(live.scrubber.scrubbed(v)),
                    Err(e) => Err(match live.scrubber.scrubbed(Value::Object(e)) {
                        Value::Object(e) => e,
                        _ => Map::new(),
                    }),
                }
            }
        };
        let raw = raw.map_err(|e| {
            let mut e = e;
            if let Some(Value::String(m)) = e.get_mut("message") {
                *m = format!("codemode.{}: {m}", tool.name);
            }
            finish(e)
        })?;
        result::unwrap(&raw).map_err(|mut e| {
            e.insert("name".into(), json!("ToolError"));
            let msg = e.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
            e.insert("message".into(), json!(format!("codemode.{} failed: {msg}", tool.name)));
            finish(e)
        })
    }

    /// A tool of an OAuth server that was waiting for sign-in, called after
    /// someone signed in (`codemode login` wrote a new token file): connects
    /// with the new token and waits for its tool list (at most
    /// [`PortalOptions::ready_wait`]), so this very call can go through.
    async fn woke_after_sign_in(&self, name: &str) -> bool {
        let Some(server) =
            self.core().servers.iter().find(|s| name.starts_with(&format!("{}_", sanitize_identifier(&s.config.name))))
        else {
            return false;
        };
        if !matches!(server.state(), ServerState::NeedsSignIn(_)) {
            return false;
        }
        let wait = self.core().options.ready_wait;
        server.ready_peer(wait, tokio::time::Instant::now() + wait).await.is_ok()
    }

    /// When the portal's own policy (`allow`, `deny`, `read_only`) hides
    /// `name`: its server, its upstream name and why.
    pub fn hidden_by_policy(&self, name: &str) -> Option<(String, String, String)> {
        match self.core().index().hidden.get(strip_prefix(name)) {
            Some(Hidden::Policy { server, tool, reason }) => Some((server.clone(), tool.clone(), reason.clone())),
            _ => None,
        }
    }

    /// The error `codemode.<name>(...)` gets when `name` is no callable tool
    /// (not found, hidden by policy, or ambiguous), without calling anything.
    pub fn unknown_tool_error(&self, name: &str) -> Value {
        let name = strip_prefix(name);
        let index = self.core().index();
        let (kind, message) = self.not_found(name, &index);
        let mut e = upstream::error(kind, message);
        if let Some(Hidden::Policy { server, tool, .. }) = index.hidden.get(name) {
            e.insert("server".into(), json!(server));
            e.insert("tool".into(), json!(tool));
        }
        Value::Object(e)
    }

    /// Why `name` is not callable: (error name, message with suggestions).
    fn not_found(&self, name: &str, index: &Index) -> (&'static str, String) {
        match index.hidden.get(name) {
            Some(Hidden::Policy { server, tool, reason }) => {
                return (
                    "ToolNotAllowed",
                    format!(
                    "codemode.{name} (tool `{tool}` of server `{server}`) is not available in this portal: {reason}"
                ),
                )
            }
            Some(Hidden::Collision(who)) => return ("NameCollision", collision_message(name, who)),
            None => {}
        }
        // A server waiting for sign-in has listed no tools yet: what to do
        // matters more than "no such tool".
        if let Some(s) =
            self.core().servers.iter().find(|s| name.starts_with(&format!("{}_", sanitize_identifier(&s.config.name))))
        {
            if let ServerState::NeedsSignIn(message) = s.state() {
                return ("SignInRequired", format!("codemode.{name} cannot be called yet: {message}"));
            }
        }
        let mut msg = format!("codemode.{name} is not a tool of this portal");
        let close = suggestions(name, index);
        if !close.is_empty() {
            msg.push_str(&format!(
                "; did you mean {}?",
                close.iter().map(|n| format!("codemode.{n}")).collect::<Vec<_>>().join(", ")
            ));
        }
        let servers = self.server_names();
        if let Some(s) =
            self.core().servers.iter().find(|s| name.starts_with(&format!("{}_", sanitize_identifier(&s.config.name))))
        {
            let state = s.state();
            if state != ServerState::Ready {
                msg.push_str(&format!(" (server `{}` is {})", s.config.name, describe_state(&state)));
            }
        } else {
            msg.push_str(&format!(" (servers: {})", servers.join(", ")));
        }
        msg.push_str("; codemode.tools() in search lists every tool");
        ("ToolNotFound", msg)
    }

    /// Closes every session and stops every child process (stdin EOF, then
    /// SIGTERM, then SIGKILL of its process group); returns when all are
    /// gone (bounded: about 10 s for children that ignore everything).
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let tasks: Vec<_> = std::mem::take(&mut *lock(&self.inner.tasks));
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(Duration::from_secs(12), t).await.is_err() {
                abort.abort();
            }
        }
        for s in &self.core().servers {
            s.kill_group();
        }
    }
}

/// Closes a per-user server's idle sessions until shutdown, then every one
/// (each transport sends `DELETE` for its session).
async fn sweep(server: Arc<Server>, shutdown: CancellationToken) {
    let Some(sessions) = &server.sessions else { return };
    let idle = server.config.per_user.as_ref().map(|p| p.idle).unwrap_or(DEFAULT_SESSION_IDLE);
    let every = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {
                let closed = sessions.expire().await;
                if closed > 0 {
                    tracing::info!(server = %server.config.name, closed, "closed idle per-principal sessions");
                    server.set_state(ServerState::PerPrincipal { sessions: sessions.len() });
                }
            }
            _ = shutdown.cancelled() => break,
        }
    }
    sessions.close_every().await;
    server.set_state(ServerState::Stopped);
}

/// Length of `v` as compact JSON text, without building the text.
fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

fn strip_prefix(name: &str) -> &str {
    name.strip_prefix("codemode.").unwrap_or(name)
}

impl std::fmt::Display for ServerState {
    /// In words: `ready`, `still connecting`, `down: …`, `reconnecting (attempt 2; …)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_state(self))
    }
}

fn describe_state(s: &ServerState) -> String {
    match s {
        ServerState::Connecting => "still connecting".into(),
        ServerState::Ready => "ready".into(),
        ServerState::Failed(e) => format!("down: {e}"),
        ServerState::Reconnecting { attempt, last_error } => format!("reconnecting (attempt {attempt}; {last_error})"),
        ServerState::NeedsSignIn(e) => e.clone(),
        ServerState::PerPrincipal { .. } => {
            "connected per user (each principal's session opens on its first call)".into()
        }
        ServerState::Stopped => "shut down".into(),
    }
}

/// The JSDoc of a `codemode.<tool>` method.
fn method_doc(t: &ToolInfo) -> String {
    let mut lines = vec![];
    if let Some(d) = t.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        lines.push(d.to_string());
    }
    let mut facts = format!("Server `{}`, tool `{}`.", t.server, t.tool);
    let hint = |k: &str| t.annotations.as_ref().and_then(|a| a.get(k)).and_then(Value::as_bool);
    if hint("readOnlyHint") == Some(true) {
        facts.push_str(" Read-only.");
    } else if hint("destructiveHint") == Some(true) {
        facts.push_str(" Destructive.");
    }
    lines.push(facts);
    if let Some(p) = &t.schema_problem {
        lines.push(format!("Note: {p}."));
    }
    lines.join("\n")
}

/// Up to three callable names close to `name` (same server first).
fn suggestions(name: &str, index: &Index) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut scored: Vec<(usize, &str)> = index
        .tools
        .iter()
        .map(|t| (edit_distance(&lower, &t.name.to_ascii_lowercase()), t.name.as_str()))
        .filter(|(d, n)| *d <= (n.len() / 3).max(2))
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n.to_string()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 8 {
        return usize::MAX / 2;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_for_the_sandbox() {
        let st = ServerStatus {
            name: "a".into(),
            state: ServerState::Reconnecting { attempt: 2, last_error: "x".into() },
            tools: 1,
            problems: vec![],
            upstream: None,
        };
        assert_eq!(
            serde_json::to_value(&st).unwrap(),
            json!({"name": "a", "state": "reconnecting", "attempt": 2, "lastError": "x", "tools": 1, "problems": [], "upstream": null})
        );
        assert_eq!(
            serde_json::to_value(ServerState::Failed("e".into())).unwrap(),
            json!({"state": "failed", "error": "e"})
        );
        let t = ToolInfo {
            name: "s_t".into(),
            server: "s".into(),
            tool: "t".into(),
            description: None,
            input_schema: json!({"type": "object"}),
            output_schema: None,
            annotations: None,
            schema_problem: Some("p".into()),
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"name": "s_t", "server": "s", "tool": "t", "inputSchema": {"type": "object"}, "schemaProblem": "p"})
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn policy() {
        let raw = |name: &str, ro: bool| upstream::RawTool {
            name: name.into(),
            description: None,
            input_schema: json!({"type": "object"}),
            output_schema: None,
            annotations: Some(json!({"readOnlyHint": ro})),
            schema_problem: None,
        };
        let mut cfg = ServerConfig::stdio("fs", "x", &[]);
        assert!(policy_rejects(&cfg, &raw("read_file", false), "fs_read_file").is_none());
        cfg.allow = vec!["read_*".into(), "get-*".into()];
        assert!(policy_rejects(&cfg, &raw("read_file", false), "fs_read_file").is_none());
        assert!(policy_rejects(&cfg, &raw("write_file", false), "fs_write_file").is_some());
        cfg.allow = vec!["get_sum".into()];
        assert!(policy_rejects(&cfg, &raw("get-sum", false), "fs_get_sum").is_none(), "sanitised local name matches");
        cfg.allow = vec![];
        cfg.deny = vec!["*_file".into()];
        assert!(policy_rejects(&cfg, &raw("read_file", true), "fs_read_file").unwrap().contains("deny"));
        cfg.deny = vec![];
        cfg.read_only = true;
        assert!(policy_rejects(&cfg, &raw("a", true), "fs_a").is_none());
        assert!(policy_rejects(&cfg, &raw("b", false), "fs_b").unwrap().contains("read-only"));
    }
}
