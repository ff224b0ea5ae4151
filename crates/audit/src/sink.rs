//! The two sides of a store, as traits: what the server writes to, and
//! what `codemode audit` reads from. SQLite implements both
//! ([`SqliteStore`](crate::SqliteStore), [`AuditReader`](crate::AuditReader));
//! another backend (PostgreSQL, for fleets of replicas) implements the same
//! two with the same schema and filters.

use crate::{AuditError, CallRecord, Commit, ExecutionRecord, ExecutionSummary, Filter, StoredExecution};

/// Where the server records executions.
pub trait AuditSink: Send + Sync {
    /// Records one execution with its calls, atomically, scrubbing
    /// secrets first. The [`Commit`] resolves to the stored id once the
    /// record is durable; the server awaits it before answering the client.
    fn record(&self, exec: ExecutionRecord, calls: Vec<CallRecord>) -> Commit<i64>;

    /// Sets the result size of execution `id` after the fact, to what
    /// `count` says: counting a long result's tokens costs about 0.1 ms of
    /// CPU per kilobyte, too much to spend before answering or beside the
    /// next call, so the store runs `count` off the request path (SQLite:
    /// when its writer is idle). Does not wait; a store that cannot is free
    /// to drop it (a lost count, never a lost record).
    fn set_result_tokens_with(&self, id: i64, count: TokenCount) {
        let _ = (id, count);
    }
}

/// Counts a result's tokens (the closure holds the result text).
pub type TokenCount = Box<dyn FnOnce() -> u64 + Send>;

/// Where `codemode audit` reads from.
pub trait AuditSource {
    /// The executions `filter` selects (see [`Filter`] for the order).
    fn list(&self, filter: &Filter) -> Result<Vec<ExecutionSummary>, AuditError>;

    /// One execution with its calls in order, or `None`.
    fn show(&self, id: i64) -> Result<Option<(StoredExecution, Vec<CallRecord>)>, AuditError>;

    /// Streams every selected execution with its calls to `each`; returns
    /// how many.
    fn export(
        &self,
        filter: &Filter,
        each: &mut dyn FnMut(StoredExecution, Vec<CallRecord>) -> Result<(), AuditError>,
    ) -> Result<u64, AuditError>;
}
