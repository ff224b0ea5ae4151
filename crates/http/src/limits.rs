//! Per-principal limits: request rate (token bucket), tool calls running at
//! once, and sessions owned; plus the count of running tool calls that
//! graceful shutdown waits for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::json;
use tokio::sync::Notify;

use crate::principal::Principal;
use crate::server::AppState;

/// A token bucket per principal.
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

/// Tool calls running now, in all and per principal.
pub(crate) struct Calls {
    total: AtomicUsize,
    idle: Notify,
    per_principal: Mutex<HashMap<String, usize>>,
    limit: Option<usize>,
}

/// One running tool call; dropping it ends it.
pub(crate) struct CallPermit {
    calls: Arc<Calls>,
    principal: String,
}

impl Calls {
    pub fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(Calls {
            total: AtomicUsize::new(0),
            idle: Notify::new(),
            per_principal: Mutex::new(HashMap::new()),
            limit,
        })
    }

    /// Starts a call for `principal`, unless it already runs its limit.
    pub fn try_start(self: &Arc<Self>, principal: &str) -> Result<CallPermit, usize> {
        let mut map = self.per_principal.lock().expect("calls lock");
        let n = map.entry(principal.to_string()).or_insert(0);
        if let Some(limit) = self.limit {
            if *n >= limit {
                return Err(limit);
            }
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(CallPermit { calls: self.clone(), principal: principal.to_string() })
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

/// Which principal opened each session (session mode).
#[derive(Default)]
pub(crate) struct Sessions {
    owners: Mutex<HashMap<String, String>>,
}

impl Sessions {
    pub fn owner(&self, id: &str) -> Option<String> {
        self.owners.lock().expect("sessions lock").get(id).cloned()
    }
    pub fn insert(&self, id: &str, owner: &str) {
        self.owners.lock().expect("sessions lock").insert(id.to_string(), owner.to_string());
    }
    pub fn remove(&self, id: &str) {
        self.owners.lock().expect("sessions lock").remove(id);
    }
    pub fn count_for(&self, owner: &str) -> usize {
        self.owners.lock().expect("sessions lock").values().filter(|o| *o == owner).count()
    }
    /// Forgets sessions that are gone (closed, idle, deleted).
    pub fn retain(&self, live: impl Fn(&str) -> bool) {
        self.owners.lock().expect("sessions lock").retain(|id, _| live(id));
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
        if let Err(wait) = limiter.take(&p.name, Instant::now()) {
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
        let c = Calls::new(Some(2));
        let a1 = c.try_start("a").unwrap();
        let _a2 = c.try_start("a").unwrap();
        assert_eq!(c.try_start("a").err(), Some(2));
        let b = c.try_start("b").unwrap();
        assert_eq!(c.in_flight(), 3);
        drop(a1);
        assert!(c.try_start("a").is_ok());
        drop(b);
        assert!(!c.wait_idle(tokio::time::Instant::now() + Duration::from_millis(10)).await);
        drop(_a2);
        assert!(c.wait_idle(tokio::time::Instant::now() + Duration::from_millis(10)).await);
    }

    #[test]
    fn too_many_says_when() {
        let r = too_many(Duration::from_millis(1200), "x".into());
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
    }
}
