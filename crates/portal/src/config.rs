//! Which upstream MCP servers the portal connects to, and how.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

/// Default per-call timeout of a [`ServerConfig`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// One upstream MCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// The server's namespace: tools appear as `codemode.<name>_<tool>`. Any
    /// character that cannot appear in a JavaScript identifier becomes `_`
    /// (see [`crate::sanitize_name`]); two servers whose names sanitise to the
    /// same text are a configuration error.
    pub name: String,
    /// How to reach it.
    pub transport: Transport,
    /// Tool-name globs (`*` any run of characters, `?` one character); when
    /// not empty, only matching tools are exposed. A glob matches the
    /// upstream's own tool name, its sanitised form, or the exposed
    /// `<server>_<tool>` name.
    pub allow: Vec<String>,
    /// Tool-name globs that are never exposed (wins over `allow`).
    pub deny: Vec<String>,
    /// Expose only tools the upstream annotates with `readOnlyHint: true`.
    pub read_only: bool,
    /// Longest wait for one `tools/call`; past it the call fails and the
    /// upstream is sent `notifications/cancelled`.
    pub call_timeout: Duration,
    /// OAuth 2.1 to this server (Streamable HTTP only): how codemode gets
    /// and keeps its access token. `None`: static headers only.
    pub oauth: Option<crate::oauth::OAuthConfig>,
    /// Authenticated per user (Streamable HTTP only): each principal gets
    /// its own upstream session, opened with its own credential on its
    /// first use. `None`: one session shared by every principal.
    pub per_user: Option<PerUser>,
}

/// How a server authenticated per user is reached: the credential each
/// principal's session is opened with, and the bounds of the session map.
#[derive(Clone, Debug)]
pub struct PerUser {
    /// The credential, chosen per principal by the host
    /// ([`codemode_upstream::Auth::resolve_for`]): a pass-through, a
    /// per-principal table, or both.
    pub auth: codemode_upstream::Auth,
    /// Most sessions open at once; opening one more closes the least
    /// recently used idle one.
    pub max_sessions: usize,
    /// A session unused this long is closed (`DELETE`).
    pub idle: Duration,
}

/// Default [`PerUser::max_sessions`].
pub const DEFAULT_MAX_SESSIONS: usize = 256;
/// Default [`PerUser::idle`].
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(600);

impl PartialEq for PerUser {
    /// Bounds and the credential's description (secrets are not compared).
    fn eq(&self, other: &Self) -> bool {
        self.max_sessions == other.max_sessions
            && self.idle == other.idle
            && self.auth.describe() == other.auth.describe()
    }
}

impl ServerConfig {
    /// A server started as a child process speaking MCP on stdin/stdout,
    /// with default policy (all tools) and timeout.
    pub fn stdio(name: &str, command: &str, args: &[&str]) -> Self {
        ServerConfig::new(
            name,
            Transport::Stdio {
                command: command.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                cwd: None,
                env: vec![],
            },
        )
    }

    /// A server reached over Streamable HTTP at `url`, with default policy
    /// and timeout.
    pub fn http(name: &str, url: &str) -> Self {
        ServerConfig::new(name, Transport::Http { url: url.into(), headers: vec![] })
    }

    /// A server reached over the legacy HTTP+SSE transport (MCP 2024-11-05)
    /// at `url` (its `GET` stream, e.g. `http://127.0.0.1:3001/sse`), with
    /// default policy and timeout.
    pub fn sse(name: &str, url: &str) -> Self {
        ServerConfig::new(name, Transport::Sse { url: url.into(), headers: vec![] })
    }

    /// A server with default policy (all tools) and timeout.
    pub fn new(name: &str, transport: Transport) -> Self {
        ServerConfig {
            name: name.into(),
            transport,
            allow: vec![],
            deny: vec![],
            read_only: false,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            oauth: None,
            per_user: None,
        }
    }
}

