//! Tests of the store, the layer, the queries and the renderings, each on a
//! database of its own in a temporary directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use codemode_pipeline::{
    Access, BoxReply, Call, Execution, HostError, HttpOp, Layer, Next, Operation, Pipeline, Route, ToolOp,
};
use codemode_upstream::{ApiRequest, Body, Scrubber};
use serde_json::{json, Value};

use crate::*;

/// A directory removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "codemode-audit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.0.join("audit.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, StoreOptions::default()).unwrap()
}

fn api_call(seq: u32, target: &str, method: &str, path: &str, status: Option<u16>, ok: bool) -> CallRecord {
    CallRecord {
        seq,
        at_ms: 1_777_638_896_789 + i64::from(seq),
        kind: CallKind::Api,
        target: target.into(),
        method: Some(method.into()),
        path: path.into(),
        template: Some("/books/{id}".into()),
        status,
        ok,
        error_name: (!ok).then(|| "UpstreamError".to_string()),
        duration_ms: 1.5,
        bytes_out: 10,
        bytes_in: 200,
        allowed_by: Some("reads (api books)".into()),
        approval: None,
        refused: None,
        dry_run: false,
    }
}

fn exec_at(time_ms: i64, principal: Option<&str>, code: &str) -> ExecutionRecord {
    let mut e = ExecutionRecord::new(Tool::Execute, code);
    e.time_ms = time_ms;
    e.principal = principal.map(str::to_string);
    e.duration_ms = 12.25;
    e
}

// ---- both stores ----
//
// The tests below that take a `&Db` run once per backend: SQLite always,
// PostgreSQL when the machine's server answers (CODEMODE_TEST_POSTGRES, by
// default postgres://127.0.0.1:5432/test as the OS user), each in a schema
// of its own that is dropped afterwards.

/// What the tests need of a store, on top of [`AuditSink`].
pub(crate) trait TestStore: AuditSink {
    fn prune(&self) -> Commit<u64>;
    fn record_many(&self, items: Vec<(ExecutionRecord, Vec<CallRecord>)>) -> Commit<u64>;
}

impl TestStore for SqliteStore {
    fn prune(&self) -> Commit<u64> {
        SqliteStore::prune(self)
    }
    fn record_many(&self, items: Vec<(ExecutionRecord, Vec<CallRecord>)>) -> Commit<u64> {
        SqliteStore::record_many(self, items)
    }
}

impl TestStore for PgStore {
    fn prune(&self) -> Commit<u64> {
        PgStore::prune(self)
    }
    fn record_many(&self, items: Vec<(ExecutionRecord, Vec<CallRecord>)>) -> Commit<u64> {
        PgStore::record_many(self, items)
    }
}

/// What the tests need of a reader, on top of [`AuditSource`].
pub(crate) trait TestReader: AuditSource + crate::query::Planned {
    fn count(&self) -> u64;
    fn call_count(&self) -> u64;
}

impl TestReader for AuditReader {
    fn count(&self) -> u64 {
        AuditReader::count(self).unwrap()
    }
    fn call_count(&self) -> u64 {
        AuditReader::call_count(self).unwrap()
    }
}

impl TestReader for PgReader {
    fn count(&self) -> u64 {
        PgReader::count(self).unwrap()
    }
    fn call_count(&self) -> u64 {
        PgReader::call_count(self).unwrap()
    }
}

/// An empty store of one backend, for one test.
pub(crate) enum Db {
    Sqlite(TempDir),
    Postgres { url: String, schema: String },
}

/// The test database's URL, or why there is none (printed once).
fn postgres_url() -> Option<&'static str> {
    static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let explicit = std::env::var("CODEMODE_TEST_POSTGRES").ok();
        let url = explicit.clone().unwrap_or_else(|| "postgres://127.0.0.1:5432/test".into());
        match crate::postgres::probe_for_tests(&url) {
            Ok(()) => Some(url),
            Err(e) if explicit.is_some() => panic!("CODEMODE_TEST_POSTGRES is set, but: {e}"),
            Err(e) => {
                eprintln!("skipping the PostgreSQL runs of the audit tests: {e} (start PostgreSQL or set CODEMODE_TEST_POSTGRES)");
                None
            }
        }
    })
    .as_deref()
}

