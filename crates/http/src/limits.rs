//! Per-principal limits: request rate (token bucket), tool calls running at
//! once, and sessions owned; plus the count of running tool calls that
//! graceful shutdown waits for.
//!
//! The rate and the concurrent calls are kept in this process, or — with
//! `[server] redis_url` — in Redis, shared by every replica of a fleet
//! ([`crate::shared`]). Either way the handlers see one [`Rate`] and one
//! [`Calls`]; which backend answered is decided here and nowhere else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::shared::{Lease, Shared};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;
use tokio::sync::Notify;

use crate::principal::Principal;
use crate::server::AppState;

/// The request-rate limit: a token bucket per principal, in Redis when the
/// fleet shares one (falling back to this replica's own buckets while Redis
/// cannot answer), else in this process.
pub(crate) struct Rate {
    local: RateLimiter,
    shared: Option<Arc<Shared>>,
}

impl Rate {
    pub fn new(per_sec: f64, burst: f64, shared: Option<Arc<Shared>>) -> Self {
        Rate { local: RateLimiter::new(per_sec, burst), shared }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub async fn take(&self, key: &str) -> Result<(), Duration> {
        if let Some(shared) = &self.shared {
            match shared.take(key, self.local.per_sec, self.local.burst).await {
                Ok(r) => return r,
                Err(e) => shared.fell_back("request rate", &e),
            }
        }
        self.local.take(key, Instant::now())
    }
}

/// A token bucket per principal, in this process.
pub(crate) struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_sec: f64, burst: f64) -> Self {
        RateLimiter { per_sec, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key`, or says how long until one is there.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 10_000 {
            // Forget principals whose buckets have refilled.
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst);
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_sec))
        }
    }
}

/// Tool calls running now, in all and per principal. The per-principal
/// limit counts this replica's calls, or — with Redis — the fleet's
/// (leases); the total (for graceful shutdown) is always this replica's.
pub(crate) struct Calls {
    total: AtomicUsize,
    idle: Notify,
    per_principal: Mutex<HashMap<String, usize>>,
    limit: Option<usize>,
    shared: Option<Arc<Shared>>,
}

/// One running tool call; dropping it ends it (and gives back its lease).
pub(crate) struct CallPermit {
    calls: Arc<Calls>,
    principal: String,
    _lease: Option<Lease>,
}

impl Calls {
    pub fn new(limit: Option<usize>, shared: Option<Arc<Shared>>) -> Arc<Self> {
        Arc::new(Calls {
            total: AtomicUsize::new(0),
            idle: Notify::new(),
            per_principal: Mutex::new(HashMap::new()),
            limit,
            shared,
        })
    }

    /// Starts a call for `principal`, unless it already runs its limit:
    /// across the fleet when Redis is configured and answers, else on this
    /// replica.
    pub async fn try_start(self: &Arc<Self>, principal: &str) -> Result<CallPermit, usize> {
        let (Some(limit), Some(shared)) = (self.limit, &self.shared) else { return self.start_local(principal, None) };
        match shared.lease(principal, limit).await {
            Ok(Some(lease)) => self.start_local(principal, Some(lease)),
            Ok(None) => Err(limit),
            Err(e) => {
                shared.fell_back("concurrent calls", &e);
                self.start_local(principal, None)
            }
        }
    }

    /// Counts the call here; checks the limit here unless a fleet-wide
    /// `lease` already did.
    fn start_local(self: &Arc<Self>, principal: &str, lease: Option<Lease>) -> Result<CallPermit, usize> {
        let mut map = self.per_principal.lock().expect("calls lock");
        let n = map.entry(principal.to_string()).or_insert(0);
        if let (Some(limit), None) = (self.limit, &lease) {
            if *n >= limit {
                return Err(limit);
            }
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(CallPermit { calls: self.clone(), principal: principal.to_string(), _lease: lease })
    }

    pub fn in_flight(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Waits until no call runs, or until `deadline`; true when idle.
    pub async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        {
            let mut map = self.calls.per_principal.lock().expect("calls lock");
            if let Some(n) = map.get_mut(&self.principal) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.principal);
                }
            }
        }
        if self.calls.total.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.calls.idle.notify_waiters();
        }
    }
}

/// Which principal opened each session: Streamable HTTP sessions (rmcp's
/// session manager holds them) and legacy SSE sessions (one per open
/// `/sse` stream, [`crate::sse`]).
#[derive(Default)]
pub(crate) struct Sessions {
    owners: Mutex<HashMap<String, Owned>>,
}

struct Owned {
    owner: String,
    /// A legacy SSE session: it lives as long as its stream, not in rmcp's
    /// session manager.
    legacy: bool,
}

/// Why a session may not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// The server holds `max_sessions` (this many).
    Server(usize),
    /// The principal holds `max_sessions_per_principal` (this many).
    Principal(usize),
}

impl Sessions {
    pub fn owner(&self, id: &str) -> Option<String> {
        self.owners.lock().expect("sessions lock").get(id).map(|o| o.owner.clone())
    }
    pub fn insert(&self, id: &str, owner: &str) {
        let owned = Owned { owner: owner.to_string(), legacy: false };
        self.owners.lock().expect("sessions lock").insert(id.to_string(), owned);
    }
    pub fn remove(&self, id: &str) {
        self.owners.lock().expect("sessions lock").remove(id);
    }
    pub fn count_for(&self, owner: &str) -> usize {
        self.owners.lock().expect("sessions lock").values().filter(|o| o.owner == owner).count()
    }
    /// Legacy SSE sessions open now.
    pub fn legacy_count(&self) -> usize {
        self.owners.lock().expect("sessions lock").values().filter(|o| o.legacy).count()
    }
    /// Forgets Streamable HTTP sessions that are gone (closed, idle,
    /// deleted); legacy ones are removed when their stream ends.
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.owners.lock().expect("sessions lock").retain(|id, o| o.legacy || live(id));
    }
    /// Records a legacy SSE session for `owner` unless that would go over
    /// the caps; `streamable` is how many Streamable HTTP sessions are open.
    /// Checked and recorded under one lock, so a flood of `GET /sse` cannot
    /// slip past the caps.
    pub fn open_legacy(
        &self,
        id: &str,
        owner: &str,
        streamable: usize,
        max: usize,
        max_per_principal: usize,
    ) -> Result<(), Full> {
        let mut owners = self.owners.lock().expect("sessions lock");
        let live = streamable + owners.values().filter(|o| o.legacy).count();
        if live >= max {
            return Err(Full::Server(live));
        }
        let mine = owners.values().filter(|o| o.owner == owner).count();
        if mine >= max_per_principal {
            return Err(Full::Principal(mine));
        }
        owners.insert(id.to_string(), Owned { owner: owner.to_string(), legacy: true });
        Ok(())
    }
}

/// The answer to a session that may not be opened: 503 when the server is
/// full, 429 when the principal is.
pub(crate) fn session_refused(full: Full, principal: &str) -> Response {
    match full {
        Full::Server(live) => {
            tracing::warn!(principal, sessions = live, "session limit reached: 503");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: this server has as many sessions open as it allows; retry later",
            )
                .into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        Full::Principal(mine) => {
            tracing::info!(principal, sessions = mine, "per-principal session limit: 429");
            too_many(
                Duration::from_secs(5),
                format!(
                    "`{principal}` has {mine} sessions open, the most this server allows; end unused ones (DELETE /mcp, or close an /sse stream) or reuse one"
                ),
            )
        }
    }
}

/// A 429 with `Retry-After` (whole seconds, at least 1) and a JSON body.
pub(crate) fn too_many(retry_after: Duration, message: String) -> Response {
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(json!({"error": "rate_limited", "error_description": message, "retry_after": secs})),
    )
        .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The request-rate layer (after auth: the limit is per principal).
pub(crate) async fn rate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let (Some(limiter), Some(p)) = (&state.rate, req.extensions().get::<Principal>()) {
        if let Err(wait) = limiter.take(&p.name).await {
            tracing::info!(principal = %p.name, retry_after_ms = wait.as_millis() as u64, "request rate limit: 429");
            return too_many(
                wait,
                format!(
                    "`{}` sends more requests than this server allows ({} per minute); retry after the time in Retry-After",
                    p.name, state.settings.rate.map(|r| (r.0 * 60.0).round() as u64).unwrap_or(0)
                ),
            );
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket() {
        let r = RateLimiter::new(2.0, 3.0);
        let t0 = Instant::now();
        assert!(r.take("a", t0).is_ok());
        assert!(r.take("a", t0).is_ok());
        assert!(r.take("a", t0).is_ok());
        let wait = r.take("a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        assert!(r.take("b", t0).is_ok(), "buckets are per principal");
        assert!(r.take("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(r.take("a", t0 + Duration::from_millis(500)).is_err());
    }

    #[tokio::test]
    async fn calls_are_counted_per_principal_and_in_all() {
        let c = Calls::new(Some(2), None);
        let a1 = c.try_start("a").await.unwrap();
        let _a2 = c.try_start("a").await.unwrap();
        assert_eq!(c.try_start("a").await.err(), Some(2));
        let b = c.try_start("b").await.unwrap();
        assert_eq!(c.in_flight(), 3);
        drop(a1);
        assert!(c.try_start("a").await.is_ok());
        drop(b);
        assert!(!c.wait_idle(tokio::time::Instant::now() + Duration::from_millis(10)).await);
        drop(_a2);
        assert!(c.wait_idle(tokio::time::Instant::now() + Duration::from_millis(10)).await);
    }

    // ---- shared through Redis (skipped when there is none) ----

    use crate::config::RedisSettings;

    /// The test Redis (CODEMODE_TEST_REDIS, default redis://127.0.0.1:6379)
    /// and a key prefix of this test's own, or `None` (printed) when it
    /// does not answer.
    async fn redis(tag: &str) -> Option<(RedisSettings, redis::aio::MultiplexedConnection)> {
        let url = std::env::var("CODEMODE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let conn = async {
            let client = redis::Client::open(url.as_str())?;
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await?;
            Ok::<_, redis::RedisError>(c)
        };
        match tokio::time::timeout(Duration::from_secs(2), conn).await {
            Ok(Ok(c)) => {
                let prefix = format!("codemode-test:{}:{tag}:", std::process::id());
                Some((RedisSettings { url, prefix }, c))
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                eprintln!("skipping the Redis limit test {tag}: {url}: {why} (start Redis or set CODEMODE_TEST_REDIS)");
                None
            }
        }
    }

    async fn clean(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(conn).await.unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&keys).query_async(conn).await.unwrap();
        }
    }

    async fn pttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
        redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
    }

    #[tokio::test]
    async fn two_replicas_share_one_bucket() {
        let Some((settings, mut conn)) = redis("rate").await else { return };
        // Two replicas: each its own Rate, one Redis. 60 per minute, burst 3.
        let (a, b) = (
            Rate::new(1.0, 3.0, Some(Shared::new(&settings).unwrap())),
            Rate::new(1.0, 3.0, Some(Shared::new(&settings).unwrap())),
        );
        assert!(a.take("alice").await.is_ok());
        assert!(b.take("alice").await.is_ok());
        assert!(a.take("alice").await.is_ok());
        // The fourth, on either replica, waits for the refill (one a second).
        let wait = b.take("alice").await.unwrap_err();
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(a.take("alice").await.is_err());
        assert!(a.take("bob").await.is_ok(), "buckets are per principal");
        // Nothing stays behind: the bucket expires once it would be full.
        let ttl = pttl(&mut conn, &format!("{}rate:alice", settings.prefix)).await;
        assert!(ttl > 0 && ttl <= 4000, "{ttl}");
        clean(&mut conn, &settings.prefix).await;
    }

    #[tokio::test]
    async fn calls_are_leased_across_replicas_and_expire_with_a_crashed_one() {
        let Some((settings, mut conn)) = redis("calls").await else { return };
        let (a, b) = (
            Calls::new(Some(2), Some(Shared::new(&settings).unwrap())),
            Calls::new(Some(2), Some(Shared::new(&settings).unwrap())),
        );
        let on_a = a.try_start("alice").await.unwrap();
        let _on_b = b.try_start("alice").await.unwrap();
        assert_eq!(a.try_start("alice").await.err(), Some(2), "the fleet runs two already");
        assert_eq!(b.try_start("alice").await.err(), Some(2));
        let _bob = b.try_start("bob").await.unwrap();
        let key = format!("{}calls:alice", settings.prefix);
        let ttl = pttl(&mut conn, &key).await;
        assert!(ttl > 0 && ttl <= 30_000, "{ttl}");
        // Ending a call gives its lease back.
        drop(on_a);
        let deadline = Instant::now() + Duration::from_secs(2);
        let again = loop {
            match b.try_start("alice").await {
                Ok(p) => break p,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(n) => panic!("the lease was not given back ({n})"),
            }
        };
        drop(again);
        drop(_on_b);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A crashed replica's call: a lease nobody renews. It counts until
        // it expires, then not.
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
        let soon = secs * 1000 + micros / 1000 + 300;
        let _: i64 = redis::cmd("ZADD").arg(&key).arg(soon).arg("crashed-1").query_async(&mut conn).await.unwrap();
        let _: i64 = redis::cmd("ZADD").arg(&key).arg(soon).arg("crashed-2").query_async(&mut conn).await.unwrap();
        assert_eq!(a.try_start("alice").await.err(), Some(2));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(a.try_start("alice").await.is_ok(), "expired leases stop counting");
        clean(&mut conn, &settings.prefix).await;
    }

    #[tokio::test]
    async fn without_redis_each_replica_limits_on_its_own() {
        // Nothing listens on port 1: every request falls back at once.
        let settings = RedisSettings { url: "redis://:pw@127.0.0.1:1".into(), prefix: "codemode-test:".into() };
        let rate = Rate::new(1.0, 2.0, Some(Shared::new(&settings).unwrap()));
        let started = Instant::now();
        assert!(rate.take("alice").await.is_ok());
        assert!(rate.take("alice").await.is_ok());
        assert!(rate.take("alice").await.is_err(), "the local bucket holds");
        let calls = Calls::new(Some(1), Some(Shared::new(&settings).unwrap()));
        let one = calls.try_start("alice").await.unwrap();
        assert_eq!(calls.try_start("alice").await.err(), Some(1), "the local count holds");
        drop(one);
        assert!(calls.try_start("alice").await.is_ok());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn too_many_says_when() {
        let r = too_many(Duration::from_millis(1200), "x".into());
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
