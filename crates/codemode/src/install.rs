//! `codemode install <client>`: adds codemode to an MCP client's config file
//! (or prints the entry with `--print`), merging into what is there.
//!
//! The entry runs this binary by its absolute path, because desktop clients
//! start servers with a `PATH` of their own (a `codemode` installed by cargo
//! or pip is often not on it), and names the config file by its absolute path
//! when there is one, because they start servers in a directory of their own.
//! Every other server and key in the file is kept; the file before the change
//! is copied next to it first; an entry that is already right is left alone.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::discover::{home_dir, user_config_dir};

/// The clients `install` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Claude Desktop: `claude_desktop_config.json`, `mcpServers`.
    ClaudeDesktop,
    /// Claude Code (user scope): `~/.claude.json`, `mcpServers`.
    ClaudeCode,
    /// Cursor (global): `~/.cursor/mcp.json`, `mcpServers`.
    Cursor,
    /// VS Code (user): `Code/User/mcp.json`, `servers`.
    Vscode,
    /// OpenAI Codex CLI: `$CODEX_HOME/config.toml` (default `~/.codex`), `[mcp_servers.<name>]`.
    Codex,
    /// Windsurf: `~/.codeium/windsurf/mcp_config.json`, `mcpServers`.
    Windsurf,
}

/// What `codemode install` was asked.
#[derive(Clone, Debug)]
pub struct Request {
    /// Which client.
    pub client: Client,
    /// The server's name in the client (default `codemode`).
    pub name: String,
    /// The program the client runs (default: this binary, absolute).
    pub command: String,
    /// Its arguments (`serve`, and `--config <absolute path>` when there is one).
    pub args: Vec<String>,
    /// The client's file (default: the platform's place for it).
    pub file: Option<PathBuf>,
}

impl Client {
    /// The client's config file on this platform.
    pub fn config_file(self) -> Result<PathBuf, String> {
        let home =
            || home_dir().ok_or_else(|| "HOME is not set: pass --file with the client's config file".to_string());
        let app_config = || {
            user_config_dir().ok_or_else(|| "no user config directory (HOME/APPDATA unset): pass --file".to_string())
        };
        Ok(match self {
            Client::ClaudeDesktop => app_config()?.join("Claude").join("claude_desktop_config.json"),
            Client::ClaudeCode => home()?.join(".claude.json"),
            Client::Cursor => home()?.join(".cursor").join("mcp.json"),
            Client::Vscode => app_config()?.join("Code").join("User").join("mcp.json"),
            Client::Codex => match std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty()) {
                Some(dir) => PathBuf::from(dir).join("config.toml"),
                None => home()?.join(".codex").join("config.toml"),
            },
            Client::Windsurf => home()?.join(".codeium").join("windsurf").join("mcp_config.json"),
        })
    }

    /// The object that holds the servers in a JSON file.
    fn servers_key(self) -> &'static str {
        match self {
            Client::Vscode => "servers",
            _ => "mcpServers",
        }
    }

    /// What the client calls itself, for messages.
    fn title(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "Claude Desktop",
            Client::ClaudeCode => "Claude Code",
            Client::Cursor => "Cursor",
            Client::Vscode => "VS Code",
            Client::Codex => "Codex",
            Client::Windsurf => "Windsurf",
        }
    }

    /// What to do after a write for the client to see the server.
    fn after(self) -> &'static str {
        match self {
            Client::ClaudeDesktop => "restart Claude Desktop",
            Client::ClaudeCode => "check with `claude mcp list`",
            Client::Cursor => "open Cursor Settings → MCP and refresh",
            Client::Vscode => "run `MCP: List Servers` in VS Code",
            Client::Codex => "check with `codex mcp list`",
            Client::Windsurf => "refresh the MCP servers in Windsurf's Cascade panel",
        }
    }
}

impl Request {
    /// The JSON entry for this client.
    fn json_entry(&self) -> Value {
        let mut e = Map::new();
        if matches!(self.client, Client::ClaudeCode | Client::Vscode) {
            e.insert("type".into(), json!("stdio"));
        }
        e.insert("command".into(), json!(self.command));
        e.insert("args".into(), json!(self.args));
        if self.client == Client::ClaudeCode {
            e.insert("env".into(), json!({}));
        }
        Value::Object(e)
    }

    /// The Codex table, as TOML text.
    fn toml_entry(&self) -> String {
        let mut t = toml::Table::new();
        t.insert("command".into(), toml::Value::String(self.command.clone()));
        t.insert("args".into(), toml::Value::Array(self.args.iter().cloned().map(toml::Value::String).collect()));
        format!("[mcp_servers.{}]\n{}", toml_key(&self.name), toml::to_string(&t).expect("a table of strings"))
    }

