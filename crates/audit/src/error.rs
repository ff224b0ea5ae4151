//! Errors of the audit store and its queries.

use std::path::PathBuf;

/// Everything that can go wrong recording or reading the audit trail.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// SQLite refused (disk full, locked past the busy timeout, corrupt
    /// file, …).
    #[error("audit database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused, or could not be reached; the message names the
    /// server (password masked) and says what to check.
    #[error("audit database (PostgreSQL): {0}")]
    Postgres(String),
    /// Creating the directory or the file failed, or writing output did.
    #[error("audit: {0}")]
    Io(#[from] std::io::Error),
    /// The file was written by a newer codemode, or is not an audit
    /// database.
    #[error("audit database: {0}")]
    Schema(String),
    /// `[audit]` is not usable as configured.
    #[error("audit config: {0}")]
    Config(String),
    /// A filter or argument of `codemode audit` is wrong.
    #[error("{0}")]
    Usage(String),
    /// There is no database to read.
    #[error("no audit database at {0} (nothing has been recorded there yet, or audit.path points elsewhere)")]
    NotFound(PathBuf),
    /// The trail is off (`audit.path = "off"`).
    #[error("the audit trail is off (audit.path = \"off\")")]
    Off,
    /// The writer thread is gone (the store was dropped, or it panicked).
    #[error("the audit writer has stopped")]
    Closed,
    /// A background step (pruning) failed; its message.
    #[error("audit: {0}")]
    Failed(String),
    /// Writing JSON output failed.
    #[error("audit: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<tokio_postgres::Error> for AuditError {
    fn from(e: tokio_postgres::Error) -> Self {
        AuditError::Postgres(pg_message(&e))
    }
}

/// A PostgreSQL error with its cause: `tokio_postgres::Error` alone prints
/// only "db error", the server's message is its source.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            m.push_str(&format!(" ({d})"));
        }
        return m;
    }
    let mut m = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        m.push_str(&format!(": {s}"));
        source = s.source();
    }
    m
}
