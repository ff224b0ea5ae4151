//! Everything a running codemode holds: the loaded APIs, the `search` worker
//! pool and the `execute` host — independent of the MCP transport.

use std::sync::Arc;
use std::time::{Duration, Instant};

use codemode_pipeline::{Approver, DryRunLayer, Execution, Pipeline};
use codemode_sandbox::{
    Client, ExecuteEnv, Isolation, Limits, Outcome, Sandbox, SandboxConfig, SearchCall, SearchSpec, SpecGlobal,
    SyncHost, WorkerCommand,
};
use codemode_spec::Spec;
use codemode_upstream::{Auth, Secret, Upstream, UpstreamConfig};
use serde_json::Value;

use codemode_http::Principal;
use codemode_portal::Portal;

use crate::catalog::{Catalog, ScopedCatalog};
use crate::config::{ApiConfig, AuthConfig, Config, ConfigProblem, McpConfig};
use crate::host::{ExecHost, Targets};
use crate::tools::ToolKind;

/// One API, loaded and ready.
pub struct LoadedApi {
    /// Global name.
    pub name: String,
    /// The resolved spec; for a GraphQL API, its schema's view
    /// (`schemas.<name>`), with no operations.
    pub spec: Arc<Spec>,
    /// A GraphQL API's schema and limits (`kind = "graphql"`).
    pub graphql: Option<Arc<crate::graphql::GraphqlApi>>,
    /// The HTTP side.
    pub upstream: Upstream,
    /// Whether some write may be sent: `allow_writes`, or an `allow` rule
    /// naming a method other than GET/HEAD (for the tool descriptions).
    pub allow_writes: bool,
    /// `auth = { type = "signin" }`: each principal's upstream token from
    /// its OAuth sign-in (`[auth.signin]`) instead of one credential.
    pub signin: bool,
}

/// A problem found while loading: config, environment or spec.
#[derive(Clone, Debug)]
pub struct LoadProblem(pub String);

impl std::fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ConfigProblem> for LoadProblem {
    fn from(p: ConfigProblem) -> Self {
        LoadProblem(p.to_string())
    }
}

/// Loads every API of `config` in parallel (`force_mock`: every API in
/// rehearsal mode). Returns the APIs that loaded and
/// every problem found (fatal or not, for `codemode check`); `fatal` is true
/// when some API could not be loaded at all.
pub async fn load_apis(
    config: &Config,
    config_file: &str,
    force_mock: bool,
) -> (Vec<LoadedApi>, Vec<LoadProblem>, bool) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("HTTP client");
    let tasks = config.apis.iter().enumerate().map(|(i, api)| {
        let http = http.clone();
        let locations = config.spec_locations(api);
        let limits = config.limits.clone();
        let api = api.clone();
        let file = config_file.to_string();
        let mock = api.mock || force_mock;
        let base_dir = config.base_dir.clone();
        async move { load_one(i, mock, &api, &locations, &http, &limits, &file, &base_dir).await }
    });
    let results = futures_join_all(tasks).await;
    let mut apis = Vec::new();
    let mut problems = Vec::new();
    let mut fatal = false;
    for r in results {
        match r {
            Ok((api, p)) => {
                problems.extend(p);
                apis.push(api);
            }
            Err(p) => {
                fatal = true;
                problems.extend(p);
            }
        }
    }
    (apis, problems, fatal)
}

async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("loader task panicked"));
    }
    out
}

/// The base URL of a rehearsed API whose spec names no absolute server.
const REHEARSAL_ORIGIN: &str = "https://rehearsal.invalid";

/// The rehearsal of `api`: stateful and seeded as configured (`mock_state`,
/// `mock_seed`, `mock_strict`).
fn rehearsal(
    i: usize,
    api: &ApiConfig,
    spec: Arc<codemode_spec::Spec>,
    file: &str,
    base_dir: &std::path::Path,
) -> Result<codemode_mock::MockApi, Vec<LoadProblem>> {
    use crate::config::MockState;
    let mut mock = codemode_mock::MockApi::new(spec).strict(api.mock_strict);
    let scope = match api.mock_state {
        MockState::Off => None,
        MockState::Principal => Some(codemode_mock::Scope::Principal),
        MockState::Session => Some(codemode_mock::Scope::Session),
    };
    if let Some(scope) = scope {
        mock = mock.with_state(codemode_mock::StateConfig::new(scope));
    }
    let Some(seed) = &api.mock_seed else { return Ok(mock) };
    if scope.is_none() {
        return Err(vec![LoadProblem(format!(
            "{file}: api[{i}].mock_seed: a seed needs stateful rehearsal; add mock_state = \"session\" (or \"principal\")"
        ))]);
    }
    let path = base_dir.join(seed);
    let shown = path.display();
    let doc = std::fs::read(&path)
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|bytes| codemode_spec::source::parse_document(&bytes));
    let doc = doc.map_err(|e| vec![LoadProblem(format!("{file}: api[{i}].mock_seed: {shown}: {e}"))])?;
    match mock.seed(&doc) {
        Ok(n) => {
            tracing::info!(api = %api.name, resources = n, seed = %shown, "rehearsal: seeded");
            Ok(mock)
        }
        Err(problems) => Err(problems
            .into_iter()
            .map(|p| LoadProblem(format!("{file}: api[{i}].mock_seed: {shown}: {p}")))
            .collect()),
    }
}