    /// What `--print` shows: the file and the entry to put in it.
    pub fn print(&self) -> Result<String, String> {
        let file = self.target()?;
        let snippet = match self.client {
            Client::Codex => self.toml_entry(),
            c => serde_json::to_string_pretty(&json!({ c.servers_key(): { self.name.clone(): self.json_entry() } }))
                .expect("serialises"),
        };
        Ok(format!("# {} — add to {}\n{snippet}\n", self.client.title(), file.display()))
    }

    fn target(&self) -> Result<PathBuf, String> {
        match &self.file {
            Some(f) => Ok(f.clone()),
            None => self.client.config_file(),
        }
    }

    /// Writes the entry into the client's file; returns what was done, for
    /// the person who ran it.
    pub fn write(&self) -> Result<String, String> {
        let file = self.target()?;
        let old = match std::fs::read_to_string(&file) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
        };
        let (new, replaced) = match self.client {
            Client::Codex => self.merge_toml(old.as_deref()),
            _ => self.merge_json(old.as_deref()),
        }
        .map_err(|e| format!("{}: {e}; nothing was changed", file.display()))?;
        let Some(new) = new else {
            return Ok(format!(
                "{}: `{}` is already installed in {} (unchanged)",
                self.client.title(),
                self.name,
                file.display()
            ));
        };
        let backup = match &old {
            Some(_) => Some(backup(&file)?),
            None => None,
        };
        write_atomically(&file, &new)?;
        let mut msg = format!(
            "{}: {} `{}` in {}",
            self.client.title(),
            if replaced { "replaced" } else { "added" },
            self.name,
            file.display()
        );
        if let Some(b) = backup {
            msg.push_str(&format!(" (the previous file is in {})", b.display()));
        }
        msg.push_str(&format!("; {}", self.client.after()));
        Ok(msg)
    }

    /// The new JSON text (`None`: already as wanted) and whether an entry of
    /// that name was replaced.
    fn merge_json(&self, old: Option<&str>) -> Result<(Option<String>, bool), String> {
        let mut root = match old.filter(|t| !t.trim().is_empty()) {
            Some(t) => crate::mcp_file::parse_jsonc(t)?,
            None => json!({}),
        };
        let Value::Object(obj) = &mut root else {
            return Err("the file is not a JSON object".into());
        };
        let key = self.client.servers_key();
        let servers = obj.entry(key).or_insert_with(|| json!({}));
        let Value::Object(servers) = servers else {
            return Err(format!("`{key}` is not an object"));
        };
        let entry = self.json_entry();
        let replaced = match servers.get(&self.name) {
            Some(existing) if *existing == entry => return Ok((None, false)),
            Some(_) => true,
            None => false,
        };
        servers.insert(self.name.clone(), entry);
        let mut text = serde_json::to_string_pretty(&root).expect("serialises");
        text.push('\n');
        Ok((Some(text), replaced))
    }

    /// Codex's TOML, edited as text so that the user's comments and layout
    /// stay: the `[mcp_servers.<name>]` section (and its subtables) is
    /// replaced or appended, and the result is checked by parsing it.
    fn merge_toml(&self, old: Option<&str>) -> Result<(Option<String>, bool), String> {
        let old = old.unwrap_or("");
        let before: toml::Table = toml::from_str(old).map_err(|e| format!("invalid TOML: {e}"))?;
        let wanted: toml::Table = toml::from_str(&self.toml_entry()).expect("our own TOML parses");
        let wanted_entry = &wanted["mcp_servers"][&self.name];
        let existing = before.get("mcp_servers").and_then(|m| m.get(&self.name));
        if existing == Some(wanted_entry) {
            return Ok((None, false));
        }
        let header = format!("[mcp_servers.{}", toml_key(&self.name));
        let mut out = String::new();
        let mut skipping = false;
        for line in old.split_inclusive('\n') {
            let t = line.trim_start();
            if t.starts_with('[') {
                skipping = t.strip_prefix(&header).is_some_and(|rest| rest.starts_with(']') || rest.starts_with('.'));
            }
            if !skipping {
                out.push_str(line);
            }
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() && !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(&self.toml_entry());
        // The text edit must give exactly the old document plus our entry (a
        // layout it does not understand, e.g. an inline `mcp_servers = {…}`,
        // fails this and is refused rather than half-edited).
        let after: toml::Table = toml::from_str(&out).map_err(|e| {
            format!("could not add the entry without breaking the file ({e}); add it by hand (codemode install codex --print)")
        })?;
        let mut expected = before.clone();
        let servers = expected.entry("mcp_servers").or_insert_with(|| toml::Value::Table(Default::default()));
        match servers.as_table_mut() {
            Some(s) => {
                s.insert(self.name.clone(), wanted_entry.clone());
            }
            None => return Err("`mcp_servers` is not a table".into()),
        }
        if after != expected {
            return Err("the file's layout keeps the entry from being added as a section; add it by hand (codemode install codex --print)".into());
        }
        Ok((Some(out), existing.is_some()))
    }
}

