//! Per-principal limits shared by a fleet through Redis (`[server]
//! redis_url`): the token bucket as one Lua script (EVALSHA, atomic on the
//! server, timed by the server's clock so replicas need not agree on
//! theirs), concurrent calls as leases.
//!
//! Keys (under `[server] redis_prefix`, default `codemode:`):
//!
//! - `<prefix>rate:<principal>`: hash `{tokens, ts}`; expires once the
//!   bucket would be full again, so idle principals leave nothing behind.
//! - `<prefix>calls:<principal>`: sorted set of running call ids scored by
//!   their lease's expiry (Redis time, ms). A call renews its lease every
//!   [`RENEW_EVERY`] while it runs and removes it when it ends; a replica
//!   that crashes stops renewing, and its calls stop counting after
//!   [`LEASE`]. The key expires with its last lease.
//!
//! **When Redis cannot answer** (down, slow past [`TIMEOUT`]), each replica
//! falls back to its own in-process limits for that request — so the fleet
//! keeps serving, with limits per replica instead of per fleet (at most N
//! times looser with N replicas) — and says so loudly: one error line per
//! [`LOG_EVERY`], with how many requests fell back since the last. The
//! choice is availability over exactness, the same one the audit trail
//! makes for a failing store: refusing every request because the limiter's
//! store is away would turn a Redis outage into a full outage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::Script;

use crate::config::{Problem, RedisSettings};

/// How long a lease lasts without renewal: a crashed replica's calls stop
/// counting after this.
pub(crate) const LEASE: Duration = Duration::from_secs(30);

/// How often a running call renews its lease.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(10);

/// Connect and response timeout: a request waits at most this long for
/// Redis before it falls back.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(500);

/// At most one fallback error line per this long.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The token bucket: `KEYS[1]` the bucket, `ARGV` tokens per ms and the
/// bucket size. Returns `{1, 0}` when a token was taken, else `{0, ms}`
/// until one is there.
const BUCKET: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local taken = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return {taken, wait}
"#;

/// A lease: `KEYS[1]` the principal's calls, `ARGV` the call id, the limit
/// and the lease in ms. Expired leases go first; returns 1 when the call
/// may start (and holds a lease now), 0 when the principal runs its limit.
const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1
"#;

/// Renews a running call's lease (`KEYS[1]`, `ARGV` id and lease ms);
/// returns 0 when it was no longer there (it had expired).
const RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < lease then
    redis.call('PEXPIRE', KEYS[1], lease)
  end
  return 1
end
return 0
"#;

/// The Redis side of the limits: one multiplexed, reconnecting connection
/// and the three scripts.
pub(crate) struct Shared {
    conn: ConnectionManager,
    prefix: String,
    url: String,
    bucket: Script,
    acquire: Script,
    renew: Script,
    /// This process's part of every call id.
    replica: String,
    next_id: AtomicU64,
    /// Requests that fell back since the last error line, and when that was.
    fallbacks: AtomicU64,
    last_log: std::sync::Mutex<Option<Instant>>,
}

impl Shared {
    /// The connection is made on first use (and again after a failure), so
    /// a Redis that is down at start-up does not stop the server: its
    /// requests fall back until it is up.
    pub fn new(settings: &RedisSettings) -> Result<Arc<Shared>, Vec<Problem>> {
        let problem = |e: redis::RedisError| {
            vec![Problem {
                key: "server.redis_url".into(),
                message: format!("{}: {e}", crate::config::mask_redis_url(&settings.url)),
            }]
        };
        let client = redis::Client::open(settings.url.as_str()).map_err(problem)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(problem)?;
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(|_| {
            vec![Problem { key: "server.redis_url".into(), message: "no randomness for call ids".into() }]
        })?;
        tracing::info!(url = %crate::config::mask_redis_url(&settings.url), prefix = %settings.prefix, "limits: per-principal rate and concurrent calls are shared through Redis");
        Ok(Arc::new(Shared {
            conn,
            prefix: settings.prefix.clone(),
            url: crate::config::mask_redis_url(&settings.url),
            bucket: Script::new(BUCKET),
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            replica: nonce.iter().map(|b| format!("{b:02x}")).collect(),
            next_id: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            last_log: std::sync::Mutex::new(None),
        }))
    }

    fn key(&self, kind: &str, principal: &str) -> String {
        format!("{}{kind}:{principal}", self.prefix)
    }

    /// Takes a token from `principal`'s fleet-wide bucket: `Ok(Ok(()))`,
    /// or `Ok(Err(wait))` when it is empty; `Err` when Redis did not answer.
    pub async fn take(&self, principal: &str, per_sec: f64, burst: f64) -> redis::RedisResult<Result<(), Duration>> {
        let mut conn = self.conn.clone();
        let (taken, wait_ms): (i64, i64) = self
            .bucket
            .key(self.key("rate", principal))
            .arg(per_sec / 1000.0)
            .arg(burst)
            .invoke_async(&mut conn)
            .await?;
        Ok(if taken == 1 { Ok(()) } else { Err(Duration::from_millis(wait_ms.max(1) as u64)) })
    }

    /// A lease for one more call of `principal`: `Ok(None)` when it already
    /// runs `limit` calls across the fleet; `Err` when Redis did not answer.
    pub async fn lease(self: &Arc<Self>, principal: &str, limit: usize) -> redis::RedisResult<Option<Lease>> {
        let id = format!("{}-{}", self.replica, self.next_id.fetch_add(1, Ordering::Relaxed));
        let key = self.key("calls", principal);
        let mut conn = self.conn.clone();
        let got: i64 =
            self.acquire.key(&key).arg(&id).arg(limit).arg(LEASE.as_millis() as u64).invoke_async(&mut conn).await?;
        if got != 1 {
            return Ok(None);
        }
        let shared = self.clone();
        let (k, i) = (key.clone(), id.clone());
        let renewing = tokio::spawn(async move {
            let mut tick = tokio::time::interval(RENEW_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                let mut conn = shared.conn.clone();
                let r: redis::RedisResult<i64> =
                    shared.renew.key(&k).arg(&i).arg(LEASE.as_millis() as u64).invoke_async(&mut conn).await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "limits: a call's lease in Redis could not be renewed (it counts until it expires)");
                }
            }
        });
        Ok(Some(Lease { shared: self.clone(), key, id, renewing }))
    }

    /// Notes that a request used this replica's own limits because Redis
    /// failed with `e`; logs at most once per [`LOG_EVERY`].
    pub fn fell_back(&self, what: &str, e: &redis::RedisError) {
        let n = self.fallbacks.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last_log.lock().expect("fallback log lock");
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        self.fallbacks.store(0, Ordering::Relaxed);
        tracing::error!(
            url = %self.url,
            error = %e,
            limit = what,
            requests = n,
            "limits: Redis does not answer; this replica enforces its own per-principal limits until it does (the fleet's limits are looser meanwhile)"
        );
    }
}

/// A running call's place in its principal's fleet-wide count: renewed
/// while it lives, removed when it is dropped.
pub(crate) struct Lease {
    shared: Arc<Shared>,
    key: String,
    id: String,
    renewing: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewing.abort();
        let (shared, key, id) = (self.shared.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut conn = shared.conn.clone();
                let r: redis::RedisResult<i64> = redis::cmd("ZREM").arg(&key).arg(&id).query_async(&mut conn).await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "limits: a finished call's lease could not be removed from Redis (it expires by itself)");
                }
            });
        }
    }
}