// One API's settings, read where they are needed; a struct for them would
// only be unpacked again here.
#[allow(clippy::too_many_arguments)]
async fn load_one(
    i: usize,
    mock: bool,
    api: &ApiConfig,
    locations: &[String],
    http: &reqwest::Client,
    limits: &crate::config::LimitsConfig,
    file: &str,
    base_dir: &std::path::Path,
) -> Result<(LoadedApi, Vec<LoadProblem>), Vec<LoadProblem>> {
    let started = Instant::now();
    // An OpenAPI spec is one root document (the config's check says so).
    let location = locations.first().map(String::as_str).unwrap_or_default();
    let mut problems = Vec::new();
    // Secrets may come from commands: run them off the async threads.
    let resolved = {
        let (api, owned, base_dir) = (api.clone(), file.to_string(), base_dir.to_path_buf());
        tokio::task::spawn_blocking(move || resolve_api_auth(&api, i, &owned, &base_dir))
            .await
            .unwrap_or_else(|e| Err(LoadProblem(format!("{file}: api[{i}].auth: {e}"))))
    };
    // A credential that cannot be read stops `serve` as it fails `check`
    // (one answer to "will this work?"), reported with the spec's own
    // problems, not before them: serving without it would send requests
    // with no credential, or worse. In rehearsal nothing leaves the host,
    // so the credential is not needed.
    let mut auth_problem = None;
    let auth = match resolved {
        Ok(a) => a,
        Err(p) if mock => {
            tracing::info!(api = %api.name, "rehearsal mode: {p} (not needed: nothing leaves the host)");
            Auth::None
        }
        Err(p) => {
            auth_problem = Some(p);
            Auth::None
        }
    };
    if api.kind == crate::config::ApiKind::Graphql {
        return load_graphql(i, mock, api, locations, http, limits, file, auth, problems).await;
    }
    let spec = match codemode_spec::load(location, http).await {
        Ok(s) => s,
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}].spec: {e}")));
            return Err(problems);
        }
    };
    let fatal = unreadable_refs(&spec, api, i, file);
    problems.extend(
        spec.problems
            .iter()
            .filter(|p| fatal.is_none() || p.kind != codemode_spec::ProblemKind::UnreadableDocument)
            .map(|p| LoadProblem(p.to_string())),
    );
    if let Some(fatal) = fatal {
        problems.extend(fatal);
        problems.extend(auth_problem);
        return Err(problems);
    }
    if let Some(p) = auth_problem {
        problems.push(p);
        return Err(problems);
    }
    let base = match &api.base_url {
        Some(b) => b.clone(),
        None => match spec.summary.servers.first() {
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => s.clone(),
            // Rehearsal answers from the spec and sends nothing: a spec
            // without a usable server needs no base URL. `.invalid` never
            // resolves (RFC 6761), so it could not be reached by mistake.
            Some(s) if mock && !s.contains("://") => format!("{REHEARSAL_ORIGIN}/{}", s.trim_start_matches('/')),
            None if mock => REHEARSAL_ORIGIN.to_string(),
            Some(s) => {
                // A relative server URL is relative to where the spec came from.
                match url::Url::parse(location).ok().and_then(|u| u.join(s).ok()) {
                    Some(u) if matches!(u.scheme(), "http" | "https") => u.to_string(),
                    _ => {
                        problems.push(LoadProblem(format!(
                            "{file}: api[{i}].base_url: the spec's first server `{s}` is not an absolute URL; set `base_url` for `{}`",
                            api.name
                        )));
                        return Err(problems);
                    }
                }
            }
            None => {
                problems.push(LoadProblem(format!(
                    "{file}: api[{i}].base_url: the spec lists no servers; set `base_url` for `{}`",
                    api.name
                )));
                return Err(problems);
            }
        },
    };
    // Server URLs may carry variables (`https://{region}.example.com`): take defaults.
    let base_url = match url::Url::parse(&base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            problems.push(LoadProblem(format!(
                "{file}: api[{i}].base_url: `{base}` is not an http(s) URL; set `base_url` for `{}`",
                api.name
            )));
            return Err(problems);
        }
    };
    let mut cfg = UpstreamConfig::new(&api.name, base_url);
    cfg.auth = auth;
    cfg.headers = api.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    cfg.timeout = Duration::from_secs_f64(limits.request_timeout_secs);
    cfg.max_request_bytes = limits.max_request_kib * 1024;
    cfg.max_response_bytes = limits.max_response_kib * 1024;
    cfg.example_path = crate::hints::example_operation(&spec.summary.operations).map(|o| o.path.clone());
    let upstream = match Upstream::new(cfg) {
        Ok(u) => u,
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}]: {e}")));
            return Err(problems);
        }
    };
    let spec = Arc::new(spec);
    // Rehearsal mode: the same client, checks and limits, answered from the spec.
    let upstream = if mock {
        let started = Instant::now();
        let responder = match rehearsal(i, api, spec.clone(), file, base_dir) {
            Ok(r) => r,
            Err(p) => {
                problems.extend(p);
                return Err(problems);
            }
        };
        tracing::info!(api = %api.name, elapsed_ms = started.elapsed().as_millis() as u64, "rehearsal mode: requests are answered from the spec");
        upstream.with_responder(Arc::new(responder))
    } else {
        upstream
    };
    tracing::info!(
        api = %api.name,
        operations = spec.summary.operations.len(),
        nodes = spec.graph.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded spec"
    );
    let allows_a_write = api.allow.iter().any(|p| {
        let method = p.split_whitespace().next().unwrap_or_default();
        !(method.starts_with("operationId:") || method.starts_with("tag:"))
            && (method.starts_with('/')
                || method.split('|').any(|m| !matches!(m.to_ascii_uppercase().as_str(), "GET" | "HEAD")))
    });
    let allow_writes = api.allow_writes || allows_a_write;
    let signin = matches!(api.auth, Some(AuthConfig::Signin));
    Ok((LoadedApi { name: api.name.clone(), spec, graphql: None, upstream, allow_writes, signin }, problems))
}

