//! The filters of `codemode audit`, and the SQL they become.

use rusqlite::types::Value as SqlValue;

use crate::{AuditError, Tool};

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

    fn order(&self) -> &'static str {
        if self.oldest_first {
            " ORDER BY e.time_ms ASC, e.id ASC"
        } else {
            " ORDER BY e.time_ms DESC, e.id DESC"
        }
    }

    /// The time, principal, tool, status and id conditions (each served by
    /// an index on `executions`).
    fn plain_clauses(&self, params: &mut Vec<SqlValue>) -> Vec<String> {
        let mut clauses: Vec<String> = vec![];
        if let Some(s) = self.since {
            clauses.push(format!("e.time_ms >= {}", param(s.into(), params)));
        }
        if let Some(u) = self.until {
            clauses.push(format!("e.time_ms < {}", param(u.into(), params)));
        }
        match self.principal.as_deref() {
            None => {}
            Some(LOCAL_PRINCIPAL) => clauses.push("e.principal IS NULL".into()),
            Some(p) => clauses.push(format!("e.principal = {}", param(p.to_string().into(), params))),
        }
        if let Some(t) = self.tool {
            clauses.push(format!("e.tool = {}", param(t.as_str().to_string().into(), params)));
        }
        match self.status {
            None => {}
            Some(Status::Ok) => clauses.push("e.ok = 1".into()),
            Some(Status::Error) => clauses.push("e.ok = 0".into()),
        }
        if let Some(a) = self.after_id {
            clauses.push(format!("e.id > {}", param(a.into(), params)));
        }
        clauses
    }

    /// The `--api`/`--grep` conditions, as row tests or from the indexes.
    fn selective_clauses(&self, indexed: bool, params: &mut Vec<SqlValue>) -> Vec<String> {
        let mut clauses = vec![];
        if let Some(api) = &self.api {
            let p = param(api.clone().into(), params);
            clauses.push(if indexed {
                format!("e.id IN (SELECT c.execution_id FROM calls c WHERE c.target = {p})")
            } else {
                format!("EXISTS (SELECT 1 FROM calls c WHERE c.execution_id = e.id AND c.target = {p})")
            });
        }
        if let Some(g) = &self.grep {
            if let (true, Some(q)) = (indexed, fts_query(g)) {
                // Candidates from the trigram index, and what is not
                // indexed yet; the code itself decides.
                let q = param(q.into(), params);
                clauses.push(format!(
                    "(e.id IN (SELECT rowid FROM code_fts WHERE code_fts MATCH {q}) OR e.id IN (SELECT id FROM fts_pending))"
                ));
            }
            clauses.push(format!("audit_contains(e.code, {})", param(g.clone().into(), params)));
        }
        clauses
    }

    /// `FROM … WHERE … ORDER BY … LIMIT …` of a query over `executions e`,
    /// with its parameters (`?1`, `?2`, … in order).
    pub(crate) fn sql(&self, plan: Plan) -> (String, Vec<SqlValue>) {
        let mut params: Vec<SqlValue> = vec![];
        let plain = self.plain_clauses(&mut params);
        let mut sql = String::new();
        match plan {
            Plan::Window(window) if self.selective() => {
                sql.push_str(" FROM (SELECT * FROM executions e");
                push_where(&mut sql, &plain);
                sql.push_str(self.order());
                sql.push_str(&format!(" LIMIT {}) e", param((window as i64).into(), &mut params)));
                let selective = self.selective_clauses(false, &mut params);
                push_where(&mut sql, &selective);
            }
            _ => {
                let mut all = plain;
                all.extend(self.selective_clauses(true, &mut params));
                sql.push_str(" FROM executions e");
                push_where(&mut sql, &all);
            }
        }
        sql.push_str(self.order());
        if let Some(l) = self.limit {
            sql.push_str(&format!(" LIMIT {}", param((l.min(i64::MAX as usize) as i64).into(), &mut params)));
        }
        (sql, params)
    }

    /// Counts, up to `window`, the rows the plain conditions select: fewer
    /// than `window` means a window query saw all of them.
    pub(crate) fn window_count_sql(&self, window: usize) -> (String, Vec<SqlValue>) {
        let mut params: Vec<SqlValue> = vec![];
        let plain = self.plain_clauses(&mut params);
        let mut sql = String::from("SELECT count(*) FROM (SELECT 1 FROM executions e");
        push_where(&mut sql, &plain);
        sql.push_str(&format!(" LIMIT {})", param((window as i64).into(), &mut params)));
        (sql, params)
    }
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

fn param(v: SqlValue, params: &mut Vec<SqlValue>) -> String {
    params.push(v);
    format!("?{}", params.len())
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
}
