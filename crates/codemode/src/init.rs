//! `codemode init`: a first, commented `codemode.toml` from a spec (path or
//! URL) or from another client's `mcpServers` file, which `main` then checks.
//!
//! The file is meant to be read: every choice it makes is commented, and the
//! commonly changed keys are there commented out with their defaults. Secrets
//! are never copied: a literal value in an imported file becomes the name of
//! an environment variable to set, with a comment saying so.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Where the new config's content comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// One OpenAPI spec: a path (as it should be written in the file) or URL.
    Spec {
        /// The `spec =` value.
        location: String,
        /// The API's global name.
        name: String,
        /// `base_url =`, when given.
        base_url: Option<String>,
    },
    /// Servers of an `mcpServers` JSON(C) file or Codex `config.toml`.
    McpFile(std::path::PathBuf),
}

/// The text of the new config.
pub fn render(source: &Source) -> Result<String, String> {
    let mut out = String::from(
        "# codemode.toml — written by `codemode init`. Check it with `codemode check`;\n\
         # every key: `codemode config schema` (a JSON Schema editors read) and README.md.\n\
         # Secrets never go in this file: it names environment variables instead.\n\n",
    );
    match source {
        Source::Spec { location, name, base_url } => {
            let q = |s: &str| toml::Value::String(s.into()).to_string();
            let _ = writeln!(out, "[[api]]");
            let _ = writeln!(
                out,
                "# The client's global in `execute` (`{name}.request(...)`), the key in `specs` in `search`."
            );
            let _ = writeln!(out, "name = {}", q(name));
            let _ = writeln!(
                out,
                "# Path (relative to this file) or http(s) URL; JSON or YAML; OpenAPI 3.x or Swagger 2.0."
            );
            let _ = writeln!(out, "spec = {}", q(location));
            match base_url {
                Some(b) => {
                    let _ = writeln!(out, "base_url = {}", q(b));
                }
                None => {
                    let _ = writeln!(out, "# Where requests go; default: the spec's first `servers` entry.");
                    let _ = writeln!(out, "# base_url = \"https://api.example.com/v1\"");
                }
            }
            out.push_str(
                "# The credential, read from the environment when codemode starts:\n\
                 # auth = { type = \"bearer\", token_env = \"API_TOKEN\" }\n\
                 # Only GET and HEAD are sent until this is true:\n\
                 # allow_writes = false\n\
                 # Rehearsal: answer from the spec, nothing leaves the host (or `--mock`):\n\
                 # mock = true\n\
                 # Rules (deny wins): \"METHOD /path/glob\", \"operationId:<glob>\", \"tag:<glob>\"\n\
                 # deny = [\"DELETE /**\"]\n\
                 # approve = [\"POST /**\"]\n",
            );
        }
        Source::McpFile(path) => mcp_servers(path, &mut out)?,
    }
    out.push_str(
        "\n# [limits]\n\
         # timeout_secs = 30          # wall clock per call\n\
         # max_output_tokens = 6000   # results are shortened to fit\n\
         # max_requests = 50          # upstream requests per execute\n",
    );
    Ok(out)
}

