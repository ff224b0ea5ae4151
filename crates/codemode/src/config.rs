//! `codemode.toml`: the APIs to serve and the limits to serve them with.
//!
//! ```toml
//! [sandbox]
//! isolation = "process"             # or "in-process" (no process wall)
//!
//! [limits]
//! timeout_secs = 30
//! memory_mib = 64
//! max_output_tokens = 6000
//! max_requests = 50
//!
//! [[api]]
//! name = "cloudflare"
//! spec = "cloudflare.json"          # path (relative to this file) or URL
//! base_url = "https://api.cloudflare.com/client/v4"   # default: the spec's first server
//! allow_writes = false              # default: only GET and HEAD are sent
//! headers = { "X-Client" = "codemode" }
//! auth = { type = "bearer", token_env = "CLOUDFLARE_API_TOKEN" }
//! deny = ["DELETE /zones/*/dns_records/*"]   # rules: allow / deny / approve
//! approve = ["POST /**"]
//!
//! [telemetry]                       # off unless an endpoint is set (or OTEL_EXPORTER_OTLP_ENDPOINT)
//! otlp_endpoint = "http://127.0.0.1:4318"
//!
//! [policy]
//! approval_timeout_secs = 120
//!
//! [tools]
//! code_mode = "default_on"          # or "enforced", "opt_in", "off": may clients ask for one tool per operation?
//! search_name = "search"            # e.g. "portal_codemode_search" beside other servers
//!
//! [tasks]                           # execute as a task, for clients that declare the tasks extension
//! inline_ms = 1000                  # an execute done by then is answered directly
//! max_running_per_principal = 4
//! [policy.groups.finance]               # per-group rules (token `groups`, JWT claim)
//! cloudflare = { allow = ["GET /**"] }
//! ```
//!
//! Secrets are only ever read from the environment variables, files or
//! commands the config names (`*_env`, `*_file`, `*_command`, see
//! [`crate::secrets`]); a literal secret in the file is refused. An API's
//! credential may also be the client's own (`auth = { type = "passthrough" }`)
//! or chosen per principal (`[[api.auth_for]]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Limits applied to every call.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The APIs.
    #[serde(default, rename = "api")]
    pub apis: Vec<ApiConfig>,
    /// Upstream MCP servers (portal mode).
    #[serde(default, rename = "mcp")]
    pub mcp: Vec<McpConfig>,
    /// `[server]`: transport and the HTTP listener.
    #[serde(default)]
    pub server: codemode_http::ServerConfig,
    /// `[auth]`: inbound authentication over HTTP.
    #[serde(default)]
    pub auth: codemode_http::AuthConfig,
    /// `[sandbox]`: where model code runs.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// `[policy]`: approval, dry run and group rules.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[tasks]`.
    #[serde(default)]
    pub tasks: TasksConfig,
    /// `[tools]`: what the model sees.
    #[serde(default)]
    pub tools: ToolsConfig,
    /// `[audit]`: where every search and execute is recorded.
    #[serde(default)]
    pub audit: codemode_audit::AuditConfig,
    /// `[[redact]]`: what is replaced by a marker in everything that comes
    /// back to the model.
    #[serde(default, rename = "redact")]
    pub redact: Vec<codemode_redact::RedactRule>,
    /// `[[dlp]]`: requests refused before sending when they carry what a
    /// detector finds.
    #[serde(default, rename = "dlp")]
    pub dlp: Vec<codemode_redact::DlpRule>,
    /// `[telemetry]`: OpenTelemetry traces and metrics (OTLP), `/metrics`.
    #[serde(default)]
    pub telemetry: codemode_telemetry::TelemetryConfig,
    /// `[log]`: how log lines look. Read before the rest of the config,
    /// when logging starts (`Cli::log_format`); kept here so the key is
    /// known to `deny_unknown_fields`.
    #[serde(default)]
    #[allow(dead_code)]
    pub log: LogConfig,
    /// Directory relative paths are resolved against (the config's own).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[policy]`: what the host pipeline applies on top of each API's and
/// server's own rules.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Longest wait for a person's answer to an approval question, seconds.
    pub approval_timeout_secs: f64,
    /// Plan every write instead of sending it (`--dry-run`).
    pub dry_run: bool,
    /// `[policy.groups.<group>]`: per API or MCP server name, rules for the
    /// principals in that group.
    pub groups: BTreeMap<String, BTreeMap<String, codemode_pipeline::RuleLists>>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { approval_timeout_secs: 120.0, dry_run: false, groups: BTreeMap::new() }
    }
}

/// `[tasks]`: `execute` as a task (the MCP tasks extension,
/// `io.modelcontextprotocol/tasks`) for clients that declare it.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TasksConfig {
    /// Declare the extension (off: every execute is answered in its request).
    pub enabled: bool,
    /// An execute that ends within this many milliseconds is answered
    /// directly; a longer one becomes a task.
    pub inline_ms: u64,
    /// How long a task and its result are kept, seconds (`ttlMs`).
    pub ttl_secs: u64,
    /// How often clients are asked to poll, milliseconds (`pollIntervalMs`).
    pub poll_interval_ms: u64,
    /// Tasks one principal may have running at once.
    pub max_running_per_principal: usize,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig {
            enabled: true,
            inline_ms: 1000,
            ttl_secs: 600,
            poll_interval_ms: 500,
            max_running_per_principal: 4,
        }
    }
}

