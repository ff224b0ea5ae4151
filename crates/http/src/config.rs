//! `[server]` and `[auth]` in `codemode.toml`, and their checks.
//!
//! ```toml
//! [server]
//! transport = "http"            # or "stdio" (the default)
//! listen = "127.0.0.1:8080"
//! stateless = false             # true: no sessions, any replica can answer any request
//! legacy_sse = true             # also GET /sse + POST /messages (MCP 2024-11-05 clients)
//!
//! [[auth.tokens]]
//! name = "ci"
//! sha256 = "9f86d08…"           # hex SHA-256 of the token, or token_env = "VAR"
//! scopes = ["cloudflare:read"]
//!
//! [auth.oauth]
//! issuer = "https://login.example.com"
//! resource = "https://mcp.example.com/mcp"
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// How `codemode serve` talks MCP.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One client over stdin/stdout.
    #[default]
    Stdio,
    /// MCP Streamable HTTP at `/mcp` (and, with `[server] legacy_sse`, the
    /// 2024-11-05 HTTP+SSE transport at `/sse` + `/messages`).
    Http,
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "stdio" => Ok(Transport::Stdio),
            "http" => Ok(Transport::Http),
            _ => Err(format!("unknown transport `{s}`: use `stdio` or `http`")),
        }
    }
}

/// `[server]`: the HTTP listener and its limits. Every key is optional.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `stdio` (default) or `http`.
    pub transport: Transport,
    /// Address to listen on. Default `127.0.0.1:8080` (loopback only).
    pub listen: String,
    /// No sessions: every request stands alone, so replicas need no shared
    /// state behind a load balancer. Default false (sessions with
    /// `Mcp-Session-Id`).
    pub stateless: bool,
    /// In stateless mode, answer with `application/json` instead of an SSE
    /// stream when the reply is a single message. Default false.
    pub json_response: bool,
    /// The URL clients use to reach this server (scheme, host, port), e.g.
    /// `https://mcp.example.com`, when a proxy sits in front. Default:
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Accepted `Host` headers: `name` (any port), `name:port`, or `*` (any;
    /// not recommended). Default on loopback: `localhost`, `127.0.0.1`,
    /// `[::1]`; required when listening elsewhere.
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` headers (a request without one is not a browser's
    /// and passes): `scheme://host`, `scheme://host:port`,
    /// `scheme://host:*`, `null` or `*`. Default on loopback: loopback
    /// origins on any port; elsewhere: none.
    pub allowed_origins: Vec<String>,
    /// Largest request body, KiB. Default 1024.
    pub max_body_kib: usize,
    /// Sessions open at once (session mode). Default 1000.
    pub max_sessions: usize,
    /// Sessions open at once per principal. Default 100.
    pub max_sessions_per_principal: usize,
    /// A session nobody used for this long is closed, seconds. Default 300.
    pub session_idle_secs: f64,
    /// TCP connections open at once; more are closed at once. Default 1024.
    pub max_connections: usize,
    /// Time for a client to send a request's headers (also how long an idle
    /// keep-alive connection stays open), seconds. Default 10.
    pub header_read_timeout_secs: f64,
    /// Time for a client to send a request's body, seconds. Default 30.
    pub body_read_timeout_secs: f64,
    /// Requests per minute per principal (token bucket); 0: no limit.
    /// Default 600.
    pub requests_per_minute: u32,
    /// Bucket size: requests a principal may send at once. Default 120.
    pub burst: u32,
    /// Tool calls running at once per principal; more get 429. 0: no
    /// limit. Default 8.
    pub max_concurrent_calls: usize,
    /// On SIGTERM/SIGINT, how long running tool calls may take to finish
    /// before they are cancelled, seconds. Default 30.
    pub shutdown_grace_secs: f64,
    /// SSE keep-alive comment interval, seconds; 0: none. Default 15.
    /// Applies to `/mcp` streams and to legacy `/sse` streams alike.
    pub sse_keep_alive_secs: f64,
    /// Also serve the legacy HTTP+SSE transport of MCP 2024-11-05 (`GET
    /// /sse`, then `POST /messages?sessionId=…`) for clients that predate
    /// Streamable HTTP. Behind the same Host/Origin checks, auth, rate and
    /// body limits as `/mcp`; each stream is a session counted against
    /// `max_sessions` and `max_sessions_per_principal`, and ends when the
    /// client closes it. Default true: many deployed clients speak only
    /// this transport, and it adds no exposure `/mcp` does not have.
    pub legacy_sse: bool,
    /// `redis://[user:password@]host:port[/db]`: share the per-principal
    /// request rate and concurrent calls with every replica using the same
    /// Redis (fleets behind a load balancer). Default: none (each replica
    /// limits on its own).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (several fleets, or other apps, can share
    /// one Redis). Default `codemode:`.
    pub redis_prefix: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            transport: Transport::Stdio,
            listen: "127.0.0.1:8080".into(),
            stateless: false,
            json_response: false,
            public_url: None,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body_kib: 1024,
            max_sessions: 1000,
            max_sessions_per_principal: 100,
            session_idle_secs: 300.0,
            max_connections: 1024,
            header_read_timeout_secs: 10.0,
            body_read_timeout_secs: 30.0,
            requests_per_minute: 600,
            burst: 120,
            max_concurrent_calls: 8,
            shutdown_grace_secs: 30.0,
            sse_keep_alive_secs: 15.0,
            legacy_sse: true,
            redis_url: None,
            redis_prefix: "codemode:".into(),
        }
    }
}