impl Db {
    /// SQLite, and PostgreSQL when it is reachable.
    pub(crate) fn all(tag: &str) -> Vec<Db> {
        let mut dbs = vec![Db::Sqlite(TempDir::new(tag))];
        if let Some(url) = postgres_url() {
            static N: AtomicU32 = AtomicU32::new(0);
            let tag: String =
                tag.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
            let schema = format!("codemode_test_{}_{}_{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
            dbs.push(Db::Postgres { url: url.to_string(), schema });
        }
        dbs
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }

    pub(crate) fn store(&self, options: StoreOptions) -> Box<dyn TestStore> {
        match self {
            Db::Sqlite(dir) => Box::new(SqliteStore::open(dir.db(), options).unwrap()),
            Db::Postgres { url, schema } => Box::new(PgStore::open(url, schema, options).unwrap()),
        }
    }

    pub(crate) fn open(&self) -> Box<dyn TestStore> {
        self.store(StoreOptions::default())
    }

    pub(crate) fn reader(&self) -> Box<dyn TestReader> {
        match self {
            Db::Sqlite(dir) => Box::new(AuditReader::open(dir.db()).unwrap()),
            Db::Postgres { url, schema } => Box::new(PgReader::open(url, schema).unwrap()),
        }
    }

    /// `[audit]` naming this store.
    pub(crate) fn config(&self) -> AuditConfig {
        match self {
            Db::Sqlite(dir) => AuditConfig { path: Some(dir.db().display().to_string()), ..AuditConfig::default() },
            Db::Postgres { url, schema } => {
                AuditConfig { url: Some(url.clone()), schema: Some(schema.clone()), ..AuditConfig::default() }
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { url, schema } = self {
            if let Err(e) = crate::postgres::drop_schema_for_tests(url, schema) {
                eprintln!("could not drop the test schema {schema}: {e}");
            }
        }
    }
}

/// Runs `test` on every backend (naming the backend when it fails).
fn each_backend(tag: &str, test: impl Fn(&Db)) {
    for db in Db::all(tag) {
        eprintln!("-- {tag} on {}", db.name());
        test(&db);
    }
}

#[test]
fn records_and_reads_back_with_calls() {
    each_backend("roundtrip", records_and_reads_back_with_calls_on);
}

fn records_and_reads_back_with_calls_on(db: &Db) {
    let store = db.open();
    let mut exec =
        exec_at(1_777_638_896_789, Some("alice"), "const r = await books.request('GET /books/1');\nreturn r.data;");
    exec.session_id = Some("sess-1".into());
    exec.client_name = Some("claude-code".into());
    exec.client_version = Some("1.2.3".into());
    exec.result_tokens = Some(321);
    exec.shortened = true;
    exec.host = Some("replica-a".into());
    let mut refused = api_call(2, "books", "DELETE", "/books/1", None, false);
    refused.error_name = Some("PolicyError".into());
    refused.refused =
        Some(json!({"error": "PolicyError", "rule": {"effect": "deny", "pattern": "DELETE /**", "from": "api books"}}));
    refused.allowed_by = None;
    let tool = CallRecord {
        seq: 3,
        at_ms: 5,
        kind: CallKind::Tool,
        target: "fs".into(),
        method: None,
        path: "fs_write_file".into(),
        template: None,
        status: None,
        ok: true,
        error_name: None,
        duration_ms: 0.25,
        bytes_out: 33,
        bytes_in: 2,
        allowed_by: Some("default (mcp fs)".into()),
        approval: Some(json!({"decision": "approved", "rule": "approve \"*\" (mcp fs)", "by": "alice", "atMs": 7})),
        refused: None,
        dry_run: true,
    };
    let calls = vec![api_call(1, "books", "GET", "/books/1", Some(200), true), refused, tool];
    let id = store.record(exec.clone(), calls.clone()).wait().unwrap();
    assert!(id > 0);
    let id2 = store.record(ExecutionRecord::new(Tool::Search, "return 1"), vec![]).wait().unwrap();
    assert!(id2 > id, "ids grow: {id} then {id2}");

    let reader = db.reader();
    let (stored, got) = reader.show(id).unwrap().expect("recorded");
    assert_eq!(stored.record, exec);
    assert_eq!(stored.id, id);
    assert_eq!(stored.call_count, 3);
    assert_eq!(stored.code_sha256.len(), 64);
    assert_eq!(got, calls);
    assert!(reader.show(id2 + 100).unwrap().is_none());
    assert_eq!((reader.count(), reader.call_count()), (2, 3));
    // The store stamps its own host on records that have none.
    let stamped = db.store(StoreOptions { host: Some("replica-b".into()), ..StoreOptions::default() });
    let id3 = stamped.record(ExecutionRecord::new(Tool::Search, "1"), vec![]).wait().unwrap();
    assert_eq!(reader.show(id3).unwrap().unwrap().0.record.host.as_deref(), Some("replica-b"));
    let hosts = |h: &str| reader.list(&Filter { host: Some(h.into()), ..Filter::default() }).unwrap();
    assert_eq!(
        hosts("replica-b").iter().map(|s| (s.id, s.host.as_deref())).collect::<Vec<_>>(),
        vec![(id3, Some("replica-b"))]
    );
    assert_eq!(hosts("replica-a").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_awaited_from_async_code() {
    for db in Db::all("async") {
        commits_are_awaited_from_async_code_on(&db).await;
    }
}

async fn commits_are_awaited_from_async_code_on(db: &Db) {
    let store: Arc<dyn TestStore> = Arc::from(db.open());
    let mut tasks = vec![];
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record(ExecutionRecord::new(Tool::Execute, format!("return {i}")), vec![]).await.unwrap()
        }));
    }
    let mut ids = vec![];
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    assert_eq!(db.reader().count(), 50, "{}", db.name());
}

#[test]
fn seqs_stay_unique() {
    each_backend("seq", seqs_stay_unique_on);
}

fn seqs_stay_unique_on(db: &Db) {
    let store = db.open();
    let c = api_call(0, "books", "GET", "/a", Some(200), true);
    let id = store.record(ExecutionRecord::new(Tool::Execute, "x"), vec![c.clone(), c.clone(), c]).wait().unwrap();
    let (_, calls) = db.reader().show(id).unwrap().unwrap();
    assert_eq!(calls.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
}

#[test]
fn secrets_never_reach_the_file() {
    each_backend("scrub", secrets_never_reach_the_store_on);
}

fn secrets_never_reach_the_store_on(db: &Db) {
    let secret = "sk_live_5f3c9a1b7e2d4c6a";
    let options = StoreOptions { scrubber: Scrubber::new([secret]), ..StoreOptions::default() };
    let store = db.store(options);
    let code = format!("const key = \"{secret}\";\nreturn await books.request({{path: '/x?k={secret}'}});");
    let exec = exec_at(1, None, &code).failed("exception", "Error", format!("bad key {secret}"));
    let mut call = api_call(1, "books", "GET", &format!("/keys/{secret}"), Some(401), false);
    call.approval = Some(json!({"decision": "approved", "by": secret}));
    call.refused = Some(json!({"error": "PolicyError", "rule": {"pattern": format!("GET /{secret}")}}));
    // The base64 form of a bearer header is scrubbed too.
    call.allowed_by = Some(format!("hdr {}", base64_of(&format!("Bearer {secret}"))));
    let id = store.record(exec, vec![call]).wait().unwrap();
    let reader = db.reader();
    let (stored, calls) = reader.show(id).unwrap().unwrap();
    assert!(!stored.record.code.contains(secret), "{}", stored.record.code);
    assert!(stored.record.code.contains(codemode_upstream::scrub::REDACTED));
    assert!(!stored.record.error_message.as_deref().unwrap().contains(secret));
    let all = serde_json::to_string(&calls).unwrap();
    assert!(!all.contains(secret) && !all.contains(&base64_of(&format!("Bearer {secret}"))), "{all}");
    drop(reader);
    drop(store);
    let Db::Sqlite(dir) = db else { return };
    // Nothing of it in the bytes on disk either (database, WAL).
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
}

fn base64_of(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(unix)]
#[test]
fn the_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let path = dir.0.join("sub/dir/audit.db");
    let store = open(&path);
    store.record(ExecutionRecord::new(Tool::Search, "1"), vec![]).wait().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn a_newer_schema_is_refused_and_reopening_is_idempotent() {
    let dir = TempDir::new("schema");
    drop(open(&dir.db()));
    drop(open(&dir.db()));
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    drop(conn);
    let err = SqliteStore::open(dir.db(), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("newer codemode"), "{err}");
    assert!(matches!(AuditReader::open(dir.0.join("missing.db")), Err(AuditError::NotFound(_))));
}

#[test]
fn two_writers_share_one_file() {
    each_backend("two", two_writers_share_one_store_on);
}

fn two_writers_share_one_store_on(db: &Db) {
    // Two stores on one file (as two stdio servers of one user would), or
    // on one database (two replicas).
    let (a, b): (Arc<dyn TestStore>, Arc<dyn TestStore>) = (Arc::from(db.open()), Arc::from(db.open()));
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                (0..100)
                    .map(|i| {
                        s.record(exec_at(i, None, "x"), vec![api_call(1, "b", "GET", "/", Some(200), true)])
                            .wait()
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<i64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    let r = db.reader();
    assert_eq!((r.count(), r.call_count()), (200, 200));
}

// ---- PostgreSQL only: start-up, outages ----

/// The PostgreSQL database of this run, when there is one.
fn postgres_db(tag: &str) -> Option<Db> {
    Db::all(tag).into_iter().find(|d| matches!(d, Db::Postgres { .. }))
}

#[test]
fn replicas_starting_together_create_the_schema_once() {
    let Some(db) = postgres_db("race") else { return };
    let Db::Postgres { url, schema } = &db else { unreachable!() };
    // Four replicas start at the same moment on an empty schema: the
    // advisory lock lets one create it and the others find it.
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (url, schema, barrier) = (url.clone(), schema.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let store = PgStore::open(&url, &schema, StoreOptions::default()).unwrap();
                store.record(exec_at(i, None, "x"), vec![api_call(1, "b", "GET", "/", Some(200), true)]).wait().unwrap()
            })
        })
        .collect();
    let ids: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(ids.len(), 4);
    let reader = PgReader::open(url, schema).unwrap();
    assert_eq!((reader.count().unwrap(), reader.call_count().unwrap()), (4, 4));
    // Reopening is idempotent; a newer schema is refused.
    drop(PgStore::open(url, schema, StoreOptions::default()).unwrap());
    reader.execute_for_tests("UPDATE audit_meta SET value = value + 1 WHERE key = 'schema_version'").unwrap();
    let err = PgStore::open(url, schema, StoreOptions::default()).unwrap_err().to_string();
    assert!(err.contains("newer codemode") && err.contains(schema.as_str()), "{err}");
    // A reader does not create tables: it says there are none.
    let err = PgReader::open(url, "codemode_no_such_schema").unwrap_err().to_string();
    assert!(err.contains("no audit tables in schema codemode_no_such_schema"), "{err}");
}

#[test]
fn an_unreachable_postgres_is_a_clear_error_without_the_password() {
    let url = "postgres://app:hunter2secret@127.0.0.1:1/audit";
    let err = PgStore::open(url, "codemode", StoreOptions::default()).unwrap_err().to_string();
    assert!(err.contains("cannot connect to postgres://app:***@127.0.0.1:1/audit"), "{err}");
    assert!(err.contains("[audit] url") && !err.contains("hunter2secret"), "{err}");
    let Err(err) = open_source(&AuditConfig { url: Some(url.into()), ..AuditConfig::default() }) else {
        panic!("nothing listens on port 1")
    };
    let err = err.to_string();
    assert!(err.contains("***") && !err.contains("hunter2secret"), "{err}");
}

/// A TCP forwarder to PostgreSQL that the test can cut (every connection
/// and the listener) and start again on the same port: an outage.
struct Cut {
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    streams: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cut {
    fn start(port: u16, upstream: std::net::SocketAddr) -> Cut {
        use std::io::ErrorKind;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let streams: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (s, st) = (stop.clone(), streams.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = std::net::TcpStream::connect(upstream) else { continue };
                        st.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        for (mut from, mut to) in
                            [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                        {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut to);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                    Err(_) => break,
                }
            }
        });
        Cut { port, stop, streams, thread: Some(thread) }
    }