/// `[tools]`: the names of the two tools, and whether clients may ask for
/// one tool per operation instead.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// `enforced`, `default_on`, `opt_in` or `off` (see
    /// [`crate::operations::CodeMode`]).
    pub code_mode: crate::operations::CodeMode,
    /// The name of the search tool (e.g. `portal_codemode_search` beside
    /// other servers).
    pub search_name: String,
    /// The name of the execute tool.
    pub execute_name: String,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            code_mode: crate::operations::CodeMode::DefaultOn,
            search_name: "search".into(),
            execute_name: "execute".into(),
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json` (overridden by `--log-format`).
    #[serde(default)]
    #[allow(dead_code)]
    pub format: LogFormat,
}

/// The shape of log lines on stderr.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format `{s}`: use `text` or `json`")),
        }
    }
}

/// `[sandbox]`.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// `"process"` (default on Linux: locked-down worker processes, killed at
    /// the deadline) or `"in-process"` (host threads, no process wall: for
    /// platforms without seccomp).
    pub isolation: Option<codemode_sandbox::Isolation>,
}

/// Per-call limits.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Wall clock per call, seconds.
    pub timeout_secs: f64,
    /// Memory per call, MiB.
    pub memory_mib: usize,
    /// JavaScript stack, KiB.
    pub stack_kib: usize,
    /// Result size, in o200k tokens.
    pub max_output_tokens: usize,
    /// Console output kept, KiB.
    pub console_kib: usize,
    /// Images and audio one result may carry as MCP content blocks, KiB
    /// (decoded bytes, all blocks together; beside the token cap, which
    /// covers only the text).
    pub binary_kib: usize,
    /// Upstream requests per `execute` call.
    pub max_requests: u32,
    /// Largest upstream request body, KiB.
    pub max_request_kib: usize,
    /// Largest upstream response body, KiB.
    pub max_response_kib: usize,
    /// Timeout of one upstream HTTP exchange, seconds.
    pub request_timeout_secs: f64,
    /// `execute` calls running at once; more wait.
    pub max_concurrent_executions: usize,
    /// Threads (each with its own copy of the specs) for `search`.
    /// 0: one per core.
    pub search_workers: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            timeout_secs: 30.0,
            memory_mib: 64,
            stack_kib: 512,
            max_output_tokens: 6000,
            console_kib: 16,
            binary_kib: 4096,
            max_requests: 50,
            max_request_kib: 1024,
            max_response_kib: 8192,
            request_timeout_secs: 30.0,
            max_concurrent_executions: 16,
            search_workers: 0,
        }
    }
}

/// The shortest `refresh_secs`: a second (each refresh is one conditional
/// request; a reload happens only when the spec changed).
const MIN_REFRESH_SECS: f64 = 1.0;
/// The longest `refresh_secs`: a year (a `Duration` holds more, but a
/// longer interval is a typo).
const MAX_REFRESH_SECS: f64 = 365.0 * 86_400.0;

/// What kind of API an `[[api]]` table describes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// An OpenAPI (or Swagger 2.0) spec; `<api>.request(...)`.
    #[default]
    Openapi,
    /// A GraphQL endpoint (`url`) and its schema; `<api>.graphql(...)`.
    Graphql,
}

/// One API: OpenAPI (the default) or GraphQL (`kind = "graphql"`).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// JavaScript identifier: the client's global in `execute`, the key in
    /// `specs` (or `schemas`) in `search`.
    pub name: String,
    /// OpenAPI or GraphQL.
    #[serde(default)]
    pub kind: ApiKind,
    /// Path or URL of the spec; for GraphQL, of the schema: SDL, or a saved
    /// introspection result (JSON) — or a list of SDL files merged into one
    /// schema (`extend type` across them). A GraphQL API without one is
    /// introspected at its `url` at start-up (and the answer cached).
    #[serde(default)]
    pub spec: SpecPaths,
    /// GraphQL: the endpoint every operation is POSTed to.
    pub url: Option<String>,
    /// GraphQL: deepest field nesting one operation may select (default 15).
    pub max_depth: Option<usize>,
    /// GraphQL: most fields one operation's answer may hold, counting list
    /// fields by their `first`/`last` (default 50,000).
    pub max_cost: Option<u64>,
    /// Base URL of the API; default: the spec's first server.
    pub base_url: Option<String>,
    /// Credential (with `auth_for`: the default for principals no entry
    /// names).
    pub auth: Option<AuthConfig>,
    /// Credentials for particular principals or groups (the principal's
    /// name first, then the first entry of its groups in this order).
    #[serde(default)]
    pub auth_for: Vec<AuthFor>,
    /// Static headers for every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Allow methods other than GET and HEAD.
    #[serde(default)]
    pub allow_writes: bool,
    /// Rehearsal mode: answer requests from the spec instead of the network.
    #[serde(default)]
    pub mock: bool,
    /// Rehearsal state: `"off"` (every answer from the spec alone), or
    /// resources created, listed, read, updated and deleted in memory, one
    /// store per `"principal"` or per MCP `"session"`.
    #[serde(default)]
    pub mock_state: MockState,
    /// Resources a rehearsal store starts with (JSON or YAML, relative to
    /// this file): `{"/collection/path": [{..}, ..]}`. Needs `mock_state`.
    pub mock_seed: Option<String>,
    /// Rehearse exactly what the spec documents: a required body on a
    /// method that usually lacks one (DELETE, GET) is a 400, not a warning.
    #[serde(default)]
    pub mock_strict: bool,
    /// Operations to allow (when non-empty, only these):
    /// `"METHOD /path/glob"`, `"/path/glob"`, `"operationId:<glob>"`,
    /// `"tag:<glob>"`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Operations never sent (deny wins).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Operations sent only after a person approves.
    #[serde(default)]
    pub approve: Vec<String>,
    /// Plan this API's writes instead of sending them.
    #[serde(default)]
    pub dry_run: bool,
    /// Start even when a document that one of the spec's `$ref`s points at
    /// cannot be read or parsed (what refers into it then reads as
    /// `$unresolved`). Off: such a spec stops start-up, naming the file.
    #[serde(default)]
    pub allow_unreadable_refs: bool,
    /// For a spec at an http(s) URL: ask its server this often (seconds)
    /// whether it changed (a conditional request, through the spec cache),
    /// and when it did, reload — calls running meanwhile finish on the old
    /// spec. For a GraphQL schema introspected from `url`: introspect again
    /// this often and reload when the answer differs. Unset: the spec is
    /// read at start-up and on reloads only.
    pub refresh_secs: Option<f64>,
}

/// Whether a rehearsal keeps state, and per whom (`mock_state`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MockState {
    /// No state: every answer comes from the spec alone.
    #[default]
    Off,
    /// One store per authenticated principal (stdio: one for the process).
    Principal,
    /// One store per MCP session (stdio: one for the process).
    Session,
}

/// One upstream MCP server (portal mode): a stdio `command` or an HTTP `url`.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Namespace: tools become `codemode.<name>_<tool>`.
    pub name: String,
    /// Program to start (stdio transport).
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its working directory (relative to this file).
    pub cwd: Option<String>,
    /// Environment variables passed through from codemode's environment, by name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Environment variables set in the child from other variables of
    /// codemode's environment: `{ CHILD_NAME = "HOST_NAME" }`.
    #[serde(default)]
    pub env_from: BTreeMap<String, String>,
    /// Streamable HTTP endpoint (HTTP transport), or with `transport =
    /// "sse"` the stream of a legacy HTTP+SSE server (e.g. `…/sse`).
    pub url: Option<String>,
    /// How to speak to a `url`: `"http"` (Streamable HTTP, the default) or
    /// `"sse"` (the HTTP+SSE transport of MCP 2024-11-05, for servers that
    /// predate Streamable HTTP).
    #[serde(default)]
    pub transport: McpTransport,
    /// Headers whose values come from environment variables: `{ Authorization = "TOKEN_VAR" }`.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// Headers whose values are read from files (relative to this config;
    /// Docker/Kubernetes secrets): `{ Authorization = "/run/secrets/mcp" }`.
    #[serde(default)]
    pub headers_file: BTreeMap<String, String>,
    /// Headers whose values a command prints, run once at start-up:
    /// `{ Authorization = "pass show mcp/token" }`.
    #[serde(default)]
    pub headers_command: BTreeMap<String, String>,
    /// Tool-name globs to expose (empty: all).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tool-name globs to hide.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Tool-name globs sent only after a person approves.
    #[serde(default)]
    pub approve: Vec<String>,
    /// Plan this server's non-read-only tool calls instead of sending them.
    #[serde(default)]
    pub dry_run: bool,
    /// Expose only tools annotated `readOnlyHint: true`.
    #[serde(default)]
    pub read_only: bool,
    /// Timeout of one tool call, seconds.
    pub call_timeout_secs: Option<f64>,
    /// How codemode authenticates to this server beyond static headers:
    /// `{ type = "oauth", … }`, or `{ type = "passthrough", header?,
    /// send_as? }` (each principal's own session with what its MCP client
    /// presents). Streamable HTTP `url` servers only.
    pub auth: Option<McpAuthConfig>,
    /// Credentials for particular principals or groups, as for `[[api]]`
    /// (the principal's name first, then its groups in this order, then a
    /// pass-through `auth`; otherwise refused). With any per-user
    /// credential each principal gets its own upstream session.
    #[serde(default)]
    pub auth_for: Vec<AuthFor>,
    /// A server authenticated per user: most principals' sessions open at
    /// once (default 256); one more closes the least recently used idle one.
    pub max_sessions: Option<usize>,
    /// A server authenticated per user: a principal's session unused this
    /// many seconds is closed (default 600).
    pub session_idle_secs: Option<f64>,
}

impl McpConfig {
    /// True when each principal gets its own upstream session (a
    /// pass-through `auth` or any `auth_for`).
    pub fn per_user(&self) -> bool {
        matches!(self.auth, Some(McpAuthConfig::Passthrough { .. })) || !self.auth_for.is_empty()
    }

    /// The inbound headers this server's sessions forward (pass-through).
    fn passthrough_headers(&self) -> Vec<String> {
        let own = match &self.auth {
            Some(McpAuthConfig::Passthrough { header, .. }) => {
                Some(header.clone().unwrap_or_else(|| "Authorization".into()))
            }
            _ => None,
        };
        own.into_iter().chain(self.auth_for.iter().filter_map(|e| e.auth.passthrough_header())).collect()
    }
}

