//! The filters of `codemode audit`, and the SQL they become — one builder
//! for both stores ([`Dialect`]: SQLite and PostgreSQL agree on everything
//! but placeholders, booleans and how `--grep` finds candidates), and the
//! one list strategy both readers follow ([`list_planned`]).

use crate::{AuditError, ExecutionSummary, Tool};

/// `--principal` value that selects the local user (no principal: stdio,
/// CLI).
pub const LOCAL_PRINCIPAL: &str = "-";

/// `--status`: how the execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Outcome `ok`.
    Ok,
    /// Any other outcome.
    Error,
}

impl Status {
    /// `ok` or `error`.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "ok" => Some(Status::Ok),
            "error" | "err" | "failed" => Some(Status::Error),
            _ => None,
        }
    }
}

/// Which executions to list. Every field narrows; the default is all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Started at or after this (Unix ms).
    pub since: Option<i64>,
    /// Started before this (Unix ms).
    pub until: Option<i64>,
    /// Run by this principal ([`LOCAL_PRINCIPAL`]: by the local user).
    pub principal: Option<String>,
    /// `search` or `execute`.
    pub tool: Option<Tool>,
    /// Made at least one call to this API or MCP server.
    pub api: Option<String>,
    /// Ended ok, or with an error.
    pub status: Option<Status>,
    /// The code contains this text (ASCII case-insensitive substring).
    pub grep: Option<String>,
    /// Recorded by this replica (`[audit] host`; by default its host name).
    pub host: Option<String>,
    /// Only ids above this one (incremental exports: pass the last id seen).
    pub after_id: Option<i64>,
    /// At most this many (newest first, or oldest first with
    /// `oldest_first`).
    pub limit: Option<usize>,
    /// Oldest first (exports) instead of newest first.
    pub oldest_first: bool,
}

impl Filter {
    /// Checks values that cannot match anything sensible.
    pub fn validate(&self) -> Result<(), AuditError> {
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if s > u {
                return Err(AuditError::Usage("--since is after --until".into()));
            }
        }
        if self.grep.as_deref() == Some("") {
            return Err(AuditError::Usage("--grep needs some text".into()));
        }
        Ok(())
    }

    /// True when `--api` or `--grep` is set: the filters that either walk
    /// the newest rows and test each, or start from an index.
    pub(crate) fn selective(&self) -> bool {
        self.api.is_some() || self.grep.is_some()
    }

    pub(crate) fn order(&self) -> &'static str {
        if self.oldest_first {
            " ORDER BY e.time_ms ASC, e.id ASC"
        } else {
            " ORDER BY e.time_ms DESC, e.id DESC"
        }
    }

    /// The time, principal, tool, status, host and id conditions (each
    /// served by an index on `executions`, host by the time index).
    fn plain_clauses(&self, q: &mut Params) -> Vec<String> {
        let mut clauses: Vec<String> = vec![];
        if let Some(s) = self.since {
            clauses.push(format!("e.time_ms >= {}", q.push(Param::Int(s))));
        }
        if let Some(u) = self.until {
            clauses.push(format!("e.time_ms < {}", q.push(Param::Int(u))));
        }
        match self.principal.as_deref() {
            None => {}
            Some(LOCAL_PRINCIPAL) => clauses.push("e.principal IS NULL".into()),
            Some(p) => clauses.push(format!("e.principal = {}", q.push(Param::Text(p.to_string())))),
        }
        if let Some(t) = self.tool {
            clauses.push(format!("e.tool = {}", q.push(Param::Text(t.as_str().to_string()))));
        }
        if let Some(s) = self.status {
            clauses.push(q.dialect.is_ok(s == Status::Ok).into());
        }
        if let Some(h) = &self.host {
            clauses.push(format!("e.host = {}", q.push(Param::Text(h.clone()))));
        }
        if let Some(a) = self.after_id {
            clauses.push(format!("e.id > {}", q.push(Param::Int(a))));
        }
        clauses
    }

    /// The `--api`/`--grep` conditions, as row tests or from the indexes.
    fn selective_clauses(&self, indexed: bool, q: &mut Params) -> Vec<String> {
        let mut clauses = vec![];
        if let Some(api) = &self.api {
            let p = q.push(Param::Text(api.clone()));
            clauses.push(if indexed {
                format!("e.id IN (SELECT c.execution_id FROM calls c WHERE c.target = {p})")
            } else {
                format!("EXISTS (SELECT 1 FROM calls c WHERE c.execution_id = e.id AND c.target = {p})")
            });
        }
        if let Some(g) = &self.grep {
            match q.dialect {
                Dialect::Sqlite => {
                    if let (true, Some(fts)) = (indexed, fts_query(g)) {
                        // Candidates from the trigram index, and what is not
                        // indexed yet; the code itself decides.
                        let fts = q.push(Param::Text(fts));
                        clauses.push(format!(
                            "(e.id IN (SELECT rowid FROM code_fts WHERE code_fts MATCH {fts}) OR e.id IN (SELECT id FROM fts_pending))"
                        ));
                    }
                    clauses.push(format!("audit_contains(e.code, {})", q.push(Param::Text(g.clone()))));
                }
                // One condition both ways: the pg_trgm index on
                // `audit_fold(code)` serves it when the planner finds it
                // worth it (GIN is maintained at commit, nothing pending).
                Dialect::Postgres => {
                    let pattern = format!("%{}%", like_escape(&g.to_ascii_lowercase()));
                    clauses.push(format!("audit_fold(e.code) LIKE {} ESCAPE '\\'", q.push(Param::Text(pattern))));
                }
            }
        }
        clauses
    }

    /// `FROM … WHERE … ORDER BY … LIMIT …` of a query over `executions e`
    /// in `dialect`, with its parameters (placeholders numbered in order).
    pub(crate) fn sql(&self, plan: Plan, dialect: Dialect) -> (String, Vec<Param>) {
        let mut q = Params { dialect, values: vec![] };
        let plain = self.plain_clauses(&mut q);
        let mut sql = String::new();
        match plan {
            Plan::Window(window) if self.selective() => {
                sql.push_str(" FROM (SELECT * FROM executions e");
                push_where(&mut sql, &plain);
                sql.push_str(self.order());
                sql.push_str(&format!(" LIMIT {}) e", q.push(Param::Int(window as i64))));
                let selective = self.selective_clauses(false, &mut q);
                push_where(&mut sql, &selective);
            }
            _ => {
                let mut all = plain;
                all.extend(self.selective_clauses(true, &mut q));
                sql.push_str(" FROM executions e");
                push_where(&mut sql, &all);
            }
        }
        sql.push_str(self.order());
        if let Some(l) = self.limit {
            sql.push_str(&format!(" LIMIT {}", q.push(Param::Int(l.min(i64::MAX as usize) as i64))));
        }
        (sql, q.values)
    }

    /// Counts, up to `window`, the rows the plain conditions select: fewer
    /// than `window` means a window query saw all of them.
    pub(crate) fn window_count_sql(&self, window: usize, dialect: Dialect) -> (String, Vec<Param>) {
        let mut q = Params { dialect, values: vec![] };
        let plain = self.plain_clauses(&mut q);
        let mut sql = String::from("SELECT count(*) FROM (SELECT 1 FROM executions e");
        push_where(&mut sql, &plain);
        // PostgreSQL before 16 wants every subquery in FROM named.
        sql.push_str(&format!(" LIMIT {}) w", q.push(Param::Int(window as i64))));
        (sql, q.values)
    }
}