    /// Closes the listener and every connection through it.
    fn cut(mut self) -> u16 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.port
    }
}

#[test]
fn an_outage_fails_records_fast_and_recording_resumes() {
    let Some(db) = postgres_db("outage") else { return };
    let Db::Postgres { url, schema } = &db else { unreachable!() };
    let mut parsed = url::Url::parse(url).unwrap();
    let upstream = parsed.socket_addrs(|| Some(5432)).unwrap()[0];
    let cut = Cut::start(0, upstream);
    parsed.set_port(Some(cut.port)).unwrap();
    let via = parsed.to_string();
    let store = PgStore::open(&via, schema, StoreOptions::default()).unwrap();
    let first = store.record(exec_at(1, None, "before"), vec![]).wait().unwrap();

    // Down: the record fails (the server answers the call and logs it)…
    let port = cut.cut();
    let started = std::time::Instant::now();
    let err = store.record(exec_at(2, None, "during"), vec![]).wait().unwrap_err().to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    // … and while it stays down, the next ones fail at once.
    let err = store.record(exec_at(3, None, "during"), vec![]).wait().unwrap_err().to_string();
    assert!(err.contains("unreachable"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // Back: recording resumes on a new connection.
    let _back = Cut::start(port, upstream);
    std::thread::sleep(Duration::from_millis(1100));
    let after = store.record(exec_at(4, None, "after"), vec![]).wait().unwrap();
    assert!(after > first);
    let reader = db.reader();
    let codes: Vec<String> = reader
        .list(&Filter { oldest_first: true, ..Filter::default() })
        .unwrap()
        .into_iter()
        .map(|s| s.code_line)
        .collect();
    assert_eq!(codes, ["before", "after"]);
}

#[test]
fn bulk_records_are_one_transaction() {
    each_backend("bulk", |db| {
        let store = db.open();
        let items: Vec<_> = (0..300)
            .map(|i| {
                (exec_at(i, Some("bulk"), &format!("return {i}")), vec![api_call(1, "b", "GET", "/", Some(200), true)])
            })
            .collect();
        assert_eq!(store.record_many(items).wait().unwrap(), 300);
        let r = db.reader();
        assert_eq!((r.count(), r.call_count()), (300, 300));
        let mut seen = 0;
        r.export(&Filter { oldest_first: true, ..Filter::default() }, &mut |e, calls| {
            assert_eq!((e.record.code, calls.len()), (format!("return {seen}"), 1));
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, 300, "the export pages through all of them in order");
    });
}

/// The child of [`a_killed_writer_keeps_every_committed_record`]: records
/// until it is killed, printing each id once its commit resolved.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os("CODEMODE_AUDIT_CRASH_CHILD") else { return };
    let store = Arc::new(open(Path::new(&path)));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let calls = (1..=3).map(|s| api_call(s, "books", "GET", &format!("/t{t}/{i}"), Some(200), true));
                    let code = format!("// thread {t} run {i}\n{}", "x".repeat(200));
                    let id = store.record(exec_at(i, Some("child"), &code), calls.collect()).wait().unwrap();
                    println!("committed {id}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[cfg(unix)]
#[test]
fn a_killed_writer_keeps_every_committed_record() {
    let dir = TempDir::new("crash");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::crash_child", "--nocapture", "--test-threads=1"])
        .env("CODEMODE_AUDIT_CRASH_CHILD", dir.db())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = vec![];
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while printed.len() < 400 {
        let line = lines.next().expect("the child printed ids").unwrap();
        if let Some(id) = line.strip_prefix("committed ") {
            printed.push(id.trim().parse::<i64>().unwrap());
        }
    }
    // SIGKILL in the middle of the run: no destructor, no final checkpoint.
    child.kill().unwrap();
    // Whatever it printed between our last read and the kill counts too.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("committed ") {
            if let Ok(id) = id.trim().parse::<i64>() {
                printed.push(id);
            }
        }
    }
    child.wait().unwrap();
    assert!(dir.db().with_extension("db-wal").exists(), "the WAL is left behind, as after a real crash");
    let reader = AuditReader::open(dir.db()).unwrap();
    for id in &printed {
        let (e, calls) = reader.show(*id).unwrap().unwrap_or_else(|| panic!("committed id {id} is missing"));
        assert_eq!((e.call_count, calls.len()), (3, 3), "id {id}");
    }
    let stored = reader.count().unwrap();
    assert!(stored >= printed.len() as u64, "{stored} stored, {} printed", printed.len());
    assert_eq!(reader.call_count().unwrap(), stored * 3, "executions and calls committed together");
}

#[test]
fn retention_prunes_old_and_surplus_rows() {
    each_backend("retention", retention_prunes_old_and_surplus_rows_on);
}

fn retention_prunes_old_and_surplus_rows_on(db: &Db) {
    let now = crate::time::now_ms();
    let day = 86_400_000;
    let options = StoreOptions { retention: Retention { days: Some(7), rows: Some(10) }, ..StoreOptions::default() };
    let store = db.store(options);
    let call =
        || vec![api_call(1, "books", "GET", "/", Some(200), true), api_call(2, "books", "GET", "/", Some(200), true)];
    // 5 old, then 20 recent.
    for i in 0..5 {
        store.record(exec_at(now - 30 * day + i, Some("old"), "old"), call()).wait().unwrap();
    }
    let mut recent = vec![];
    for i in 0..20 {
        recent.push(store.record(exec_at(now - day + i, Some("new"), "new"), call()).wait().unwrap());
    }
    let deleted = store.prune().wait().unwrap();
    assert_eq!(deleted, 15);
    let r = db.reader();
    assert_eq!(r.count(), 10);
    assert_eq!(r.call_count(), 20, "calls go with their executions");
    let kept: Vec<i64> =
        r.list(&Filter { oldest_first: true, ..Filter::default() }).unwrap().iter().map(|s| s.id).collect();
    assert_eq!(kept, recent[10..].to_vec(), "the newest are kept");
    assert_eq!(store.prune().wait().unwrap(), 0);
}

#[test]
fn pruning_happens_by_itself() {
    each_backend("autoprune", pruning_happens_by_itself_on);
}

fn pruning_happens_by_itself_on(db: &Db) {
    let options = StoreOptions {
        retention: Retention { days: None, rows: Some(3) },
        prune_every_commits: 5,
        ..StoreOptions::default()
    };
    let store = db.store(options);
    for i in 0..12 {
        store.record(exec_at(i, None, "x"), vec![]).wait().unwrap();
    }
    let r = db.reader();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    // The background pruning runs once the writer is idle.
    while r.count() > 3 + 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(r.count() <= 7, "{} rows", r.count());
    // A pruning that is interrupted by records still completes.
    let options = StoreOptions {
        retention: Retention { days: None, rows: Some(1) },
        prune_interval: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    drop(store);
    let store = db.store(options);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while r.count() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(r.count(), 1);
    drop(store);
}

/// A small trail for the filter tests: ids in insertion order.
fn fixture(store: &dyn TestStore, base: i64) -> Vec<i64> {
    let h = 3_600_000;
    let rows: Vec<(ExecutionRecord, Vec<CallRecord>)> = vec![
        (
            exec_at(base, Some("alice"), "return await books.request('GET /books')"),
            vec![api_call(1, "books", "GET", "/books", Some(200), true)],
        ),
        (
            exec_at(base + h, Some("bob"), "// Fetch ZONES\nreturn await cloudflare.request('GET /zones')").failed(
                "exception",
                "UpstreamError",
                "502",
            ),
            vec![api_call(1, "cloudflare", "GET", "/zones", Some(502), false)],
        ),
        (ExecutionRecord { time_ms: base + 2 * h, ..ExecutionRecord::new(Tool::Search, "return spec.paths") }, vec![]),
        (
            exec_at(base + 3 * h, None, "await books.request('DELETE /books/1')").failed(
                "exception",
                "PolicyError",
                "refused",
            ),
            vec![
                api_call(1, "cloudflare", "GET", "/zones", Some(200), true),
                api_call(2, "books", "DELETE", "/books/1", None, false),
            ],
        ),
        (exec_at(base + 4 * h, Some("alice"), "return 50% of it_s"), vec![]),
    ];
    rows.into_iter().map(|(e, c)| store.record(e, c).wait().unwrap()).collect()
}

/// The ids `f` lists — the same whichever plan runs it.
fn ids(r: &dyn TestReader, f: Filter) -> Vec<i64> {
    let got: Vec<i64> = r.list(&f).unwrap().iter().map(|s| s.id).collect();
    for plan in [crate::query::Plan::Indexed, crate::query::Plan::Window(2)] {
        let by: Vec<i64> = r.summaries(&f, plan).unwrap().iter().map(|s| s.id).collect();
        if plan == crate::query::Plan::Indexed || by.len() == f.limit.unwrap_or(usize::MAX) {
            assert_eq!(by, got, "{plan:?} for {f:?}");
        }
    }
    got
}

fn pending(r: &AuditReader) -> i64 {
    r.conn_for_tests().query_row("SELECT count(*) FROM fts_pending", [], |x| x.get(0)).unwrap()
}

#[test]
fn grep_finds_code_before_and_after_it_is_indexed() {
    let dir = TempDir::new("fts");
    let store = open(&dir.db());
    let r = store.reader().unwrap();
    let grep = |g: &str| Filter { grep: Some(g.into()), ..Filter::default() };
    // Bulk imports are indexed in their transaction.
    store.record_many(vec![(exec_at(1, None, "return Needle.one"), vec![])]).wait().unwrap();
    // A burst of records: some still pending right after their commits.
    let mut want = vec![];
    for i in 0..300 {
        want.push(store.record(exec_at(2 + i, None, &format!("return needle.{i}")), vec![]).wait().unwrap());
    }
    let found = |g: &str| ids(&r as &dyn TestReader, Filter { oldest_first: true, ..grep(g) });
    assert_eq!(found("NEEDLE.").len(), 301);
    assert_eq!(
        found("needle.29"),
        vec![
            want[29], want[290], want[291], want[292], want[293], want[294], want[295], want[296], want[297],
            want[298], want[299]
        ]
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pending(&r) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pending(&r), 0, "the writer indexes when idle");
    assert_eq!(found("NEEDLE.").len(), 301);
    assert_eq!(found("needle.299"), vec![want[299]]);
    assert_eq!(found("le.1"), found("LE.1"));
    assert_eq!(found("nothing like it"), Vec::<i64>::new());
    // Short needles have no trigram: a scan.
    assert_eq!(found(".1").len(), 111);
    // Pruned rows leave the index with them.
    drop(store);
    let options = StoreOptions { retention: Retention { days: None, rows: Some(5) }, ..StoreOptions::default() };
    let store = SqliteStore::open(dir.db(), options).unwrap();
    assert_eq!(store.prune().wait().unwrap(), 296);
    assert_eq!(found("needle"), want[295..].to_vec());
    let fts: i64 = r
        .conn_for_tests()
        .query_row("SELECT count(*) FROM code_fts WHERE code_fts MATCH '\"eed\"'", [], |x| x.get(0))
        .unwrap();
    assert_eq!(fts, 5);
}

#[test]
fn every_filter_narrows() {
    each_backend("filters", every_filter_narrows_on);
}

fn every_filter_narrows_on(db: &Db) {
    let store = db.open();
    let base = 1_777_593_600_000; // 2026-05-01T00:00:00Z
    let id = fixture(store.as_ref(), base);
    let reader = db.reader();
    let r = reader.as_ref();
    let h = 3_600_000;
    let all = Filter::default();
    assert_eq!(ids(r, all.clone()), vec![id[4], id[3], id[2], id[1], id[0]], "newest first");
    assert_eq!(ids(r, Filter { oldest_first: true, ..all.clone() }), id);
    assert_eq!(ids(r, Filter { since: Some(base + 3 * h), ..all.clone() }), vec![id[4], id[3]]);
    assert_eq!(ids(r, Filter { until: Some(base + h), ..all.clone() }), vec![id[0]]);
    assert_eq!(ids(r, Filter { since: Some(base + h), until: Some(base + 3 * h), ..all.clone() }), vec![id[2], id[1]]);
    assert_eq!(ids(r, Filter { principal: Some("alice".into()), ..all.clone() }), vec![id[4], id[0]]);
    assert_eq!(ids(r, Filter { principal: Some(LOCAL_PRINCIPAL.into()), ..all.clone() }), vec![id[3], id[2]]);
    assert_eq!(ids(r, Filter { principal: Some("nobody".into()), ..all.clone() }), Vec::<i64>::new());
    assert_eq!(ids(r, Filter { tool: Some(Tool::Search), ..all.clone() }), vec![id[2]]);
    assert_eq!(ids(r, Filter { tool: Some(Tool::Execute), ..all.clone() }).len(), 4);
    assert_eq!(ids(r, Filter { api: Some("cloudflare".into()), ..all.clone() }), vec![id[3], id[1]]);
    assert_eq!(ids(r, Filter { api: Some("books".into()), ..all.clone() }), vec![id[3], id[0]]);
    assert_eq!(ids(r, Filter { status: Some(Status::Error), ..all.clone() }), vec![id[3], id[1]]);
    assert_eq!(ids(r, Filter { status: Some(Status::Ok), ..all.clone() }), vec![id[4], id[2], id[0]]);
    let books_failed = Filter { api: Some("books".into()), status: Some(Status::Error), ..all.clone() };
    assert_eq!(ids(r, books_failed), vec![id[3]]);
    assert_eq!(ids(r, Filter { grep: Some("zones".into()), ..all.clone() }), vec![id[1]]);
    assert_eq!(ids(r, Filter { grep: Some("ZONES".into()), ..all.clone() }), vec![id[1]], "case-insensitive");
    assert_eq!(ids(r, Filter { grep: Some("books.request".into()), ..all.clone() }), vec![id[3], id[0]]);
    // LIKE wildcards are plain text here.
    assert_eq!(ids(r, Filter { grep: Some("50%".into()), ..all.clone() }), vec![id[4]]);
    assert_eq!(ids(r, Filter { grep: Some("it_s".into()), ..all.clone() }), vec![id[4]]);
    assert_eq!(ids(r, Filter { grep: Some("i%s".into()), ..all.clone() }), Vec::<i64>::new());
    assert_eq!(ids(r, Filter { after_id: Some(id[2]), ..all.clone() }), vec![id[4], id[3]]);
    assert_eq!(ids(r, Filter { limit: Some(2), ..all.clone() }), vec![id[4], id[3]]);
    assert_eq!(ids(r, Filter { limit: Some(2), oldest_first: true, ..all.clone() }), vec![id[0], id[1]]);
    let combined =
        Filter { principal: Some("alice".into()), since: Some(base + h), grep: Some("50".into()), ..all.clone() };
    assert_eq!(ids(r, combined), vec![id[4]]);
    assert!(r.list(&Filter { since: Some(2), until: Some(1), ..all.clone() }).is_err());
    assert!(r.list(&Filter { grep: Some(String::new()), ..all }).is_err());
    let s = &r.list(&Filter { limit: Some(1), oldest_first: true, ..Filter::default() }).unwrap()[0];
    assert_eq!(
        (s.calls, s.code_line.as_str(), s.principal.as_deref()),
        (1, "return await books.request('GET /books')", Some("alice"))
    );
    let s = &r.list(&Filter { grep: Some("ZONES".into()), ..Filter::default() }).unwrap()[0];
    assert_eq!(s.code_line, "// Fetch ZONES…");
}

fn run_text(args: &AuditArgs, source: &dyn AuditSource) -> String {
    let mut out = vec![];
    run_with(args, source, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn renders_table_text_json_and_jsonl() {
    each_backend("render", renders_table_text_json_and_jsonl_on);
}

fn renders_table_text_json_and_jsonl_on(db: &Db) {
    let store = db.open();
    let base = 1_777_593_600_000;
    let id = fixture(store.as_ref(), base);
    let reader = db.reader();
    let r = reader.as_ref() as &dyn AuditSource;
    // Through the config, as `codemode audit` opens it.
    let args = AuditArgs { config: db.config(), ..AuditArgs::default() };
    assert_eq!(run_text(&args, r), {
        let mut out = vec![];
        run(&args, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    });

    let table = run_text(&args, r);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    assert!(lines[0].starts_with("ID") && lines[0].ends_with("CODE"), "{}", lines[0]);
    assert!(lines[2].contains("2026-05-01 03:00:00") && lines[2].contains(" -  "), "{}", lines[2]);
    assert!(lines[4].contains("bob") && lines[4].contains("exception") && lines[4].contains("// Fetch ZONES…"));

    let json: Value = serde_json::from_str(&run_text(&AuditArgs { format: Format::Json, ..args.clone() }, r)).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 5);
    assert_eq!(arr[0]["id"], id[4]);
    assert_eq!(arr[3]["time"], "2026-05-01T01:00:00.000Z");
    for k in [
        "id",
        "timeMs",
        "time",
        "principal",
        "tool",
        "outcome",
        "errorName",
        "durationMs",
        "calls",
        "dryRun",
        "codeLine",
    ] {
        assert!(arr[3].get(k).is_some(), "{k} in {}", arr[3]);
    }

    let jsonl = run_text(&AuditArgs { format: Format::Jsonl, ..args.clone() }, r);
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["id"], id[0], "oldest first");
    let failed = &lines[3];
    assert_eq!(failed["code"], "await books.request('DELETE /books/1')");
    assert_eq!(failed["codeSha256"].as_str().unwrap().len(), 64);
    assert_eq!(failed["outcome"], "exception");
    assert_eq!(failed["principal"], Value::Null);
    let calls = failed["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[1]["method"].as_str(), calls[1]["path"].as_str(), calls[1]["ok"].as_bool()),
        (Some("DELETE"), Some("/books/1"), Some(false))
    );
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(calls[0]["at"], "2026-05-01T12:34:56.790Z");
    for k in [
        "seq",
        "kind",
        "target",
        "template",
        "durationMs",
        "bytesOut",
        "bytesIn",
        "allowedBy",
        "approval",
        "refused",
        "dryRun",
    ] {
        assert!(calls[0].get(k).is_some(), "{k}");
    }
    let since = run_text(&AuditArgs { format: Format::Jsonl, after_id: Some(id[3]), ..args.clone() }, r);
    assert_eq!(since.lines().count(), 1, "incremental export");

    let show = run_text(&AuditArgs { show: Some(id[3]), ..args.clone() }, r);
    assert!(show.starts_with(&format!("Execution {}  2026-05-01T03:00:00.000Z", id[3])), "{show}");
    assert!(show.contains("principal    - (local user)"), "{show}");
    assert!(show.contains("outcome      exception — PolicyError: refused"), "{show}");
    assert!(show.contains("1 | await books.request('DELETE /books/1')"), "{show}");
    assert!(show.contains("Calls (2):"), "{show}");
    assert!(show.contains("api books DELETE /books/1 → UpstreamError"), "{show}");
    assert!(show.contains("template    /books/{id}"), "{show}");
    let one: Value =
        serde_json::from_str(&run_text(&AuditArgs { show: Some(id[1]), format: Format::Json, ..args.clone() }, r))
            .unwrap();
    assert_eq!(one["calls"][0]["status"], 502);
    let mut out = vec![];
    let err = run_with(&AuditArgs { show: Some(999), ..args.clone() }, r, &mut out).unwrap_err();
    assert!(err.to_string().contains("no execution 999"));
}

#[test]
fn text_output_escapes_control_characters() {
    each_backend("escape", text_output_escapes_control_characters_on);
}

fn text_output_escapes_control_characters_on(db: &Db) {
    let store = db.open();
    let id = store.record(exec_at(0, Some("eve\u{1b}[2J"), "\u{1b}]0;pwned\u{7}return 1"), vec![]).wait().unwrap();
    let reader = db.reader();
    let r = reader.as_ref() as &dyn AuditSource;
    let table = run_text(&AuditArgs::default(), r);
    let show = run_text(&AuditArgs { show: Some(id), ..AuditArgs::default() }, r);
    for text in [table, show] {
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
        assert!(text.contains("\\u{1b}"));
    }
}

#[test]
fn args_parse_times_and_refuse_nonsense() {
    let now = 1_777_638_896_789;
    let a = AuditArgs {
        since: Some("2h".into()),
        until: Some("2026-05-01T12:34:56.789Z".into()),
        tool: Some("execute".into()),
        status: Some("error".into()),
        ..AuditArgs::default()
    };
    let f = a.filter(now).unwrap();
    assert_eq!((f.since, f.until), (Some(now - 7_200_000), Some(now)));
    assert_eq!(
        (f.tool, f.status, f.limit, f.oldest_first),
        (Some(Tool::Execute), Some(Status::Error), Some(DEFAULT_LIMIT), false)
    );
    let f = AuditArgs { format: Format::Jsonl, ..AuditArgs::default() }.filter(now).unwrap();
    assert_eq!((f.limit, f.oldest_first), (None, true));
    assert_eq!(AuditArgs { limit: Some(0), ..AuditArgs::default() }.filter(now).unwrap().limit, None);
    for bad in [
        AuditArgs { since: Some("yesterday".into()), ..AuditArgs::default() },
        AuditArgs { tool: Some("run".into()), ..AuditArgs::default() },
        AuditArgs { status: Some("maybe".into()), ..AuditArgs::default() },
        AuditArgs { since: Some("1h".into()), until: Some("2h".into()), ..AuditArgs::default() },
    ] {
        assert!(matches!(bad.filter(now), Err(AuditError::Usage(_))), "{bad:?}");
    }
    let off = AuditArgs {
        config: AuditConfig { path: Some("off".into()), ..AuditConfig::default() },
        ..AuditArgs::default()
    };
    assert!(matches!(run(&off, &mut Vec::new()), Err(AuditError::Off)));
    let dir = TempDir::new("args");
    let missing = AuditArgs {
        config: AuditConfig { path: Some(dir.db().display().to_string()), ..AuditConfig::default() },
        ..AuditArgs::default()
    };
    assert!(matches!(run(&missing, &mut Vec::new()), Err(AuditError::NotFound(_))));
    drop(open(&dir.db()));
    let mut out = vec![];
    run(&missing, &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "no executions match\n");
}

// ---- the layer ----

/// Notes what the rule and approval layers would, and refuses `/secret`.
struct Rules;

impl Layer for Rules {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        if let Operation::Http(h) = &call.op {
            if h.request.path == "/secret" {
                let e = HostError::new("PolicyError", "no")
                    .with("rule", json!({"effect": "deny", "pattern": "GET /secret", "from": "api books"}));
                return Box::pin(async move { Err(e) });
            }
        }
        call.note("allowedBy", "reads (api books)");
        if matches!(call.op, Operation::Tool(_)) {
            call.note("approval", json!({"decision": "approved", "by": "alice", "atMs": 1}));
        }
        next.run(call)
    }
}

struct Upstream;

impl Route for Upstream {
    fn send<'a>(&'a self, call: Call) -> BoxReply<'a> {
        Box::pin(async move {
            match call.op {
                Operation::Http(h) if h.request.path == "/slow" => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(Value::Null)
                }
                Operation::Http(h) if h.request.path == "/missing" => {
                    Err(HostError::new("UpstreamError", "not found").with("status", 404))
                }
                Operation::Http(_) => Ok(json!({"status": 200, "headers": {}, "data": {"id": 1}})),
                Operation::Tool(_) => Ok(json!({"status": "done"})),
                Operation::Graphql(_) => Ok(json!({"data": null})),
            }
        })
    }
}