/// A GraphQL API: the client for its endpoint (`url`), then its schema
/// (from `spec`, or by introspecting the endpoint through that client), the
/// view `search` reads, and in rehearsal mode the schema's answers.
#[allow(clippy::too_many_arguments)]
async fn load_graphql(
    i: usize,
    mock: bool,
    api: &ApiConfig,
    locations: &[String],
    http: &reqwest::Client,
    limits: &crate::config::LimitsConfig,
    file: &str,
    auth: Auth,
    mut problems: Vec<LoadProblem>,
) -> Result<(LoadedApi, Vec<LoadProblem>), Vec<LoadProblem>> {
    let started = Instant::now();
    let endpoint = api.url.clone().unwrap_or_default();
    let Some(base_url) = url::Url::parse(&endpoint).ok().filter(|u| matches!(u.scheme(), "http" | "https")) else {
        problems.push(LoadProblem(format!("{file}: api[{i}].url: `{endpoint}` is not an http(s) URL")));
        return Err(problems);
    };
    let mut cfg = UpstreamConfig::new(&api.name, base_url);
    cfg.auth = auth;
    cfg.headers = api.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    cfg.timeout = Duration::from_secs_f64(limits.request_timeout_secs);
    cfg.max_request_bytes = limits.max_request_kib * 1024;
    // Introspecting a large schema answers more than a usual call may.
    cfg.max_response_bytes = (limits.max_response_kib * 1024).max(64 * 1024 * 1024);
    let introspecting = match Upstream::new(cfg.clone()) {
        Ok(u) => u,
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}]: {e}")));
            return Err(problems);
        }
    };
    cfg.max_response_bytes = limits.max_response_kib * 1024;
    let key = if locations.is_empty() { "url" } else { "spec" };
    let schema = match crate::graphql::load_schema(locations, &api.name, &introspecting, http).await {
        Ok(loaded) => {
            problems.extend(loaded.stale.map(|w| LoadProblem(format!("{file}: api[{i}].{key}: {w}"))));
            loaded.schema
        }
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}].{key}: {e}")));
            return Err(problems);
        }
    };
    problems.extend(schema.warnings.iter().map(|w| LoadProblem(w.clone())));
    let defaults = codemode_graphql::Limits::default();
    let gql = Arc::new(crate::graphql::GraphqlApi {
        schema,
        limits: codemode_graphql::Limits {
            max_depth: api.max_depth.unwrap_or(defaults.max_depth),
            max_cost: api.max_cost.unwrap_or(defaults.max_cost),
            max_document_bytes: defaults.max_document_bytes.min(cfg.max_request_bytes.max(1024)),
        },
        introspected: locations.is_empty().then(|| introspecting.clone()),
    });
    // The view is resolved and packed like a spec: the same lazy objects
    // in the sandbox, the same cycle handling.
    let view_api = gql.clone();
    let name = api.name.clone();
    let spec = tokio::task::spawn_blocking(move || {
        let mut spec = codemode_spec::load_from_value(&name, view_api.schema.view());
        // The OpenAPI checks have nothing to say about a schema's view.
        spec.problems.clear();
        spec
    })
    .await
    .map_err(|e| vec![LoadProblem(format!("{file}: api[{i}]: building the schema view failed: {e}"))])?;
    let upstream = match Upstream::new(cfg) {
        Ok(u) => u,
        Err(e) => {
            problems.push(LoadProblem(format!("{file}: api[{i}]: {e}")));
            return Err(problems);
        }
    };
    let upstream = if mock {
        tracing::info!(api = %api.name, "rehearsal mode: GraphQL operations are answered from the schema");
        upstream.with_responder(Arc::new(crate::graphql::Rehearsal { api: gql.clone() }))
    } else {
        upstream
    };
    tracing::info!(
        api = %api.name,
        types = gql.schema.type_count(),
        nodes = spec.graph.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded GraphQL schema"
    );
    let allows_a_write = api.allow.iter().any(|p| p.trim_start().starts_with("mutation."));
    let allow_writes = api.allow_writes || allows_a_write;
    let signin = matches!(api.auth, Some(AuthConfig::Signin));
    let loaded =
        LoadedApi { name: api.name.clone(), spec: Arc::new(spec), graphql: Some(gql), upstream, allow_writes, signin };
    Ok((loaded, problems))
}

/// The spec's unreadable referenced documents, as start-up errors that say
/// how to fix them — unless the API allows them (`allow_unreadable_refs`),
/// when they stay warnings.
fn unreadable_refs(spec: &Spec, api: &ApiConfig, i: usize, file: &str) -> Option<Vec<LoadProblem>> {
    let unreadable: Vec<&codemode_spec::Problem> =
        spec.problems.iter().filter(|p| p.kind == codemode_spec::ProblemKind::UnreadableDocument).collect();
    if unreadable.is_empty() || api.allow_unreadable_refs {
        return None;
    }
    let how = if file == "command line" {
        "or load the spec from a config file whose [[api]] table sets `allow_unreadable_refs = true`".to_string()
    } else {
        format!("or set `allow_unreadable_refs = true` in api[{i}] (`{}`) to start without it", api.name)
    };
    Some(
        unreadable
            .iter()
            .map(|p| {
                LoadProblem(format!(
                    "{file}: api[{i}].spec: part of the spec cannot be loaded, so codemode does not start: {p}, {how}"
                ))
            })
            .collect(),
    )
}

/// Turns `[[mcp]]` tables into portal server configs, reading the
/// environment they name. Problems are reported, not fatal: a server whose
/// variables are missing is left out.
pub fn mcp_servers(config: &Config, file: &str) -> (Vec<codemode_portal::ServerConfig>, Vec<LoadProblem>) {
    let mut servers = Vec::new();
    let mut problems = Vec::new();
    for (i, m) in config.mcp.iter().enumerate() {
        match mcp_server(config, i, m, file) {
            Ok(s) => servers.push(s),
            Err(p) => problems.push(p),
        }
    }
    (servers, problems)
}

