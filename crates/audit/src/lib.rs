//! The audit trail: who ran what code, which calls it made, what came
//! back — kept in an embedded SQLite file and read by `codemode audit`.
//!
//! Three parts, wired by the server and the CLI:
//!
//! - **Recording calls.** [`AuditLayer`] is the outermost layer of the host
//!   pipeline (`codemode_pipeline`): it times each nested call of an
//!   `execute`, lets it pass, and keeps a [`CallRecord`] in the execution's
//!   state, with what the other layers noted (`allowedBy`, `approval`,
//!   `dryRun`) and, for a refusal, the [`HostError`]'s `rule`/`reason`.
//!   [`AuditLog::calls`] hands them to the server at the end. No I/O on
//!   the call path.
//! - **Storing executions.** [`SqliteStore::record`] writes one
//!   [`ExecutionRecord`] with its calls as one transaction on a dedicated
//!   writer thread and returns a [`Commit`] future that resolves when it is
//!   durable; the server awaits it *before* it returns the result, so
//!   whatever a client received is in the store even if the process is
//!   then killed. Secrets are scrubbed ([`codemode_upstream::Scrubber`])
//!   from code, messages, paths and notes before they are written.
//!   Retention (days and/or rows) is pruned in the background.
//! - **Reading.** [`AuditReader`] lists by [`Filter`] and shows one
//!   execution; [`run`] is `codemode audit` (table, text, `--json`,
//!   `--jsonl`) given [`AuditArgs`].
//!
//! [`AuditSink`] and [`AuditSource`] are the two sides as traits, so another
//! backend (PostgreSQL for fleets) can stand in with the same schema and
//! filters.
//!
//! ```no_run
//! # async fn demo() -> Result<(), codemode_audit::AuditError> {
//! use codemode_audit::*;
//! let store = SqliteStore::open("/tmp/audit.db", StoreOptions::default())?;
//! let exec = ExecutionRecord::new(Tool::Execute, "return 1 + 1");
//! let id = store.record(exec, vec![]).await?; // durable from here on
//! let (stored, calls) = store.reader()?.show(id)?.expect("just recorded");
//! # Ok(()) }
//! ```
//!
//! # Durability
//!
//! WAL mode with `synchronous = NORMAL`: a commit is written to the WAL
//! (the OS page cache) without an `fsync`. That survives any death of the
//! process — SIGKILL, panic, OOM kill — and is recovered by the next
//! opener; it does not survive a power cut or kernel crash before the next
//! checkpoint (the background checkpointer runs every 500 ms when there
//! were commits), which loses the newest records but never corrupts the
//! file. Checkpoints run on their own thread beside the writer, so a
//! record never waits for an `fsync`.
//!
//! # Schema (version 1, `PRAGMA user_version`)
//!
//! ```sql
//! CREATE TABLE executions (
//!     id             INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order, never reused
//!     time_ms        INTEGER NOT NULL,  -- start, Unix ms
//!     principal      TEXT,              -- NULL: the local user
//!     session_id     TEXT,
//!     client_name    TEXT,              -- clientInfo.name
//!     client_version TEXT,
//!     tool           TEXT    NOT NULL,  -- 'search' | 'execute'
//!     ok             INTEGER NOT NULL,  -- outcome = 'ok'
//!     outcome        TEXT    NOT NULL,  -- 'ok' or the error kind
//!     error_name     TEXT,
//!     error_message  TEXT,              -- at most 2000 characters
//!     duration_ms    REAL    NOT NULL,
//!     result_tokens  INTEGER,
//!     shortened      INTEGER NOT NULL,  -- result cut to the token cap
//!     dry_run        INTEGER NOT NULL,
//!     call_count     INTEGER NOT NULL,
//!     code_sha256    TEXT    NOT NULL,  -- hex, of the stored (scrubbed) code
//!     code           TEXT    NOT NULL   -- in full, scrubbed
//! );
//! CREATE INDEX executions_time      ON executions(time_ms);
//! CREATE INDEX executions_principal ON executions(principal, time_ms);
//! CREATE INDEX executions_failed    ON executions(time_ms) WHERE ok = 0;
//!
//! CREATE TABLE calls (
//!     execution_id INTEGER NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
//!     seq          INTEGER NOT NULL,    -- 1, 2, … in the order the code made them
//!     at_ms        INTEGER NOT NULL,
//!     kind         TEXT    NOT NULL,    -- 'api' | 'tool'
//!     target       TEXT    NOT NULL,    -- API or MCP server name
//!     method       TEXT,                -- HTTP method (APIs)
//!     path         TEXT    NOT NULL,    -- concrete path and query, or the tool's name
//!     template     TEXT,                -- the spec's path template
//!     status       INTEGER,             -- HTTP status
//!     ok           INTEGER NOT NULL,
//!     error_name   TEXT,
//!     duration_ms  REAL    NOT NULL,
//!     bytes_out    INTEGER NOT NULL,    -- request body / tool arguments
//!     bytes_in     INTEGER NOT NULL,    -- reply (or error) as JSON
//!     allowed_by   TEXT,                -- the rule that let it through
//!     approval     TEXT,                -- JSON {decision, rule, by, atMs}
//!     refused      TEXT,                -- JSON {error, rule, reason}
//!     dry_run      INTEGER NOT NULL,
//!     PRIMARY KEY (execution_id, seq)
//! ) WITHOUT ROWID;
//! CREATE INDEX calls_target ON calls(target, execution_id);
//!
//! -- --grep: trigram index of the code (row ids only; candidates are
//! -- re-checked against the code itself)
//! CREATE VIRTUAL TABLE code_fts USING fts5(code, content = '', contentless_delete = 1,
//!     detail = none, tokenize = 'trigram case_sensitive 0');
//! CREATE TABLE fts_pending (id INTEGER PRIMARY KEY); -- committed, not yet in code_fts
//! ```
//!
//! Lists are ordered by `time_ms DESC, id DESC` (exports ascending), which
//! every time index serves directly. `--grep` is an ASCII case-insensitive
//! substring test (`audit_contains(code, needle)`, registered on each
//! connection). A list with `--api` or `--grep` first walks the newest
//! [`WINDOW`] rows the other filters select and tests each (common matches
//! end it early); if that does not fill the limit it starts from the
//! indexes instead — `calls_target` for `--api`, `code_fts` (plus
//! `fts_pending`) for `--grep` — so rare matches are found without a scan.
//! A record's transaction only adds its id to `fts_pending`; the writer
//! moves pending code into `code_fts` while idle, which keeps the trigram
//! work off the commit path. Needles shorter than three characters have no
//! trigram and scan.
//!
//! [`HostError`]: codemode_pipeline::HostError

#![deny(missing_docs)]

mod cli;
mod config;
mod error;
mod layer;
mod postgres;
mod query;
mod reader;
mod record;
pub mod render;
mod schema;
mod sink;
mod store;
#[cfg(test)]
mod tests;
pub mod time;

pub use cli::{open_sink, open_source, run, run_with, AuditArgs, Format, DEFAULT_LIMIT};
pub use config::{default_path, host_name, mask_url, AuditConfig, Backend, DEFAULT_SCHEMA};
pub use error::AuditError;
pub use layer::{AuditLayer, AuditLog};
pub use postgres::store::PG_WRITERS;
pub use postgres::{PgReader, PgStore, PG_SCHEMA_VERSION};
pub use query::{Filter, Status, LOCAL_PRINCIPAL};
pub use reader::{AuditReader, WINDOW};
pub use record::{
    first_line, CallKind, CallRecord, ExecutionRecord, ExecutionSummary, StoredExecution, Tool, MAX_FIELD, MAX_MESSAGE,
    OK, REFUSALS,
};
pub use schema::{MIGRATIONS, VERSION as SCHEMA_VERSION};
pub use sink::{AuditSink, AuditSource, TokenCount};
pub use store::{Commit, Retention, SqliteStore, StoreOptions};
