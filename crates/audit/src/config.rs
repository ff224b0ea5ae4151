//! `[audit]` in `codemode.toml`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::AuditError;

/// The `[audit]` table:
///
/// ```toml
/// [audit]
/// path = "/var/lib/codemode/audit.db"   # or "off"; default: the user's data directory
/// # url = "postgres://codemode@db.internal/audit"  # instead of path: one store for a fleet
/// # schema = "codemode"                 # PostgreSQL schema of the tables (default codemode)
/// # host = "replica-a"                  # recorded with each execution (default: the host name)
/// retention_days = 90                   # prune executions older than this
/// retention_rows = 1000000              # keep at most this many executions
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The SQLite file; `"off"` disables the audit trail; `None` is
    /// [`default_path`] (unless `url` is set). A leading `~/` is the home
    /// directory.
    pub path: Option<String>,
    /// A PostgreSQL store instead of the SQLite file
    /// (`postgres://user:password@host:port/database?…`, the libpq URL
    /// form): every replica of a fleet writes to it, `codemode audit` reads
    /// it. Mutually exclusive with `path`. The password is never logged.
    pub url: Option<String>,
    /// The PostgreSQL schema holding the tables (created when missing).
    /// Default [`DEFAULT_SCHEMA`].
    pub schema: Option<String>,
    /// Which replica this is, recorded with each execution. Default: the
    /// machine's host name (a pod's name on Kubernetes).
    pub host: Option<String>,
    /// Executions (with their calls) older than this many days are pruned.
    pub retention_days: Option<u32>,
    /// At most this many executions are kept (the oldest go first).
    pub retention_rows: Option<u64>,
}

/// The default PostgreSQL schema of the audit tables.
pub const DEFAULT_SCHEMA: &str = "codemode";

// By hand: the URL may carry a password.
impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("path", &self.path)
            .field("url", &self.url.as_deref().map(mask_url))
            .field("schema", &self.schema)
            .field("host", &self.host)
            .field("retention_days", &self.retention_days)
            .field("retention_rows", &self.retention_rows)
            .finish()
    }
}

/// Where the trail is kept, as `[audit]` resolves.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// `path = "off"`.
    Off,
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database: the URL and the schema.
    Postgres {
        /// The connection URL (may hold a password: print [`mask_url`] of it).
        url: String,
        /// The schema of the tables.
        schema: String,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Off => f.write_str("Off"),
            Backend::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Backend::Postgres { url, schema } => {
                f.debug_struct("Postgres").field("url", &mask_url(url)).field("schema", schema).finish()
            }
        }
    }
}

impl AuditConfig {
    /// The store this config names: off, a SQLite file, or PostgreSQL.
    pub fn backend(&self) -> Result<Backend, AuditError> {
        self.validate()?;
        if let Some(url) = &self.url {
            let schema = self.schema.clone().unwrap_or_else(|| DEFAULT_SCHEMA.to_string());
            return Ok(Backend::Postgres { url: url.trim().to_string(), schema });
        }
        Ok(match self.resolve_path()? {
            Some(p) => Backend::Sqlite(p),
            None => Backend::Off,
        })
    }

    /// The store options this config asks for (retention, host), with the
    /// scrubber of the server's credentials.
    pub fn store_options(&self, scrubber: codemode_upstream::Scrubber) -> crate::StoreOptions {
        let host = self.host.clone().or_else(host_name);
        crate::StoreOptions { scrubber, retention: self.retention(), host, ..crate::StoreOptions::default() }
    }

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

    /// Checks the values (a zero retention would delete everything; `path`
    /// and `url` name two different stores).
    pub fn validate(&self) -> Result<(), AuditError> {
        if let Some(url) = &self.url {
            if self.path.is_some() {
                return Err(AuditError::Config(
                    "audit.path and audit.url are both set: keep `url` for a PostgreSQL store shared by replicas, or `path` for a local SQLite file (\"off\" turns the trail off)".into(),
                ));
            }
            let u = url.trim();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(AuditError::Config(format!(
                    "audit.url {:?} is not a PostgreSQL URL: write postgres://user@host:5432/database",
                    mask_url(u)
                )));
            }
        } else if self.schema.is_some() {
            return Err(AuditError::Config("audit.schema applies to a PostgreSQL store: set audit.url too".into()));
        }
        if let Some(schema) = &self.schema {
            let ok = !schema.is_empty()
                && schema.len() <= 63
                && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(AuditError::Config(format!(
                    "audit.schema {schema:?}: use lower-case letters, digits and _ (at most 63, not starting with a digit)"
                )));
            }
        }
        if self.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
            return Err(AuditError::Config(
                "audit.host is empty: name this replica, or leave it out (the host name)".into(),
            ));
        }
        if self.retention_days == Some(0) {
            return Err(AuditError::Config("audit.retention_days must be at least 1".into()));
        }
        if self.retention_rows == Some(0) {
            return Err(AuditError::Config("audit.retention_rows must be at least 1".into()));
        }
        Ok(())
    }
}

/// `url` with its password (in the user info, or a `password=` parameter)
/// replaced by `***`: the form every message and log line uses.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            if u.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") { "***".into() } else { v.into_owned() };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        // Not a URL we can take apart: show only the scheme.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "…".into(),
        },
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else
/// `$HOSTNAME`), for the `host` of each record.
pub fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
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

    #[test]
    fn postgres_urls_are_checked_and_masked() {
        let c: AuditConfig = toml_like(r#"{"url": "postgres://app:s3cret@db:5432/audit", "host": "a"}"#);
        match c.backend().unwrap() {
            Backend::Postgres { url, schema } => {
                assert_eq!((url.as_str(), schema.as_str()), ("postgres://app:s3cret@db:5432/audit", DEFAULT_SCHEMA))
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{c:?} {:?}", c.backend().unwrap()).contains("s3cret"));
        assert_eq!(mask_url("postgres://app:s3cret@db:5432/audit"), "postgres://app:***@db:5432/audit");
        assert_eq!(mask_url("postgres://db/audit?user=a&password=s3cret"), "postgres://db/audit?user=a&password=***");
        assert_eq!(mask_url("postgres://db/audit"), "postgres://db/audit");
        let both: AuditConfig = toml_like(r#"{"url": "postgres://db/a", "path": "/tmp/a.db"}"#);
        assert!(both.validate().unwrap_err().to_string().contains("both set"));
        let bad: AuditConfig = toml_like(r#"{"url": "mysql://u:s3cret@db/a"}"#);
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("not a PostgreSQL URL") && !e.contains("s3cret"), "{e}");
        let schema: AuditConfig = toml_like(r#"{"url": "postgres://db/a", "schema": "Bad-Name"}"#);
        assert!(schema.validate().is_err());
        let stray: AuditConfig = toml_like(r#"{"schema": "x"}"#);
        assert!(stray.validate().is_err(), "schema without url");
        let o = toml_like(r#"{"host": "replica-a"}"#).store_options(codemode_upstream::Scrubber::none());
        assert_eq!(o.host.as_deref(), Some("replica-a"));
        assert!(AuditConfig::default().store_options(codemode_upstream::Scrubber::none()).host.is_some());
    }

    fn toml_like(s: &str) -> AuditConfig {
        serde_json::from_str(s).unwrap()
    }
}