/// `[[mcp]]` tables for the servers of `path`.
fn mcp_servers(path: &Path, out: &mut String) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let root = match crate::mcp_file::Format::of(path) {
        crate::mcp_file::Format::Json => crate::mcp_file::parse_jsonc(&text),
        crate::mcp_file::Format::CodexToml => crate::mcp_file::codex_to_json(&text),
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    // Checked the way `--mcp-config` reads it (variables left unexpanded), so
    // a file init accepts is one the portal accepts.
    crate::mcp_file::parse(&text, crate::mcp_file::Format::of(path), &|_| Some(String::new()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let servers = ["mcpServers", "servers"]
        .iter()
        .find_map(|k| root.get(k).and_then(Value::as_object))
        .or_else(|| root.as_object())
        .cloned()
        .unwrap_or_default();
    let q = |s: &str| toml::Value::String(s.into()).to_string();
    let mut written = 0;
    for (name, e) in &servers {
        if e.get("disabled").and_then(Value::as_bool) == Some(true) {
            let _ = writeln!(out, "# `{name}` is disabled in {}: not imported.\n", path.display());
            continue;
        }
        let command = e.get("command").and_then(Value::as_str);
        if command.is_some_and(is_codemode) {
            let _ = writeln!(out, "# `{name}` is codemode itself: not imported (it would start itself).\n");
            continue;
        }
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
        let _ = writeln!(out, "[[mcp]]");
        let _ = writeln!(out, "name = {}  # tools appear as codemode.{}_<tool>", q(&safe), safe.replace('-', "_"));
        if let Some(c) = command {
            let _ = writeln!(out, "command = {}", q(c));
            let args: Vec<String> = e
                .get("args")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(q)
                .collect();
            if !args.is_empty() {
                let _ = writeln!(out, "args = [{}]", args.join(", "));
            }
            if let Some(cwd) = e.get("cwd").and_then(Value::as_str) {
                let _ = writeln!(out, "cwd = {}", q(cwd));
            }
            let mut pass = Vec::new();
            let mut from = Vec::new();
            for (k, v) in e.get("env").and_then(Value::as_object).into_iter().flatten() {
                match v.as_str().and_then(whole_reference) {
                    Some(var) if var == k => pass.push(q(k)),
                    Some(var) => from.push(format!("{} = {}", q(k), q(var))),
                    None => {
                        let _ = writeln!(out, "# {k}: the source file holds its value; it is not copied. Set {k} in codemode's environment.");
                        pass.push(q(k));
                    }
                }
            }
            if !pass.is_empty() {
                let _ = writeln!(out, "env = [{}]  # passed through from codemode's environment", pass.join(", "));
            }
            if !from.is_empty() {
                let _ = writeln!(out, "env_from = {{ {} }}", from.join(", "));
            }
        } else if let Some(url) = e.get("url").or_else(|| e.get("serverUrl")).and_then(Value::as_str) {
            let _ = writeln!(out, "url = {}", q(url));
            if e.get("type").and_then(Value::as_str) == Some("sse") {
                let _ = writeln!(out, "transport = \"sse\"");
            }
            let mut headers = Vec::new();
            for (h, v) in e.get("headers").and_then(Value::as_object).into_iter().flatten() {
                let value = v.as_str().unwrap_or_default();
                if let Some(var) = reference_in(value).filter(|_| whole_reference(value).is_none()) {
                    let _ = writeln!(
                        out,
                        "# {h}: {var} must hold the whole value (`{value}` with the variable filled in)."
                    );
                }
                let var = reference_in(value).map(str::to_string).unwrap_or_else(|| {
                    let var = format!("{}_{}", safe, h).to_ascii_uppercase().replace('-', "_");
                    let _ = writeln!(out, "# {h}: the source file holds its value; it is not copied. Set {var} to it.");
                    var
                });
                headers.push(format!("{} = {}", q(h), q(&var)));
            }
            if !headers.is_empty() {
                let _ =
                    writeln!(out, "headers_env = {{ {} }}  # header = variable holding its value", headers.join(", "));
            }
        }
        out.push_str("# read_only = true           # expose only tools annotated readOnlyHint\n\n");
        written += 1;
    }
    if written == 0 {
        return Err(format!("{}: no server to import (every one is disabled or codemode itself)", path.display()));
    }
    Ok(())
}

/// `${VAR}` / `${env:VAR}` as the whole value: the variable's name.
fn whole_reference(v: &str) -> Option<&str> {
    let inner = v.strip_prefix("${")?.strip_suffix('}')?;
    let name = inner.strip_prefix("env:").unwrap_or(inner);
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
}

/// The one variable a header value is made of, allowing a scheme before it
/// (`Bearer ${TOKEN}` → `TOKEN`; the header is then sent as the variable's
/// value, so the variable must hold the whole value — said in the README).
fn reference_in(v: &str) -> Option<&str> {
    whole_reference(v.rsplit(' ').next()?)
}

/// Whether a command is codemode (this binary or one of that name).
fn is_codemode(command: &str) -> bool {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let p = Path::new(command);
    p.file_stem().is_some_and(|n| n == "codemode") || (me.is_some() && std::fs::canonicalize(p).ok() == me)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_config_parses_and_loads() {
        let text =
            render(&Source::Spec { location: "specs/pets.yaml".into(), name: "pets".into(), base_url: None }).unwrap();
        assert!(text.contains("name = \"pets\"") && text.contains("# base_url"), "{text}");
        let config: crate::config::Config = toml::from_str(&text).unwrap();
        assert_eq!(config.apis[0].spec, "specs/pets.yaml");
        assert!(config.check("x").is_empty(), "{:?}", config.check("x"));
    }

    #[test]
    fn an_mcp_file_becomes_mcp_tables_without_its_secrets() {
        let dir = std::env::temp_dir().join(format!("codemode-init-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("claude_desktop_config.json");
        std::fs::write(
            &f,
            r#"{"mcpServers": {
              "github": {"command": "npx", "args": ["-y", "gh"], "env": {"GITHUB_TOKEN": "ghp_literal_secret_value", "ROOT": "${HOME_ROOT}"}},
              "web": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer ${WEB_TOKEN}", "X-Key": "abc123"}},
              "me": {"command": "/usr/local/bin/codemode", "args": ["serve"]},
              "off": {"command": "x", "disabled": true}
            }}"#,
        )
        .unwrap();
        let text = render(&Source::McpFile(f)).unwrap();
        assert!(!text.contains("ghp_literal_secret_value") && !text.contains("abc123"), "{text}");
        let config: crate::config::Config = toml::from_str(&text).unwrap();
        assert!(config.check("x").is_empty(), "{:?}", config.check("x"));
        assert_eq!(config.mcp.len(), 2, "{text}");
        assert_eq!(config.mcp[0].env, ["GITHUB_TOKEN"]);
        assert_eq!(config.mcp[0].env_from["ROOT"], "HOME_ROOT");
        assert_eq!(config.mcp[1].headers_env["Authorization"], "WEB_TOKEN");
        assert_eq!(config.mcp[1].headers_env["X-Key"], "WEB_X_KEY");
        assert!(text.contains("codemode itself") && text.contains("disabled"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
