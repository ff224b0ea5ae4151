//! `codemode audit`, without the argument parser: the CLI fills
//! [`AuditArgs`] (from clap or anything else) and calls [`run`].

use std::io::Write;

use crate::render::{write_json, write_jsonl, write_show, write_table};
use crate::time::{now_ms, parse_when};
use crate::{
    AuditConfig, AuditError, AuditReader, AuditSink, AuditSource, Backend, Filter, PgReader, PgStore, SqliteStore,
    Status, Tool,
};

/// Lines the table and `--json` show unless `--limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;

/// How `codemode audit` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// A table (or, with `show`, readable text).
    #[default]
    Table,
    /// `--json`: a JSON array of summaries (with `show`: the execution with
    /// its calls as one object).
    Json,
    /// `--jsonl`: one execution with its calls per line, oldest first, for
    /// a SIEM.
    Jsonl,
}

/// The arguments of `codemode audit`, as plain values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditArgs {
    /// Where the store is (`[audit]` of the config).
    pub config: AuditConfig,
    /// Show this one execution (with its calls) instead of a list; the
    /// filters are ignored.
    pub show: Option<i64>,
    /// `--since`: RFC 3339 (`2026-05-01T12:00:00Z`, or a date) or a span
    /// back from now (`15m`, `2h`, `7d`, `1w`).
    pub since: Option<String>,
    /// `--until`: the same forms as `since`.
    pub until: Option<String>,
    /// `--principal NAME` (`-`: the local user).
    pub principal: Option<String>,
    /// `--tool search|execute`.
    pub tool: Option<String>,
    /// `--api NAME`: made a call to this API or MCP server.
    pub api: Option<String>,
    /// `--status ok|error`.
    pub status: Option<String>,
    /// `--grep TEXT`: the code contains TEXT (ASCII case-insensitive).
    pub grep: Option<String>,
    /// `--host NAME`: recorded by this replica.
    pub host: Option<String>,
    /// `--after-id N`: only executions recorded after id N (incremental
    /// exports). On PostgreSQL with several replicas, ids are assigned
    /// before commit, so a lower id can become visible after a higher one:
    /// exporters re-read an overlap (README, "Fleets").
    pub after_id: Option<i64>,
    /// `--limit N` (0: no limit). Default: [`DEFAULT_LIMIT`] for the table
    /// and `--json`, no limit for `--jsonl`.
    pub limit: Option<usize>,
    /// Table, JSON or JSONL.
    pub format: Format,
}

impl AuditArgs {
    /// The filter these arguments describe, relative times taken back from
    /// `now_ms`.
    pub fn filter(&self, now_ms: i64) -> Result<Filter, AuditError> {
        let when = |flag: &str, v: &Option<String>| -> Result<Option<i64>, AuditError> {
            v.as_deref()
                .map(|s| {
                    parse_when(s, now_ms).ok_or_else(|| {
                        AuditError::Usage(format!(
                            "{flag} {s:?}: give a time (RFC 3339, e.g. 2026-05-01T12:00:00Z, or a date) or a span back from now (15m, 2h, 7d, 1w)"
                        ))
                    })
                })
                .transpose()
        };
        let tool = self
            .tool
            .as_deref()
            .map(|t| Tool::parse(t).ok_or_else(|| AuditError::Usage(format!("--tool {t:?}: use search or execute"))))
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|s| Status::parse(s).ok_or_else(|| AuditError::Usage(format!("--status {s:?}: use ok or error"))))
            .transpose()?;
        let limit = match (self.limit, self.format) {
            (Some(0), _) => None,
            (Some(n), _) => Some(n),
            (None, Format::Jsonl) => None,
            (None, _) => Some(DEFAULT_LIMIT),
        };
        let filter = Filter {
            since: when("--since", &self.since)?,
            until: when("--until", &self.until)?,
            principal: self.principal.clone(),
            tool,
            api: self.api.clone(),
            status,
            grep: self.grep.clone(),
            host: self.host.clone(),
            after_id: self.after_id,
            limit,
            oldest_first: self.format == Format::Jsonl,
        };
        filter.validate()?;
        Ok(filter)
    }
}

/// Opens the source `config` names: the SQLite file, or the PostgreSQL
/// database of `[audit] url`.
pub fn open_source(config: &AuditConfig) -> Result<Box<dyn AuditSource>, AuditError> {
    match config.backend()? {
        Backend::Off => Err(AuditError::Off),
        Backend::Sqlite(path) => Ok(Box::new(AuditReader::open(path)?)),
        Backend::Postgres { url, schema } => Ok(Box::new(PgReader::open(&url, &schema)?)),
    }
}

/// Opens the store `config` names for recording, with the scrubber of the
/// server's credentials: `None` when the trail is off. Blocks while it
/// connects (PostgreSQL) or opens the file: call it at start-up.
pub fn open_sink(
    config: &AuditConfig,
    scrubber: codemode_upstream::Scrubber,
) -> Result<Option<Box<dyn AuditSink>>, AuditError> {
    let options = config.store_options(scrubber);
    match config.backend()? {
        Backend::Off => Ok(None),
        Backend::Sqlite(path) => Ok(Some(Box::new(SqliteStore::open(path, options)?))),
        Backend::Postgres { url, schema } => Ok(Some(Box::new(PgStore::open(&url, &schema, options)?))),
    }
}

/// Runs `codemode audit` with `args`, printing to `out`.
pub fn run(args: &AuditArgs, out: &mut impl Write) -> Result<(), AuditError> {
    let source = open_source(&args.config)?;
    run_with(args, source.as_ref(), out)
}

/// [`run`] against a source that is already open.
pub fn run_with(args: &AuditArgs, source: &dyn AuditSource, out: &mut dyn Write) -> Result<(), AuditError> {
    if let Some(id) = args.show {
        let Some((exec, calls)) = source.show(id)? else {
            return Err(AuditError::Usage(format!("no execution {id} in the audit trail")));
        };
        match args.format {
            Format::Table => write_show(&exec, &calls, out)?,
            Format::Json => {
                serde_json::to_writer_pretty(&mut *out, &crate::render::execution_json(&exec, &calls))?;
                writeln!(out)?;
            }
            Format::Jsonl => write_jsonl(&exec, &calls, out)?,
        }
        out.flush()?;
        return Ok(());
    }
    let filter = args.filter(now_ms())?;
    match args.format {
        Format::Table => write_table(&source.list(&filter)?, out)?,
        Format::Json => write_json(&source.list(&filter)?, out)?,
        Format::Jsonl => {
            source.export(&filter, &mut |exec, calls| Ok(write_jsonl(&exec, &calls, out)?))?;
        }
    }
    out.flush()?;
    Ok(())
}