impl ServerConfig {
    /// The values given to this server that count as credentials, which the
    /// portal scrubs (in every encoded form, see
    /// [`codemode_upstream::Scrubber`]) from everything its calls return:
    /// every environment value set for a stdio server (`env`, `env_from` in
    /// the codemode config), every header value of an HTTP server
    /// (`headers_env`), and for a header value of the form `<scheme> <credentials>`
    /// (`Bearer …`, `Basic …`) the credentials part too — for `Basic`, also
    /// the decoded `user:password` and the password alone. Values shorter
    /// than [`codemode_upstream::scrub::MIN_PATTERN_LEN`] are not scrubbed.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![];
        match &self.transport {
            Transport::Stdio { env, .. } => out.extend(env.iter().map(|(_, v)| v.clone())),
            Transport::Http { headers, .. } | Transport::Sse { headers, .. } => {
                for (_, value) in headers {
                    out.push(value.clone());
                    let Some((scheme, credentials)) = value.trim().split_once(' ') else { continue };
                    let credentials = credentials.trim();
                    out.push(credentials.to_string());
                    if scheme.eq_ignore_ascii_case("basic") {
                        use base64::Engine as _;
                        let decoded = base64::engine::general_purpose::STANDARD.decode(credentials).ok();
                        if let Some(pair) = decoded.and_then(|d| String::from_utf8(d).ok()) {
                            if let Some((_, password)) = pair.split_once(':') {
                                out.push(password.to_string());
                            }
                            out.push(pair);
                        }
                    }
                }
            }
        }
        if let Some(oauth) = &self.oauth {
            out.extend(oauth.secrets());
        }
        if let Some(p) = &self.per_user {
            // The table's configured credentials; a pass-through's are the
            // execution's (and each session's own scrubber's).
            out.extend(p.auth.secrets());
        }
        out.retain(|v| !v.is_empty());
        out
    }
}

