//! The schema, versioned by `PRAGMA user_version`: migration `i` (from 0)
//! takes a database from version `i` to `i + 1`, in one transaction.

use rusqlite::{Connection, TransactionBehavior};

use crate::AuditError;

/// Version 1: executions, calls, the indexes behind the filters, and the
/// trigram index of the code.
const V1: &str = r#"
CREATE TABLE executions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms        INTEGER NOT NULL,
    principal      TEXT,
    session_id     TEXT,
    client_name    TEXT,
    client_version TEXT,
    tool           TEXT    NOT NULL,
    ok             INTEGER NOT NULL,
    outcome        TEXT    NOT NULL,
    error_name     TEXT,
    error_message  TEXT,
    duration_ms    REAL    NOT NULL,
    result_tokens  INTEGER,
    shortened      INTEGER NOT NULL,
    dry_run        INTEGER NOT NULL,
    call_count     INTEGER NOT NULL,
    code_sha256    TEXT    NOT NULL,
    code           TEXT    NOT NULL
);
CREATE INDEX executions_time      ON executions(time_ms);
CREATE INDEX executions_principal ON executions(principal, time_ms);
CREATE INDEX executions_failed    ON executions(time_ms) WHERE ok = 0;

CREATE TABLE calls (
    execution_id INTEGER NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    at_ms        INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    target       TEXT    NOT NULL,
    method       TEXT,
    path         TEXT    NOT NULL,
    template     TEXT,
    status       INTEGER,
    ok           INTEGER NOT NULL,
    error_name   TEXT,
    duration_ms  REAL    NOT NULL,
    bytes_out    INTEGER NOT NULL,
    bytes_in     INTEGER NOT NULL,
    allowed_by   TEXT,
    approval     TEXT,
    refused      TEXT,
    dry_run      INTEGER NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
CREATE INDEX calls_target ON calls(target, execution_id);

-- --grep: a trigram index of the code (ids only: candidates, re-checked
-- against the code). Filled off the commit path from fts_pending.
CREATE VIRTUAL TABLE code_fts USING fts5(
    code, content = '', contentless_delete = 1, detail = none,
    tokenize = 'trigram case_sensitive 0'
);
CREATE TABLE fts_pending (id INTEGER PRIMARY KEY);
"#;

/// Version 2: which replica recorded each execution (fleets share one
/// PostgreSQL store; SQLite keeps the column so both read alike).
const V2: &str = "ALTER TABLE executions ADD COLUMN host TEXT;";

/// Every migration, in order; the schema version is its count.
pub const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this build writes and reads.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings `conn`'s database to [`VERSION`]; refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), AuditError> {
    let version =
        |c: &Connection| -> Result<i64, AuditError> { Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?) };
    let check = |v: i64| {
        if v > VERSION {
            Err(AuditError::Schema(format!(
                "the audit database has schema version {v}; this codemode knows versions up to {VERSION}: use a newer codemode"
            )))
        } else {
            Ok(())
        }
    };
    let v = version(conn)?;
    check(v)?;
    if v == VERSION {
        return Ok(());
    }
    // Another process may be migrating too: decide again under the lock.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let v = version(&tx)?;
    check(v)?;
    for sql in &MIGRATIONS[v as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}
