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
}

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
