//! The SQLite store: one writer thread, fed by a channel; every record is
//! one transaction, and its [`Commit`] resolves once that transaction is in
//! the WAL.

use std::borrow::Cow;
use std::fs;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use codemode_upstream::Scrubber;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::record::{shorten, MAX_FIELD, MAX_MESSAGE};
use crate::{schema, AuditConfig, AuditError, AuditReader, AuditSink, CallRecord, ExecutionRecord, TokenCount};

/// How much history to keep. Both limits apply when both are set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Executions that started more than this many days ago are pruned.
    pub days: Option<u32>,
    /// At most this many executions (the newest) are kept.
    pub rows: Option<u64>,
}

impl Retention {
    /// True when there is something to prune by.
    pub fn is_set(&self) -> bool {
        self.days.is_some() || self.rows.is_some()
    }
}

/// How a [`SqliteStore`] runs.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Scrubs every credential (and its encodings) from code, messages,
    /// paths and notes before they are stored.
    pub scrubber: Scrubber,
    /// What to prune.
    pub retention: Retention,
    /// Stamped on every execution recorded without a `host` of its own:
    /// which replica wrote it (`[audit] host`, by default the host name).
    pub host: Option<String>,
    /// Prune after this many commits …
    pub prune_every_commits: u64,
    /// … or this long after the last pruning, whichever comes first.
    pub prune_interval: Duration,
    /// How often the background checkpointer copies the WAL into the
    /// database (when something was committed).
    pub checkpoint_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            scrubber: Scrubber::none(),
            retention: Retention::default(),
            host: None,
            prune_every_commits: 1000,
            prune_interval: Duration::from_secs(300),
            checkpoint_interval: Duration::from_millis(500),
        }
    }
}

/// Executions deleted per pruning transaction: pruning runs between
/// records, one chunk at a time, and only while no record is waiting.
const PRUNE_CHUNK: i64 = 50;

/// Executions added to the code's trigram index per transaction.
const INDEX_CHUNK: i64 = 100;

/// Index the code after at most this many commits even when records never
/// stop arriving (otherwise it waits for an idle moment).
const INDEX_EVERY: u64 = 256;

/// An idle moment: this long without a record. Indexing right after every
/// commit would double the transactions of a steady stream of executes and
/// compete with the next one for the CPU; waiting lets one transaction
/// index a whole burst.
const INDEX_IDLE: Duration = Duration::from_millis(200);

/// Result token counts written per transaction at most (they wait for an
/// idle moment too, or until this many are waiting).
const TOKENS_BATCH: usize = 256;

/// The writer connection checkpoints by itself only when the WAL is this
/// large (pages): a backstop for when the checkpointer falls behind.
const AUTOCHECKPOINT_BACKSTOP: i64 = 16_384;

/// A write that resolves when it is committed: the id of the execution
/// ([`SqliteStore::record`]), a count ([`SqliteStore::prune`]), ….
///
/// Await it in async code (it does not block the runtime's threads), or
/// [`wait`](Commit::wait) for it in synchronous code (never inside an
/// async task).
#[must_use = "a record is durable only once its Commit resolves"]
pub struct Commit<T = i64> {
    rx: oneshot::Receiver<Result<T, AuditError>>,
}

impl<T> Commit<T> {
    /// A commit that resolves at once to `result` (for sinks that are off,
    /// or that failed before writing).
    pub fn ready(result: Result<T, AuditError>) -> Self {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(result);
        Commit { rx }
    }

    /// A commit and the sender that resolves it (for other sinks).
    pub fn channel() -> (oneshot::Sender<Result<T, AuditError>>, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Commit { rx })
    }

    /// Blocks the thread until it resolves. Panics inside an async context
    /// (use `.await` there).
    pub fn wait(self) -> Result<T, AuditError> {
        self.rx.blocking_recv().unwrap_or(Err(AuditError::Closed))
    }
}