/// `[auth]`: who may call. Required (one of `tokens` or `oauth`) whenever
/// the listener is not loopback.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Static bearer tokens.
    pub tokens: Vec<StaticToken>,
    /// OAuth 2.1 resource server: JWT access tokens from one issuer.
    pub oauth: Option<OAuthConfig>,
    /// The request header codemode's own tokens are read from. Default
    /// `Authorization` (`Bearer <token>`); another header (e.g.
    /// `X-Codemode-Token`, the token alone or `Bearer <token>`) leaves
    /// `Authorization` free for an API that forwards it (`passthrough`).
    pub header: Option<String>,
    /// The inbound headers some API forwards (`auth = { type =
    /// "passthrough" }`): captured into the principal of each request. Set
    /// by codemode from the `[[api]]` tables, not written in `[auth]`.
    #[serde(skip)]
    pub passthrough: Vec<String>,
    /// codemode as the authorization server: users sign in through an
    /// upstream provider and pick the scopes they grant (`codemode-authz`).
    pub signin: Option<codemode_authz::Config>,
}

impl AuthConfig {
    /// True when some inbound authentication is configured.
    pub fn is_configured(&self) -> bool {
        !self.tokens.is_empty() || self.oauth.is_some() || self.signin.is_some()
    }
}

/// `[[auth.tokens]]`: one static bearer token.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticToken {
    /// Who this is, in logs and limits.
    pub name: String,
    /// Hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
    pub sha256: Option<String>,
    /// …or an environment variable holding the token itself.
    pub token_env: Option<String>,
    /// `<api>:read`, `<api>:write`, or `*` for everything the config allows.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Groups this token's principal is in: they select the group rules
    /// of `[policy.groups.<group>]`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Refused: a literal token in the config (the field exists to say so).
    #[serde(default)]
    pub token: Option<String>,
}

/// `[auth.oauth]`: validate JWT access tokens from one authorization server.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The authorization server's issuer identifier (exact `iss`).
    pub issuer: String,
    /// Where its signing keys are. Default: `jwks_uri` from the issuer's
    /// RFC 8414 (or OpenID) metadata.
    pub jwks_url: Option<String>,
    /// This server's resource identifier: the `aud` tokens must carry and
    /// what Protected Resource Metadata names. Default: `<public_url>/mcp`.
    pub resource: Option<String>,
    /// Clock skew allowed for `exp` and `nbf`, seconds. Default 30.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Signature algorithms accepted. Default: RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384, EdDSA. Symmetric ones and `none` are
    /// never accepted.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// An unknown `kid` fetches the key set again at most this often,
    /// seconds. Default 30.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_secs: f64,
    /// Keys are fetched again when older than this, seconds. Default 600.
    #[serde(default = "default_max_age")]
    pub jwks_max_age_secs: f64,
    /// The claim listing the principal's groups (an array of strings or a
    /// space-separated string), for `[policy.groups.<group>]`. Default
    /// `groups`; e.g. `roles`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_leeway() -> u64 {
    30
}
fn default_min_refresh() -> f64 {
    30.0
}
fn default_max_age() -> f64 {
    600.0
}

/// A problem with `[server]` or `[auth]`: the dotted key and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// E.g. `server.listen` or `auth.tokens[0].sha256`.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// A host allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostRule {
    Any,
    Name { host: String, port: Option<u16> },
}

/// An origin allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OriginRule {
    Any,
    Null,
    Tuple { scheme: String, host: String, port: PortRule },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PortRule {
    Any,
    Exact(u16),
}

/// A static token as held at run time.
#[derive(Clone, Debug)]
pub(crate) struct TokenEntry {
    pub name: String,
    pub sha256: [u8; 32],
    /// `None`: every scope.
    pub scopes: Option<BTreeSet<String>>,
    pub groups: Vec<String>,
}