/// How an upstream is reached. Its `Debug` output names environment
/// variables and headers but never shows their values: they are secrets.
#[derive(Clone, PartialEq)]
pub enum Transport {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    ///
    /// The child starts in a new process group with a minimal environment
    /// (`HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER`, `LANG`, `LC_ALL`,
    /// `TMPDIR`, `TZ` when set, as the official SDKs do) plus `env`, so the
    /// portal's own secrets do not leak into upstream servers. Its stderr is
    /// logged (tracing target `codemode_portal::stderr`) and its last lines
    /// are quoted in error messages.
    Stdio {
        /// Program to run (looked up in `PATH`).
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Working directory (default: the portal's).
        cwd: Option<PathBuf>,
        /// Extra environment variables.
        env: Vec<(String, String)>,
    },
    /// MCP Streamable HTTP.
    Http {
        /// Endpoint, e.g. `http://127.0.0.1:3001/mcp`.
        url: String,
        /// Headers sent with every request (e.g. `Authorization`).
        headers: Vec<(String, String)>,
    },
    /// The legacy HTTP+SSE transport of MCP 2024-11-05, for servers that
    /// predate Streamable HTTP: a `GET` stream whose `endpoint` event names
    /// where to `POST` messages (on the same origin only).
    Sse {
        /// The stream, e.g. `http://127.0.0.1:3001/sse`.
        url: String,
        /// Headers sent with the `GET` and every `POST` (e.g. `Authorization`).
        headers: Vec<(String, String)>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs.iter().map(|(k, _)| format!("{k}=[redacted]")).collect()
        };
        match self {
            Transport::Stdio { command, args, cwd, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("cwd", cwd)
                .field("env", &names(env))
                .finish(),
            Transport::Http { url, headers } => {
                f.debug_struct("Http").field("url", url).field("headers", &names(headers)).finish()
            }
            Transport::Sse { url, headers } => {
                f.debug_struct("Sse").field("url", url).field("headers", &names(headers)).finish()
            }
        }
    }
}

/// Tunables of the portal itself (timeouts of connecting, reconnect backoff).
#[derive(Clone, Debug)]
pub struct PortalOptions {
    /// Longest wait for one connection attempt (spawn or HTTP connect,
    /// `initialize`, and the first `tools/list`).
    pub connect_timeout: Duration,
    /// Delay before the first reconnect attempt; doubles on each consecutive
    /// failure.
    pub backoff_initial: Duration,
    /// Upper bound of the reconnect delay.
    pub backoff_max: Duration,
    /// Consecutive failed attempts after which a server is marked
    /// [`crate::ServerState::Failed`] and no longer retried on its own; a
    /// later call to one of its tools (or [`crate::Portal::reconnect`]) starts
    /// a new round of attempts.
    pub max_attempts: u32,
    /// A connection that stayed up this long resets the failure count (so a
    /// server that crashes right after starting keeps backing off).
    pub stable_after: Duration,
    /// How long a call waits for a server that is connecting or reconnecting
    /// before failing (bounded by the call's own timeout).
    pub ready_wait: Duration,
    /// Largest result (or error) of one tool call that is handed to the
    /// code, in bytes of its JSON text after unwrapping; larger ones fail
    /// with a `ResultTooLarge` error. codemode sets it from
    /// `max_response_kib`, the same limit as for HTTP APIs.
    pub max_result_bytes: usize,
}

impl Default for PortalOptions {
    fn default() -> Self {
        PortalOptions {
            connect_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_attempts: 8,
            stable_after: Duration::from_secs(10),
            ready_wait: Duration::from_secs(10),
            max_result_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Parses the `mcpServers` file format shared by Claude Desktop, Cursor and
/// others:
///
/// ```json
/// {"mcpServers": {
///   "fs":   {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
///            "env": {"K": "v"}, "cwd": "/srv"},
///   "docs": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer …"}},
///   "api":  {"type": "http", "url": "https://example.com/mcp"}
/// }}
/// ```
///
/// `type` may be `stdio`, `http` or `streamable-http` (`streamableHttp`),
/// or `sse` for the legacy HTTP+SSE transport of MCP 2024-11-05 (`url` is
/// then the `GET` stream, e.g. `…/sse`).
/// A bare `{name: {...}}` object without the `mcpServers` wrapper is also
/// accepted. Entries with `"disabled": true` are skipped. Portal extensions
/// per entry: `allow` / `deny` (arrays of globs), `readOnly` (bool) and
/// `timeout` (call timeout in seconds, or `timeoutMs`). Values are taken
/// literally (no `${VAR}` expansion). Servers keep the file's order.
pub fn parse_mcp_servers_json(text: &str) -> Result<Vec<ServerConfig>, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(root) = root else {
        return Err("expected a JSON object with an `mcpServers` object".into());
    };
    let servers = match root.get("mcpServers").or_else(|| root.get("servers")) {
        Some(Value::Object(s)) => s.clone(),
        Some(_) => return Err("`mcpServers` must be an object of {name: server}".into()),
        None => root,
    };
    let mut out = vec![];
    for (name, entry) in &servers {
        let Value::Object(entry) = entry else {
            return Err(format!("server `{name}`: expected an object"));
        };
        if entry.get("disabled").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        out.push(parse_entry(name, entry).map_err(|e| format!("server `{name}`: {e}"))?);
    }
    Ok(out)
}

fn parse_entry(name: &str, e: &Map<String, Value>) -> Result<ServerConfig, String> {
    let kind = match e.get("type").or_else(|| e.get("transport")) {
        None => None,
        Some(Value::String(t)) => Some(t.to_ascii_lowercase()),
        Some(_) => return Err("`type` must be a string".into()),
    };
    let transport = match kind.as_deref() {
        Some("sse") => {
            let (url, headers) = url_and_headers(e)?;
            Transport::Sse { url, headers }
        }
        Some("http" | "streamable-http" | "streamablehttp" | "streamable_http") => http_transport(e)?,
        Some("stdio") => stdio_transport(e)?,
        Some(other) => return Err(format!("unknown `type` `{other}` (expected stdio, http, streamable-http or sse)")),
        None if e.contains_key("command") => stdio_transport(e)?,
        None if e.contains_key("url") || e.contains_key("serverUrl") => http_transport(e)?,
        None => return Err("needs either `command` (stdio) or `url` (Streamable HTTP)".into()),
    };
    let mut cfg = ServerConfig::new(name, transport);
    cfg.allow = string_list(e, "allow")?;
    cfg.deny = string_list(e, "deny")?;
    if let Some(v) = e.get("readOnly").or_else(|| e.get("read_only")) {
        cfg.read_only = v.as_bool().ok_or("`readOnly` must be a boolean")?;
    }
    if let Some(v) = e.get("timeoutMs") {
        let ms = v.as_u64().filter(|&ms| ms > 0).ok_or("`timeoutMs` must be a positive integer")?;
        cfg.call_timeout = Duration::from_millis(ms);
    } else if let Some(v) = e.get("timeout") {
        let s =
            v.as_f64().filter(|s| *s > 0.0 && s.is_finite()).ok_or("`timeout` must be a positive number of seconds")?;
        cfg.call_timeout = Duration::from_secs_f64(s);
    }
    Ok(cfg)
}

fn stdio_transport(e: &Map<String, Value>) -> Result<Transport, String> {
    let command = match e.get("command") {
        Some(Value::String(c)) if !c.trim().is_empty() => c.clone(),
        _ => return Err("`command` must be a non-empty string".into()),
    };
    let args = string_list(e, "args")?;
    let cwd = match e.get("cwd") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(PathBuf::from(c)),
        Some(_) => return Err("`cwd` must be a string".into()),
    };
    let env = string_map(e, "env")?;
    Ok(Transport::Stdio { command, args, cwd, env })
}

fn http_transport(e: &Map<String, Value>) -> Result<Transport, String> {
    let (url, headers) = url_and_headers(e)?;
    Ok(Transport::Http { url, headers })
}

fn url_and_headers(e: &Map<String, Value>) -> Result<(String, Vec<(String, String)>), String> {
    let url = match e.get("url").or_else(|| e.get("serverUrl")) {
        Some(Value::String(u)) => u.clone(),
        _ => return Err("`url` must be a string".into()),
    };
    Ok((url, string_map(e, "headers")?))
}

fn string_list(e: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match e.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("`{key}` must be an array of strings")))
            .collect(),
        Some(_) => Err(format!("`{key}` must be an array of strings")),
    }
}

