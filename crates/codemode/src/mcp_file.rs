//! Upstream MCP servers imported from another client's config file
//! (`--mcp-config`, `codemode init --from`): Claude Desktop / Cursor / VS Code
//! JSON, written the way those clients accept it — JSONC (comments, trailing
//! commas) and `${VAR}` / `${env:VAR}` / `${VAR:-default}` in string values —
//! and Codex's `config.toml` (`[mcp_servers.<name>]`).
//!
//! Everything is turned into the one `mcpServers` JSON shape that
//! `codemode_portal::parse_mcp_servers_json` reads, so the portal keeps a
//! single parser and these formats only differ here.

use std::path::Path;

use serde_json::{Map, Value};

/// Which kind of file it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"mcpServers": {...}}` (or VS Code's `{"servers": {...}}`), JSONC allowed.
    Json,
    /// Codex `config.toml`: `[mcp_servers.<name>]` tables.
    CodexToml,
}

impl Format {
    /// By extension: `.toml` is Codex's, everything else JSON.
    pub fn of(path: &Path) -> Format {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            Format::CodexToml
        } else {
            Format::Json
        }
    }
}

/// Reads `path` into the servers it declares; every error names the file and,
/// where it is one, the server.
pub fn read(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<codemode_portal::ServerConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&text, Format::of(path), env).map_err(|e| format!("{}: {e}", path.display()))
}

/// [`read`] on text already in memory.
pub fn parse(
    text: &str,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<codemode_portal::ServerConfig>, String> {
    let mut root = match format {
        Format::Json => parse_jsonc(text)?,
        Format::CodexToml => codex_to_json(text)?,
    };
    let key = ["mcpServers", "servers"].into_iter().find(|k| root.get(k).is_some_and(Value::is_object));
    match key.and_then(|k| root.get_mut(k)).and_then(Value::as_object_mut) {
        Some(servers) => {
            for (name, entry) in servers.iter_mut() {
                expand(entry, env).map_err(|e| format!("server `{name}`: {e}"))?;
            }
        }
        None => expand(&mut root, env)?,
    }
    codemode_portal::parse_mcp_servers_json(&root.to_string())
}

/// JSON with `//` and `/* */` comments and trailing commas (what VS Code and
/// Cursor write and accept): comments become spaces, a comma before `]` or
/// `}` is dropped, strings are left exactly as they are; then plain JSON.
pub fn parse_jsonc(text: &str) -> Result<Value, String> {
    let plain = strip_jsonc(text);
    serde_json::from_str(&plain).map_err(|e| format!("not valid JSON (comments and trailing commas are fine): {e}"))
}

fn strip_jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // A string, escapes included, copied as it is.
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.extend_from_slice(&b[start..i]);
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
                // Newlines kept, so that serde_json's line numbers still match.
                out.extend(b[i..end].iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
                i = end;
            }
            b',' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                // A trailing comma: only whitespace and comments between it
                // and a closing bracket.
                let rest = strip_leading_comments(&text[j..]);
                let next = rest.trim_start().as_bytes().first().copied();
                out.push(if matches!(next, Some(b']' | b'}')) { b' ' } else { b',' });
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced by ASCII")
}

/// `text` past any whitespace and comments at its start.
fn strip_leading_comments(mut text: &str) -> &str {
    loop {
        let t = text.trim_start();
        if let Some(rest) = t.strip_prefix("//") {
            text = rest.find('\n').map_or("", |n| &rest[n..]);
        } else if let Some(rest) = t.strip_prefix("/*") {
            text = rest.find("*/").map_or("", |n| &rest[n + 2..]);
        } else {
            return t;
        }
    }
}

