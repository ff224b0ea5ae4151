//! `[audit]` in `codemode.toml`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::AuditError;

/// The `[audit]` table:
///
/// ```toml
/// [audit]
/// path = "/var/lib/codemode/audit.db"   # or "off"; default: the user's data directory
/// retention_days = 90                   # prune executions older than this
/// retention_rows = 1000000              # keep at most this many executions
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The SQLite file; `"off"` disables the audit trail; `None` is
    /// [`default_path`]. A leading `~/` is the home directory.
    pub path: Option<String>,
    /// Executions (with their calls) older than this many days are pruned.
    pub retention_days: Option<u32>,
    /// At most this many executions are kept (the oldest go first).
    pub retention_rows: Option<u64>,
}

impl AuditConfig {
    /// True when `path = "off"`.
    pub fn is_off(&self) -> bool {
        self.path.as_deref().is_some_and(|p| p.trim().eq_ignore_ascii_case("off"))
    }

    /// The database file, or `None` when the trail is off. Fails when no
    /// path is configured and there is no data directory (neither
    /// `XDG_DATA_HOME` nor `HOME` is set).
    pub fn resolve_path(&self) -> Result<Option<PathBuf>, AuditError> {
        if self.is_off() {
            return Ok(None);
        }
        match self.path.as_deref().map(str::trim) {
            Some("") => Err(AuditError::Config("audit.path is empty; give a file, or \"off\"".into())),
            Some(p) => match p.strip_prefix("~/") {
                Some(rest) => Ok(Some(home()?.join(rest))),
                None => Ok(Some(PathBuf::from(p))),
            },
            None => default_path().map(Some),
        }
    }

    /// The retention this config asks for.
    pub fn retention(&self) -> crate::Retention {
        crate::Retention { days: self.retention_days, rows: self.retention_rows }
    }

    /// Checks the values (a zero retention would delete everything).
    pub fn validate(&self) -> Result<(), AuditError> {
        if self.retention_days == Some(0) {
            return Err(AuditError::Config("audit.retention_days must be at least 1".into()));
        }
        if self.retention_rows == Some(0) {
            return Err(AuditError::Config("audit.retention_rows must be at least 1".into()));
        }
        Ok(())
    }
}

fn home() -> Result<PathBuf, AuditError> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => Err(AuditError::Config("HOME is not set; set audit.path".into())),
    }
}

/// `$XDG_DATA_HOME/codemode/audit.db` (an absolute `XDG_DATA_HOME` only,
/// as the XDG spec says), else `$HOME/.local/share/codemode/audit.db`.
pub fn default_path() -> Result<PathBuf, AuditError> {
    let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).filter(|p| p.is_absolute());
    let data = match xdg {
        Some(p) => p,
        None => home()?.join(".local/share"),
    };
    Ok(data.join("codemode").join("audit.db"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let c: AuditConfig = toml_like(r#"{"path": "off"}"#);
        assert!(c.is_off());
        assert_eq!(c.resolve_path().unwrap(), None);
        let c: AuditConfig = toml_like(r#"{"path": "/tmp/a.db", "retention_days": 7, "retention_rows": 10}"#);
        assert_eq!(c.resolve_path().unwrap(), Some(PathBuf::from("/tmp/a.db")));
        assert_eq!(c.retention(), crate::Retention { days: Some(7), rows: Some(10) });
        assert!(serde_json::from_str::<AuditConfig>(r#"{"pth": "x"}"#).is_err());
        let c: AuditConfig = toml_like(r#"{"retention_days": 0}"#);
        assert!(c.validate().is_err());
        // The default is under the data directory (whatever this machine's is).
        let p = AuditConfig::default().resolve_path().unwrap().unwrap();
        assert!(p.ends_with("codemode/audit.db"), "{p:?}");
    }

    fn toml_like(s: &str) -> AuditConfig {
        serde_json::from_str(s).unwrap()
    }
}