fn string_map(e: &Map<String, Value>, key: &str) -> Result<Vec<(String, String)>, String> {
    match e.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(format!("`{key}.{k}` must be a string")),
            })
            .collect(),
        Some(_) => Err(format!("`{key}` must be an object of strings")),
    }
}

/// Checks what can be checked before connecting: names present and unique
/// after sanitising, transports well-formed, timeouts positive.
pub(crate) fn check(servers: &[ServerConfig]) -> Result<(), String> {
    let mut seen: Vec<(String, &str)> = vec![];
    for s in servers {
        if s.name.trim().is_empty() {
            return Err("a server has an empty name".into());
        }
        let ns = crate::names::sanitize_identifier(&s.name);
        if let Some((_, other)) = seen.iter().find(|(n, _)| *n == ns) {
            return Err(if *other == s.name {
                format!("server `{}` is configured twice", s.name)
            } else {
                format!(
                    "servers `{other}` and `{}` both become the namespace `{ns}` once sanitised; rename one of them",
                    s.name
                )
            });
        }
        seen.push((ns, &s.name));
        if s.call_timeout.is_zero() {
            return Err(format!("server `{}`: the call timeout must be positive", s.name));
        }
        if let Some(p) = &s.per_user {
            if !matches!(s.transport, Transport::Http { .. }) {
                return Err(format!(
                    "server `{}`: a credential per user needs a Streamable HTTP server (`url`): a stdio server is one process \
                     with one environment for everyone, so it cannot act as each user",
                    s.name
                ));
            }
            if s.oauth.is_some() {
                return Err(format!("server `{}`: OAuth and a credential per user cannot be combined", s.name));
            }
            if p.max_sessions == 0 || p.idle.is_zero() {
                return Err(format!("server `{}`: `max_sessions` and the session idle time must be positive", s.name));
            }
        }
        match &s.transport {
            Transport::Stdio { command, .. } if command.trim().is_empty() => {
                return Err(format!("server `{}`: empty command", s.name))
            }
            Transport::Http { url, headers } => {
                let parsed = url::Url::parse(url).map_err(|e| format!("server `{}`: bad url `{url}`: {e}", s.name))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(format!("server `{}`: url `{url}` must be http or https", s.name));
                }
                for (k, v) in headers {
                    reqwest::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| format!("server `{}`: bad header name `{k}`", s.name))?;
                    reqwest::header::HeaderValue::from_str(v)
                        .map_err(|_| format!("server `{}`: bad value for header `{k}`", s.name))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_env_or_header_values() {
        let stdio = Transport::Stdio {
            command: "node".into(),
            args: vec![],
            cwd: None,
            env: vec![("API_KEY".into(), "canary-env-5e1f".into())],
        };
        let http = Transport::Http {
            url: "http://127.0.0.1:1/mcp".into(),
            headers: vec![("Authorization".into(), "Bearer canary-hdr-77aa".into())],
        };
        let shown = format!("{stdio:?} {http:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("API_KEY=[redacted]") && shown.contains("Authorization=[redacted]"), "{shown}");
    }

    #[test]
    fn parses_claude_desktop_and_cursor_forms() {
        let text = r#"{"mcpServers": {
            "fs": {"command": "npx", "args": ["-y", "srv", "/tmp"], "env": {"A": "1", "N": 2}, "cwd": "/srv"},
            "docs": {"url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer x"}},
            "api": {"type": "streamable-http", "url": "http://127.0.0.1:2/mcp", "readOnly": true, "allow": ["get_*"], "timeout": 5},
            "off": {"command": "x", "disabled": true}
        }}"#;
        let s = parse_mcp_servers_json(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "fs");
        assert_eq!(
            s[0].transport,
            Transport::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "srv".into(), "/tmp".into()],
                cwd: Some("/srv".into()),
                env: vec![("A".into(), "1".into()), ("N".into(), "2".into())],
            }
        );
        assert_eq!(
            s[1].transport,
            Transport::Http {
                url: "http://127.0.0.1:1/mcp".into(),
                headers: vec![("Authorization".into(), "Bearer x".into())]
            }
        );
        assert!(s[2].read_only);
        assert_eq!(s[2].allow, vec!["get_*".to_string()]);
        assert_eq!(s[2].call_timeout, Duration::from_secs(5));
        assert_eq!(s[0].call_timeout, DEFAULT_CALL_TIMEOUT);
    }

    #[test]
    fn refuses_bad_entries_with_the_server_named() {
        let s = parse_mcp_servers_json(
            r#"{"mcpServers": {"x": {"type": "sse", "url": "http://a/sse", "headers": {"Authorization": "Bearer t0ken-0123"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            s[0].transport,
            Transport::Sse {
                url: "http://a/sse".into(),
                headers: vec![("Authorization".into(), "Bearer t0ken-0123".into())]
            }
        );
        assert!(s[0].secrets().contains(&"t0ken-0123".to_string()));
        let e = parse_mcp_servers_json(r#"{"mcpServers": {"x": {"type": "sse"}}}"#).unwrap_err();
        assert!(e.contains("`x`") && e.contains("url"), "{e}");
        let e = parse_mcp_servers_json(r#"{"mcpServers": {"y": {"args": []}}}"#).unwrap_err();
        assert!(e.contains("`y`") && e.contains("command"), "{e}");
        let e = parse_mcp_servers_json(r#"{"mcpServers": {"z": {"command": "a", "args": [1]}}}"#).unwrap_err();
        assert!(e.contains("args"), "{e}");
        assert!(parse_mcp_servers_json("[").unwrap_err().contains("JSON"));
        // Without the wrapper.
        assert_eq!(parse_mcp_servers_json(r#"{"a": {"command": "x"}}"#).unwrap().len(), 1);
    }

    #[test]
    fn check_finds_namespace_collisions() {
        let a = ServerConfig::stdio("my-fs", "x", &[]);
        let b = ServerConfig::stdio("my_fs", "x", &[]);
        let e = check(&[a.clone(), b]).unwrap_err();
        assert!(e.contains("`my-fs`") && e.contains("`my_fs`"), "{e}");
        let e = check(&[a.clone(), a.clone()]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = check(&[ServerConfig::http("h", "ftp://x")]).unwrap_err();
        assert!(e.contains("http"), "{e}");
        check(&[a, ServerConfig::http("h", "http://127.0.0.1:1/mcp")]).unwrap();
    }

    #[test]
    fn secrets_are_env_values_and_header_credentials() {
        let mut stdio = ServerConfig::stdio("s", "x", &[]);
        if let Transport::Stdio { env, .. } = &mut stdio.transport {
            env.push(("GITHUB_TOKEN".into(), "ghp_abcdef".into()));
        }
        assert_eq!(stdio.secrets(), vec!["ghp_abcdef".to_string()]);
        let mut http = ServerConfig::http("h", "http://127.0.0.1:1/mcp");
        if let Transport::Http { headers, .. } = &mut http.transport {
            headers.push(("Authorization".into(), "Bearer tok-123456".into()));
            headers.push(("Proxy-Authorization".into(), "Basic YWxpY2U6czNjcmV0LXB3".into()));
            headers.push(("X-Api-Key".into(), "key-987654".into()));
        }
        assert_eq!(
            http.secrets(),
            [
                "Bearer tok-123456",
                "tok-123456",
                "Basic YWxpY2U6czNjcmV0LXB3",
                "YWxpY2U6czNjcmV0LXB3",
                "s3cret-pw",
                "alice:s3cret-pw",
                "key-987654"
            ]
        );
    }
}
