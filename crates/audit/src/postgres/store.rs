//! The PostgreSQL sink: a thread of its own running a small runtime with a
//! few connections, each writing one execution at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use super::{connect, ensure_schema, PRUNE_LOCK};
use crate::config::mask_url;
use crate::error::pg_message;
use crate::store::{clamp, prepare, sha256_hex, unique_seqs};
use crate::{AuditError, AuditSink, CallRecord, Commit, ExecutionRecord, StoreOptions};

/// Connections a [`PgStore`] writes over: executions are recorded
/// concurrently up to this many at once (each waits for its commit).
pub const PG_WRITERS: usize = 4;

/// Executions deleted per pruning transaction.
const PRUNE_CHUNK: i64 = 500;

/// One statement per execution: the execution row and all its call rows
/// (from parallel arrays), atomically — a single statement is its own
/// transaction, and it costs one round trip. The calls' foreign key is
/// checked at the end of the statement, when the execution row exists.
const INSERT: &str = "WITH e AS (
    INSERT INTO executions (time_ms, principal, session_id, client_name, client_version, tool, ok, outcome,
        error_name, error_message, duration_ms, result_tokens, shortened, dry_run, call_count, code_sha256, code, host)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
    RETURNING id
), c AS (
    INSERT INTO calls (execution_id, seq, at_ms, kind, target, method, path, template, status, ok, error_name,
        duration_ms, bytes_out, bytes_in, allowed_by, approval, refused, dry_run)
    SELECT e.id, u.* FROM e, unnest($19::int4[], $20::int8[], $21::text[], $22::text[], $23::text[], $24::text[],
        $25::text[], $26::int4[], $27::bool[], $28::text[], $29::float8[], $30::int8[], $31::int8[], $32::text[],
        $33::jsonb[], $34::jsonb[], $35::bool[]) AS u
)
SELECT id FROM e";

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Msg {
    Record(Box<(ExecutionRecord, Vec<CallRecord>)>, Reply<i64>),
    Batch(Vec<(ExecutionRecord, Vec<CallRecord>)>, Reply<u64>),
    Tokens(i64, crate::sink::TokenCount),
}

/// The audit store of a fleet: every replica records into one PostgreSQL
/// database (`[audit] url`).
///
/// **Durability.** A record's [`Commit`] resolves once PostgreSQL
/// committed the execution with its calls (one statement, one
/// transaction): with the server's default `synchronous_commit = on` it is
/// then on the database's disk, whatever happens to this process.
///
/// **Threads.** One thread of its own runs a small runtime with
/// [`PG_WRITERS`] connections, so recording neither needs nor blocks the
/// caller's runtime, and works from synchronous code too. Secrets are
/// scrubbed on that thread, as the SQLite store does on its writer.
///
/// **Failures.** The first connection is made, and the tables created, in
/// [`open`](PgStore::open): a database that is down then is an error that
/// names it (password masked). Later, a lost connection is made again for
/// the next record; while the database stays unreachable, records fail at
/// once (after one attempt per second) instead of each waiting for a
/// connection timeout — the server answers the call and logs the failure.
///
/// **Retention** is pruned in the background, in chunks, by one replica at
/// a time (an advisory lock): after `prune_every_commits` records of this
/// replica or every `prune_interval`.
///
/// Dropping the store finishes the records already sent, then stops its
/// thread.
pub struct PgStore {
    url: String,
    tx: Option<mpsc::UnboundedSender<Msg>>,
    prune: Option<mpsc::UnboundedSender<Reply<u64>>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish()
    }
}

/// What the writer and pruner tasks share.
struct Shared {
    url: String,
    schema: String,
    options: StoreOptions,
    rx: Mutex<mpsc::UnboundedReceiver<Msg>>,
    since_prune: AtomicU64,
    prune_due: Notify,
    /// Until when the database counts as down (no new connection attempt).
    down_until: std::sync::Mutex<Option<Instant>>,
}

/// After a failed connection attempt, the next one waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl Shared {
    /// A working connection: `conn` when it is open, else a new one —
    /// unless the last attempt failed less than [`RETRY_AFTER`] ago.
    async fn connection<'a>(&self, conn: &'a mut Option<Conn>) -> Result<&'a Conn, AuditError> {
        if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            *conn = None;
        }
        if conn.is_none() {
            if let Some(until) = *self.down_until.lock().expect("down lock") {
                if Instant::now() < until {
                    return Err(AuditError::Postgres(format!(
                        "{} is unreachable (the last connection attempt failed; retrying every second)",
                        mask_url(&self.url)
                    )));
                }
            }
            match Conn::open(&self.url, &self.schema).await {
                Ok(c) => {
                    *self.down_until.lock().expect("down lock") = None;
                    *conn = Some(c);
                }
                Err(e) => {
                    *self.down_until.lock().expect("down lock") = Some(Instant::now() + RETRY_AFTER);
                    return Err(e);
                }
            }
        }
        Ok(conn.as_ref().expect("connected above"))
    }
}