/// `${VAR}`, `${env:VAR}` and `${VAR:-default}` in every string of `v`,
/// from `env`; `$${` is a literal `${`. An unset variable without a default
/// is an error naming it (a server started with an empty key fails later and
/// less clearly).
fn expand(v: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains("${") => *s = expand_str(s, env)?,
        Value::Array(items) => items.iter_mut().try_for_each(|x| expand(x, env))?,
        Value::Object(map) => map.values_mut().try_for_each(|x| expand(x, env))?,
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("`{s}`: `${{` without a closing `}}` (write `$${{` for a literal `${{`)"));
        };
        let inner = &rest[at + 2..at + end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        let name = name.strip_prefix("env:").unwrap_or(name);
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`${{{inner}}}` is not a variable reference: use ${{NAME}}, ${{env:NAME}} or ${{NAME:-default}}"
            ));
        }
        match env(name).or_else(|| default.map(str::to_string)) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(format!(
                    "`${{{inner}}}`: the environment variable {name} is not set (set it, or write ${{{name}:-default}})"
                ))
            }
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Codex's `[mcp_servers.<name>]` tables as `{"mcpServers": {...}}`:
/// `command`, `args`, `env`, `cwd` as they are; `env_vars` as `${VAR}`
/// entries of `env`; `url` with `http_headers`,
/// `env_http_headers` (header → variable) and `bearer_token_env_var` as
/// headers; `enabled = false` as `disabled`; `tool_timeout_sec` as `timeout`.
pub fn codex_to_json(text: &str) -> Result<Value, String> {
    let root: toml::Table = toml::from_str(text).map_err(|e| format!("invalid TOML: {e}"))?;
    let Some(servers) = root.get("mcp_servers") else {
        return Err("no [mcp_servers.<name>] table: this is not a Codex config with MCP servers".into());
    };
    let servers = servers.as_table().ok_or("`mcp_servers` must be a table of [mcp_servers.<name>] tables")?;
    let mut out = Map::new();
    for (name, entry) in servers {
        let entry = entry.as_table().ok_or_else(|| format!("server `{name}`: expected a table"))?;
        let mut e = Map::new();
        let mut headers = Map::new();
        for (key, value) in entry {
            let json = serde_json::to_value(value).map_err(|err| format!("server `{name}`: `{key}`: {err}"))?;
            match key.as_str() {
                "command" | "args" | "env" | "cwd" | "url" => {
                    e.insert(key.clone(), json);
                }
                "env_vars" => {
                    // Names passed through from the environment.
                    let env = e.entry("env").or_insert_with(|| Value::Object(Map::new()));
                    for var in json.as_array().into_iter().flatten() {
                        let var = var.as_str().ok_or_else(|| format!("server `{name}`: `env_vars` must be names"))?;
                        if let Some(env) = env.as_object_mut() {
                            env.entry(var.to_string()).or_insert_with(|| Value::String(format!("${{{var}}}")));
                        }
                    }
                }
                "enabled" => {
                    e.insert("disabled".into(), Value::Bool(json == Value::Bool(false)));
                }
                "tool_timeout_sec" => {
                    e.insert("timeout".into(), json);
                }
                "http_headers" => {
                    if let Value::Object(h) = json {
                        headers.extend(h);
                    }
                }
                "env_http_headers" => {
                    for (header, var) in json.as_object().into_iter().flatten() {
                        let var = var.as_str().ok_or_else(|| {
                            format!("server `{name}`: `env_http_headers.{header}` must be a variable name")
                        })?;
                        headers.insert(header.clone(), Value::String(format!("${{{var}}}")));
                    }
                }
                "bearer_token_env_var" => {
                    let var = json
                        .as_str()
                        .ok_or_else(|| format!("server `{name}`: `bearer_token_env_var` must be a string"))?;
                    headers.insert("Authorization".into(), Value::String(format!("Bearer ${{{var}}}")));
                }
                // Codex-only knobs with no portal equivalent.
                "startup_timeout_sec" | "startup_timeout_ms" | "enabled_tools" | "disabled_tools" => {}
                other => return Err(format!("server `{name}`: unknown key `{other}` in [mcp_servers.{name}]")),
            }
        }
        if !headers.is_empty() {
            e.insert("headers".into(), Value::Object(headers));
        }
        out.insert(name.clone(), Value::Object(e));
    }
    Ok(serde_json::json!({ "mcpServers": out }))
}

/// Whether `server` would start this same codemode on this same config: the
/// command is this binary (or one named `codemode`) and, reading its
/// arguments the way its `serve` would, the config it finds is `config`.
/// Such a server starts itself again and again (each start spawning the
/// next), so it is refused before anything starts. Another codemode on
/// another config is a fine upstream and is not matched.
pub fn starts_itself(server: &codemode_portal::ServerConfig, config: &Path, cwd: &Path) -> bool {
    let codemode_portal::Transport::Stdio { command, args, cwd: child_cwd, env } = &server.transport else {
        return false;
    };
    let Some(program) = resolve_program(command) else { return false };
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let is_codemode = me.as_deref() == Some(program.as_path()) || program.file_stem().is_some_and(|n| n == "codemode");
    if !is_codemode {
        return false;
    }
    let child_cwd = child_cwd.as_ref().map(|c| cwd.join(c)).unwrap_or_else(|| cwd.to_path_buf());
    let mut flag = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => flag = it.next().map(|p| child_cwd.join(p)),
            s if s.starts_with("--config=") => flag = Some(child_cwd.join(&s["--config=".len()..])),
            // Its own API or server list: not this config.
            s if s == "--spec" || s.starts_with("--spec=") => return false,
            _ => {}
        }
    }
    let places = crate::discover::Places {
        env: env.iter().find(|(k, _)| k == crate::discover::ENV).map(|(_, v)| child_cwd.join(v)),
        cwd: child_cwd.clone(),
        user_config: crate::discover::user_config_dir(),
    };
    let found = match places.find(flag.as_deref()) {
        Ok(Some(f)) if f.origin == crate::discover::Origin::CurrentDir => child_cwd.join(f.path),
        Ok(Some(f)) => f.path,
        _ => return false,
    };
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same(&found, &cwd.join(config))
}