/// OAuth settings, resolved.
#[derive(Clone, Debug)]
pub(crate) struct OAuthSettings {
    pub issuer: String,
    pub jwks_url: Option<String>,
    pub resource: String,
    pub leeway: u64,
    pub algorithms: Vec<crate::jwt::Alg>,
    pub min_refresh: Duration,
    pub max_age: Duration,
    pub groups_claim: String,
}

/// Everything checked and resolved, ready to serve with.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub listen: SocketAddr,
    pub loopback: bool,
    pub stateless: bool,
    pub json_response: bool,
    /// `scheme://host[:port]` clients use; no trailing slash.
    pub public_url: String,
    pub hosts: Vec<HostRule>,
    pub origins: Vec<OriginRule>,
    pub max_body_bytes: usize,
    pub max_sessions: usize,
    pub max_sessions_per_principal: usize,
    pub session_idle: Duration,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    /// (tokens per second, bucket size)
    pub rate: Option<(f64, f64)>,
    pub max_concurrent_calls: Option<usize>,
    pub shutdown_grace: Duration,
    pub sse_keep_alive: Option<Duration>,
    /// Serve `/sse` and `/messages` too.
    pub legacy_sse: bool,
    pub tokens: Vec<TokenEntry>,
    pub oauth: Option<OAuthSettings>,
    /// `[auth.signin]`, checked; the authorization server is built at bind.
    pub signin: Option<codemode_authz::Config>,
    pub api_names: Vec<String>,
    /// The header codemode's own tokens are read from (lower case).
    pub auth_header: String,
    /// Inbound headers captured for pass-through (lower case).
    pub passthrough: Vec<String>,
    /// Where the fleet keeps its shared limits.
    pub redis: Option<RedisSettings>,
}

/// `[server] redis_url` and `redis_prefix`, checked.
#[derive(Clone, Debug)]
pub(crate) struct RedisSettings {
    pub url: String,
    pub prefix: String,
}

/// A Redis URL with its password replaced by `***` (for messages and logs).
pub(crate) fn mask_redis_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "redis://…".into(),
    }
}

impl Settings {
    /// The URL of the MCP endpoint.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.public_url)
    }
}

/// Checks `[server]` and `[auth]` for serving over HTTP, with the APIs'
/// names (for scopes). Returns every problem at once.
pub fn check(server: &ServerConfig, auth: &AuthConfig, api_names: &[String]) -> Vec<Problem> {
    match resolve(server, auth, api_names, &|k| std::env::var(k).ok()) {
        Ok(_) => Vec::new(),
        Err(p) => p,
    }
}