/// The SQL dialect a query is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?1`, integer booleans, FTS5 trigram candidates for `--grep`.
    Sqlite,
    /// `$1`, `BOOLEAN` columns, `LIKE` over `audit_fold(code)` (pg_trgm).
    Postgres,
}

impl Dialect {
    /// The placeholder of the `n`th parameter (from 1).
    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The condition "the execution ended ok" (or not).
    fn is_ok(self, ok: bool) -> &'static str {
        match (self, ok) {
            (Dialect::Sqlite, true) => "e.ok = 1",
            (Dialect::Sqlite, false) => "e.ok = 0",
            (Dialect::Postgres, true) => "e.ok",
            (Dialect::Postgres, false) => "NOT e.ok",
        }
    }
}

/// A query parameter: the filters only need integers and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    /// Times, ids, limits.
    Int(i64),
    /// Names, patterns.
    Text(String),
}

/// Parameters being collected for one statement.
struct Params {
    dialect: Dialect,
    values: Vec<Param>,
}

impl Params {
    /// Adds `v`; returns its placeholder.
    fn push(&mut self, v: Param) -> String {
        self.values.push(v);
        self.dialect.placeholder(self.values.len())
    }
}

/// `s` with `LIKE`'s wildcards (and the escape character) taken literally.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The columns of an [`ExecutionSummary`], in the order both readers
/// decode them (`substr(code, 1, 1000)`: the first line is all a list shows).
pub(crate) const SUMMARY_COLUMNS: &str = "e.id, e.time_ms, e.principal, e.tool, e.outcome, e.error_name, \
     e.duration_ms, e.call_count, e.dry_run, substr(e.code, 1, 1000), e.host";

/// The columns of a [`StoredExecution`](crate::StoredExecution), in decoding order.
pub(crate) const EXEC_COLUMNS: &str = "e.id, e.code_sha256, e.call_count, e.time_ms, e.principal, e.session_id, \
     e.client_name, e.client_version, e.tool, e.code, e.outcome, e.error_name, e.error_message, e.duration_ms, \
     e.result_tokens, e.shortened, e.dry_run, e.host";

