//! Reading the store: the queries behind `codemode audit`.

use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder};
use rusqlite::functions::FunctionFlags;
use rusqlite::types::{Type, Value as SqlValue};
use rusqlite::{params_from_iter, Connection, Row};

use crate::query::{list_planned, Dialect, Param, Plan, Planned, CALL_COLUMNS, EXEC_COLUMNS, SUMMARY_COLUMNS};
use crate::record::first_line;
use crate::{
    schema, AuditError, AuditSource, CallKind, CallRecord, ExecutionRecord, ExecutionSummary, Filter, StoredExecution,
    Tool,
};

/// Registers `audit_contains(text, needle)`: ASCII case-insensitive
/// substring test (one automaton per statement, SIMD prefilters).
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "audit_contains",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let needle =
                ctx.get_or_create_aux(1, |v| -> Result<AhoCorasick, Box<dyn std::error::Error + Send + Sync>> {
                    let needle = v.as_str().unwrap_or("");
                    Ok(AhoCorasickBuilder::new().ascii_case_insensitive(true).build([needle])?)
                })?;
            Ok(match ctx.get_raw(0).as_str() {
                Ok(text) => needle.is_match(text),
                Err(_) => false,
            })
        },
    )
}

/// Rows a `--api`/`--grep` list walks before it turns to the indexes.
pub const WINDOW: usize = 20_000;

/// A reading connection (several may read while a store writes).
pub struct AuditReader {
    conn: Connection,
}

impl std::fmt::Debug for AuditReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditReader")
    }
}

/// The filter's parameters as SQLite values.
fn sqlite_params(params: Vec<Param>) -> impl Iterator<Item = SqlValue> {
    params.into_iter().map(|p| match p {
        Param::Int(n) => SqlValue::Integer(n),
        Param::Text(t) => SqlValue::Text(t),
    })
}

fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, format!("unknown {what}").into())
}

fn json_col(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = row.get(i)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e.into()))
    })
    .transpose()
}

fn execution(row: &Row<'_>) -> rusqlite::Result<StoredExecution> {
    let tool: String = row.get(8)?;
    Ok(StoredExecution {
        id: row.get(0)?,
        code_sha256: row.get(1)?,
        call_count: row.get(2)?,
        record: ExecutionRecord {
            time_ms: row.get(3)?,
            principal: row.get(4)?,
            session_id: row.get(5)?,
            client_name: row.get(6)?,
            client_version: row.get(7)?,
            tool: Tool::parse(&tool).ok_or_else(|| bad(8, "tool"))?,
            code: row.get(9)?,
            outcome: row.get(10)?,
            error_name: row.get(11)?,
            error_message: row.get(12)?,
            duration_ms: row.get(13)?,
            result_tokens: row.get::<_, Option<i64>>(14)?.map(|n| n.max(0) as u64),
            shortened: row.get(15)?,
            dry_run: row.get(16)?,
            host: row.get(17)?,
        },
    })
}

fn call(row: &Row<'_>) -> rusqlite::Result<CallRecord> {
    let kind: String = row.get(2)?;
    Ok(CallRecord {
        seq: row.get(0)?,
        at_ms: row.get(1)?,
        kind: CallKind::parse(&kind).ok_or_else(|| bad(2, "call kind"))?,
        target: row.get(3)?,
        method: row.get(4)?,
        path: row.get(5)?,
        template: row.get(6)?,
        status: row.get(7)?,
        ok: row.get(8)?,
        error_name: row.get(9)?,
        duration_ms: row.get(10)?,
        bytes_out: row.get::<_, i64>(11)?.max(0) as u64,
        bytes_in: row.get::<_, i64>(12)?.max(0) as u64,
        allowed_by: row.get(13)?,
        approval: json_col(row, 14)?,
        refused: json_col(row, 15)?,
        dry_run: row.get(16)?,
    })
}