fn secs(key: &str, v: f64, min: f64, max: f64, problems: &mut Vec<Problem>) -> Duration {
    if !(v.is_finite() && v >= min && v <= max) {
        problems.push(Problem { key: key.into(), message: format!("must be between {min} and {max} seconds") });
        return Duration::from_secs(1);
    }
    Duration::from_secs_f64(v)
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    h == "localhost" || h.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// Checks and resolves; `env` reads environment variables (a parameter for
/// tests).
pub(crate) fn resolve(
    server: &ServerConfig,
    auth: &AuthConfig,
    api_names: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut push = |key: &str, message: String| problems.push(Problem { key: key.into(), message });

    // --- listener -------------------------------------------------------
    let listen = match server.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => match server.listen.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => Some(a),
            _ => {
                push(
                    "server.listen",
                    format!("`{}` is not an address to listen on; write HOST:PORT, e.g. 127.0.0.1:8080", server.listen),
                );
                None
            }
        },
    };
    let listen = listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let loopback = listen.ip().is_loopback();

    let public_url = match &server.public_url {
        Some(u) => match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "http" | "https") && p.host_str().is_some() => {
                if p.path() != "/" && !p.path().is_empty() {
                    push(
                        "server.public_url",
                        format!("`{u}` has a path; give only scheme, host and port (the endpoint is always /mcp)"),
                    );
                }
                p.origin().ascii_serialization()
            }
            _ => {
                push("server.public_url", format!("`{u}` is not an http(s) URL"));
                String::new()
            }
        },
        None => {
            let host = if listen.ip().is_unspecified() {
                "localhost".to_string()
            } else if listen.is_ipv6() {
                format!("[{}]", listen.ip())
            } else {
                listen.ip().to_string()
            };
            format!("http://{host}:{}", listen.port())
        }
    };

    // --- Host / Origin --------------------------------------------------
    let mut hosts = Vec::new();
    for (i, h) in server.allowed_hosts.iter().enumerate() {
        match parse_host_rule(h) {
            Some(r) => hosts.push(r),
            None => push(&format!("server.allowed_hosts[{i}]"), format!("`{h}` is not a host name or host:port")),
        }
    }
    if server.allowed_hosts.is_empty() {
        if loopback {
            hosts = ["localhost", "127.0.0.1", "[::1]"].iter().filter_map(|h| parse_host_rule(h)).collect();
        } else {
            push(
                "server.allowed_hosts",
                format!(
                    "listening on {listen}, which is not loopback, needs the host names clients use (DNS-rebinding protection), e.g. allowed_hosts = [\"mcp.example.com\"]"
                ),
            );
        }
    }
    // The public URL's own host is always acceptable.
    if let Ok(u) = url::Url::parse(&public_url) {
        if let Some(h) = u.host_str() {
            let rule = HostRule::Name { host: normalize_host(h), port: u.port_or_known_default() };
            if !hosts.contains(&rule) && !hosts.contains(&HostRule::Any) {
                hosts.push(rule);
            }
        }
    }
    let mut origins = Vec::new();
    for (i, o) in server.allowed_origins.iter().enumerate() {
        match parse_origin_rule(o) {
            Some(r) => origins.push(r),
            None => push(
                &format!("server.allowed_origins[{i}]"),
                format!("`{o}` is not an origin: write scheme://host, scheme://host:port or scheme://host:*"),
            ),
        }
    }
    if server.allowed_origins.is_empty() && loopback {
        for o in ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*", "https://localhost:*"] {
            origins.extend(parse_origin_rule(o));
        }
    }

    // --- sizes and times ------------------------------------------------
    if server.max_body_kib == 0 || server.max_body_kib > 64 * 1024 {
        push("server.max_body_kib", "must be between 1 and 65536".into());
    }
    if server.max_sessions == 0 {
        push("server.max_sessions", "must be at least 1".into());
    }
    if server.max_sessions_per_principal == 0 {
        push("server.max_sessions_per_principal", "must be at least 1".into());
    }
    if server.max_connections == 0 {
        push("server.max_connections", "must be at least 1".into());
    }
    if server.json_response && !server.stateless {
        push(
            "server.json_response",
            "applies only with stateless = true (sessions always answer with SSE streams)".into(),
        );
    }
    let session_idle = secs("server.session_idle_secs", server.session_idle_secs, 1.0, 86400.0, &mut problems);
    let header_read_timeout =
        secs("server.header_read_timeout_secs", server.header_read_timeout_secs, 0.1, 3600.0, &mut problems);
    let body_read_timeout =
        secs("server.body_read_timeout_secs", server.body_read_timeout_secs, 0.1, 3600.0, &mut problems);
    let shutdown_grace = secs("server.shutdown_grace_secs", server.shutdown_grace_secs, 0.0, 3600.0, &mut problems);
    let keep_alive = secs("server.sse_keep_alive_secs", server.sse_keep_alive_secs, 0.0, 3600.0, &mut problems);
    let mut push = |key: &str, message: String| problems.push(Problem { key: key.into(), message });
    let redis = match server.redis_url.as_deref().map(str::trim) {
        None => None,
        Some(u) if u.starts_with("redis://") && url::Url::parse(u).is_ok() => {
            if server.redis_prefix.is_empty() {
                push("server.redis_prefix", "must not be empty (it keeps codemode's keys apart from others')".into());
            }
            Some(RedisSettings { url: u.to_string(), prefix: server.redis_prefix.clone() })
        }
        Some(u) if u.starts_with("rediss://") => {
            push(
                "server.redis_url",
                format!(
                    "{}: TLS to Redis is not built in; reach Redis over a private network (redis://) or a TLS sidecar",
                    mask_redis_url(u)
                ),
            );
            None
        }
        Some(u) => {
            push("server.redis_url", format!("{} is not a Redis URL: write redis://host:6379", mask_redis_url(u)));
            None
        }
    };
    let rate = if server.requests_per_minute == 0 {
        None
    } else {
        if server.burst == 0 {
            push("server.burst", "must be at least 1 when requests_per_minute is set".into());
        }
        Some((server.requests_per_minute as f64 / 60.0, server.burst.max(1) as f64))
    };

    // --- auth -----------------------------------------------------------
    let mut tokens = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, t) in auth.tokens.iter().enumerate() {
        let key = format!("auth.tokens[{i}]");
        if t.name.trim().is_empty() {
            push(&format!("{key}.name"), "every token needs a name (it is the principal in logs and limits)".into());
        } else if !names.insert(t.name.clone()) {
            push(&format!("{key}.name"), format!("`{}` names two tokens; names must be unique", t.name));
        }
        if t.token.is_some() {
            push(
                &format!("{key}.token"),
                "a literal token in the config is refused: put its SHA-256 in `sha256` (printf %s \"$TOKEN\" | sha256sum), or the token in an environment variable named by `token_env`".into(),
            );
            continue;
        }
        let hash = match (&t.sha256, &t.token_env) {
            (Some(_), Some(_)) => {
                push(&key, "give `sha256` or `token_env`, not both".into());
                continue;
            }
            (None, None) => {
                push(&key, "needs `sha256` (hex SHA-256 of the token) or `token_env`".into());
                continue;
            }
            (Some(h), None) => match decode_hex32(h) {
                Some(b) => b,
                None => {
                    push(&format!("{key}.sha256"), "must be 64 hex digits: the SHA-256 of the token".into());
                    continue;
                }
            },
            (None, Some(var)) => match env(var) {
                Some(v) if !v.is_empty() => {
                    if v.len() < 16 {
                        push(
                            &format!("{key}.token_env"),
                            format!("the token in `{var}` is shorter than 16 characters; use a long random one"),
                        );
                    }
                    sha256(v.as_bytes())
                }
                _ => {
                    push(
                        &format!("{key}.token_env"),
                        format!("the environment variable `{var}` is not set (or empty); export it before starting codemode"),
                    );
                    continue;
                }
            },
        };
        let scopes = match parse_scopes(&t.scopes, api_names) {
            Ok(s) => s,
            Err(m) => {
                push(&format!("{key}.scopes"), m);
                continue;
            }
        };
        tokens.push(TokenEntry { name: t.name.clone(), sha256: hash, scopes, groups: t.groups.clone() });
    }

    let oauth = auth.oauth.as_ref().and_then(|o| {
        let mut ok = true;
        if !is_allowed_fetch_url(&o.issuer) {
            push(
                "auth.oauth.issuer",
                format!("`{}` must be an https URL (http only on loopback)", o.issuer),
            );
            ok = false;
        }
        if let Some(j) = &o.jwks_url {
            if !is_allowed_fetch_url(j) {
                push("auth.oauth.jwks_url", format!("`{j}` must be an https URL (http only on loopback)"));
                ok = false;
            }
        }
        let resource = o.resource.clone().unwrap_or_else(|| format!("{public_url}/mcp"));
        if url::Url::parse(&resource).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true) {
            push("auth.oauth.resource", format!("`{resource}` is not an http(s) URL"));
            ok = false;
        }
        let mut algorithms = Vec::new();
        let names: Vec<String> = if o.algorithms.is_empty() {
            crate::jwt::Alg::ALL.iter().map(|a| a.name().to_string()).collect()
        } else {
            o.algorithms.clone()
        };
        for (i, a) in names.iter().enumerate() {
            match crate::jwt::Alg::parse(a) {
                Some(alg) => algorithms.push(alg),
                None => {
                    push(
                        &format!("auth.oauth.algorithms[{i}]"),
                        format!("`{a}` is not accepted: use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"),
                    );
                    ok = false;
                }
            }
        }
        if o.leeway_secs > 300 {
            push("auth.oauth.leeway_secs", "must be at most 300".into());
            ok = false;
        }
        let min_refresh = if o.jwks_min_refresh_secs.is_finite() && o.jwks_min_refresh_secs >= 0.0 {
            Duration::from_secs_f64(o.jwks_min_refresh_secs)
        } else {
            push("auth.oauth.jwks_min_refresh_secs", "must be a number of seconds".into());
            ok = false;
            Duration::ZERO
        };
        let max_age = if o.jwks_max_age_secs.is_finite() && o.jwks_max_age_secs >= 1.0 {
            Duration::from_secs_f64(o.jwks_max_age_secs)
        } else {
            push("auth.oauth.jwks_max_age_secs", "must be at least 1 second".into());
            ok = false;
            Duration::ZERO
        };
        ok.then(|| OAuthSettings {
            issuer: o.issuer.clone(),
            jwks_url: o.jwks_url.clone(),
            resource,
            leeway: o.leeway_secs,
            algorithms,
            min_refresh,
            max_age,
            groups_claim: o.groups_claim.clone(),
        })
    });

    let auth_header = auth.header.clone().unwrap_or_else(|| "authorization".into()).to_ascii_lowercase();
    if http::HeaderName::from_bytes(auth_header.as_bytes()).is_err() {
        push("auth.header", format!("`{auth_header}` is not a header name"));
    }
    let passthrough: Vec<String> = auth.passthrough.iter().map(|h| h.to_ascii_lowercase()).collect();
    if auth.is_configured() && passthrough.contains(&auth_header) {
        push(
            "auth.header",
            format!(
                "`{auth_header}` carries codemode's own tokens ([auth]) and is also the header an API forwards upstream (auth = {{ type = \"passthrough\" }}): one header cannot be both. Set [auth] header = \"X-Codemode-Token\" (clients send codemode's token there), or forward another header"
            ),
        );
    }
    // A pass-through listener without inbound auth: the upstream judges
    // the forwarded credential (codemode says so loudly at start-up).
    if let Some(signin) = &auth.signin {
        if auth.oauth.is_some() {
            push(
                "auth.signin",
                "[auth.signin] (codemode is the authorization server) and [auth.oauth] (another one is) cannot both be set: choose one".into(),
            );
        }
        for (i, t) in auth.tokens.iter().enumerate() {
            if t.name.starts_with(codemode_authz::PRINCIPAL_PREFIX) {
                push(
                    &format!("auth.tokens[{i}].name"),
                    format!(
                        "`{}`: names starting with `{}` are the signed-in users of [auth.signin]; rename the token",
                        t.name,
                        codemode_authz::PRINCIPAL_PREFIX
                    ),
                );
            }
        }
        for line in signin.problems(env) {
            let (key, message) = line.split_once(": ").unwrap_or(("auth.signin", line.as_str()));
            push(key, message.to_string());
        }
        if !public_url.starts_with("https://") && !loopback {
            push(
                "server.public_url",
                format!("`{public_url}`: OAuth sign-in off loopback needs an https public_url (the issuer and redirect URIs)"),
            );
        }
    }

    if !loopback && !auth.is_configured() && passthrough.is_empty() {
        push(
            "auth",
            format!(
                "listening on {listen}, which is not loopback, needs inbound authentication: add [[auth.tokens]] or [auth.oauth] (or listen on 127.0.0.1)"
            ),
        );
    }

    if problems.is_empty() {
        Ok(Settings {
            listen,
            loopback,
            stateless: server.stateless,
            json_response: server.json_response,
            public_url,
            hosts,
            origins,
            max_body_bytes: server.max_body_kib * 1024,
            max_sessions: server.max_sessions,
            max_sessions_per_principal: server.max_sessions_per_principal,
            session_idle,
            max_connections: server.max_connections,
            header_read_timeout,
            body_read_timeout,
            rate,
            max_concurrent_calls: (server.max_concurrent_calls > 0).then_some(server.max_concurrent_calls),
            shutdown_grace,
            sse_keep_alive: (keep_alive > Duration::ZERO).then_some(keep_alive),
            legacy_sse: server.legacy_sse,
            tokens,
            oauth,
            signin: auth.signin.clone(),
            api_names: api_names.to_vec(),
            auth_header,
            passthrough,
            redis,
        })
    } else {
        Err(problems)
    }
}