fn mcp_server(
    config: &Config,
    i: usize,
    m: &McpConfig,
    file: &str,
) -> Result<codemode_portal::ServerConfig, LoadProblem> {
    let var = |name: &str, key: &str| {
        std::env::var(name).map_err(|_| {
            LoadProblem(format!("{file}: mcp[{i}].{key}: the environment variable `{name}` is not set; export it before starting codemode"))
        })
    };
    let transport = match (&m.command, &m.url) {
        (Some(command), None) => {
            let mut env = Vec::new();
            for name in &m.env {
                env.push((name.clone(), var(name, "env")?));
            }
            for (child, host) in &m.env_from {
                env.push((child.clone(), var(host, "env_from")?));
            }
            codemode_portal::Transport::Stdio {
                command: command.clone(),
                args: m.args.clone(),
                cwd: m.cwd.as_ref().map(|c| config.base_dir.join(c)),
                env,
            }
        }
        (None, Some(url)) => {
            let mut headers = Vec::new();
            for (header, name) in &m.headers_env {
                headers.push((header.clone(), var(name, "headers_env")?));
            }
            let sources = m
                .headers_file
                .iter()
                .map(|(h, p)| (h, "headers_file", crate::secrets::SecretSource::File(p.clone())))
                .chain(
                    m.headers_command
                        .iter()
                        .map(|(h, c)| (h, "headers_command", crate::secrets::SecretSource::Command(c.clone()))),
                );
            for (header, field, source) in sources {
                if headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(header)) {
                    return Err(LoadProblem(format!(
                        "{file}: mcp[{i}].{field}.{header}: `{header}` is given twice; keep one of headers_env, headers_file, headers_command for it"
                    )));
                }
                let value = source
                    .load(&format!("mcp[{i}].{field}.{header}"), &config.base_dir)
                    .map_err(|m| LoadProblem(format!("{file}: {m}")))?;
                headers.push((header.clone(), value));
            }
            match m.transport {
                crate::config::McpTransport::Http => codemode_portal::Transport::Http { url: url.clone(), headers },
                crate::config::McpTransport::Sse => codemode_portal::Transport::Sse { url: url.clone(), headers },
            }
        }
        _ => return Err(LoadProblem(format!("{file}: mcp[{i}]: give `command` (stdio) or `url` (Streamable HTTP)"))),
    };
    let per_user = mcp_per_user(m, i, file, &config.base_dir)?;
    let oauth = match &m.auth {
        None | Some(crate::config::McpAuthConfig::Passthrough { .. }) => None,
        Some(auth) => Some(mcp_oauth(config, auth, &|name, key| var(name, key), &|key, msg| {
            LoadProblem(format!("{file}: mcp[{i}].auth{key}: {msg}"))
        })?),
    };
    Ok(codemode_portal::ServerConfig {
        name: m.name.clone(),
        transport,
        allow: m.allow.clone(),
        deny: m.deny.clone(),
        read_only: m.read_only,
        call_timeout: Duration::from_secs_f64(m.call_timeout_secs.unwrap_or(config.limits.timeout_secs)),
        oauth,
        per_user,
    })
}

/// A server authenticated per user: its credential resolved once like an
/// API's (`auth_for` entries from the environment, files or commands, a
/// pass-through `auth` as the default), and the bounds of its session map.
fn mcp_per_user(
    m: &McpConfig,
    i: usize,
    file: &str,
    base_dir: &std::path::Path,
) -> Result<Option<codemode_portal::PerUser>, LoadProblem> {
    if !m.per_user() {
        return Ok(None);
    }
    let default = match &m.auth {
        Some(crate::config::McpAuthConfig::Passthrough { header, send_as }) => {
            let header = header.clone().unwrap_or_else(|| "Authorization".into());
            let send_as = send_as.clone().unwrap_or_else(|| header.clone());
            Some(Auth::Passthrough(codemode_upstream::Passthrough { header, send_as }))
        }
        _ => None,
    };
    let auth = if m.auth_for.is_empty() {
        default.unwrap_or(Auth::None)
    } else {
        let mut table = codemode_upstream::PerPrincipal { default, ..Default::default() };
        for (j, entry) in m.auth_for.iter().enumerate() {
            let auth = resolve_auth(&entry.auth, &format!("mcp[{i}].auth_for[{j}].auth"), file, base_dir)?;
            match (&entry.principal, &entry.group) {
                (Some(p), _) => {
                    table.principals.entry(p.clone()).or_insert(auth);
                }
                (None, Some(g)) => table.groups.push((g.clone(), auth)),
                (None, None) => {}
            }
        }
        codemode_upstream::per_principal(table)
    };
    Ok(Some(codemode_portal::PerUser {
        auth,
        max_sessions: m.max_sessions.unwrap_or(codemode_portal::DEFAULT_MAX_SESSIONS),
        idle: m.session_idle_secs.map(Duration::from_secs_f64).unwrap_or(codemode_portal::DEFAULT_SESSION_IDLE),
    }))
}

/// The API's credential, resolved once: `auth` alone, or with `auth_for`
/// a per-principal table whose default is `auth` (none: refused). Every
/// secret is read here — environment, file or command — so a missing one
/// stops start-up with the key that names it.
fn resolve_api_auth(api: &ApiConfig, i: usize, file: &str, base_dir: &std::path::Path) -> Result<Auth, LoadProblem> {
    let default = match &api.auth {
        Some(a) => Some(resolve_auth(a, &format!("api[{i}].auth"), file, base_dir)?),
        None => None,
    };
    if api.auth_for.is_empty() {
        return Ok(default.unwrap_or(Auth::None));
    }
    let mut table = codemode_upstream::PerPrincipal { default, ..Default::default() };
    for (j, entry) in api.auth_for.iter().enumerate() {
        let auth = resolve_auth(&entry.auth, &format!("api[{i}].auth_for[{j}].auth"), file, base_dir)?;
        match (&entry.principal, &entry.group) {
            (Some(p), _) => {
                table.principals.entry(p.clone()).or_insert(auth);
            }
            (None, Some(g)) => table.groups.push((g.clone(), auth)),
            (None, None) => {}
        }
    }
    Ok(codemode_upstream::per_principal(table))
}

/// `[[mcp]] auth = { type = "oauth", … }` resolved once: the client from
/// the environment, the token directory.
fn mcp_oauth(
    config: &Config,
    auth: &crate::config::McpAuthConfig,
    var: &dyn Fn(&str, &str) -> Result<String, LoadProblem>,
    problem: &dyn Fn(&str, String) -> LoadProblem,
) -> Result<codemode_portal::oauth::OAuthConfig, LoadProblem> {
    use codemode_portal::oauth::{Grant, OAuthConfig};
    let crate::config::McpAuthConfig::Oauth {
        grant,
        client_id,
        client_id_env,
        client_secret_env,
        client_metadata_url,
        scopes,
        redirect_port,
        store_dir,
    } = auth
    else {
        return Err(problem("", "not an OAuth configuration".into()));
    };
    let client_id = match (client_id, client_id_env) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(name)) => Some(var(name, "auth.client_id_env")?),
        (None, None) => None,
    };
    let client_secret = client_secret_env.as_deref().map(|name| var(name, "auth.client_secret_env")).transpose()?;
    let grant = match grant {
        crate::config::OAuthGrantKind::AuthorizationCode => Grant::AuthorizationCode {
            client_id,
            client_secret,
            client_metadata_url: client_metadata_url.clone(),
            redirect_port: *redirect_port,
        },
        crate::config::OAuthGrantKind::ClientCredentials => Grant::ClientCredentials {
            client_id: client_id.ok_or_else(|| problem("", "client credentials need `client_id`".into()))?,
            client_secret: client_secret
                .ok_or_else(|| problem("", "client credentials need `client_secret_env`".into()))?,
        },
    };
    let store_dir = match store_dir {
        Some(d) => config.base_dir.join(d),
        None => codemode_portal::oauth::default_store_dir().ok_or_else(|| {
            problem(
                ".store_dir",
                "no data directory for the token files (neither CODEMODE_DATA_DIR, XDG_DATA_HOME nor HOME is set); set `store_dir`".into(),
            )
        })?,
    };
    Ok(OAuthConfig { grant, scopes: scopes.clone(), store_dir })
}

