//! Reading the PostgreSQL store: the queries behind `codemode audit`, built
//! by the same [`Filter`] code as SQLite's, in the PostgreSQL dialect.

use std::future::Future;
use std::sync::Mutex;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel};

use super::{call, connect, ensure_schema, execution, summary};
use crate::config::mask_url;
use crate::query::{list_planned, Dialect, Param, Plan, Planned, CALL_COLUMNS, EXEC_COLUMNS, SUMMARY_COLUMNS};
use crate::{AuditError, AuditSource, CallRecord, ExecutionSummary, Filter, StoredExecution};

/// Executions an export fetches per round trip (with their calls).
const EXPORT_PAGE: i32 = 500;

/// A reading connection to the PostgreSQL store. Its methods block: call
/// them from synchronous code or a multi-threaded runtime's task (they
/// step aside with `block_in_place`), not from a current-thread runtime.
pub struct PgReader {
    /// Always `Some` until dropped.
    rt: Option<Runtime>,
    client: Mutex<Client>,
    url: String,
}

impl std::fmt::Debug for PgReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgReader").field("url", &self.url).finish()
    }
}

/// Runs `f` to completion on `rt` from whatever thread this is.
fn block<F: Future>(rt: &Runtime, f: F) -> Result<F::Output, AuditError> {
    match Handle::try_current() {
        Err(_) => Ok(rt.block_on(f)),
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| rt.block_on(f)))
        }
        Ok(_) => Err(AuditError::Failed(
            "the PostgreSQL audit reader blocks: use it from a blocking thread (spawn_blocking), not a current-thread runtime".into(),
        )),
    }
}

fn pg_params(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(n) => n as &(dyn ToSql + Sync),
            Param::Text(t) => t as &(dyn ToSql + Sync),
        })
        .collect()
}