impl AuditReader {
    /// Opens the store at `path` for reading; fails with
    /// [`AuditError::NotFound`] when there is none. An older schema is
    /// brought up to date; a newer one is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let mut conn = crate::store::connect(path.as_ref(), false)?;
        schema::migrate(&mut conn)?;
        // Reading large ranges (grep, exports) goes faster mapped.
        conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
        conn.pragma_update(None, "cache_size", -65_536)?;
        Ok(AuditReader { conn })
    }

    /// The executions `filter` selects, newest first (oldest first with
    /// `filter.oldest_first`).
    ///
    /// With `--api` or `--grep` and a limit, it first walks the newest
    /// [`WINDOW`] rows the other filters select and tests each (matches are
    /// common: done early); when that does not fill the limit and there are
    /// more rows, it starts over from the indexes (matches are rare: few
    /// candidates).
    pub fn list(&self, filter: &Filter) -> Result<Vec<ExecutionSummary>, AuditError> {
        list_planned(self, filter)
    }

    /// One execution and its calls (in `seq` order).
    pub fn show(&self, id: i64) -> Result<Option<(StoredExecution, Vec<CallRecord>)>, AuditError> {
        let mut st = self.conn.prepare_cached(&format!("SELECT {EXEC_COLUMNS} FROM executions e WHERE e.id = ?1"))?;
        let mut rows = st.query_map([id], execution)?;
        let Some(exec) = rows.next().transpose()? else { return Ok(None) };
        let calls = self.calls(id)?;
        Ok(Some((exec, calls)))
    }

    fn calls(&self, id: i64) -> Result<Vec<CallRecord>, AuditError> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE execution_id = ?1 ORDER BY seq"))?;
        let calls = st.query_map([id], call)?.collect::<Result<_, _>>()?;
        Ok(calls)
    }

    /// Streams every execution `filter` selects, with its calls, to `each`
    /// (in the filter's order; exports usually want `oldest_first`).
    /// Returns how many.
    pub fn export(
        &self,
        filter: &Filter,
        each: &mut dyn FnMut(StoredExecution, Vec<CallRecord>) -> Result<(), AuditError>,
    ) -> Result<u64, AuditError> {
        filter.validate()?;
        let (tail, params) = filter.sql(Plan::Indexed, Dialect::Sqlite);
        let mut st = self.conn.prepare(&format!("SELECT {EXEC_COLUMNS}{tail}"))?;
        let rows = st.query_map(params_from_iter(sqlite_params(params)), execution)?;
        let mut n = 0;
        for exec in rows {
            let exec = exec?;
            let calls = if exec.call_count > 0 { self.calls(exec.id)? } else { vec![] };
            each(exec, calls)?;
            n += 1;
        }
        Ok(n)
    }

    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    /// How many executions are stored.
    pub fn count(&self) -> Result<u64, AuditError> {
        Ok(self.conn.query_row("SELECT count(*) FROM executions", [], |r| r.get::<_, i64>(0))?.max(0) as u64)
    }

    /// How many call rows are stored.
    pub fn call_count(&self) -> Result<u64, AuditError> {
        Ok(self.conn.query_row("SELECT count(*) FROM calls", [], |r| r.get::<_, i64>(0))?.max(0) as u64)
    }

    /// SQLite's plans for the queries `filter` makes (for benchmarks and
    /// index work), one line per step; with `--api`/`--grep`, the window
    /// query's steps, then the indexed one's.
    pub fn explain(&self, filter: &Filter) -> Result<Vec<String>, AuditError> {
        let mut plans = vec![];
        if filter.selective() {
            plans.push(("window", Plan::Window(WINDOW)));
        }
        plans.push(("indexed", Plan::Indexed));
        let mut out = vec![];
        for (name, plan) in plans {
            let (tail, params) = filter.sql(plan, Dialect::Sqlite);
            let mut st = self.conn.prepare(&format!("EXPLAIN QUERY PLAN SELECT e.id{tail}"))?;
            let rows = st.query_map(params_from_iter(sqlite_params(params)), |r| r.get::<_, String>(3))?;
            for step in rows {
                out.push(format!("{name}: {}", step?));
            }
        }
        Ok(out)
    }

    /// Updates the planner's statistics (`ANALYZE`); worth it after a
    /// large import.
    pub fn analyze(&self) -> Result<(), AuditError> {
        self.conn.execute_batch("ANALYZE")?;
        Ok(())
    }
}

impl Planned for AuditReader {
    fn summaries(&self, filter: &Filter, plan: Plan) -> Result<Vec<ExecutionSummary>, AuditError> {
        let (tail, params) = filter.sql(plan, Dialect::Sqlite);
        let mut st = self.conn.prepare_cached(&format!("SELECT {SUMMARY_COLUMNS}{tail}"))?;
        let rows = st.query_map(params_from_iter(sqlite_params(params)), |row| {
            let tool: String = row.get(3)?;
            let code: String = row.get(9)?;
            Ok(ExecutionSummary {
                id: row.get(0)?,
                time_ms: row.get(1)?,
                principal: row.get(2)?,
                tool: Tool::parse(&tool).ok_or_else(|| bad(3, "tool"))?,
                outcome: row.get(4)?,
                error_name: row.get(5)?,
                duration_ms: row.get(6)?,
                calls: row.get(7)?,
                dry_run: row.get(8)?,
                code_line: first_line(&code, 120),
                host: row.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn window_count(&self, filter: &Filter, window: usize) -> Result<i64, AuditError> {
        let (sql, params) = filter.window_count_sql(window, Dialect::Sqlite);
        Ok(self.conn.prepare_cached(&sql)?.query_row(params_from_iter(sqlite_params(params)), |r| r.get(0))?)
    }
}

impl AuditSource for AuditReader {
    fn list(&self, filter: &Filter) -> Result<Vec<ExecutionSummary>, AuditError> {
        AuditReader::list(self, filter)
    }

    fn show(&self, id: i64) -> Result<Option<(StoredExecution, Vec<CallRecord>)>, AuditError> {
        AuditReader::show(self, id)
    }

    fn export(
        &self,
        filter: &Filter,
        each: &mut dyn FnMut(StoredExecution, Vec<CallRecord>) -> Result<(), AuditError>,
    ) -> Result<u64, AuditError> {
        AuditReader::export(self, filter, each)
    }
}