fn resolve_auth(auth: &AuthConfig, at: &str, file: &str, base_dir: &std::path::Path) -> Result<Auth, LoadProblem> {
    use crate::secrets::SecretSource;
    let secret = |field: &str, env: &Option<String>, f: &Option<String>, c: &Option<String>| {
        let key = format!("{at}.{field}");
        let source = SecretSource::one_of(&key, env, f, c).map_err(|m| LoadProblem(format!("{file}: {m}")))?;
        let Some(source) = source else {
            return Err(LoadProblem(format!(
                "{file}: {at}: needs `{field}_env`, `{field}_file` or `{field}_command` (where the {field} is read from)"
            )));
        };
        let suffix = match &source {
            SecretSource::Env(_) => "env",
            SecretSource::File(_) => "file",
            SecretSource::Command(_) => "command",
        };
        let value = source
            .load(&format!("{at}.{field}_{suffix}"), base_dir)
            .map_err(|m| LoadProblem(format!("{file}: {m}")))?;
        Ok((Secret::new(value), source.describe()))
    };
    Ok(match auth {
        // Chosen per call by the host (`Targets::user_upstream`).
        AuthConfig::Signin => Auth::None,
        AuthConfig::Bearer { token_env, token_file, token_command } => {
            let (token, source) = secret("token", token_env, token_file, token_command)?;
            Auth::Bearer { token, source }
        }
        AuthConfig::Header { name, value_env, value_file, value_command } => {
            let (value, source) = secret("value", value_env, value_file, value_command)?;
            Auth::Header { name: name.clone(), value, source }
        }
        AuthConfig::Basic { user, user_env, password_env, password_file, password_command } => {
            let user = match (user, user_env) {
                (Some(u), _) => u.clone(),
                (None, Some(var)) => SecretSource::Env(var.clone())
                    .load(&format!("{at}.user_env"), base_dir)
                    .map_err(|m| LoadProblem(format!("{file}: {m}")))?,
                (None, None) => {
                    return Err(LoadProblem(format!("{file}: {at}: basic auth needs `user` or `user_env`")))
                }
            };
            let (password, source) = secret("password", password_env, password_file, password_command)?;
            Auth::Basic { user, password, source }
        }
        AuthConfig::Passthrough { header, send_as } => {
            let header = header.clone().unwrap_or_else(|| "Authorization".into());
            let send_as = send_as.clone().unwrap_or_else(|| header.clone());
            Auth::Passthrough(codemode_upstream::Passthrough { header, send_as })
        }
    })
}

/// Gives the allocator's free memory back to the system about once a second
/// while calls are being served. Results, upstream bodies and portal answers
/// can be megabytes; glibc keeps what they used in per-thread arenas, so a
/// long-lived server's RSS would otherwise stay at its high-water mark.
/// Returns the call counter the service bumps.
fn trim_memory() -> Arc<std::sync::atomic::AtomicU64> {
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = calls.clone();
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = seen.load(std::sync::atomic::Ordering::Relaxed);
                if now != last {
                    last = now;
                    let _ = tokio::task::spawn_blocking(|| {
                        #[cfg(all(target_os = "linux", target_env = "gnu"))]
                        // SAFETY: malloc_trim has no preconditions.
                        unsafe {
                            libc::malloc_trim(0);
                        }
                    })
                    .await;
                }
                if Arc::strong_count(&seen) == 1 {
                    return; // the service is gone
                }
            }
        });
    }
    calls
}

/// Where the sandbox runs model code.
pub struct SandboxOptions {
    /// The wall.
    pub isolation: Isolation,
    /// The worker program (this binary), for [`Isolation::Process`].
    pub worker: Option<WorkerCommand>,
}

/// The running service.
pub struct Service {
    /// The APIs, in config order.
    pub apis: Vec<LoadedApi>,
    sandbox: Sandbox,
    targets: Arc<Targets>,
    pipeline: Arc<Pipeline>,
    policy: Arc<codemode_pipeline::Policy>,
    /// Whether every execution is a dry run (`--dry-run`, `[policy] dry_run`).
    pub dry_run: bool,
    /// Whether some rule asks for approval (so the handler offers an approver).
    pub approvals: bool,
    /// Whether some API's or MCP server's credential is chosen per
    /// principal (pass-through or `auth_for`): every execution then carries
    /// its principal.
    pub per_principal: bool,
    /// Longest wait for an approval answer (`[policy] approval_timeout_secs`).
    pub approval_timeout: std::time::Duration,
    /// What the two tools are called (`[tools]`).
    pub tool_names: crate::tools::ToolNames,
    /// What clients may pick: code mode or one tool per operation.
    pub code_mode: crate::operations::CodeMode,
    /// `[tasks]`, when the tasks extension is on.
    pub tasks: Option<crate::tasks::TaskSettings>,
    env: Arc<ExecuteEnv>,
    /// Per-call limits.
    pub limits: Limits,
    /// Result size cap in tokens.
    pub max_output_tokens: usize,
    /// Bytes of images and audio one result may carry (`[limits] binary_kib`).
    pub binary_bytes: usize,
    catalog: Arc<Catalog>,
    scrubber: codemode_upstream::Scrubber,
    /// `[[redact]]` rules for what a call returns (result, console, error).
    redactor: codemode_redact::Redactor,
    /// Where every search and execute is recorded: the SQLite file or the
    /// PostgreSQL database of `[audit]` (`None`: `[audit] path = "off"`).
    pub audit: Option<Box<dyn codemode_audit::AuditSink>>,
    /// Calls since the allocator last gave free memory back (see `trim_memory`).
    calls: Arc<std::sync::atomic::AtomicU64>,
    /// The upstream MCP servers, when any are configured.
    pub portal: Option<Arc<Portal>>,
    /// OpenTelemetry (off unless `[telemetry]` or `OTEL_*` name a collector
    /// or `/metrics` is on); flushed by [`Service::shutdown`].
    pub telemetry: codemode_telemetry::Telemetry,
}