/// `[[mcp]] auth`: OAuth 2.1 to an upstream MCP server.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum McpAuthConfig {
    /// The server's OAuth (discovered from its 401: RFC 9728, then RFC 8414).
    Oauth {
        /// `authorization_code` (a person signs in with `codemode login
        /// <server>`; the default) or `client_credentials` (machine to machine).
        #[serde(default)]
        grant: OAuthGrantKind,
        /// A client registered beforehand (literal: a client id is no secret).
        client_id: Option<String>,
        /// …or the environment variable holding it.
        client_id_env: Option<String>,
        /// Environment variable holding the client's secret (required for
        /// client credentials; for a confidential authorization-code client).
        client_secret_env: Option<String>,
        /// An `https` Client ID Metadata Document URL used as the client id
        /// where the authorization server supports them.
        client_metadata_url: Option<String>,
        /// Scopes to ask for (default: what the server's challenge or
        /// metadata names).
        #[serde(default)]
        scopes: Vec<String>,
        /// Fixed port of the loopback redirect (`http://127.0.0.1:PORT/callback`),
        /// for a pre-registered client; default: any free port.
        redirect_port: Option<u16>,
        /// Directory of the encrypted token files (relative to this file);
        /// default: `$CODEMODE_DATA_DIR/oauth`, else the user's data dir
        /// (`$XDG_DATA_HOME/codemode/oauth` or `~/.local/share/codemode/oauth`).
        store_dir: Option<String>,
    },
    /// The credential each principal's MCP client presents on its HTTP
    /// request, forwarded on that principal's own upstream session: header
    /// `header` (default `Authorization`) sent as `send_as` (default the
    /// same). codemode does not validate it; the upstream does.
    Passthrough {
        /// The inbound header (default `Authorization`).
        header: Option<String>,
        /// The upstream header it is sent in (default: `header`).
        send_as: Option<String>,
    },
}

/// `[[mcp]] auth.grant`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrantKind {
    /// Authorization code + PKCE for a person (`codemode login`).
    #[default]
    AuthorizationCode,
    /// Client credentials, no person.
    ClientCredentials,
}

/// `[[mcp]] transport`: how a `url` is spoken to.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpTransport {
    /// MCP Streamable HTTP.
    #[default]
    Http,
    /// The legacy HTTP+SSE transport (2024-11-05).
    Sse,
}

/// `spec`: one path or URL, or (GraphQL) a list of SDL files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecPaths(Vec<String>);

impl SpecPaths {
    /// One path or URL.
    pub fn one(path: impl Into<String>) -> Self {
        SpecPaths(vec![path.into()])
    }

    /// The first (for an OpenAPI spec: the only) path, or `""` when unset.
    pub fn first(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or_default()
    }

    /// Every path, as written.
    pub fn all(&self) -> &[String] {
        &self.0
    }

    /// True when no spec is set (`""` and `[]` say the same).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when the first path is an http(s) URL.
    pub fn is_remote(&self) -> bool {
        let f = self.first();
        f.starts_with("http://") || f.starts_with("https://")
    }
}

impl PartialEq<&str> for SpecPaths {
    fn eq(&self, other: &&str) -> bool {
        self.0.len() == 1 && self.0[0] == *other
    }
}

impl std::fmt::Display for SpecPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

impl<'de> Deserialize<'de> for SpecPaths {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SpecPaths;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path or URL (a string), or a list of GraphQL SDL file paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SpecPaths, E> {
                Ok(SpecPaths(if v.is_empty() { vec![] } else { vec![v.to_string()] }))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<SpecPaths, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    out.push(p);
                }
                Ok(SpecPaths(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for SpecPaths {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SpecPaths".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A path or URL, or (GraphQL) a list of SDL file paths merged into one schema.",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
            ]
        })
    }
}

impl ApiConfig {
    /// The API's own rules.
    pub fn rules(&self) -> codemode_pipeline::RuleLists {
        codemode_pipeline::RuleLists {
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            approve: self.approve.clone(),
        }
    }
}

impl McpConfig {
    /// The server's own rules.
    pub fn rules(&self) -> codemode_pipeline::RuleLists {
        codemode_pipeline::RuleLists {
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            approve: self.approve.clone(),
        }
    }
}

/// A credential. Its secret is read once at start-up from an environment
/// variable (`*_env`), a file (`*_file`, relative to this config) or a
/// command's output (`*_command`) — exactly one of the three; a literal
/// secret is refused. `passthrough` forwards what the MCP client presents.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthConfig {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Environment variable holding the token.
        token_env: Option<String>,
        /// File holding the token (trailing newline dropped).
        token_file: Option<String>,
        /// Command printing the token.
        token_command: Option<String>,
    },
    /// `<name>: <value>`.
    Header {
        /// Header name.
        name: String,
        /// Environment variable holding the value.
        value_env: Option<String>,
        /// File holding the value.
        value_file: Option<String>,
        /// Command printing the value.
        value_command: Option<String>,
    },
    /// HTTP Basic.
    Basic {
        /// User name (literal), or…
        user: Option<String>,
        /// …environment variable holding it.
        user_env: Option<String>,
        /// Environment variable holding the password.
        password_env: Option<String>,
        /// File holding the password.
        password_file: Option<String>,
        /// Command printing the password.
        password_command: Option<String>,
    },
    /// The credential the MCP client presents on its HTTP request, forwarded
    /// as it is: header `header` (default `Authorization`) of the inbound
    /// request is sent upstream as `send_as` (default the same name).
    /// codemode does not validate it; the upstream does.
    Passthrough {
        /// The inbound header (default `Authorization`).
        header: Option<String>,
        /// The upstream header it is sent in (default: `header`).
        send_as: Option<String>,
    },
    /// Each signed-in user's own upstream access token (`[auth.signin]`,
    /// codemode as the OAuth authorization server): `Authorization: Bearer`.
    Signin,
}

/// `[[api.auth_for]]`: a credential for one principal or one group instead
/// of the API's `auth` (which, when set, is the default for everyone else;
/// without it, everyone else is refused).
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthFor {
    /// The principal's name (a static token's `name`, the JWT's `sub`).
    pub principal: Option<String>,
    /// …or a group (a static token's `groups`, the JWT's groups claim).
    pub group: Option<String>,
    /// The credential.
    pub auth: AuthConfig,
}

impl AuthConfig {
    /// The pass-through's inbound header, when this is one.
    pub fn passthrough_header(&self) -> Option<String> {
        match self {
            AuthConfig::Passthrough { header, .. } => Some(header.clone().unwrap_or_else(|| "Authorization".into())),
            _ => None,
        }
    }
}

/// A problem in the configuration, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The config file (or `command line`).
    pub file: String,
    /// Dotted key path, e.g. `api[0].auth`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// The serde error of each top-level section (each element of an array of
/// tables on its own), read alone; sections under a key in `skip` (already
/// reported as a literal secret) are left out.
fn section_problems(raw: &toml::Table, file: &str, skip: &[String]) -> Vec<ConfigProblem> {
    let mut out = Vec::new();
    let mut one = |key: String, table: toml::Table| {
        if skip.iter().any(|s| s.starts_with(&format!("{key}.")) || *s == key) {
            return;
        }
        if let Err(e) = toml::Value::Table(table).try_into::<Config>() {
            out.push(ConfigProblem { file: file.into(), key, message: e.message().trim().to_string() });
        }
    };
    for (key, value) in raw {
        match value {
            toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                for (i, item) in items.iter().enumerate() {
                    let mut t = toml::Table::new();
                    t.insert(key.clone(), toml::Value::Array(vec![item.clone()]));
                    one(format!("{key}[{i}]"), t);
                }
            }
            _ => {
                let mut t = toml::Table::new();
                t.insert(key.clone(), value.clone());
                one(key.clone(), t);
            }
        }
    }
    out
}

/// Keys that would hold a secret literally.
const LITERAL_SECRET_KEYS: [&str; 5] = ["token", "password", "value", "secret", "api_key"];