/// A TOML key as written in a header: bare when it can be, else quoted.
fn toml_key(name: &str) -> String {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        name.to_string()
    } else {
        toml::Value::String(name.to_string()).to_string()
    }
}

/// Copies `file` to `<file>.<unix seconds>.bak` (a new name each time, so an
/// earlier backup is never overwritten).
fn backup(file: &Path) -> Result<PathBuf, String> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut n = 0;
    loop {
        let suffix = if n == 0 { format!("{secs}.bak") } else { format!("{secs}-{n}.bak") };
        let mut name = file.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        let b = PathBuf::from(name);
        if !b.exists() {
            std::fs::copy(file, &b)
                .map_err(|e| format!("{}: cannot back up to {}: {e}", file.display(), b.display()))?;
            return Ok(b);
        }
        n += 1;
    }
}

/// Writes through a temporary file in the same directory and a rename, so a
/// client never reads half a file; keeps the old file's permissions
/// (`~/.claude.json` is private).
fn write_atomically(file: &Path, text: &str) -> Result<(), String> {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".codemode-{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(file) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: cannot replace: {e}", file.display())
    })
}

/// The entry's command: this binary, absolute and canonical.
pub fn this_binary() -> String {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "codemode".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(client: Client, file: &Path) -> Request {
        Request {
            client,
            name: "codemode".into(),
            command: "/opt/codemode/bin/codemode".into(),
            args: vec!["serve".into(), "--config".into(), "/etc/codemode.toml".into()],
            file: Some(file.to_path_buf()),
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("codemode-install-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn json_merge_keeps_others_backs_up_and_is_idempotent() {
        let d = tmp("json");
        let f = d.join("claude_desktop_config.json");
        std::fs::write(
            &f,
            "{\n // mine\n \"theme\": \"dark\",\n \"mcpServers\": {\"files\": {\"command\": \"npx\"},},\n}\n",
        )
        .unwrap();
        let r = req(Client::ClaudeDesktop, &f);
        let msg = r.write().unwrap();
        assert!(msg.contains("added `codemode`") && msg.contains(".bak"), "{msg}");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["theme"], "dark");
        assert_eq!(v["mcpServers"]["files"]["command"], "npx");
        assert_eq!(v["mcpServers"]["codemode"]["args"][2], "/etc/codemode.toml");
        // The second time: nothing to do, no new backup.
        let backups = || {
            std::fs::read_dir(&d)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension() == Some("bak".as_ref()))
                .count()
        };
        assert_eq!(backups(), 1);
        assert!(r.write().unwrap().contains("unchanged"));
        assert_eq!(backups(), 1);
        // A changed entry replaces the old one.
        let mut r2 = r.clone();
        r2.args = vec!["serve".into()];
        assert!(r2.write().unwrap().contains("replaced"));
        // A file that is not JSON is refused and left as it was.
        std::fs::write(&f, "{ nope").unwrap();
        let e = r.write().unwrap_err();
        assert!(e.contains("not valid JSON") && e.contains("nothing was changed"), "{e}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "{ nope");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn vscode_and_claude_code_shapes() {
        let d = tmp("shapes");
        let f = d.join("sub/mcp.json");
        req(Client::Vscode, &f).write().unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["servers"]["codemode"]["type"], "stdio");
        let out = req(Client::ClaudeCode, &f).print().unwrap();
        assert!(out.contains("\"mcpServers\"") && out.contains("\"env\": {}"), "{out}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn codex_toml_keeps_comments_and_other_servers() {
        let d = tmp("codex");
        let f = d.join("config.toml");
        let original = "# my settings\nmodel = \"o3\"\n\n[mcp_servers.docs]\ncommand = \"docs\" # keep me\n";
        std::fs::write(&f, original).unwrap();
        let r = req(Client::Codex, &f);
        r.write().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.starts_with(original) && text.contains("# keep me"), "{text}");
        let t: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(t["mcp_servers"]["codemode"]["command"].as_str(), Some("/opt/codemode/bin/codemode"));
        assert!(r.write().unwrap().contains("unchanged"));
        // Replacing drops the old section and its subtables, nothing else.
        std::fs::write(&f, format!("{original}\n[mcp_servers.codemode]\ncommand = \"old\"\n[mcp_servers.codemode.env]\nA = \"1\"\n\n[profiles.x]\nmodel = \"y\"\n")).unwrap();
        assert!(r.write().unwrap().contains("replaced"));
        let t: toml::Table = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert!(t["mcp_servers"]["codemode"].get("env").is_none());
        assert_eq!(t["profiles"]["x"]["model"].as_str(), Some("y"));
        assert_eq!(t["mcp_servers"]["docs"]["command"].as_str(), Some("docs"));
        // An inline table it cannot edit as text is refused, file untouched.
        std::fs::write(&f, "mcp_servers = { docs = { command = \"d\" } }\n").unwrap();
        let e = r.write().unwrap_err();
        assert!(e.contains("by hand") && e.contains("nothing was changed"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}