fn http(exec: &Arc<Execution>, method: &str, path: &str, body: Body) -> Call {
    let request = ApiRequest {
        method: method.into(),
        path: path.into(),
        query: if path == "/books" { vec![("q".into(), "a b&c".into())] } else { vec![] },
        headers: vec![],
        body,
    };
    let op = HttpOp { api: "books".into(), request, template: Some("/books".into()), operation_id: None, tags: vec![] };
    Call::new(Operation::Http(op), Access::of_method(method), exec.clone())
}

#[tokio::test]
async fn the_layer_records_each_call() {
    let pipeline = Pipeline::new(vec![Arc::new(AuditLayer::new()), Arc::new(Rules)], Arc::new(Upstream));
    let exec = Arc::new(Execution::new(None));
    let body = json!({"title": "Dune"});
    let reply = pipeline.run(http(&exec, "POST", "/books", Body::Json(body.clone(), None))).await.unwrap();
    assert!(pipeline.run(http(&exec, "GET", "/secret", Body::None)).await.is_err());
    assert!(pipeline.run(http(&exec, "GET", "/missing", Body::None)).await.is_err());
    let tool = ToolOp {
        server: "fs".into(),
        tool: "write_file".into(),
        name: "fs_write_file".into(),
        arguments: json!({"p": 1}),
    };
    pipeline.run(Call::new(Operation::Tool(tool), Access::Write, exec.clone())).await.unwrap();
    // Still in flight when the execution ends.
    assert!(tokio::time::timeout(Duration::from_millis(20), pipeline.run(http(&exec, "GET", "/slow", Body::None)))
        .await
        .is_err());
    AuditLog::push(
        &exec,
        CallRecord::refused_early(
            CallKind::Tool,
            "fs",
            None,
            "fs_rm",
            &HostError::new("PolicyError", "hidden").with("rule", "x"),
        ),
    );

    let calls = AuditLog::calls(&exec);
    assert_eq!(calls.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    let c = &calls[0];
    assert_eq!(
        (c.kind, c.target.as_str(), c.method.as_deref(), c.path.as_str()),
        (CallKind::Api, "books", Some("POST"), "/books?q=a+b%26c")
    );
    assert_eq!((c.status, c.ok, c.template.as_deref()), (Some(200), true, Some("/books")));
    assert_eq!(c.bytes_out, serde_json::to_string(&body).unwrap().len() as u64);
    assert_eq!(c.bytes_in, serde_json::to_string(&reply).unwrap().len() as u64);
    assert_eq!(c.allowed_by.as_deref(), Some("reads (api books)"));
    assert!(c.duration_ms >= 0.0 && c.refused.is_none());

    let c = &calls[1];
    assert_eq!((c.ok, c.error_name.as_deref(), c.allowed_by.as_deref()), (false, Some("PolicyError"), None));
    assert_eq!(c.refused.as_ref().unwrap()["rule"]["pattern"], "GET /secret");
    assert_eq!(c.refused.as_ref().unwrap()["error"], "PolicyError");

    let c = &calls[2];
    assert_eq!(
        (c.ok, c.status, c.error_name.as_deref(), c.refused.is_none()),
        (false, Some(404), Some("UpstreamError"), true)
    );

    let c = &calls[3];
    assert_eq!(
        (c.kind, c.target.as_str(), c.method.as_deref(), c.path.as_str()),
        (CallKind::Tool, "fs", None, "fs_write_file")
    );
    assert_eq!((c.status, c.bytes_out), (None, 7), "a tool's own `status` is not an HTTP status");
    assert_eq!(c.approval.as_ref().unwrap()["by"], "alice");

    assert_eq!(
        (calls[4].path.as_str(), calls[4].error_name.as_deref(), calls[4].ok),
        ("/slow", Some("Cancelled"), false)
    );
    assert_eq!((calls[5].path.as_str(), calls[5].refused.as_ref().unwrap()["rule"].as_str()), ("fs_rm", Some("x")));

    // And into the store with the execution.
    let dir = TempDir::new("layer");
    let store = open(&dir.db());
    let id = store.record(ExecutionRecord::new(Tool::Execute, "…"), calls.clone()).await.unwrap();
    assert_eq!(store.reader().unwrap().show(id).unwrap().unwrap().1, calls);
}