/// `command` as the file it runs: a path as it is, a bare name looked up in
/// `PATH`; canonical (symlinks followed), or `None` when there is no such file.
fn resolve_program(command: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(command);
    if p.components().count() > 1 {
        return std::fs::canonicalize(p).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(command))
        .find(|c| c.is_file())
        .and_then(|c| std::fs::canonicalize(c).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use codemode_portal::Transport;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "ROOT" => Some("/srv".into()),
            _ => None,
        }
    }

    #[test]
    fn jsonc_comments_and_trailing_commas() {
        let text = r#"{
          // Claude-style file, edited by hand
          "mcpServers": {
            /* the file server */
            "files": {"command": "npx", "args": ["-y", "server-filesystem", "// not a comment", "/*x*/",],},
            "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"X-A": "a,}"}}, // trailing
          },
        }"#;
        let servers = parse(text, Format::Json, &env).unwrap();
        assert_eq!(servers.len(), 2);
        let Transport::Stdio { args, .. } = &servers[0].transport else { panic!() };
        assert_eq!(args, &["-y", "server-filesystem", "// not a comment", "/*x*/"]);
        let Transport::Http { headers, .. } = &servers[1].transport else { panic!() };
        assert_eq!(headers, &[("X-A".to_string(), "a,}".to_string())]);
        // A real syntax error still says where.
        let e = parse("{\"mcpServers\": {\"a\": }}", Format::Json, &env).unwrap_err();
        assert!(e.contains("not valid JSON") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn variables_are_expanded_and_a_missing_one_is_named() {
        let text = r#"{"mcpServers": {"fs": {"command": "srv", "args": ["${ROOT}/data", "${env:ROOT}", "${NOPE:-fallback}", "$${ROOT}"],
            "env": {"API_TOKEN": "${TOKEN}"}}}}"#;
        let servers = parse(text, Format::Json, &env).unwrap();
        let Transport::Stdio { args, env: child_env, .. } = &servers[0].transport else { panic!() };
        assert_eq!(args, &["/srv/data", "/srv", "fallback", "${ROOT}"]);
        assert!(child_env.iter().any(|(k, v)| k == "API_TOKEN" && v == "s3cret"), "{child_env:?}");
        let e = parse(r#"{"mcpServers": {"fs": {"command": "srv", "args": ["${MISSING}"]}}}"#, Format::Json, &env)
            .unwrap_err();
        assert!(e.contains("server `fs`") && e.contains("MISSING is not set"), "{e}");
        let e = parse(r#"{"mcpServers": {"fs": {"command": "${ROOT"}}}"#, Format::Json, &env).unwrap_err();
        assert!(e.contains("without a closing"), "{e}");
        let e = parse(r#"{"mcpServers": {"fs": {"command": "${1x}"}}}"#, Format::Json, &env).unwrap_err();
        assert!(e.contains("not a variable reference"), "{e}");
    }

    #[test]
    fn codex_toml_servers() {
        let text = r#"
model = "o3"
[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-server"]
env = { ROOT = "${ROOT}" }

[mcp_servers.remote]
url = "http://127.0.0.1:9/mcp"
bearer_token_env_var = "TOKEN"
http_headers = { "X-Team" = "core" }

[mcp_servers.off]
command = "x"
enabled = false
"#;
        let servers = parse(text, Format::CodexToml, &env).unwrap();
        assert_eq!(servers.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["docs", "remote"]);
        let Transport::Stdio { command, env: e, .. } = &servers[0].transport else { panic!() };
        assert_eq!(command, "npx");
        assert!(e.iter().any(|(k, v)| k == "ROOT" && v == "/srv"));
        let Transport::Http { headers, .. } = &servers[1].transport else { panic!() };
        assert!(headers.contains(&("Authorization".to_string(), "Bearer s3cret".to_string())), "{headers:?}");
        assert!(headers.contains(&("X-Team".to_string(), "core".to_string())));
        let e = parse("[mcp_servers.a]\ncommand = \"x\"\nwat = 1\n", Format::CodexToml, &env).unwrap_err();
        assert!(e.contains("unknown key `wat`"), "{e}");
        let e = parse("model = 1\n", Format::CodexToml, &env).unwrap_err();
        assert!(e.contains("no [mcp_servers"), "{e}");
    }
}