/// One connection with its prepared insert.
struct Conn {
    client: Client,
    insert: Statement,
}

impl Conn {
    async fn open(url: &str, schema: &str) -> Result<Conn, AuditError> {
        let client = connect(url, schema).await?;
        Conn::with(client).await
    }

    async fn with(client: Client) -> Result<Conn, AuditError> {
        let insert = client.prepare(INSERT).await?;
        Ok(Conn { client, insert })
    }
}

impl PgStore {
    /// Connects to `url`, creates (or checks) the tables in `schema`, and
    /// starts the writer thread. Blocks until then; call it at start-up.
    pub fn open(url: &str, schema: &str, options: StoreOptions) -> Result<Self, AuditError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), AuditError>>();
        let (tx, rx) = mpsc::unbounded_channel();
        let (prune_tx, prune_rx) = mpsc::unbounded_channel();
        let shared = Shared {
            url: url.to_string(),
            schema: schema.to_string(),
            options,
            rx: Mutex::new(rx),
            since_prune: AtomicU64::new(0),
            prune_due: Notify::new(),
            down_until: std::sync::Mutex::new(None),
        };
        let thread = std::thread::Builder::new().name("audit-postgres".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(AuditError::Io(e)));
                    return;
                }
            };
            rt.block_on(run(Arc::new(shared), ready_tx, prune_rx));
        })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PgStore { url: mask_url(url), tx: Some(tx), prune: Some(prune_tx), thread: Some(thread) }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(AuditError::Closed)
            }
        }
    }

    /// The database, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Commit<T> {
        let (reply, commit) = Commit::channel();
        if let Some(tx) = &self.tx {
            // Fails only when the thread is gone: the reply is dropped with
            // the message, and the commit says Closed.
            let _ = tx.send(make(reply));
        }
        commit
    }

    /// Records one execution with its calls, atomically (secrets scrubbed
    /// first); the commit resolves to its id once PostgreSQL committed it.
    pub fn record(&self, exec: ExecutionRecord, calls: Vec<CallRecord>) -> Commit<i64> {
        self.send(|r| Msg::Record(Box::new((exec, calls)), r))
    }

    /// Records many executions in one transaction, pipelined (imports,
    /// benchmarks): resolves to how many.
    pub fn record_many(&self, items: Vec<(ExecutionRecord, Vec<CallRecord>)>) -> Commit<u64> {
        self.send(|r| Msg::Batch(items, r))
    }

    /// Prunes by the retention now (it also happens by itself): resolves to
    /// the number of executions deleted.
    pub fn prune(&self) -> Commit<u64> {
        let (reply, commit) = Commit::channel();
        if let Some(p) = &self.prune {
            let _ = p.send(reply);
        }
        commit
    }
}

impl AuditSink for PgStore {
    fn record(&self, exec: ExecutionRecord, calls: Vec<CallRecord>) -> Commit<i64> {
        PgStore::record(self, exec, calls)
    }