impl Service {
    /// Where signed-in users' upstream tokens come from (`[auth.signin]`):
    /// set by the HTTP listener before it serves MCP.
    pub fn set_user_credentials(&self, c: Arc<dyn codemode_http::UserCredentials>) {
        self.targets.set_user_credentials(c);
    }

    /// The signed-in users' credentials, once the HTTP listener set them.
    pub fn user_credentials(&self) -> Option<Arc<dyn codemode_http::UserCredentials>> {
        self.targets.user_credentials()
    }

    /// Starts the sandbox (packs the specs, pre-starts its workers) and the
    /// `execute` host.
    pub async fn start(
        apis: Vec<LoadedApi>,
        servers: Vec<codemode_portal::ServerConfig>,
        config: &Config,
        options: SandboxOptions,
    ) -> Result<Service, String> {
        let limits_config = &config.limits;
        // Every credential codemode holds, for the last scrub of what a call
        // returns (see `Service::scrub`).
        let secrets: Vec<String> = apis
            .iter()
            .flat_map(|a| a.upstream.config().auth.secrets())
            .chain(servers.iter().flat_map(codemode_portal::ServerConfig::secrets))
            .collect();
        let scrubber = codemode_upstream::Scrubber::new(secrets);
        let portal = if servers.is_empty() {
            None
        } else {
            let started = Instant::now();
            let portal_options = codemode_portal::PortalOptions {
                max_result_bytes: limits_config.max_response_kib * 1024,
                ..Default::default()
            };
            let p = Portal::start_with(servers, Duration::from_secs(10), portal_options).await?;
            for st in p.status() {
                tracing::info!(server = %st.name, state = %st.state, tools = st.tools, "MCP server");
            }
            tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "portal connected");
            Some(Arc::new(p))
        };
        let limits = Limits {
            timeout: Duration::from_secs_f64(limits_config.timeout_secs),
            memory_bytes: limits_config.memory_mib * 1024 * 1024,
            stack_bytes: limits_config.stack_kib * 1024,
            console_bytes: limits_config.console_kib * 1024,
            max_host_calls: limits_config.max_requests,
        };
        let workers = match limits_config.search_workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            n => n,
        };
        let specs: Vec<SearchSpec> = apis
            .iter()
            .map(|a| SearchSpec {
                name: a.name.clone(),
                graph: a.spec.graph.clone(),
                global: if a.graphql.is_some() { SpecGlobal::Schemas } else { SpecGlobal::Specs },
            })
            .collect();
        let started = Instant::now();
        let sandbox_config = SandboxConfig {
            isolation: options.isolation,
            limits: limits.clone(),
            search_workers: workers,
            execute_workers: limits_config.max_concurrent_executions.max(1),
            worker: options.worker,
        };
        let sandbox = Sandbox::start(sandbox_config, specs).await?;
        let rss = sandbox.worker_rss();
        tracing::info!(
            isolation = %sandbox.isolation(),
            search_workers = workers,
            execute_workers = limits_config.max_concurrent_executions.max(1),
            spec_bytes = sandbox.spec_bytes,
            worker_rss_kib = rss.iter().sum::<u64>() / 1024 / (rss.len().max(1) as u64),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sandbox ready"
        );
        if sandbox.isolation() == Isolation::InProcess {
            tracing::warn!("isolation = \"in-process\": model code runs on host threads with no process wall; native work QuickJS cannot interrupt runs past the time limit");
        }
        let mut env = ExecuteEnv {
            clients: apis
                .iter()
                .map(|a| Client {
                    global: a.name.clone(),
                    methods: vec![if a.graphql.is_some() { "graphql" } else { "request" }.into()],
                })
                .collect(),
            aliases: vec![],
            dynamic_clients: vec![],
        };
        if apis.len() == 1 {
            env.aliases.push(("api".into(), apis[0].name.clone()));
        }
        if portal.is_some() {
            env.dynamic_clients.push("codemode".into());
        }
        let policy = Arc::new(crate::host::policy(config)?);
        if let Some(a) = apis.iter().find(|a| a.signin) {
            if config.auth.signin.is_none() {
                return Err(format!(
                    "api `{}`: auth = {{ type = \"signin\" }} sends each user's upstream token from their OAuth sign-in; configure [auth.signin] (see the README, \"OAuth sign-in\")",
                    a.name
                ));
            }
        }
        let targets = Arc::new(Targets::new(&apis, portal.clone(), policy.clone()));
        let audit = open_audit(&config.audit, scrubber.clone())?;
        let (redactor, dlp) = codemode_redact::compile(&config.redact, &config.dlp)
            .map_err(|e| e.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))?;
        let settings = codemode_telemetry::resolve(&config.telemetry, &|k| std::env::var(k).ok())
            .map_err(|ps| ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))?;
        let telemetry = codemode_telemetry::Telemetry::start(&settings)?;
        let telemetry_layer = codemode_telemetry::TelemetryLayer::new(
            &telemetry,
            apis.iter().map(|a| (a.name.clone(), a.upstream.clone())),
            scrubber.clone(),
        );
        let pipeline =
            crate::host::pipeline(config, targets.clone(), policy.clone(), redactor.clone(), dlp, telemetry_layer);
        let approvals = config.apis.iter().any(|a| !a.approve.is_empty())
            || config.mcp.iter().any(|m| !m.approve.is_empty())
            || config.policy.groups.values().flat_map(|g| g.values()).any(|r| !r.approve.is_empty());
        let catalog = Arc::new(Catalog::new(
            portal.clone(),
            apis.iter().map(|a| (a.name.clone(), a.spec.clone())).collect(),
            apis.iter().filter_map(|a| Some((a.name.clone(), a.graphql.clone()?))).collect(),
            policy.clone(),
        ));
        // …or some MCP server's: each principal then has its own session.
        let per_principal = apis.iter().any(|a| a.upstream.config().auth.is_dynamic())
            || portal.as_ref().is_some_and(|p| !p.per_user_servers().is_empty());
        Ok(Service {
            apis,
            sandbox,
            targets,
            pipeline,
            policy,
            dry_run: config.policy.dry_run,
            per_principal,
            approvals,
            approval_timeout: std::time::Duration::from_secs_f64(config.policy.approval_timeout_secs),
            tool_names: crate::tools::ToolNames {
                search: config.tools.search_name.clone(),
                execute: config.tools.execute_name.clone(),
            },
            code_mode: config.tools.code_mode,
            tasks: config.tasks.enabled.then(|| crate::tasks::TaskSettings {
                inline_ms: config.tasks.inline_ms,
                ttl_ms: config.tasks.ttl_secs * 1000,
                poll_interval_ms: config.tasks.poll_interval_ms,
                max_running_per_principal: config.tasks.max_running_per_principal,
            }),
            env: Arc::new(env),
            limits,
            max_output_tokens: limits_config.max_output_tokens,
            binary_bytes: limits_config.binary_kib * 1024,
            catalog,
            audit,
            scrubber,
            redactor,
            calls: trim_memory(),
            portal,
            telemetry,
        })
    }

    /// Runs `search` code: `visible` specs, and the catalog (`codemode.tools()`,
    /// `codemode.types()`) narrowed to `principal`'s scopes.
    pub async fn search(&self, code: String, visible: Option<Vec<String>>, principal: Option<&Principal>) -> Outcome {
        let catalog: Arc<dyn SyncHost> = match principal {
            Some(p) => Arc::new(ScopedCatalog { inner: self.catalog.clone(), principal: p.clone() }),
            None => self.catalog.clone(),
        };
        let call = SearchCall { host: Some(catalog), visible };
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut outcome = self.sandbox.search(code.clone(), call).await;
        crate::hints::teach(&mut outcome, ToolKind::Search, &code, &self.apis, self.portal.is_some());
        self.scrub(outcome)
    }

    /// The last line of credential defence: every upstream answer was
    /// scrubbed before the code saw it, but whatever the call returns —
    /// result, console, error — is scrubbed once more, of every credential
    /// of every API and MCP server, before it leaves the host.
    fn scrub(&self, outcome: Outcome) -> Outcome {
        self.scrub_with(&self.scrubber, outcome)
    }

    /// [`Service::scrub`] with `scrubber` (the service's, plus what an
    /// execution's client presented).
    fn scrub_with(&self, scrubber: &codemode_upstream::Scrubber, outcome: Outcome) -> Outcome {
        let mut outcome = Self::scrub_credentials(scrubber, outcome);
        // `[[redact]]` rules without `apis` apply to what the code returns
        // too (rules for one API were applied to that API's answers).
        if !self.redactor.is_empty() {
            let r = &self.redactor;
            match &mut outcome.result {
                Ok(codemode_sandbox::JsValue::String(text)) => {
                    r.redact_string(text, None);
                }
                Ok(codemode_sandbox::JsValue::Json(v)) => {
                    r.redact_value(v, None);
                }
                Ok(codemode_sandbox::JsValue::Undefined) => {}
                Err(e) => {
                    r.redact_string(&mut e.message, None);
                    if let Some(stack) = &mut e.stack {
                        r.redact_string(stack, None);
                    }
                    if let Some(d) = &mut e.details {
                        r.redact_value(d, None);
                    }
                }
            }
            for line in &mut outcome.console {
                r.redact_string(line, None);
            }
        }
        outcome
    }

    fn scrub_credentials(s: &codemode_upstream::Scrubber, mut outcome: Outcome) -> Outcome {
        if s.is_empty() {
            return outcome;
        }
        match &mut outcome.result {
            Ok(codemode_sandbox::JsValue::String(text)) => *text = s.scrub_str(text).into_owned(),
            Ok(codemode_sandbox::JsValue::Json(v)) => s.scrub_value(v),
            Ok(codemode_sandbox::JsValue::Undefined) => {}
            Err(e) => {
                e.message = s.scrub_str(&e.message).into_owned();
                e.name = s.scrub_str(&e.name).into_owned();
                if let Some(stack) = &mut e.stack {
                    *stack = s.scrub_str(stack).into_owned();
                }
                if let Some(d) = &mut e.details {
                    s.scrub_value(d);
                }
            }
        }
        for line in &mut outcome.console {
            *line = s.scrub_str(line).into_owned();
        }
        outcome
    }

    /// The specs a principal may search (`None`: all). `search` needs any
    /// scope on an API to see its spec; with no scope on any API (and no
    /// upstream MCP servers) the call is refused, naming the scopes.
    pub fn visible_specs(&self, principal: Option<&Principal>) -> Result<Option<Vec<String>>, String> {
        let Some(p) = principal else { return Ok(None) };
        let visible: Vec<String> = self.apis.iter().filter(|a| p.allows_any(&a.name)).map(|a| a.name.clone()).collect();
        let servers = self.portal.as_ref().map(|portal| portal.server_names()).unwrap_or_default();
        if visible.is_empty() && !servers.iter().any(|s| p.allows_any(s)) {
            let first = self.apis.first().map(|a| a.name.clone()).or_else(|| servers.first().cloned());
            if let Some(first) = first {
                return Err(p.missing_any(&first));
            }
        }
        Ok(Some(visible))
    }

    /// What the sandbox wall is, checked: behind the process wall a worker
    /// tries what its lockdown forbids. `Err` when the wall does not hold.
    pub async fn wall_report(&self) -> Result<String, String> {
        match self.sandbox.lockdown_report().await {
            None => Ok(
                "sandbox: in-process (no process wall: native work QuickJS cannot interrupt runs past the time limit)"
                    .into(),
            ),
            Some(Err(e)) => Err(format!("sandbox: the worker self-test failed: {e}")),
            Some(Ok(report)) => {
                let map = report.as_object().cloned().unwrap_or_default();
                let open: Vec<String> = map
                    .iter()
                    .filter(|(k, v)| *k != "uid" && v.as_str() != Some("denied"))
                    .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("?")))
                    .collect();
                let uid = map.get("uid").and_then(|u| u.as_str()).unwrap_or("?").to_string();
                if open.is_empty() {
                    let denied: Vec<&String> = map.keys().filter(|k| *k != "uid").collect();
                    Ok(format!(
                        "sandbox: process wall holds — a worker (uid {uid}) was denied {}",
                        denied.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                } else {
                    Err(format!("sandbox: the process wall does not hold: {}", open.join("; ")))
                }
            }
        }
    }

    /// The policy in one line, for `codemode check`.
    pub fn policy_report(&self) -> String {
        let groups = self.policy.group_names();
        let mut line = format!(
            "policy: {} rule patterns; groups: {}",
            self.policy.pattern_count(),
            if groups.is_empty() { "none".to_string() } else { groups.join(", ") }
        );
        if self.approvals {
            line.push_str("; approve rules ask the client's user (MCP elicitation) — clients without it, stateless HTTP and `codemode exec` get those calls refused");
        }
        if self.dry_run {
            line.push_str("; DRY RUN: writes are planned, never sent");
        }
        line
    }

    /// Stops upstream MCP servers and flushes telemetry.
    pub async fn shutdown(&self) {
        if let Some(p) = &self.portal {
            p.shutdown().await;
        }
        self.telemetry.shutdown().await;
    }

    /// Runs `execute` code for `principal`; `approver` answers approval
    /// questions (`None`: the client cannot be asked); `progress` receives
    /// a step per nested call completed and per `progress(...)` of the code
    /// (`None`: nobody asked). The plan lists the writes a dry run recorded
    /// instead of sending.
    pub async fn execute(
        &self,
        code: String,
        principal: Option<Principal>,
        caller: codemode_upstream::Caller,
        approver: Option<Arc<dyn Approver>>,
        progress: Option<crate::host::ProgressFn>,
    ) -> Executed {
        // Time spent waiting for a person's approval does not count against
        // the time limit (JavaScript that runs meanwhile still does).
        let clock = codemode_sandbox::Clock::new();
        let hold = clock.clone();
        // What the client presented for pass-through is a secret of this
        // execution: scrubbed from everything it returns, in every encoding.
        let scrubber = match &principal {
            Some(p) if !p.presented.is_empty() => self.scrubber.with(p.presented.secrets()),
            _ => self.scrubber.clone(),
        };
        let exec = Arc::new(
            Execution::new(principal)
                .with_caller(caller)
                .with_approver(approver)
                .with_dry_run(self.dry_run)
                .with_pause(Arc::new(move || Box::new(hold.pause()))),
        );
        // Nested calls are children of the tool call's span (attached by
        // the server around this call), whichever task runs them.
        codemode_telemetry::ExecTrace::attach_current(&exec);
        // Progress leaves the host like a result: scrubbed, then redacted.
        let progress = progress.map(|sink| {
            let (scrubber, redactor) = (scrubber.clone(), self.redactor.clone());
            Arc::new(move |mut p: crate::host::Progress| {
                p.message = scrubber.scrub_str(&p.message).into_owned();
                redactor.redact_string(&mut p.message, None);
                sink(p)
            }) as crate::host::ProgressFn
        });
        let host = Arc::new(ExecHost {
            progress,
            targets: self.targets.clone(),
            pipeline: self.pipeline.clone(),
            exec: exec.clone(),
            span: tracing::Span::current(),
        });
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut outcome = self.sandbox.execute_with_clock(code.clone(), self.env.clone(), host, clock).await;
        crate::hints::teach(&mut outcome, ToolKind::Execute, &code, &self.apis, self.portal.is_some());
        let outcome = self.scrub_with(&scrubber, outcome);
        let mut plan = DryRunLayer::plan(&exec);
        for v in &mut plan {
            scrubber.scrub_value(v);
            self.redactor.redact_value(v, None);
        }
        let calls = codemode_audit::AuditLog::calls(&exec);
        Executed { outcome, plan, calls }
    }
}