impl<T> Future for Commit<T> {
    type Output = Result<T, AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| r.unwrap_or(Err(AuditError::Closed)))
    }
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Msg {
    Record(Box<(ExecutionRecord, Vec<CallRecord>)>, Reply<i64>),
    Batch(Vec<(ExecutionRecord, Vec<CallRecord>)>, Reply<u64>),
    Prune(Reply<u64>),
    Flush(Reply<()>),
    /// How to count an execution's result tokens, once the writer is idle.
    Tokens(i64, TokenCount),
}

/// The embedded audit store: a SQLite file in WAL mode with
/// `synchronous = NORMAL`.
///
/// **Durability.** A record's [`Commit`] resolves after its transaction
/// was written to the WAL file. From then on it survives the process being
/// killed (SIGKILL, a panic, OOM) — the data is in the operating system's
/// page cache, and the next opener recovers it from the WAL. It does not
/// survive a power cut or kernel crash that comes before the next
/// checkpoint's `fsync` (within about [`StoreOptions::checkpoint_interval`]);
/// the database stays consistent then, only the newest records may be
/// missing. That trade buys commits without an `fsync` each.
///
/// **Threads.** One writer thread owns the writing connection and does all
/// SQLite work, so recording never blocks an async runtime; a second thread
/// checkpoints the WAL in the background (SQLite lets a checkpoint run
/// beside the writer), so commits do not pay for checkpoints. Indexing the
/// code for `--grep` (a trigram index) and pruning run on the writer thread
/// in small chunks, only while no record is waiting (indexing also after
/// every 256 commits under constant load); a record's transaction only
/// notes its id in `fts_pending`, and readers treat pending rows as
/// candidates, so a `--grep` never misses a committed execution.
///
/// Several processes may share one file (each stdio server of a user):
/// SQLite's locking serialises their writers (busy timeout 5 s).
///
/// Dropping the store finishes the records already sent, then stops both
/// threads.
pub struct SqliteStore {
    path: PathBuf,
    tx: Option<mpsc::Sender<Msg>>,
    writer: Option<JoinHandle<()>>,
    checkpointer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish()
    }
}

/// Opens (creating when `create`) a connection with the store's settings.
pub(crate) fn connect(path: &Path, create: bool) -> Result<Connection, AuditError> {
    if !create && !path.exists() {
        return Err(AuditError::NotFound(path.to_path_buf()));
    }
    if create && !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        create_private_file(path)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Schema(format!("{} cannot use WAL mode (got {mode})", path.display())));
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Room for an `INSERT INTO calls` per row count (1..=32) besides the rest.
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", true)?;
    crate::reader::register_functions(&conn)?;
    Ok(conn)
}

/// The audit trail may hold code and paths worth protecting: its directory
/// and files are the user's only (SQLite gives `-wal` and `-shm` the
/// database file's mode).
fn create_private_dir(dir: &Path) -> Result<(), AuditError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)?;
    Ok(())
}