impl Config {
    /// Every inbound header some API forwards (`passthrough`), for the HTTP
    /// layer to capture into each request's principal.
    pub fn passthrough_headers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .apis
            .iter()
            .flat_map(|a| a.auth.iter().chain(a.auth_for.iter().map(|e| &e.auth)))
            .filter_map(AuthConfig::passthrough_header)
            .chain(self.mcp.iter().flat_map(McpConfig::passthrough_headers))
            .map(|h| h.to_ascii_lowercase())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Problems of serving this config over stdio: a pass-through has no
    /// HTTP request to take the credential from, and a per-principal table
    /// without a default has no principal to choose for.
    pub fn stdio_problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, api) in self.apis.iter().enumerate() {
            if api.auth.as_ref().is_some_and(|a| a.passthrough_header().is_some()) {
                out.push(format!(
                    "api[{i}].auth: `{}` forwards the credential of the client's HTTP request (`passthrough`), and over stdio there is none: serve over HTTP ([server] transport = \"http\" or --listen) or give a bearer, header or basic credential",
                    api.name
                ));
            } else if !api.auth_for.is_empty() && api.auth.is_none() {
                out.push(format!(
                    "api[{i}].auth_for: `{}` has credentials only for named principals and groups, and over stdio there is no principal, so every request would be refused: add a default `auth`, or serve over HTTP",
                    api.name
                ));
            }
        }
        for (i, m) in self.mcp.iter().enumerate() {
            if matches!(m.auth, Some(McpAuthConfig::Passthrough { .. })) {
                out.push(format!(
                    "mcp[{i}].auth: `{}` forwards the credential of the client's HTTP request (`passthrough`), and over stdio there is none: serve over HTTP ([server] transport = \"http\" or --listen)",
                    m.name
                ));
            } else if !m.auth_for.is_empty() {
                out.push(format!(
                    "mcp[{i}].auth_for: `{}` has credentials only for named principals and groups, and over stdio there is no principal, so every call would be refused: serve over HTTP, or give the server one credential with `headers_env`",
                    m.name
                ));
            }
        }
        out
    }

    /// What `serve` and `check` say loudly about forwarded credentials:
    /// codemode does not validate them, the upstream does.
    pub fn passthrough_notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        for api in &self.apis {
            for header in
                api.auth.iter().chain(api.auth_for.iter().map(|e| &e.auth)).filter_map(AuthConfig::passthrough_header)
            {
                let inbound = self.auth.header.clone().unwrap_or_else(|| "Authorization".into());
                out.push(if self.auth.is_configured() {
                    format!(
                        "PASS-THROUGH: `{}` forwards the `{header}` header each MCP client sends to the upstream API; codemode checks its own token in `{inbound}` ([auth]) but does NOT validate the forwarded credential — the upstream API does",
                        api.name
                    )
                } else {
                    format!(
                        "PASS-THROUGH: `{}` forwards the `{header}` header each MCP client sends to the upstream API, and codemode does NOT validate it (no [auth]): anyone who can reach this listener can run code here, and the upstream API alone judges each forwarded credential. To decide who may connect, add [auth] tokens or OAuth on another header ([auth] header = \"X-Codemode-Token\")",
                        api.name
                    )
                });
            }
        }
        for m in &self.mcp {
            for header in m.passthrough_headers() {
                out.push(format!(
                    "PASS-THROUGH: MCP server `{}` gets the `{header}` header each MCP client sends, on that principal's own upstream session; codemode does NOT validate the forwarded credential — the upstream server does",
                    m.name
                ));
            }
        }
        out
    }

    /// Reads and checks a config file. All problems are returned at once.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigProblem>> {
        match Config::load_unchecked(path)? {
            (config, problems) if problems.is_empty() => Ok(config),
            (_, problems) => Err(problems),
        }
    }

    /// Reads a config file: `Err` when it cannot be read into a `Config` at
    /// all; else the config with the problems [`Config::check`] finds (for
    /// `codemode check`, which goes on to load what it names).
    pub fn load_unchecked(path: &Path) -> Result<(Config, Vec<ConfigProblem>), Vec<ConfigProblem>> {
        let file = path.display().to_string();
        let problem = |key: &str, message: String| vec![ConfigProblem { file: file.clone(), key: key.into(), message }];
        let whole_file =
            |e: &toml::de::Error| ConfigProblem { file: file.clone(), key: String::new(), message: e.to_string() };
        let text = std::fs::read_to_string(path).map_err(|e| problem("", format!("cannot read the config: {e}")))?;
        // Refuse literal secrets before anything else, with a message that
        // says what to do instead.
        let raw: toml::Table = toml::from_str(&text).map_err(|e| problem("", format!("invalid TOML: {e}")))?;
        let mut problems = Vec::new();
        // `[[api]] auth` and `auth_for`, and `[[mcp]] auth_for` (an
        // `[[mcp]] auth` is OAuth or a pass-through: checked below).
        for (section, with_auth) in [("api", true), ("mcp", false)] {
            let Some(toml::Value::Array(items)) = raw.get(section) else { continue };
            for (i, api) in items.iter().enumerate() {
                let mut tables: Vec<(String, &toml::Table)> = Vec::new();
                if let Some(toml::Value::Table(auth)) = api.get("auth").filter(|_| with_auth) {
                    tables.push((format!("{section}[{i}].auth"), auth));
                }
                if let Some(toml::Value::Array(entries)) = api.get("auth_for") {
                    for (j, e) in entries.iter().enumerate() {
                        if let Some(toml::Value::Table(auth)) = e.get("auth") {
                            tables.push((format!("{section}[{i}].auth_for[{j}].auth"), auth));
                        }
                    }
                }
                for (at, auth) in tables {
                    for k in LITERAL_SECRET_KEYS {
                        if auth.contains_key(k) {
                            let field = match k {
                                "password" => "password",
                                "token" => "token",
                                _ => "value",
                            };
                            problems.push(ConfigProblem {
                                file: file.clone(),
                                key: format!("{at}.{k}"),
                                message: format!(
                                    "a literal secret in the config is refused: put it in an environment variable, a file or a command's output and name it with `{field}_env`, `{field}_file` or `{field}_command` instead"
                                ),
                            });
                        }
                    }
                }
            }
        }
        if let Some(toml::Value::Array(servers)) = raw.get("mcp") {
            for (i, m) in servers.iter().enumerate() {
                if let Some(toml::Value::Table(auth)) = m.get("auth") {
                    if auth.contains_key("client_secret") {
                        problems.push(ConfigProblem {
                            file: file.clone(),
                            key: format!("mcp[{i}].auth.client_secret"),
                            message: "a literal secret in the config is refused: put it in an environment variable and name that variable with `client_secret_env` instead".into(),
                        });
                    }
                }
            }
        }
        let mut config: Config = match toml::from_str(&text) {
            Ok(c) => c,
            Err(whole) => {
                // Every section that does not read, not just the first: each
                // is read on its own, so a typo in [limits] does not hide
                // one in the third [[api]] (`codemode check` reports all).
                let flagged: Vec<String> = problems.iter().map(|p| p.key.clone()).collect();
                let sections = section_problems(&raw, &file, &flagged);
                match sections.len() {
                    // Nothing found section by section: the whole-file error.
                    0 if problems.is_empty() => problems.push(whole_file(&whole)),
                    // The literal secrets already say what is wrong.
                    0 => {}
                    // One: the whole-file error says it with line and column.
                    1 if problems.is_empty() => problems.push(whole_file(&whole)),
                    _ => problems.extend(sections),
                }
                return Err(problems);
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.auth.passthrough = config.passthrough_headers();
        let problems = config.check(&file);
        Ok((config, problems))
    }

    /// Checks names, duplicates and limits.
    pub fn check(&self, file: &str) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut push = |key: String, message: String| problems.push(ConfigProblem { file: file.into(), key, message });
        if self.apis.is_empty() && self.mcp.is_empty() {
            push(
                "api".into(),
                "nothing is configured: add an [[api]] table (name, spec) or an [[mcp]] table (name, command or url)"
                    .into(),
            );
        }
        let mut mcp_names = std::collections::HashSet::new();
        for (i, m) in self.mcp.iter().enumerate() {
            if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                push(format!("mcp[{i}].name"), format!("`{}` must be letters, digits, `_` or `-`", m.name));
            }
            if !mcp_names.insert(m.name.clone()) {
                push(
                    format!("mcp[{i}].name"),
                    format!("`{}` is used by two MCP servers; names must be unique", m.name),
                );
            }
            match (&m.command, &m.url) {
                (Some(_), Some(_)) => {
                    push(format!("mcp[{i}]"), "give either `command` (stdio) or `url` (HTTP), not both".into())
                }
                (None, None) => push(format!("mcp[{i}]"), "give `command` (stdio) or `url` (Streamable HTTP)".into()),
                (Some(_), None) if m.transport == McpTransport::Sse => push(
                    format!("mcp[{i}].transport"),
                    "`sse` is for a `url` (the server's SSE stream); a `command` speaks stdio".into(),
                ),
                _ => {}
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, api) in self.apis.iter().enumerate() {
            if !is_identifier(&api.name) {
                push(
                    format!("api[{i}].name"),
                    format!("`{}` is not a JavaScript identifier (letters, digits, `_`, `$`; not starting with a digit; not a reserved word)", api.name),
                );
            }
            if matches!(api.name.as_str(), "spec" | "specs" | "schema" | "schemas" | "api" | "console" | "codemode") {
                push(
                    format!("api[{i}].name"),
                    format!("`{}` is reserved for codemode's own globals; choose another name", api.name),
                );
            }
            if !seen.insert(api.name.clone()) {
                push(format!("api[{i}].name"), format!("`{}` is used by two APIs; names must be unique", api.name));
            }
            for (j, entry) in api.auth_for.iter().enumerate() {
                let key = format!("api[{i}].auth_for[{j}]");
                match (&entry.principal, &entry.group) {
                    (Some(_), Some(_)) => {
                        push(key, "give `principal` or `group`, not both (two entries say both)".into())
                    }
                    (None, None) => push(key, "name the `principal` or the `group` this credential is for".into()),
                    _ => {}
                }
            }
            let passthroughs =
                api.auth.iter().chain(api.auth_for.iter().map(|e| &e.auth)).filter_map(AuthConfig::passthrough_header);
            for h in passthroughs {
                let lower = h.to_ascii_lowercase();
                if reqwest::header::HeaderName::from_bytes(lower.as_bytes()).is_err()
                    || matches!(
                        lower.as_str(),
                        "host" | "cookie" | "content-length" | "content-type" | "mcp-session-id"
                    )
                {
                    push(
                        format!("api[{i}].auth.header"),
                        format!("`{h}` cannot be forwarded: name the header the client's credential comes in, e.g. `Authorization` or `X-Api-Key`"),
                    );
                }
            }
            if let Some(b) = &api.base_url {
                match url::Url::parse(b) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => push(format!("api[{i}].base_url"), format!("`{b}` is not an http(s) URL")),
                }
            }
            if let Some(secs) = api.refresh_secs {
                // An introspected GraphQL schema (no `spec`) is refreshed by
                // introspecting its endpoint again.
                let introspected = api.kind == ApiKind::Graphql && api.spec.is_empty();
                if api.kind == ApiKind::Graphql && !introspected && !api.spec.is_remote() {
                    push(
                        format!("api[{i}].refresh_secs"),
                        format!("`{}` is local: refresh is for a schema at an http(s) URL or introspected from `url` (for local files, run `codemode serve --watch`)", api.spec),
                    );
                } else if !introspected && !api.spec.is_remote() {
                    push(
                        format!("api[{i}].refresh_secs"),
                        format!("`{}` is a local file: refresh is for specs at an http(s) URL (for local files, run `codemode serve --watch`)", api.spec),
                    );
                } else if !(MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&secs) {
                    push(
                        format!("api[{i}].refresh_secs"),
                        format!("{secs} is out of range: between {MIN_REFRESH_SECS} and {MAX_REFRESH_SECS} (a year) seconds, e.g. 86400 for daily"),
                    );
                }
            }
            match api.kind {
                ApiKind::Openapi => {
                    if api.spec.is_empty() {
                        push(format!("api[{i}].spec"), "missing: the path or URL of the API's OpenAPI spec".into());
                    } else if api.spec.all().len() > 1 {
                        push(
                            format!("api[{i}].spec"),
                            "a list of files is for GraphQL SDL (`kind = \"graphql\"`); an OpenAPI spec is one root document whose `$ref`s reach the others: name only the root".into(),
                        );
                    }
                    for (key, set) in [
                        ("url", api.url.is_some()),
                        ("max_depth", api.max_depth.is_some()),
                        ("max_cost", api.max_cost.is_some()),
                    ] {
                        if set {
                            push(
                                format!("api[{i}].{key}"),
                                format!("`{key}` is for GraphQL APIs: add `kind = \"graphql\"`, or remove it (an OpenAPI API's address is `base_url`)"),
                            );
                        }
                    }
                }
                ApiKind::Graphql => {
                    match &api.url {
                        None => push(
                            format!("api[{i}].url"),
                            "missing: a GraphQL API needs `url`, the endpoint operations are POSTed to (e.g. \"https://api.github.com/graphql\")".into(),
                        ),
                        Some(u) => match url::Url::parse(u) {
                            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                            _ => push(format!("api[{i}].url"), format!("`{u}` is not an http(s) URL")),
                        },
                    }
                    if api.base_url.is_some() {
                        push(
                            format!("api[{i}].base_url"),
                            "a GraphQL API is reached at `url`; remove `base_url`".into(),
                        );
                    }
                    for (key, set) in [
                        ("mock_state", api.mock_state != MockState::Off),
                        ("mock_seed", api.mock_seed.is_some()),
                        ("mock_strict", api.mock_strict),
                    ] {
                        if set {
                            push(format!("api[{i}].{key}"), format!("`{key}` is for OpenAPI rehearsals; a GraphQL rehearsal (`mock = true`) answers from the schema alone"));
                        }
                    }
                    let paths = api.spec.all();
                    if paths.len() > 1 {
                        for (j, p) in paths.iter().enumerate() {
                            if p.is_empty() {
                                push(format!("api[{i}].spec[{j}]"), "an empty path: name an SDL file".into());
                            } else if p.starts_with("http://") || p.starts_with("https://") {
                                push(format!("api[{i}].spec[{j}]"), format!("`{p}` is a URL: a list of schema files takes local SDL files (download it, or give the URL alone as `spec`)"));
                            } else if p.ends_with(".json") {
                                push(format!("api[{i}].spec[{j}]"), format!("`{p}` looks like introspection JSON: a list merges SDL files; give an introspection result alone as `spec`"));
                            }
                        }
                    } else if paths.len() == 1 && paths[0].is_empty() {
                        push(
                            format!("api[{i}].spec"),
                            "an empty path: name the schema file, or leave `spec` out to introspect `url`".into(),
                        );
                    }
                    if api.max_depth == Some(0) || api.max_cost == Some(0) {
                        push(format!("api[{i}]"), "`max_depth` and `max_cost` must be at least 1".into());
                    }
                }
            }
        }
        for (i, api) in self.apis.iter().enumerate() {
            if let Err(e) = codemode_pipeline::RuleSet::compile(&api.rules(), codemode_pipeline::TargetKind::Api) {
                for (key, m) in e {
                    push(format!("api[{i}].{key}"), m);
                }
            }
        }
        for (i, m) in self.mcp.iter().enumerate() {
            if !m.per_user() {
                if m.max_sessions.is_some() || m.session_idle_secs.is_some() {
                    push(
                        format!("mcp[{i}]"),
                        "`max_sessions` and `session_idle_secs` apply to a server authenticated per user: add `auth = { type = \"passthrough\" }` or `[[mcp.auth_for]]` entries, or remove them".into(),
                    );
                }
                continue;
            }
            if m.command.is_some() {
                push(
                    format!("mcp[{i}].auth"),
                    "a credential per user needs a Streamable HTTP server (`url`): a stdio server is one process with one environment for everyone, so it cannot act as each user; give it one credential with `env`/`env_from`, or reach the server over HTTP".into(),
                );
            } else if m.transport != McpTransport::Http {
                push(
                    format!("mcp[{i}].transport"),
                    "a credential per user needs Streamable HTTP (the default `transport`), not the legacy SSE transport".into(),
                );
            }
            if matches!(m.auth, Some(McpAuthConfig::Oauth { .. })) {
                push(format!("mcp[{i}].auth_for"), "OAuth (`auth = { type = \"oauth\" }`) and `auth_for` cannot be combined: the OAuth token is one for the whole server".into());
            }
            for (j, e) in m.auth_for.iter().enumerate() {
                if matches!(e.auth, AuthConfig::Signin) {
                    push(format!("mcp[{i}].auth_for[{j}].auth"), "`signin` applies to [[api]] tables; for an MCP server use bearer, header, basic or passthrough".into());
                }
                if e.principal.is_none() && e.group.is_none() {
                    push(
                        format!("mcp[{i}].auth_for[{j}]"),
                        "give `principal` or `group`: whom this credential is for".into(),
                    );
                }
            }
            if m.max_sessions == Some(0) {
                push(format!("mcp[{i}].max_sessions"), "must be at least 1".into());
            }
            if m.session_idle_secs.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
                push(format!("mcp[{i}].session_idle_secs"), "must be a positive number of seconds".into());
            }
        }
        for (i, m) in self.mcp.iter().enumerate() {
            let Some(McpAuthConfig::Oauth {
                grant,
                client_id,
                client_id_env,
                client_secret_env,
                client_metadata_url,
                ..
            }) = &m.auth
            else {
                continue;
            };
            if m.url.is_none() || m.transport != McpTransport::Http {
                push(
                    format!("mcp[{i}].auth"),
                    "OAuth applies to Streamable HTTP servers: give `url` (and no `transport = \"sse\"`)".into(),
                );
            }
            if client_id.is_some() && client_id_env.is_some() {
                push(format!("mcp[{i}].auth"), "give `client_id` or `client_id_env`, not both".into());
            }
            if *grant == OAuthGrantKind::ClientCredentials
                && (client_id.is_none() && client_id_env.is_none() || client_secret_env.is_none())
            {
                push(
                    format!("mcp[{i}].auth"),
                    "`grant = \"client_credentials\"` needs the client: `client_id` (or `client_id_env`) and `client_secret_env`".into(),
                );
            }
            if let Some(u) = client_metadata_url {
                if !u.starts_with("https://") {
                    push(
                        format!("mcp[{i}].auth.client_metadata_url"),
                        format!("`{u}` must be an https URL (a Client ID Metadata Document is fetched by the authorization server)"),
                    );
                }
            }
        }
        for (i, m) in self.mcp.iter().enumerate() {
            if let Err(e) = codemode_pipeline::RuleSet::compile(&m.rules(), codemode_pipeline::TargetKind::Tools) {
                for (key, msg) in e {
                    push(format!("mcp[{i}].{key}"), msg);
                }
            }
        }
        for (group, tables) in &self.policy.groups {
            for (target, lists) in tables {
                let kind = if self.apis.iter().any(|a| &a.name == target) {
                    codemode_pipeline::TargetKind::Api
                } else if self.mcp.iter().any(|m| &m.name == target) {
                    codemode_pipeline::TargetKind::Tools
                } else {
                    let names: Vec<&str> = self
                        .apis
                        .iter()
                        .map(|a| a.name.as_str())
                        .chain(self.mcp.iter().map(|m| m.name.as_str()))
                        .collect();
                    push(
                        format!("policy.groups.{group}.{target}"),
                        format!("`{target}` is neither an [[api]] nor an [[mcp]] name (names: {})", names.join(", ")),
                    );
                    continue;
                };
                if let Err(e) = codemode_pipeline::RuleSet::compile(lists, kind) {
                    for (key, m) in e {
                        push(format!("policy.groups.{group}.{target}.{key}"), m);
                    }
                }
            }
        }
        if let Err(e) = self.audit.validate() {
            push("audit".into(), e.to_string());
        }
        if let Err(e) = codemode_redact::compile(&self.redact, &self.dlp) {
            for (key, m) in e {
                push(key, m);
            }
        }
        let names: Vec<&str> =
            self.apis.iter().map(|a| a.name.as_str()).chain(self.mcp.iter().map(|m| m.name.as_str())).collect();
        let lists = self
            .redact
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("redact[{i}].apis"), &r.apis))
            .chain(self.dlp.iter().enumerate().map(|(i, r)| (format!("dlp[{i}].apis"), &r.apis)));
        for (key, apis) in lists {
            for a in apis.iter().flatten() {
                if !names.contains(&a.as_str()) {
                    push(
                        key.clone(),
                        format!("`{a}` is neither an [[api]] nor an [[mcp]] name (names: {})", names.join(", ")),
                    );
                }
            }
        }
        if !(self.policy.approval_timeout_secs > 0.0 && self.policy.approval_timeout_secs <= 86400.0) {
            push("policy.approval_timeout_secs".into(), "must be between 0 and 86400".into());
        }
        let names = [("tools.search_name", &self.tools.search_name), ("tools.execute_name", &self.tools.execute_name)];
        for (key, name) in names {
            let fits = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            if !fits {
                push(
                    key.into(),
                    format!("`{name}` is not a tool name: 1 to 64 characters of A-Z, a-z, 0-9, `_`, `-`, `.`"),
                );
            }
        }
        if self.tools.search_name == self.tools.execute_name {
            push("tools.execute_name".into(), "must differ from tools.search_name".into());
        }
        let t = &self.tasks;
        if !(1..=86400).contains(&t.ttl_secs) {
            push("tasks.ttl_secs".into(), "must be between 1 and 86400".into());
        } else if (t.ttl_secs as f64) < self.limits.timeout_secs {
            push(
                "tasks.ttl_secs".into(),
                format!(
                    "is {} s, shorter than an execute may run (limits.timeout_secs = {}): a task would be dropped before it ends; raise it",
                    t.ttl_secs, self.limits.timeout_secs
                ),
            );
        }
        if !(10..=60_000).contains(&t.poll_interval_ms) {
            push("tasks.poll_interval_ms".into(), "must be between 10 and 60000".into());
        }
        if t.max_running_per_principal == 0 {
            push(
                "tasks.max_running_per_principal".into(),
                "must be at least 1 (to turn tasks off: enabled = false)".into(),
            );
        }
        let l = &self.limits;
        if !(l.timeout_secs > 0.0 && l.timeout_secs <= 3600.0) {
            push("limits.timeout_secs".into(), "must be between 0 and 3600".into());
        }
        if l.memory_mib < 4 {
            push("limits.memory_mib".into(), "must be at least 4".into());
        }
        if l.max_output_tokens < 100 {
            push("limits.max_output_tokens".into(), "must be at least 100".into());
        }
        problems
    }

    /// Resolves a spec location relative to the config file (the first, for
    /// a GraphQL schema of several files).
    pub fn spec_location(&self, api: &ApiConfig) -> String {
        self.resolve(api.spec.first())
    }

    /// Every spec location of `api`, resolved (none when `spec` is unset).
    pub fn spec_locations(&self, api: &ApiConfig) -> Vec<String> {
        api.spec.all().iter().map(|p| self.resolve(p)).collect()
    }

    fn resolve(&self, spec: &str) -> String {
        if spec.starts_with("http://") || spec.starts_with("https://") || Path::new(spec).is_absolute() {
            spec.to_string()
        } else {
            self.base_dir.join(spec).display().to_string()
        }
    }
}