/// Opens the audit store. Without an explicit `[audit] path` (or `url`), a
/// home directory that cannot be found (a service without `HOME`) turns
/// the audit off with a warning; a configured store that cannot be opened
/// — a PostgreSQL that is down, too — stops start-up with an error that
/// names it (password masked).
fn open_audit(
    config: &codemode_audit::AuditConfig,
    scrubber: codemode_upstream::Scrubber,
) -> Result<Option<Box<dyn codemode_audit::AuditSink>>, String> {
    match codemode_audit::open_sink(config, scrubber) {
        Ok(Some(store)) => {
            // It opened, so it resolves.
            match &config.backend() {
                Ok(codemode_audit::Backend::Postgres { url, schema }) => tracing::info!(
                    url = %codemode_audit::mask_url(url),
                    schema = %schema,
                    "audit: every search and execute is recorded in PostgreSQL"
                ),
                Ok(codemode_audit::Backend::Sqlite(path)) => {
                    tracing::info!(path = %path.display(), "audit: every search and execute is recorded")
                }
                _ => {}
            }
            Ok(Some(store))
        }
        Ok(None) => {
            tracing::info!("audit: off ([audit] path = \"off\")");
            Ok(None)
        }
        Err(e) if config.path.is_none() && config.url.is_none() => {
            tracing::warn!(error = %e, "audit: no default place for the audit store; set [audit] path (or \"off\"). Not recording");
            Ok(None)
        }
        Err(e) if config.url.is_some() => Err(format!("[audit] url: {e}")),
        Err(e) => Err(format!("[audit] path: {e}")),
    }
}

/// What an `execute` produced.
pub struct Executed {
    /// The code's result, console and error.
    pub outcome: Outcome,
    /// The writes a dry run planned, in order (empty when none).
    pub plan: Vec<Value>,
    /// Every nested call, for the audit record.
    pub calls: Vec<codemode_audit::CallRecord>,
}