    fn set_result_tokens_with(&self, id: i64, count: crate::sink::TokenCount) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Tokens(id, count));
        }
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        drop(self.tx.take());
        drop(self.prune.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread's work: the first connection and the schema (reported to
/// `open`), then the writers and the pruner until the store is dropped.
async fn run(
    shared: Arc<Shared>,
    ready: std::sync::mpsc::Sender<Result<(), AuditError>>,
    prune_rx: mpsc::UnboundedReceiver<Reply<u64>>,
) {
    let first = async {
        let mut client = connect(&shared.url, &shared.schema).await?;
        ensure_schema(&mut client, &shared.schema, &shared.url, true).await?;
        Conn::with(client).await
    };
    let first = match first.await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(writer(shared.clone(), Some(first)));
    for _ in 1..PG_WRITERS {
        tasks.spawn(writer(shared.clone(), None));
    }
    tasks.spawn(pruner(shared, prune_rx));
    while tasks.join_next().await.is_some() {}
}

/// One connection's loop: the next message, written, answered.
async fn writer(shared: Arc<Shared>, mut conn: Option<Conn>) {
    loop {
        let msg = { shared.rx.lock().await.recv().await };
        let Some(msg) = msg else { return };
        match msg {
            Msg::Record(item, reply) => {
                let (mut exec, mut calls) = *item;
                prepare(&shared.options, &mut exec, &mut calls);
                let row = InsertRow::new(exec, calls);
                let r = match shared.connection(&mut conn).await {
                    Ok(c) => c.client.query_one(&c.insert, &row.params()).await.map(|r| r.get(0)).map_err(Into::into),
                    Err(e) => Err(e),
                };
                if r.is_ok() {
                    committed(&shared, 1);
                }
                let _ = reply.send(r);
            }
            Msg::Batch(items, reply) => {
                let rows: Vec<InsertRow> = items
                    .into_iter()
                    .map(|(mut exec, mut calls)| {
                        prepare(&shared.options, &mut exec, &mut calls);
                        InsertRow::new(exec, calls)
                    })
                    .collect();
                let r = match shared.connection(&mut conn).await {
                    Ok(c) => batch(&c.client, &c.insert, &rows).await,
                    Err(e) => Err(e),
                };
                if let Ok(n) = r {
                    committed(&shared, n);
                }
                let _ = reply.send(r);
            }
            Msg::Tokens(id, count) => {
                // On this store's own thread, off every request's path.
                let tokens = count();
                let set = "UPDATE executions SET result_tokens = $2 WHERE id = $1";
                let r = match shared.connection(&mut conn).await {
                    Ok(c) => c.client.execute(set, &[&id, &clamp(tokens)]).await.map_err(AuditError::from),
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, id, "audit: the result size of a record could not be written");
                }
            }
        }
    }
}

/// Inserts `rows` in one transaction; the statements are pipelined (sent
/// without waiting for each answer).
async fn batch(client: &Client, insert: &Statement, rows: &[InsertRow]) -> Result<u64, AuditError> {
    client.batch_execute("BEGIN").await?;
    let params: Vec<_> = rows.iter().map(InsertRow::params).collect();
    let sent = futures_util::future::try_join_all(params.iter().map(|p| client.query_one(insert, p))).await;
    match sent {
        Ok(_) => {
            client.batch_execute("COMMIT").await?;
            Ok(rows.len() as u64)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e.into())
        }
    }
}

fn committed(shared: &Shared, n: u64) {
    let since = shared.since_prune.fetch_add(n, Ordering::Relaxed) + n;
    if shared.options.retention.is_set() && since >= shared.options.prune_every_commits {
        shared.prune_due.notify_one();
    }
}

/// Prunes when asked, when enough was recorded, or every
/// `prune_interval`; ends when the store is dropped.
async fn pruner(shared: Arc<Shared>, mut asked: mpsc::UnboundedReceiver<Reply<u64>>) {
    let mut conn: Option<Conn> = None;
    let retention = shared.options.retention;
    loop {
        let interval = if retention.is_set() { shared.options.prune_interval } else { Duration::from_secs(3600) };
        let waiter = tokio::select! {
            r = asked.recv() => match r {
                Some(reply) => Some(reply),
                None => return,
            },
            _ = shared.prune_due.notified() => None,
            _ = tokio::time::sleep(interval) => None,
        };
        if waiter.is_none() && !retention.is_set() {
            continue;
        }
        shared.since_prune.store(0, Ordering::Relaxed);
        let r = match shared.connection(&mut conn).await {
            Ok(c) => prune(&c.client, &shared.options).await,
            Err(e) => Err(e),
        };
        match &r {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "audit: pruned"),
            Err(e) => tracing::warn!(error = %e, "audit pruning failed"),
        }
        if let Some(w) = waiter {
            let _ = w.send(r);
        }
    }
}

/// Deletes what the retention says, in chunks of [`PRUNE_CHUNK`], each a
/// transaction holding [`PRUNE_LOCK`]; a chunk whose lock another replica
/// holds ends this round (that replica is pruning).
async fn prune(client: &Client, options: &StoreOptions) -> Result<u64, AuditError> {
    let r = options.retention;
    let before_ms = r.days.map(|d| crate::time::now_ms() - i64::from(d) * 86_400_000);
    let upto_id = match r.rows {
        // As in SQLite: ids only grow, so the newest `rows` are the ids
        // above max - rows (gaps in the sequence only keep fewer).
        Some(rows) => {
            let max: Option<i64> = client.query_one("SELECT max(id) FROM executions", &[]).await?.get(0);
            max.map(|m| m.saturating_sub(rows.min(i64::MAX as u64) as i64)).filter(|c| *c > 0)
        }
        None => None,
    };
    let mut deleted = 0;
    for (select, bound) in [
        ("SELECT id FROM executions WHERE time_ms < $1 ORDER BY time_ms LIMIT $2", before_ms),
        ("SELECT id FROM executions WHERE id <= $1 ORDER BY id LIMIT $2", upto_id),
    ] {
        let Some(bound) = bound else { continue };
        let sql = format!("DELETE FROM executions WHERE id IN ({select})");
        loop {
            client.batch_execute("BEGIN").await?;
            let step = async {
                let locked: bool =
                    client.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PRUNE_LOCK]).await?.get(0);
                if !locked {
                    return Ok(None);
                }
                Ok::<_, tokio_postgres::Error>(Some(client.execute(&sql, &[&bound, &PRUNE_CHUNK]).await?))
            };
            match step.await {
                Ok(n) => {
                    client.batch_execute("COMMIT").await?;
                    let Some(n) = n else { return Ok(deleted) };
                    deleted += n;
                    if (n as i64) < PRUNE_CHUNK {
                        break;
                    }
                }
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    return Err(AuditError::Postgres(pg_message(&e)));
                }
            }
        }
    }
    Ok(deleted)
}