/// `*` → every scope; otherwise each must be `<api>:read` or `<api>:write`
/// for a configured API.
fn parse_scopes(scopes: &[String], api_names: &[String]) -> Result<Option<BTreeSet<String>>, String> {
    if scopes.is_empty() {
        return Err(
            "list what the token may do: `<api>:read`, `<api>:write`, or `*` for everything the config allows".into()
        );
    }
    if scopes.iter().any(|s| s == "*") {
        return Ok(None);
    }
    let mut set = BTreeSet::new();
    for s in scopes {
        // `metrics`: may read `/metrics`, nothing else (a scraper's token).
        let ok = s == "metrics"
            || s.rsplit_once(':')
                .is_some_and(|(api, what)| matches!(what, "read" | "write") && api_names.iter().any(|n| n == api));
        if !ok {
            return Err(format!(
                "`{s}` is not a scope here: use `<api>:read` or `<api>:write` with an API of this config ({}), `metrics`, or `*`",
                api_names.join(", ")
            ));
        }
        set.insert(s.clone());
    }
    Ok(Some(set))
}

/// https anywhere; http only to a loopback host.
pub(crate) fn is_allowed_fetch_url(u: &str) -> bool {
    match url::Url::parse(u) {
        Ok(p) => match p.scheme() {
            "https" => p.host_str().is_some(),
            "http" => p.host_str().is_some_and(is_loopback_host),
            _ => false,
        },
        Err(_) => false,
    }
}