impl PgReader {
    /// Connects to `url` and checks the tables in `schema` (an older
    /// schema is migrated, a newer one refused; none at all is an error).
    pub fn open(url: &str, schema: &str) -> Result<Self, AuditError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = block(&rt, async {
            let mut client = connect(url, schema).await?;
            ensure_schema(&mut client, schema, url, false).await?;
            Ok::<_, AuditError>(client)
        })??;
        Ok(PgReader { rt: Some(rt), client: Mutex::new(client), url: mask_url(url) })
    }

    /// The database, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn with<T>(&self, f: impl AsyncFnOnce(&mut Client) -> Result<T, AuditError>) -> Result<T, AuditError> {
        let mut client = self.client.lock().map_err(|_| AuditError::Closed)?;
        let rt = self.rt.as_ref().ok_or(AuditError::Closed)?;
        block(rt, f(&mut client))?
    }

    /// The executions `filter` selects, newest first (oldest first with
    /// `filter.oldest_first`). Unlike SQLite's reader it leaves `--api` and
    /// `--grep` to the planner at once (its pg_trgm and statistics do better than
    /// a window of rows tested one by one).
    pub fn list(&self, filter: &Filter) -> Result<Vec<ExecutionSummary>, AuditError> {
        list_planned(self, filter)
    }

    /// One execution and its calls (in `seq` order).
    pub fn show(&self, id: i64) -> Result<Option<(StoredExecution, Vec<CallRecord>)>, AuditError> {
        self.with(async |c| {
            let Some(row) =
                c.query_opt(&format!("SELECT {EXEC_COLUMNS} FROM executions e WHERE e.id = $1"), &[&id]).await?
            else {
                return Ok(None);
            };
            let exec = execution(&row)?;
            let rows = c
                .query(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE execution_id = $1 ORDER BY seq"), &[&id])
                .await?;
            let calls = rows.iter().map(|r| call(r, 0)).collect::<Result<_, _>>()?;
            Ok(Some((exec, calls)))
        })
    }

    /// Streams every execution `filter` selects, with its calls, to `each`
    /// (in the filter's order), from one consistent snapshot, a page at a
    /// time. Returns how many.
    pub fn export(
        &self,
        filter: &Filter,
        each: &mut dyn FnMut(StoredExecution, Vec<CallRecord>) -> Result<(), AuditError>,
    ) -> Result<u64, AuditError> {
        filter.validate()?;
        let (tail, params) = filter.sql(Plan::Indexed, Dialect::Postgres);
        self.with(async |c| {
            let tx = c
                .build_transaction()
                .read_only(true)
                .isolation_level(IsolationLevel::RepeatableRead)
                .start()
                .await?;
            let st = tx.prepare(&format!("SELECT {EXEC_COLUMNS}{tail}")).await?;
            let portal = tx.bind(&st, &pg_params(&params)).await?;
            let calls_of = tx
                .prepare(&format!(
                    "SELECT execution_id, {CALL_COLUMNS} FROM calls WHERE execution_id = ANY($1) ORDER BY execution_id, seq"
                ))
                .await?;
            let mut n = 0;
            loop {
                let rows = tx.query_portal(&portal, EXPORT_PAGE).await?;
                if rows.is_empty() {
                    break;
                }
                let execs = rows.iter().map(execution).collect::<Result<Vec<_>, _>>()?;
                let ids: Vec<i64> = execs.iter().filter(|e| e.call_count > 0).map(|e| e.id).collect();
                let mut calls: std::collections::HashMap<i64, Vec<CallRecord>> = Default::default();
                if !ids.is_empty() {
                    for r in tx.query(&calls_of, &[&ids]).await? {
                        calls.entry(r.try_get(0)?).or_default().push(call(&r, 1)?);
                    }
                }
                for e in execs {
                    let cs = calls.remove(&e.id).unwrap_or_default();
                    each(e, cs)?;
                    n += 1;
                }
                if rows.len() < EXPORT_PAGE as usize {
                    break;
                }
            }
            tx.commit().await?;
            Ok(n)
        })
    }

    /// How many executions are stored.
    pub fn count(&self) -> Result<u64, AuditError> {
        self.with(async |c| {
            Ok(c.query_one("SELECT count(*) FROM executions", &[]).await?.get::<_, i64>(0).max(0) as u64)
        })
    }

    /// How many call rows are stored.
    pub fn call_count(&self) -> Result<u64, AuditError> {
        self.with(async |c| Ok(c.query_one("SELECT count(*) FROM calls", &[]).await?.get::<_, i64>(0).max(0) as u64))
    }

    /// PostgreSQL's plans for the queries `filter` makes (`EXPLAIN`, one
    /// line per step; with `--api`/`--grep`, the window query's, then the
    /// indexed one's), for benchmarks and index work.
    pub fn explain(&self, filter: &Filter) -> Result<Vec<String>, AuditError> {
        let plans = [("indexed", Plan::Indexed)];
        self.with(async |c| {
            let mut out = vec![];
            for (name, plan) in plans {
                let (tail, params) = filter.sql(plan, Dialect::Postgres);
                for r in c.query(&format!("EXPLAIN SELECT e.id{tail}"), &pg_params(&params)).await? {
                    out.push(format!("{name}: {}", r.get::<_, String>(0)));
                }
            }
            Ok(out)
        })
    }

    /// Updates the planner's statistics (`ANALYZE`); worth it after a
    /// large import.
    pub fn analyze(&self) -> Result<(), AuditError> {
        self.with(async |c| Ok(c.batch_execute("ANALYZE executions; ANALYZE calls").await?))
    }

    /// Runs `sql` (tests: dropping their schema).
    #[cfg(test)]
    pub(crate) fn execute_for_tests(&self, sql: &str) -> Result<(), AuditError> {
        self.with(async |c| Ok(c.batch_execute(sql).await?))
    }
}

impl Drop for PgReader {
    fn drop(&mut self) {
        // Without waiting: a reader may be dropped inside async code, where
        // a runtime must not block.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Planned for PgReader {
    fn summaries(&self, filter: &Filter, plan: Plan) -> Result<Vec<ExecutionSummary>, AuditError> {
        let (tail, params) = filter.sql(plan, Dialect::Postgres);
        self.with(async |c| {
            let rows = c.query(&format!("SELECT {SUMMARY_COLUMNS}{tail}"), &pg_params(&params)).await?;
            rows.iter().map(summary).collect()
        })
    }

    fn window_count(&self, filter: &Filter, window: usize) -> Result<i64, AuditError> {
        let (sql, params) = filter.window_count_sql(window, Dialect::Postgres);
        self.with(async |c| Ok(c.query_one(&sql, &pg_params(&params)).await?.get(0)))
    }

    fn window_first(&self) -> bool {
        false
    }
}

impl AuditSource for PgReader {
    fn list(&self, filter: &Filter) -> Result<Vec<ExecutionSummary>, AuditError> {
        PgReader::list(self, filter)
    }

    fn show(&self, id: i64) -> Result<Option<(StoredExecution, Vec<CallRecord>)>, AuditError> {
        PgReader::show(self, id)
    }

    fn export(
        &self,
        filter: &Filter,
        each: &mut dyn FnMut(StoredExecution, Vec<CallRecord>) -> Result<(), AuditError>,
    ) -> Result<u64, AuditError> {
        PgReader::export(self, filter, each)
    }
}