/// True for a valid, non-reserved JavaScript identifier (ASCII subset): the
/// same rule the portal applies to tool names.
pub fn is_identifier(s: &str) -> bool {
    codemode_portal::is_unreserved_identifier(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("codemode-config-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("codemode.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn every_section_that_does_not_read_is_reported_at_once() {
        // A literal secret, a typo in [limits] and one in the second [[api]]:
        // all three, each with its key, from one load.
        let p = write(
            "[limits]\ntimeout = 5\n[[api]]\nname = \"a\"\nspec = \"a.json\"\nauth = { type = \"bearer\", token = \"x\" }\n[[api]]\nname = \"b\"\nspecc = \"b.json\"\n",
        );
        let problems = Config::load(&p).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["api[0].auth.token", "api[1]", "limits"], "{problems:?}");
        assert!(problems[1].message.contains("specc") && problems[2].message.contains("timeout"), "{problems:?}");
        // One mistake alone keeps the whole-file message, with its line.
        let p = write("[limits]\ntimeout = 5\n");
        let problems = Config::load(&p).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("line 2") && problems[0].message.contains("timeout"), "{problems:?}");
    }

    #[test]
    fn refresh_is_for_remote_specs_within_range() {
        let text = |spec: &str, secs: &str| {
            format!("[[api]]\nname = \"cf\"\nspec = \"{spec}\"\nbase_url = \"https://x.test\"\nrefresh_secs = {secs}\n")
        };
        let c = Config::load(&write(&text("https://example.com/openapi.json", "86400"))).unwrap();
        assert_eq!(c.apis[0].refresh_secs, Some(86400.0));
        let local = Config::load(&write(&text("cf.json", "86400"))).unwrap_err();
        assert!(
            local[0].to_string().contains("api[0].refresh_secs") && local[0].to_string().contains("--watch"),
            "{local:?}"
        );
        let zero = Config::load(&write(&text("https://example.com/openapi.json", "0"))).unwrap_err();
        assert!(zero[0].to_string().contains("out of range"), "{zero:?}");
    }

    #[test]
    fn a_graphql_schema_may_be_several_sdl_files_and_an_introspected_one_refreshes() {
        let gql = |rest: &str| {
            format!("[[api]]\nname = \"g\"\nkind = \"graphql\"\nurl = \"https://x.test/graphql\"\n{rest}\n")
        };
        let c = Config::load(&write(&gql("spec = [\"a.graphql\", \"sub/b.graphql\"]"))).unwrap();
        assert_eq!(c.apis[0].spec.all(), ["a.graphql", "sub/b.graphql"]);
        let locations = c.spec_locations(&c.apis[0]);
        assert!(locations[1].ends_with("sub/b.graphql") && Path::new(&locations[1]).is_absolute(), "{locations:?}");
        assert_eq!(Config::load(&write(&gql("spec = \"one.graphql\""))).unwrap().apis[0].spec, "one.graphql");
        // A list takes local SDL files, each problem at its index.
        let e =
            Config::load(&write(&gql("spec = [\"a.graphql\", \"https://x.test/s.graphql\", \"s.json\"]"))).unwrap_err();
        let all = format!("{e:?}");
        assert!(all.contains("api[0].spec[1]") && all.contains("api[0].spec[2]"), "{all}");
        // Not a string or a list: the expected shapes named.
        let e = Config::load(&write(&gql("spec = 5"))).unwrap_err();
        assert!(format!("{e:?}").contains("a list of GraphQL SDL file paths"), "{e:?}");
        // An OpenAPI spec is one document.
        let e = Config::load(&write(
            "[[api]]\nname = \"o\"\nspec = [\"a.json\", \"b.json\"]\nbase_url = \"https://x.test\"\n",
        ))
        .unwrap_err();
        assert!(format!("{e:?}").contains("a list of files is for GraphQL SDL"), "{e:?}");
        // refresh_secs: introspected (no spec) or a URL, not a local file.
        assert!(Config::load(&write(&gql("refresh_secs = 60"))).is_ok());
        assert!(Config::load(&write(&gql("spec = \"https://x.test/s.graphql\"\nrefresh_secs = 60"))).is_ok());
        let e = Config::load(&write(&gql("spec = \"s.graphql\"\nrefresh_secs = 60"))).unwrap_err();
        assert!(format!("{e:?}").contains("api[0].refresh_secs"), "{e:?}");
    }

    #[test]
    fn a_full_config_loads() {
        let p = write(
            "[limits]\ntimeout_secs = 5\n[[api]]\nname = \"cf\"\nspec = \"cf.json\"\nallow_writes = true\nheaders = { X-A = \"b\" }\nauth = { type = \"bearer\", token_env = \"CF_TOKEN\" }\n",
        );
        let c = Config::load(&p).unwrap();
        assert_eq!(c.apis[0].name, "cf");
        assert!(c.apis[0].allow_writes);
        assert!(c.spec_location(&c.apis[0]).ends_with("cf.json"));
        assert_eq!(c.limits.timeout_secs, 5.0);
    }

    #[test]
    fn per_user_mcp_servers_are_http_only_and_checked_where_written() {
        let c = Config::load(&write(
            "[[mcp]]\nname = \"u\"\nurl = \"http://a/mcp\"\nauth = { type = \"passthrough\", header = \"X-Up\" }\nsession_idle_secs = 5\n[[mcp.auth_for]]\ngroup = \"ops\"\nauth = { type = \"bearer\", token_env = \"T\" }\n",
        ))
        .unwrap();
        assert!(c.mcp[0].per_user());
        assert_eq!(c.passthrough_headers(), vec!["x-up".to_string()]);
        assert!(c.passthrough_notices().iter().any(|n| n.contains("MCP server `u`")), "{:?}", c.passthrough_notices());
        assert!(c.stdio_problems()[0].starts_with("mcp[0].auth:"), "{:?}", c.stdio_problems());
        let e = Config::load(&write(
            "[[mcp]]\nname = \"s\"\ncommand = \"srv\"\n[[mcp.auth_for]]\nprincipal = \"a\"\nauth = { type = \"bearer\", token_env = \"T\" }\n",
        ))
        .unwrap_err();
        assert_eq!(e[0].key, "mcp[0].auth");
        assert!(e[0].message.contains("one process with one environment"), "{}", e[0].message);
        let e = Config::load(&write("[[mcp]]\nname = \"s\"\nurl = \"http://a/mcp\"\nmax_sessions = 3\n")).unwrap_err();
        assert!(e[0].message.contains("authenticated per user"), "{}", e[0].message);
        // A literal secret in an entry is refused with its key.
        let e = Config::load(&write(
            "[[mcp]]\nname = \"s\"\nurl = \"http://a/mcp\"\n[[mcp.auth_for]]\nprincipal = \"a\"\nauth = { type = \"bearer\", token = \"literal-0123\" }\n",
        ))
        .unwrap_err();
        assert_eq!(e[0].key, "mcp[0].auth_for[0].auth.token");
    }

    #[test]
    fn tasks_settings_are_checked_against_the_time_limit() {
        let c = Config::load(&write("[[api]]\nname = \"cf\"\nspec = \"x\"\n")).unwrap();
        assert!(c.tasks.enabled);
        assert_eq!(c.tasks.inline_ms, 1000);
        let p = write("[limits]\ntimeout_secs = 120\n[tasks]\nttl_secs = 60\npoll_interval_ms = 1\nmax_running_per_principal = 0\n[[api]]\nname = \"cf\"\nspec = \"x\"\n");
        let e = Config::load(&p).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["tasks.ttl_secs", "tasks.poll_interval_ms", "tasks.max_running_per_principal"]);
        assert!(e[0].message.contains("limits.timeout_secs = 120"), "{}", e[0].message);
    }

    #[test]
    fn tool_names_and_code_mode_are_checked() {
        let c = Config::load(&write("[tools]\ncode_mode = \"opt_in\"\nsearch_name = \"portal_codemode_search\"\n[[api]]\nname = \"cf\"\nspec = \"x\"\n")).unwrap();
        assert_eq!(c.tools.code_mode, crate::operations::CodeMode::OptIn);
        assert_eq!(
            (c.tools.search_name.as_str(), c.tools.execute_name.as_str()),
            ("portal_codemode_search", "execute")
        );
        let e = Config::load(&write(
            "[tools]\nsearch_name = \"a b\"\nexecute_name = \"a b\"\n[[api]]\nname = \"cf\"\nspec = \"x\"\n",
        ))
        .unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["tools.search_name", "tools.execute_name", "tools.execute_name"]);
        let e = Config::load(&write("[tools]\ncode_mode = \"sometimes\"\n[[api]]\nname = \"cf\"\nspec = \"x\"\n"))
            .unwrap_err();
        assert!(e[0].message.contains("enforced"), "{}", e[0].message);
    }

    #[test]
    fn mcp_servers_over_legacy_sse() {
        let c = Config::load(&write("[[mcp]]\nname = \"old\"\nurl = \"http://127.0.0.1:3001/sse\"\ntransport = \"sse\"\n[[mcp]]\nname = \"new\"\nurl = \"http://127.0.0.1:3001/mcp\"\n")).unwrap();
        assert_eq!(c.mcp[0].transport, McpTransport::Sse);
        assert_eq!(c.mcp[1].transport, McpTransport::Http, "Streamable HTTP unless told");
        let e = Config::load(&write("[[mcp]]\nname = \"x\"\ncommand = \"srv\"\ntransport = \"sse\"\n")).unwrap_err();
        assert_eq!(e[0].key, "mcp[0].transport");
        assert!(e[0].message.contains("`url`"), "{}", e[0].message);
        let e = Config::load(&write("[[mcp]]\nname = \"x\"\nurl = \"http://a/sse\"\ntransport = \"websocket\"\n"))
            .unwrap_err();
        assert!(e[0].message.contains("sse"), "{e:?}");
    }

    #[test]
    fn literal_secrets_are_refused_with_the_fix() {
        let p = write("[[api]]\nname = \"cf\"\nspec = \"x\"\nauth = { type = \"bearer\", token = \"abc\" }\n");
        let e = Config::load(&p).unwrap_err();
        assert_eq!(e[0].key, "api[0].auth.token");
        assert!(e[0].message.contains("token_env"), "{}", e[0].message);
    }

    #[test]
    fn per_principal_and_passthrough_credentials() {
        let c = Config::load(&write("[[api]]\nname = \"gh\"\nspec = \"x\"\nauth = { type = \"passthrough\", header = \"X-GitHub-Token\", send_as = \"Authorization\" }\n[[api]]\nname = \"k\"\nspec = \"x\"\n[[api.auth_for]]\nprincipal = \"alice\"\nauth = { type = \"bearer\", token_file = \"alice.token\" }\n[[api.auth_for]]\ngroup = \"ops\"\nauth = { type = \"passthrough\" }\n")).unwrap();
        assert_eq!(c.passthrough_headers(), vec!["authorization", "x-github-token"]);
        assert_eq!(c.auth.passthrough, c.passthrough_headers(), "handed to the HTTP layer");
        assert_eq!(c.apis[1].auth_for[0].principal.as_deref(), Some("alice"));
        let stdio = c.stdio_problems();
        assert_eq!(stdio.len(), 2, "{stdio:?}");
        assert!(
            stdio[0].starts_with("api[0].auth: `gh` forwards") && stdio[1].starts_with("api[1].auth_for"),
            "{stdio:?}"
        );
        let notices = c.passthrough_notices();
        assert!(notices.iter().all(|n| n.contains("does NOT validate")), "{notices:?}");
        // An entry names one principal or one group; literals are refused in entries too.
        let e = Config::load(&write("[[api]]\nname = \"k\"\nspec = \"x\"\n[[api.auth_for]]\nprincipal = \"a\"\ngroup = \"g\"\nauth = { type = \"bearer\", token_env = \"T\" }\n[[api.auth_for]]\nauth = { type = \"bearer\", token = \"literal\" }\n")).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["api[0].auth_for[1].auth.token"], "{e:?}");
        assert!(e[0].message.contains("token_file") && e[0].message.contains("token_command"), "{}", e[0].message);
        let e = Config::load(&write("[[api]]\nname = \"k\"\nspec = \"x\"\n[[api.auth_for]]\nprincipal = \"a\"\ngroup = \"g\"\nauth = { type = \"bearer\", token_env = \"T\" }\n[[api.auth_for]]\nauth = { type = \"passthrough\", header = \"Cookie\" }\n")).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["api[0].auth_for[0]", "api[0].auth_for[1]", "api[0].auth.header"], "{e:?}");
    }

    #[test]
    fn mcp_oauth_is_checked_where_it_is_written() {
        let c = Config::load(&write(
            "[[mcp]]\nname = \"t\"\nurl = \"https://a/mcp\"\nauth = { type = \"oauth\", scopes = [\"r\"] }\n",
        ))
        .unwrap();
        assert!(
            matches!(&c.mcp[0].auth, Some(McpAuthConfig::Oauth { grant: OAuthGrantKind::AuthorizationCode, scopes, .. }) if scopes == &["r"])
        );
        let e = Config::load(&write(
            "[[mcp]]\nname = \"t\"\nurl = \"https://a/mcp\"\nauth = { type = \"oauth\", client_secret = \"s3cr3t\" }\n",
        ))
        .unwrap_err();
        assert_eq!(e[0].key, "mcp[0].auth.client_secret");
        assert!(e[0].message.contains("client_secret_env") && !e[0].message.contains("s3cr3t"), "{}", e[0].message);
        let e = Config::load(&write("[[mcp]]\nname = \"t\"\nurl = \"https://a/mcp\"\nauth = { type = \"oauth\", grant = \"client_credentials\", client_id = \"x\" }\n")).unwrap_err();
        assert!(e[0].key == "mcp[0].auth" && e[0].message.contains("client_secret_env"), "{e:?}");
        let e = Config::load(&write("[[mcp]]\nname = \"t\"\ncommand = \"srv\"\nauth = { type = \"oauth\", client_metadata_url = \"http://a/c.json\" }\n")).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].message.contains("Streamable HTTP") && e[1].key.ends_with("client_metadata_url"), "{e:?}");
    }

    #[test]
    fn bad_names_and_duplicates_are_reported_together() {
        let p = write("[[api]]\nname = \"my-api\"\nspec = \"x\"\n[[api]]\nname = \"ok\"\nspec = \"x\"\n[[api]]\nname = \"ok\"\nspec = \"y\"\nbase_url = \"ftp://x\"\n");
        let e = Config::load(&p).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
    }

    #[test]
    fn rules_and_groups_are_checked_where_they_are_written() {
        let p = write(
            "[[api]]\nname = \"cf\"\nspec = \"x\"\ndeny = [\"FETCH /x\"]\napprove = [\"POST /**\"]\n[policy]\napproval_timeout_secs = 0\n[policy.groups.fin]\ncf = { allow = [\"zones\"] }\nnope = { allow = [\"GET /**\"] }\n",
        );
        let e = Config::load(&p).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "api[0].deny[0]",
                "policy.groups.fin.cf.allow[0]",
                "policy.groups.fin.nope",
                "policy.approval_timeout_secs"
            ],
            "{e:?}"
        );
        assert!(e[0].message.contains("not an HTTP method"), "{}", e[0].message);
        assert!(e[2].message.contains("neither an [[api]] nor an [[mcp]]"), "{}", e[2].message);
        let ok = write("[[api]]\nname = \"cf\"\nspec = \"x\"\nallow = [\"GET /**\", \"tag:DNS*\"]\ndry_run = true\n[policy.groups.fin]\ncf = { deny = [\"operationId:delete*\"] }\n");
        let c = Config::load(&ok).unwrap();
        assert!(c.apis[0].dry_run);
        assert_eq!(c.policy.approval_timeout_secs, 120.0);
        assert_eq!(c.policy.groups["fin"]["cf"].deny, vec!["operationId:delete*"]);
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("cloudflare"));
        assert!(is_identifier("_x$1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("class"));
        assert!(!is_identifier("a-b"));
    }
}