/// The columns of a [`CallRecord`](crate::CallRecord), in decoding order.
pub(crate) const CALL_COLUMNS: &str = "seq, at_ms, kind, target, method, path, template, status, ok, error_name, \
     duration_ms, bytes_out, bytes_in, allowed_by, approval, refused, dry_run";

/// What a reader runs for [`list_planned`].
pub(crate) trait Planned {
    /// The summaries `filter` selects, run with `plan`.
    fn summaries(&self, filter: &Filter, plan: Plan) -> Result<Vec<ExecutionSummary>, AuditError>;
    /// How many rows (up to `window`) the plain conditions select.
    fn window_count(&self, filter: &Filter, window: usize) -> Result<i64, AuditError>;

    /// Whether `--api`/`--grep` try the newest-rows window before the
    /// indexes. SQLite's planner cannot weigh its FTS index against the
    /// time order, so the window decides for it; PostgreSQL's can (pg_trgm
    /// and column statistics), and testing 20,000 rows' code there costs
    /// seconds, so it goes to the planner at once.
    fn window_first(&self) -> bool {
        true
    }
}

/// The list strategy of both stores. With `--api` or `--grep` and a limit
/// (and [`Planned::window_first`]), it first walks the newest [`WINDOW`](crate::WINDOW) rows the other
/// filters select and tests each (matches are common: done early); when
/// that does not fill the limit and there are more rows, it starts over
/// from the indexes (matches are rare: few candidates).
pub(crate) fn list_planned(reader: &impl Planned, filter: &Filter) -> Result<Vec<ExecutionSummary>, AuditError> {
    filter.validate()?;
    if let (true, true, Some(limit)) = (reader.window_first(), filter.selective(), filter.limit) {
        let window = crate::WINDOW.max(limit.saturating_mul(20));
        let rows = reader.summaries(filter, Plan::Window(window))?;
        if rows.len() >= limit || reader.window_count(filter, window)? < window as i64 {
            return Ok(rows);
        }
    }
    reader.summaries(filter, Plan::Indexed)
}

/// How a query with `--api` or `--grep` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Walk the newest (at most this many) rows the other filters select,
    /// in order, testing `--api`/`--grep` on each: fast when matches are
    /// common, and bounded when they are not.
    Window(usize),
    /// Start from the indexes (`calls_target`, `code_fts`): fast when
    /// matches are rare.
    Indexed,
}

fn push_where(sql: &mut String, clauses: &[String]) {
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
}

/// The trigram-index query for a substring: every distinct trigram of it
/// (at most 32 — the code is checked anyway), each a quoted string; `None`
/// when it is shorter than three characters (no trigram to look up).
pub(crate) fn fts_query(needle: &str) -> Option<String> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() < 3 {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    let terms: Vec<String> = chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .filter(|t| seen.insert(t.clone()))
        .take(32)
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    Some(terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigram_queries() {
        assert_eq!(fts_query("ab"), None);
        assert_eq!(fts_query("abcd").as_deref(), Some("\"abc\" \"bcd\""));
        assert_eq!(fts_query("a\"bc").as_deref(), Some("\"a\"\"b\" \"\"\"bc\""));
        assert_eq!(fts_query("aaaaaa").as_deref(), Some("\"aaa\""));
    }

    #[test]
    fn dialects_differ_only_where_they_must() {
        let f = Filter {
            since: Some(5),
            status: Some(Status::Error),
            grep: Some("50%_X".into()),
            limit: Some(3),
            ..Filter::default()
        };
        let (sqlite, p) = f.sql(Plan::Indexed, Dialect::Sqlite);
        assert!(sqlite.contains("e.time_ms >= ?1") && sqlite.contains("e.ok = 0"), "{sqlite}");
        assert!(sqlite.contains("audit_contains(e.code, ?3)") && sqlite.ends_with("LIMIT ?4"), "{sqlite}");
        assert_eq!(p[2], Param::Text("50%_X".into()));
        let (pg, p) = f.sql(Plan::Indexed, Dialect::Postgres);
        assert!(pg.contains("e.time_ms >= $1") && pg.contains("NOT e.ok"), "{pg}");
        assert!(pg.contains("audit_fold(e.code) LIKE $2 ESCAPE '\\'") && pg.ends_with("LIMIT $3"), "{pg}");
        assert_eq!(p, vec![Param::Int(5), Param::Text("%50\\%\\_x%".into()), Param::Int(3)]);
        let (count, _) = f.window_count_sql(10, Dialect::Postgres);
        assert!(count.ends_with("LIMIT $2) w"), "{count}");
    }
}