fn create_private_file(path: &Path) -> Result<(), AuditError> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`, brings its schema up to
    /// date, and starts its threads.
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self, AuditError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = connect(&path, true)?;
        schema::migrate(&mut conn)?;
        conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_BACKSTOP)?;
        let checkpoint_conn = connect(&path, false)?;
        checkpoint_conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let commits = Arc::new(AtomicU64::new(0));

        let (stop, stopped) = mpsc::channel::<()>();
        let every = options.checkpoint_interval;
        let seen = commits.clone();
        let checkpointer = std::thread::Builder::new()
            .name("audit-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stopped, every, seen))?;

        let (tx, rx) = mpsc::channel::<Msg>();
        let writer = Writer {
            conn,
            options,
            commits,
            since_prune: 0,
            last_prune: Instant::now(),
            job: None,
            // Another process may have died with code left to index.
            pending: true,
            since_index: 0,
            last_record: Instant::now(),
            tokens: Vec::new(),
        };
        let writer = std::thread::Builder::new().name("audit-writer".into()).spawn(move || writer.run(rx))?;
        Ok(SqliteStore { path, tx: Some(tx), writer: Some(writer), checkpointer: Some((stop, checkpointer)) })
    }

    /// The store `config` asks for: `None` when `path = "off"`.
    pub fn open_config(config: &AuditConfig, scrubber: Scrubber) -> Result<Option<Self>, AuditError> {
        config.validate()?;
        let Some(path) = config.resolve_path()? else { return Ok(None) };
        Self::open(path, config.store_options(scrubber)).map(Some)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Commit<T> {
        let (reply, commit) = Commit::channel();
        match &self.tx {
            Some(tx) => {
                // A send fails only when the writer is gone; `reply` was
                // dropped with the message, so the commit says Closed.
                let _ = tx.send(make(reply));
            }
            None => drop(reply),
        }
        commit
    }

    /// Records one execution with its calls, as one transaction (secrets
    /// scrubbed first). The commit resolves to the execution's id once the
    /// transaction is durable (see the type's docs): await it before the
    /// result goes back to the client.
    pub fn record(&self, exec: ExecutionRecord, calls: Vec<CallRecord>) -> Commit<i64> {
        self.send(|r| Msg::Record(Box::new((exec, calls)), r))
    }

    /// Records many executions in one transaction (imports, benchmarks):
    /// resolves to how many.
    pub fn record_many(&self, items: Vec<(ExecutionRecord, Vec<CallRecord>)>) -> Commit<u64> {
        self.send(|r| Msg::Batch(items, r))
    }

    /// Prunes by the retention now (it also happens by itself): resolves to
    /// the number of executions deleted.
    pub fn prune(&self) -> Commit<u64> {
        self.send(Msg::Prune)
    }

    /// Resolves once everything sent before it is committed.
    pub fn flush(&self) -> Commit<()> {
        self.send(Msg::Flush)
    }

    /// Sets the result size in tokens of execution `id`, which was recorded
    /// without it, to what `count` says: the writer runs `count` when it is
    /// idle and writes the counts in batches (see
    /// [`AuditSink::set_result_tokens_with`]). Does not wait.
    pub fn set_result_tokens_with(&self, id: i64, count: TokenCount) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Tokens(id, count));
        }
    }

    /// A reading connection to the same file.
    pub fn reader(&self) -> Result<AuditReader, AuditError> {
        AuditReader::open(&self.path)
    }
}

impl AuditSink for SqliteStore {
    fn record(&self, exec: ExecutionRecord, calls: Vec<CallRecord>) -> Commit<i64> {
        SqliteStore::record(self, exec, calls)
    }

    fn set_result_tokens_with(&self, id: i64, count: TokenCount) {
        SqliteStore::set_result_tokens_with(self, id, count)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if let Some((stop, t)) = self.checkpointer.take() {
            drop(stop);
            let _ = t.join();
        }
    }
}

fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, every: Duration, commits: Arc<AtomicU64>) {
    let mut done = 0;
    loop {
        let stopping = !matches!(stop.recv_timeout(every), Err(mpsc::RecvTimeoutError::Timeout));
        let now = commits.load(Ordering::Relaxed);
        if now != done {
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                Ok(()) => done = now,
                Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
            }
        }
        if stopping {
            return;
        }
    }
}

struct PruneJob {
    before_ms: Option<i64>,
    upto_id: Option<i64>,
    deleted: u64,
    waiters: Vec<Reply<u64>>,
}

struct Writer {
    conn: Connection,
    options: StoreOptions,
    commits: Arc<AtomicU64>,
    since_prune: u64,
    last_prune: Instant,
    job: Option<PruneJob>,
    /// fts_pending may hold rows.
    pending: bool,
    /// When the last record was committed (indexing waits for a pause).
    last_record: Instant,
    /// Result token counts to make and write (see
    /// [`SqliteStore::set_result_tokens_with`]).
    tokens: Vec<(i64, TokenCount)>,
    since_index: u64,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let idle_work = self.pending || !self.tokens.is_empty();
            let msg = if self.job.is_some() || (idle_work && self.last_record.elapsed() >= INDEX_IDLE) {
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else if idle_work {
                match rx.recv_timeout(INDEX_IDLE.saturating_sub(self.last_record.elapsed())) {
                    Ok(m) => Some(m),
                    // Not idle long enough yet: go round (the branch above indexes).
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                let wait = if self.options.retention.is_set() {
                    self.options.prune_interval.saturating_sub(self.last_prune.elapsed()).max(Duration::from_millis(1))
                } else {
                    Duration::from_secs(3600)
                };
                match rx.recv_timeout(wait) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            };
            match msg {
                Some(Msg::Record(item, reply)) => {
                    let (exec, calls) = *item;
                    let r = self.insert_one(exec, calls);
                    let _ = reply.send(r);
                }
                Some(Msg::Batch(items, reply)) => {
                    let r = self.insert_batch(items);
                    let _ = reply.send(r);
                }
                Some(Msg::Prune(reply)) => match self.job.as_mut() {
                    Some(job) => job.waiters.push(reply),
                    None => match self.start_prune() {
                        Ok(mut job) => {
                            job.waiters.push(reply);
                            self.job = Some(job);
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                },
                Some(Msg::Flush(reply)) => {
                    self.write_tokens();
                    let _ = reply.send(Ok(()));
                }
                Some(Msg::Tokens(id, n)) => {
                    self.tokens.push((id, n));
                    if self.tokens.len() >= TOKENS_BATCH {
                        self.write_tokens();
                    }
                }
                None if !self.tokens.is_empty() => self.write_tokens(),
                None if self.pending => self.index_step(),
                None => self.prune_step(),
            }
            if self.pending && self.since_index >= INDEX_EVERY {
                self.index_step();
            }
            if self.job.is_none()
                && self.options.retention.is_set()
                && (self.since_prune >= self.options.prune_every_commits
                    || self.last_prune.elapsed() >= self.options.prune_interval)
            {
                match self.start_prune() {
                    Ok(job) => self.job = Some(job),
                    Err(e) => tracing::warn!(error = %e, "audit pruning failed"),
                }
            }
        }
        // The store is closing: counts sent before it are not lost.
        self.write_tokens();
    }

    /// Counts the waiting results' tokens and writes them in one transaction.
    fn write_tokens(&mut self) {
        if self.tokens.is_empty() {
            return;
        }
        let tokens: Vec<(i64, u64)> =
            std::mem::take(&mut self.tokens).into_iter().map(|(id, count)| (id, count())).collect();
        let r = (|| -> Result<(), AuditError> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut st = tx.prepare_cached("UPDATE executions SET result_tokens = ?2 WHERE id = ?1")?;
                for (id, n) in &tokens {
                    st.execute(params![id, clamp(*n)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = r {
            tracing::warn!(error = %e, count = tokens.len(), "audit: result token counts could not be written");
        }
    }

    fn insert_one(&mut self, mut exec: ExecutionRecord, mut calls: Vec<CallRecord>) -> Result<i64, AuditError> {
        prepare(&self.options, &mut exec, &mut calls);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = insert(&tx, &exec, &calls, false)?;
        tx.commit()?;
        self.committed(1);
        self.pending = true;
        self.since_index += 1;
        self.last_record = Instant::now();
        Ok(id)
    }

    fn insert_batch(&mut self, items: Vec<(ExecutionRecord, Vec<CallRecord>)>) -> Result<u64, AuditError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = items.len() as u64;
        for (mut exec, mut calls) in items {
            prepare(&self.options, &mut exec, &mut calls);
            insert(&tx, &exec, &calls, true)?;
        }
        tx.commit()?;
        self.committed(n);
        Ok(n)
    }

    fn committed(&mut self, n: u64) {
        self.since_prune += n;
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a pruning (the next one is due `prune_every_commits` commits
    /// or `prune_interval` from now).
    fn start_prune(&mut self) -> Result<PruneJob, AuditError> {
        self.since_prune = 0;
        self.last_prune = Instant::now();
        let r = self.options.retention;
        let before_ms = r.days.map(|d| crate::time::now_ms() - i64::from(d) * 86_400_000);
        let upto_id = match r.rows {
            // Ids only grow and only the oldest rows are deleted, so the
            // newest `rows` executions are the ids above max - rows.
            Some(rows) => {
                let max: Option<i64> = self.conn.query_row("SELECT max(id) FROM executions", [], |row| row.get(0))?;
                max.map(|m| m.saturating_sub(rows.min(i64::MAX as u64) as i64)).filter(|c| *c > 0)
            }
            None => None,
        };
        Ok(PruneJob { before_ms, upto_id, deleted: 0, waiters: vec![] })
    }

    /// Moves one chunk of code from fts_pending into the trigram index.
    fn index_step(&mut self) {
        self.since_index = 0;
        let step = (|| -> Result<bool, AuditError> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<(i64, Option<String>)> = {
                let mut st = tx.prepare_cached(
                    "SELECT p.id, e.code FROM fts_pending p LEFT JOIN executions e ON e.id = p.id ORDER BY p.id LIMIT ?1",
                )?;
                let rows = st.query_map([INDEX_CHUNK], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            {
                let mut add = tx.prepare_cached("INSERT INTO code_fts(rowid, code) VALUES (?1, ?2)")?;
                let mut done = tx.prepare_cached("DELETE FROM fts_pending WHERE id = ?1")?;
                for (id, code) in &rows {
                    if let Some(code) = code {
                        add.execute(params![id, code])?;
                    }
                    done.execute([id])?;
                }
            }
            tx.commit()?;
            Ok((rows.len() as i64) == INDEX_CHUNK)
        })();
        match step {
            Ok(more) => self.pending = more,
            Err(e) => {
                // Left pending; tried again after the next record.
                tracing::warn!(error = %e, "audit: indexing code failed");
                self.pending = false;
            }
        }
    }

    /// Deletes the executions (with calls and index entries) that `select`
    /// (one `?1` parameter, `LIMIT ?2`) picks; returns how many.
    fn delete_chunk(&mut self, select: &str, param: i64) -> Result<usize, AuditError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids: Vec<i64> = {
            let mut st = tx.prepare_cached(select)?;
            let rows = st.query_map(params![param, PRUNE_CHUNK], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        {
            let mut fts = tx.prepare_cached("DELETE FROM code_fts WHERE rowid = ?1")?;
            let mut pending = tx.prepare_cached("DELETE FROM fts_pending WHERE id = ?1")?;
            let mut exec = tx.prepare_cached("DELETE FROM executions WHERE id = ?1")?;
            for id in &ids {
                fts.execute([id])?;
                pending.execute([id])?;
                exec.execute([id])?; // calls go by ON DELETE CASCADE
            }
        }
        tx.commit()?;
        Ok(ids.len())
    }

    fn prune_step(&mut self) {
        let Some(mut job) = self.job.take() else { return };
        let step = (|| -> Result<bool, AuditError> {
            if let Some(t) = job.before_ms {
                let n =
                    self.delete_chunk("SELECT id FROM executions WHERE time_ms < ?1 ORDER BY time_ms LIMIT ?2", t)?;
                job.deleted += n as u64;
                if (n as i64) < PRUNE_CHUNK {
                    job.before_ms = None;
                }
                return Ok(false);
            }
            if let Some(c) = job.upto_id {
                let n = self.delete_chunk("SELECT id FROM executions WHERE id <= ?1 ORDER BY id LIMIT ?2", c)?;
                job.deleted += n as u64;
                if (n as i64) < PRUNE_CHUNK {
                    job.upto_id = None;
                }
                return Ok(false);
            }
            Ok(true)
        })();
        let done = match step {
            Ok(false) => {
                self.job = Some(job);
                return;
            }
            Ok(true) => Ok(job.deleted),
            Err(e) => {
                tracing::warn!(error = %e, "audit pruning failed");
                Err(e)
            }
        };
        if job.deleted > 0 {
            self.commits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(deleted = job.deleted, "audit: pruned");
            // Keeps the planner's statistics fresh; cheap when nothing changed much.
            let _ = self.conn.execute_batch("PRAGMA optimize");
        }
        let msg = done.map_err(|e| e.to_string());
        for w in job.waiters {
            let _ = w.send(msg.clone().map_err(AuditError::Failed));
        }
    }
}

/// Hex SHA-256 of `text` (of the code as stored).
pub(crate) fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn clean(s: &Scrubber, text: &mut String, max: usize) {
    if let Cow::Owned(c) = s.scrub_str(text) {
        *text = c;
    }
    if text.len() > max {
        *text = shorten(text, max);
    }
}

fn clean_opt(s: &Scrubber, text: &mut Option<String>, max: usize) {
    if let Some(t) = text {
        clean(s, t, max);
    }
}

/// What every store does to a record before writing it: the replica's
/// host stamped on, secrets scrubbed.
pub(crate) fn prepare(options: &StoreOptions, exec: &mut ExecutionRecord, calls: &mut [CallRecord]) {
    if exec.host.is_none() {
        exec.host.clone_from(&options.host);
    }
    scrub(&options.scrubber, exec, calls);
}

/// Scrubs every text field (and shortens messages and paths).
pub(crate) fn scrub(s: &Scrubber, exec: &mut ExecutionRecord, calls: &mut [CallRecord]) {
    if let Cow::Owned(c) = s.scrub_str(&exec.code) {
        exec.code = c;
    }
    clean_opt(s, &mut exec.principal, 512);
    clean_opt(s, &mut exec.session_id, 512);
    clean_opt(s, &mut exec.client_name, 512);
    clean_opt(s, &mut exec.client_version, 512);
    clean(s, &mut exec.outcome, 200);
    clean_opt(s, &mut exec.error_name, 200);
    clean_opt(s, &mut exec.error_message, MAX_MESSAGE);
    clean_opt(s, &mut exec.host, 512);
    for c in calls {
        clean(s, &mut c.target, 512);
        clean_opt(s, &mut c.method, 64);
        clean(s, &mut c.path, MAX_FIELD);
        clean_opt(s, &mut c.template, MAX_FIELD);
        clean_opt(s, &mut c.error_name, 200);
        clean_opt(s, &mut c.allowed_by, MAX_FIELD);
        for v in [&mut c.approval, &mut c.refused].into_iter().flatten() {
            s.scrub_value(v);
        }
    }
}

const INSERT_EXECUTION: &str = "INSERT INTO executions (time_ms, principal, session_id, client_name, client_version, \
     tool, ok, outcome, error_name, error_message, duration_ms, result_tokens, shortened, dry_run, call_count, \
     code_sha256, code, host) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

/// Columns of a `calls` row.
const CALL_COLUMNS: usize = 18;

/// Rows per `INSERT INTO calls` (× 18 parameters, well under SQLite's
/// limit of 32,766).
const CALL_ROWS_PER_INSERT: usize = 32;

/// `INSERT INTO calls ... VALUES (?, …), …` for `rows` rows.
fn insert_calls_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; CALL_COLUMNS].join(", "));
    format!(
        "INSERT INTO calls (execution_id, seq, at_ms, kind, target, method, path, template, status, ok, error_name, \
         duration_ms, bytes_out, bytes_in, allowed_by, approval, refused, dry_run) VALUES {}",
        vec![row; rows].join(", ")
    )
}

/// `n` as a SQL integer (saturating).
pub(crate) fn clamp(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

/// Inserts one (already scrubbed) execution and its calls; returns its id.
/// Its code goes into the trigram index now (`index_now`: bulk imports) or
/// into fts_pending, for the writer to index when it is idle.
fn insert(conn: &Connection, e: &ExecutionRecord, calls: &[CallRecord], index_now: bool) -> Result<i64, AuditError> {
    let mut st = conn.prepare_cached(INSERT_EXECUTION)?;
    st.execute(params![
        e.time_ms,
        e.principal,
        e.session_id,
        e.client_name,
        e.client_version,
        e.tool.as_str(),
        e.is_ok(),
        e.outcome,
        e.error_name,
        e.error_message,
        e.duration_ms,
        e.result_tokens.map(clamp),
        e.shortened,
        e.dry_run,
        calls.len() as i64,
        sha256_hex(&e.code),
        e.code,
        e.host,
    ])?;
    let id = conn.last_insert_rowid();
    if index_now {
        conn.prepare_cached("INSERT INTO code_fts(rowid, code) VALUES (?1, ?2)")?.execute(params![id, e.code])?;
    } else {
        conn.prepare_cached("INSERT INTO fts_pending(id) VALUES (?1)")?.execute([id])?;
    }
    // Many rows per statement: an execute of 100 requests is 4 statements,
    // not 100 (each step of a statement costs more than its row).
    let seqs = unique_seqs(calls);
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    // The values a row binds that are not fields of its `CallRecord`.
    struct Derived {
        bytes_out: i64,
        bytes_in: i64,
        approval: Option<String>,
        refused: Option<String>,
        kind: &'static str,
    }
    let extra: Vec<Derived> = calls
        .iter()
        .map(|c| Derived {
            bytes_out: clamp(c.bytes_out),
            bytes_in: clamp(c.bytes_in),
            approval: json(&c.approval),
            refused: json(&c.refused),
            kind: c.kind.as_str(),
        })
        .collect();
    let rows: Vec<usize> = (0..calls.len()).collect();
    for chunk in rows.chunks(CALL_ROWS_PER_INSERT) {
        let mut st = conn.prepare_cached(&insert_calls_sql(chunk.len()))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * CALL_COLUMNS);
        for &i in chunk {
            let (c, e) = (&calls[i], &extra[i]);
            values.extend_from_slice(&[
                &id as &dyn rusqlite::ToSql,
                &seqs[i],
                &c.at_ms,
                &e.kind,
                &c.target,
                &c.method,
                &c.path,
                &c.template,
                &c.status,
                &c.ok,
                &c.error_name,
                &c.duration_ms,
                &e.bytes_out,
                &e.bytes_in,
                &c.allowed_by,
                &e.approval,
                &e.refused,
                &c.dry_run,
            ]);
        }
        st.execute(values.as_slice())?;
    }
    Ok(id)
}

/// The `seq` each call is stored with: its own when it is positive and
/// not taken, else the next free one (`seq` is the key within an
/// execution: kept unique whatever the caller sent).
pub(crate) fn unique_seqs(calls: &[CallRecord]) -> Vec<u32> {
    let mut seen = std::collections::HashSet::new();
    let mut next_free = calls.iter().map(|c| c.seq).max().unwrap_or(0);
    calls
        .iter()
        .map(|c| {
            if c.seq > 0 && seen.insert(c.seq) {
                c.seq
            } else {
                next_free += 1;
                seen.insert(next_free);
                next_free
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_arrive_after_the_record_and_before_close() {
        let dir = std::env::temp_dir().join(format!("codemode-audit-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("a.db");
        let _ = std::fs::remove_file(&db);
        let store = SqliteStore::open(&db, StoreOptions::default()).unwrap();
        let tokens_of = |id| store.reader().unwrap().show(id).unwrap().unwrap().0.record.result_tokens;
        let a = store.record(ExecutionRecord::new(crate::Tool::Execute, "a"), vec![]).wait().unwrap();
        let (tx, rx) = mpsc::channel();
        store.set_result_tokens_with(
            a,
            Box::new(move || {
                tx.send(()).unwrap();
                42
            }),
        );
        // Not counted on the caller's thread, and the record is there without it.
        assert!(rx.try_recv().is_err());
        assert_eq!(tokens_of(a), None);
        // A flush waits for it.
        store.flush().wait().unwrap();
        rx.try_recv().expect("counted by the writer");
        assert_eq!(tokens_of(a), Some(42));
        // Counts still waiting when the store closes are written.
        let b = store.record(ExecutionRecord::new(crate::Tool::Execute, "b"), vec![]).wait().unwrap();
        store.set_result_tokens_with(b, Box::new(|| 7));
        drop(store);
        let r = AuditReader::open(&db).unwrap();
        assert_eq!(r.show(b).unwrap().unwrap().0.record.result_tokens, Some(7));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hashes() {
        assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