/// The parameters of [`INSERT`] for one (prepared) execution: its fields,
/// and each call field as an array.
struct InsertRow {
    exec: ExecutionRecord,
    tool: &'static str,
    ok: bool,
    result_tokens: Option<i64>,
    call_count: i32,
    sha: String,
    seq: Vec<i32>,
    at_ms: Vec<i64>,
    kind: Vec<&'static str>,
    target: Vec<String>,
    method: Vec<Option<String>>,
    path: Vec<String>,
    template: Vec<Option<String>>,
    status: Vec<Option<i32>>,
    call_ok: Vec<bool>,
    error_name: Vec<Option<String>>,
    duration_ms: Vec<f64>,
    bytes_out: Vec<i64>,
    bytes_in: Vec<i64>,
    allowed_by: Vec<Option<String>>,
    approval: Vec<Option<Value>>,
    refused: Vec<Option<Value>>,
    dry_run: Vec<bool>,
}

impl InsertRow {
    fn new(exec: ExecutionRecord, calls: Vec<CallRecord>) -> Self {
        let seqs = unique_seqs(&calls);
        let n = calls.len();
        let mut r = InsertRow {
            tool: exec.tool.as_str(),
            ok: exec.is_ok(),
            result_tokens: exec.result_tokens.map(clamp),
            call_count: i32::try_from(n).unwrap_or(i32::MAX),
            sha: sha256_hex(&exec.code),
            exec,
            seq: seqs.into_iter().map(|s| i32::try_from(s).unwrap_or(i32::MAX)).collect(),
            at_ms: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            target: Vec::with_capacity(n),
            method: Vec::with_capacity(n),
            path: Vec::with_capacity(n),
            template: Vec::with_capacity(n),
            status: Vec::with_capacity(n),
            call_ok: Vec::with_capacity(n),
            error_name: Vec::with_capacity(n),
            duration_ms: Vec::with_capacity(n),
            bytes_out: Vec::with_capacity(n),
            bytes_in: Vec::with_capacity(n),
            allowed_by: Vec::with_capacity(n),
            approval: Vec::with_capacity(n),
            refused: Vec::with_capacity(n),
            dry_run: Vec::with_capacity(n),
        };
        for c in calls {
            r.at_ms.push(c.at_ms);
            r.kind.push(c.kind.as_str());
            r.target.push(c.target);
            r.method.push(c.method);
            r.path.push(c.path);
            r.template.push(c.template);
            r.status.push(c.status.map(i32::from));
            r.call_ok.push(c.ok);
            r.error_name.push(c.error_name);
            r.duration_ms.push(c.duration_ms);
            r.bytes_out.push(clamp(c.bytes_out));
            r.bytes_in.push(clamp(c.bytes_in));
            r.allowed_by.push(c.allowed_by);
            r.approval.push(c.approval);
            r.refused.push(c.refused);
            r.dry_run.push(c.dry_run);
        }
        r
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 35] {
        let e = &self.exec;
        [
            &e.time_ms,
            &e.principal,
            &e.session_id,
            &e.client_name,
            &e.client_version,
            &self.tool,
            &self.ok,
            &e.outcome,
            &e.error_name,
            &e.error_message,
            &e.duration_ms,
            &self.result_tokens,
            &e.shortened,
            &e.dry_run,
            &self.call_count,
            &self.sha,
            &e.code,
            &e.host,
            &self.seq,
            &self.at_ms,
            &self.kind,
            &self.target,
            &self.method,
            &self.path,
            &self.template,
            &self.status,
            &self.call_ok,
            &self.error_name,
            &self.duration_ms,
            &self.bytes_out,
            &self.bytes_in,
            &self.allowed_by,
            &self.approval,
            &self.refused,
            &self.dry_run,
        ]
    }
}