pub(crate) fn normalize_host(h: &str) -> String {
    h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()
}

pub(crate) fn parse_host_rule(s: &str) -> Option<HostRule> {
    let s = s.trim();
    if s == "*" {
        return Some(HostRule::Any);
    }
    if s.is_empty() || s.contains('/') || s.contains('@') {
        return None;
    }
    let a = http::uri::Authority::try_from(s).ok()?;
    Some(HostRule::Name { host: normalize_host(a.host()), port: a.port_u16() })
}

pub(crate) fn parse_origin_rule(s: &str) -> Option<OriginRule> {
    let s = s.trim();
    match s {
        "*" => return Some(OriginRule::Any),
        "null" => return Some(OriginRule::Null),
        _ => {}
    }
    let (base, any_port) = match s.strip_suffix(":*") {
        Some(b) => (b, true),
        None => (s, false),
    };
    let uri = http::Uri::try_from(base).ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let auth = uri.authority()?;
    if uri.path() != "/" && !uri.path().is_empty() {
        return None;
    }
    let port = match (any_port, auth.port_u16()) {
        (true, None) => PortRule::Any,
        (true, Some(_)) => return None,
        (false, Some(p)) => PortRule::Exact(p),
        (false, None) => PortRule::Exact(default_port(&scheme)?),
    };
    Some(OriginRule::Tuple { scheme, host: normalize_host(auth.host()), port })
}

pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apis() -> Vec<String> {
        vec!["books".into(), "cf".into()]
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_loopback_and_need_no_auth() {
        let s = resolve(&ServerConfig::default(), &AuthConfig::default(), &apis(), &no_env).unwrap();
        assert!(s.loopback);
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.mcp_url(), "http://127.0.0.1:8080/mcp");
        assert!(s.hosts.contains(&HostRule::Name { host: "localhost".into(), port: None }));
        assert!(s
            .origins
            .iter()
            .any(|o| matches!(o, OriginRule::Tuple { host, port: PortRule::Any, .. } if host == "127.0.0.1")));
        assert_eq!(s.max_body_bytes, 1024 * 1024);
        assert_eq!(s.max_concurrent_calls, Some(8));
    }

    #[test]
    fn a_public_listener_without_auth_or_hosts_is_refused() {
        let server = ServerConfig { listen: "0.0.0.0:8080".into(), ..Default::default() };
        let e = resolve(&server, &AuthConfig::default(), &apis(), &no_env).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"auth"), "{e:?}");
        assert!(keys.contains(&"server.allowed_hosts"), "{e:?}");
        assert!(e.iter().any(|p| p.message.contains("not loopback")));
    }

    #[test]
    fn a_public_listener_with_auth_and_hosts_is_accepted() {
        let server = ServerConfig {
            listen: "0.0.0.0:8080".into(),
            allowed_hosts: vec!["mcp.example.com".into()],
            public_url: Some("https://mcp.example.com".into()),
            ..Default::default()
        };
        let auth = AuthConfig {
            tokens: vec![StaticToken {
                name: "ci".into(),
                sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
                scopes: vec!["books:read".into()],
                ..Default::default()
            }],
            oauth: None,
            ..Default::default()
        };
        let s = resolve(&server, &auth, &apis(), &no_env).unwrap();
        assert!(!s.loopback);
        assert_eq!(s.mcp_url(), "https://mcp.example.com/mcp");
        assert_eq!(s.tokens[0].scopes.as_ref().unwrap().iter().collect::<Vec<_>>(), vec!["books:read"]);
        assert!(s.hosts.contains(&HostRule::Name { host: "mcp.example.com".into(), port: Some(443) }));
        assert!(s.origins.is_empty());
    }

    #[test]
    fn token_problems_are_reported_with_the_fix() {
        let auth = AuthConfig {
            tokens: vec![
                StaticToken {
                    name: "a".into(),
                    token: Some("secret".into()),
                    scopes: vec!["*".into()],
                    ..Default::default()
                },
                StaticToken {
                    name: "b".into(),
                    sha256: Some("abc".into()),
                    scopes: vec!["*".into()],
                    ..Default::default()
                },
                StaticToken {
                    name: "c".into(),
                    token_env: Some("MISSING".into()),
                    scopes: vec!["*".into()],
                    ..Default::default()
                },
                StaticToken {
                    name: "d".into(),
                    sha256: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
                    scopes: vec!["nope:read".into()],
                    ..Default::default()
                },
            ],
            oauth: None,
            ..Default::default()
        };
        let e = resolve(&ServerConfig::default(), &auth, &apis(), &no_env).unwrap_err();
        let keys: Vec<&str> = e.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["auth.tokens[0].token", "auth.tokens[1].sha256", "auth.tokens[2].token_env", "auth.tokens[3].scopes"],
            "{e:?}"
        );
        assert!(e[0].message.contains("sha256sum"));
        assert!(e[3].message.contains("books, cf"));
    }

    #[test]
    fn a_token_from_the_environment_is_hashed() {
        let auth = AuthConfig {
            tokens: vec![StaticToken {
                name: "ci".into(),
                token_env: Some("T".into()),
                scopes: vec!["*".into()],
                ..Default::default()
            }],
            oauth: None,
            ..Default::default()
        };
        let env = |k: &str| (k == "T").then(|| "0123456789abcdef-token".to_string());
        let s = resolve(&ServerConfig::default(), &auth, &apis(), &env).unwrap();
        assert_eq!(s.tokens[0].sha256, sha256(b"0123456789abcdef-token"));
        assert_eq!(s.tokens[0].scopes, None);
    }

    #[test]
    fn oauth_needs_https_except_on_loopback() {
        let mut auth = AuthConfig {
            tokens: vec![],
            oauth: Some(OAuthConfig {
                issuer: "http://login.example.com".into(),
                jwks_url: None,
                resource: None,
                leeway_secs: 30,
                algorithms: vec!["HS256".into()],
                jwks_min_refresh_secs: 30.0,
                jwks_max_age_secs: 600.0,
                groups_claim: "groups".into(),
            }),
            ..Default::default()
        };
        let e = resolve(&ServerConfig::default(), &auth, &apis(), &no_env).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[1].message.contains("HS256"));
        let o = auth.oauth.as_mut().unwrap();
        o.issuer = "http://127.0.0.1:9000".into();
        o.algorithms.clear();
        let s = resolve(&ServerConfig::default(), &auth, &apis(), &no_env).unwrap();
        let o = s.oauth.unwrap();
        assert_eq!(o.resource, "http://127.0.0.1:8080/mcp");
        assert_eq!(o.algorithms.len(), 9);
    }

    #[test]
    fn host_and_origin_rules_parse() {
        assert_eq!(
            parse_host_rule("Example.COM:8443"),
            Some(HostRule::Name { host: "example.com".into(), port: Some(8443) })
        );
        assert_eq!(parse_host_rule("[::1]"), Some(HostRule::Name { host: "::1".into(), port: None }));
        assert_eq!(parse_host_rule("*"), Some(HostRule::Any));
        assert_eq!(parse_host_rule("http://x"), None);
        assert_eq!(
            parse_origin_rule("https://app.example.com"),
            Some(OriginRule::Tuple {
                scheme: "https".into(),
                host: "app.example.com".into(),
                port: PortRule::Exact(443)
            })
        );
        assert_eq!(
            parse_origin_rule("http://localhost:*"),
            Some(OriginRule::Tuple { scheme: "http".into(), host: "localhost".into(), port: PortRule::Any })
        );
        assert_eq!(parse_origin_rule("https://x:1:*"), None);
        assert_eq!(parse_origin_rule("https://x/path"), None);
        assert_eq!(parse_origin_rule("null"), Some(OriginRule::Null));
    }

    #[test]
    fn redis_urls_are_checked_and_masked() {
        let v = serde_json::json!({"transport": "http", "redis_url": "redis://:pw@127.0.0.1:6379/2"});
        let server: ServerConfig = serde_json::from_value(v).unwrap();
        let s = resolve(&server, &AuthConfig::default(), &[], &|_| None).unwrap();
        let r = s.redis.unwrap();
        assert_eq!((r.url.as_str(), r.prefix.as_str()), ("redis://:pw@127.0.0.1:6379/2", "codemode:"));
        assert_eq!(mask_redis_url(&r.url), "redis://:***@127.0.0.1:6379/2");
        for (url, want) in [("rediss://:pw@h:6380", "TLS"), ("http://:pw@h", "not a Redis URL")] {
            let server = ServerConfig { redis_url: Some(url.into()), ..ServerConfig::default() };
            let p = resolve(&server, &AuthConfig::default(), &[], &|_| None).unwrap_err();
            let m = p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n");
            assert!(m.contains(want) && !m.contains("pw@"), "{m}");
        }
    }

    #[test]
    fn json_response_needs_stateless() {
        let server = ServerConfig { json_response: true, ..Default::default() };
        let e = resolve(&server, &AuthConfig::default(), &apis(), &no_env).unwrap_err();
        assert_eq!(e[0].key, "server.json_response");
    }

    #[test]
    fn config_deserializes_from_toml_shapes() {
        let v = serde_json::json!({"transport": "http", "listen": "127.0.0.1:9", "stateless": true});
        let s: ServerConfig = serde_json::from_value(v).unwrap();
        assert_eq!(s.transport, Transport::Http);
        assert!(s.stateless);
        assert_eq!(s.max_sessions, 1000);
        let a: AuthConfig = serde_json::from_value(serde_json::json!({
            "tokens": [{"name": "x", "sha256": "00", "scopes": ["*"]}],
            "oauth": {"issuer": "https://i"}
        }))
        .unwrap();
        assert_eq!(a.oauth.unwrap().leeway_secs, 30);
        assert!(serde_json::from_value::<ServerConfig>(serde_json::json!({"lisen": "x"})).is_err());
    }
}
