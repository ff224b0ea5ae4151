//! Upstream sessions per principal, for a server authenticated per user
//! ([`crate::PerUser`]): each principal's session is opened with that
//! principal's own credential on its first use, kept in a bounded map, never
//! shared and never used for anyone else.
//!
//! A session is keyed by the principal's name and remembers a fingerprint
//! of the credential it was opened with: the same principal presenting a
//! different credential gets a new session (the old one is closed), so a
//! session never outlives the credential that opened it. Opening is once per
//! principal however many calls race for it ([`tokio::sync::OnceCell`]);
//! one that fails is forgotten, so it affects only that principal and the
//! next call tries again — no backoff shared with anyone else. Sessions idle
//! past [`PerUser::idle`] are closed, and at [`PerUser::max_sessions`] the
//! least recently used idle one is; closing ends the transport, which sends
//! the upstream `DELETE` for its session id.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::service::{Peer, RoleClient};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use codemode_upstream::{Auth, Presented, Scrubber, Who};

use crate::config::{PerUser, PortalOptions};
use crate::upstream::{self, error, lock, RawTool, Server};
use crate::Candidates;

/// Who a session is for, owned (a [`Who`] borrows): what the credential is
/// chosen by.
#[derive(Clone, Debug)]
pub(crate) struct Person {
    pub principal: Option<String>,
    pub groups: Vec<String>,
    pub presented: Presented,
}

impl Person {
    pub fn of(who: &Who<'_>) -> Self {
        Person {
            principal: who.principal.map(str::to_owned),
            groups: who.groups.to_vec(),
            presented: who.presented.clone(),
        }
    }

    pub fn who(&self) -> Who<'_> {
        Who { principal: self.principal.as_deref(), groups: &self.groups, presented: &self.presented }
    }

    /// The map key: the principal's name (stdio and `codemode exec`: none).
    fn key(&self) -> &str {
        self.principal.as_deref().unwrap_or("")
    }
}

/// A bounded map from principal to session, with the credential
/// fingerprint each was opened with. Generic over the session so its rules
/// (cap, idle eviction, no reuse across principals or credentials) are
/// tested without a network.
pub(crate) struct SessionMap<V> {
    max: usize,
    idle: Duration,
    entries: HashMap<String, Entry<V>>,
}

struct Entry<V> {
    credential: u64,
    value: V,
    last_used: Instant,
}

impl<V: Clone> SessionMap<V> {
    pub fn new(max: usize, idle: Duration) -> Self {
        SessionMap { max: max.max(1), idle, entries: HashMap::new() }
    }

    /// The session of `key` opened with `credential`, marked used at `now`.
    /// A session of `key` opened with another credential is removed and
    /// returned second, for closing.
    pub fn get(&mut self, key: &str, credential: u64, now: Instant) -> (Option<V>, Option<V>) {
        match self.entries.get_mut(key) {
            Some(e) if e.credential == credential => {
                e.last_used = now;
                (Some(e.value.clone()), None)
            }
            Some(_) => (None, self.entries.remove(key).map(|e| e.value)),
            None => (None, None),
        }
    }

    /// Adds `key`'s session; returns what must be closed: a session it
    /// replaces, and at the cap the least recently used one that `busy`
    /// does not hold (none idle: the map grows past the cap until one is,
    /// rather than failing a call that is running).
    pub fn insert(&mut self, key: &str, credential: u64, value: V, now: Instant, busy: &dyn Fn(&V) -> bool) -> Vec<V> {
        let mut out: Vec<V> = self.entries.remove(key).map(|e| e.value).into_iter().collect();
        while self.entries.len() >= self.max {
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| !busy(&e.value))
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest.and_then(|k| self.entries.remove(&k)) {
                Some(e) => out.push(e.value),
                None => break,
            }
        }
        self.entries.insert(key.to_string(), Entry { credential, value, last_used: now });
        out
    }

    /// Marks `key`'s session used at `now` (a call ended on it).
    pub fn touch(&mut self, key: &str, now: Instant) {
        if let Some(e) = self.entries.get_mut(key) {
            e.last_used = now;
        }
    }

    /// Removes `key`'s session if `same` says it is the one given.
    pub fn remove_if(&mut self, key: &str, same: &dyn Fn(&V) -> bool) -> Option<V> {
        if self.entries.get(key).is_some_and(|e| same(&e.value)) {
            return self.entries.remove(key).map(|e| e.value);
        }
        None
    }

    /// Removes and returns every session unused for the idle time that
    /// `busy` does not hold.
    pub fn expire(&mut self, now: Instant, busy: &dyn Fn(&V) -> bool) -> Vec<V> {
        let idle = self.idle;
        let old: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_used) >= idle && !busy(&e.value))
            .map(|(k, _)| k.clone())
            .collect();
        old.iter().filter_map(|k| self.entries.remove(k)).map(|e| e.value).collect()
    }

    /// Removes and returns every session.
    pub fn drain(&mut self) -> Vec<V> {
        self.entries.drain().map(|(_, e)| e.value).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// One principal's session, being opened or open.
pub(crate) struct Slot {
    cell: OnceCell<Result<Arc<Live>, Map<String, Value>>>,
}

impl Slot {
    fn live(&self) -> Option<&Arc<Live>> {
        self.cell.get().and_then(|r| r.as_ref().ok())
    }

    /// Being opened, or a call is running on it: not to be evicted.
    fn busy(&self) -> bool {
        match self.cell.get() {
            None => true,
            Some(Ok(live)) => live.in_flight.load(Ordering::SeqCst) > 0,
            Some(Err(_)) => false,
        }
    }
}

/// An open session of one principal.
pub(crate) struct Live {
    pub peer: Peer<RoleClient>,
    /// Ends the session (the transport then sends `DELETE`).
    pub ct: CancellationToken,
    /// The task that watches the session (tool list changes, its end).
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The principal's tools, named and policed as the shared ones are.
    candidates: Mutex<Arc<Candidates>>,
    /// Problems of its tool list.
    pub problems: Mutex<Vec<String>>,
    /// The credential it was opened with, in every encoding: scrubbed from
    /// what its calls return (besides every configured secret).
    pub scrubber: Scrubber,
    in_flight: AtomicUsize,
}

impl Live {
    pub fn candidates(&self) -> Arc<Candidates> {
        lock(&self.candidates).clone()
    }

    /// Counts a call on this session until the guard drops (a busy session
    /// is not evicted).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Ends the session and waits (bounded) until its transport has closed
    /// (and sent `DELETE`).
    async fn close(&self) {
        self.ct.cancel();
        let watcher = lock(&self.watcher).take();
        if let Some(w) = watcher {
            let abort = w.abort_handle();
            if tokio::time::timeout(Duration::from_secs(8), w).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Live {
    /// A session dropped without [`Live::close`] (its portal went away) still
    /// ends: its transport stops and sends `DELETE`.
    fn drop(&mut self) {
        self.ct.cancel();
    }
}

/// A call running on a [`Live`] session.
pub(crate) struct InFlight(Arc<Live>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The sessions of one server authenticated per user.
pub(crate) struct UserSessions {
    map: Mutex<SessionMap<Arc<Slot>>>,
    /// Keys the credential fingerprints (random per process: a fingerprint
    /// says nothing outside it).
    hasher: std::collections::hash_map::RandomState,
}

impl UserSessions {
    pub fn new(p: &PerUser) -> Self {
        UserSessions {
            map: Mutex::new(SessionMap::new(p.max_sessions, p.idle)),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// How many sessions are open (or opening).
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// The principal's open session, if it has one with the credential it
    /// would be opened with now (no opening, no network).
    pub fn existing(&self, server: &Server, person: &Person) -> Option<Arc<Live>> {
        let (headers, _) = credential(server, person).ok()?;
        let fp = self.fingerprint(&headers);
        let (slot, stale) = lock(&self.map).get(person.key(), fp, Instant::now());
        close_all(stale.into_iter().collect());
        slot.and_then(|s| s.live().cloned()).filter(|l| !l.peer.is_transport_closed())
    }

    /// The principal's session, opened now if it has none: an error object
    /// (`CredentialRequired` when no credential is configured or presented
    /// for it, `UpstreamUnavailable` when the upstream refused or did not
    /// answer) for the code.
    pub async fn open(
        &self,
        server: &Arc<Server>,
        options: &PortalOptions,
        scrubber: &Scrubber,
        person: &Person,
    ) -> Result<Arc<Live>, Map<String, Value>> {
        let (headers, secrets) = credential(server, person)?;
        let fp = self.fingerprint(&headers);
        let key = person.key();
        for _ in 0..2 {
            let slot = {
                let mut map = lock(&self.map);
                let (found, stale) = map.get(key, fp, Instant::now());
                close_all(stale.into_iter().collect());
                match found {
                    Some(slot) => slot,
                    None => {
                        let slot = Arc::new(Slot { cell: OnceCell::new() });
                        let evicted = map.insert(key, fp, slot.clone(), Instant::now(), &|s: &Arc<Slot>| s.busy());
                        close_all(evicted);
                        slot
                    }
                }
            };
            let opened = slot
                .cell
                .get_or_init(|| open_live(server.clone(), options.clone(), headers.clone(), &secrets, scrubber, person))
                .await
                .clone();
            match opened {
                Ok(live) if !live.peer.is_transport_closed() => return Ok(live),
                // Ended since (upstream restarted, idle close raced): once more.
                Ok(_) => {
                    let gone = lock(&self.map).remove_if(key, &|s| Arc::ptr_eq(s, &slot));
                    close_all(gone.into_iter().collect());
                }
                Err(e) => {
                    // Forgotten: only this principal saw it, and its next call tries again.
                    lock(&self.map).remove_if(key, &|s| Arc::ptr_eq(s, &slot));
                    return Err(e);
                }
            }
        }
        Err(error(
            "UpstreamUnavailable",
            format!("server `{}`: your session ended while it was being opened; try again", server.config.name),
        ))
    }

    /// Marks the principal's session used now (a call ended on it).
    pub fn touch(&self, person: &Person) {
        lock(&self.map).touch(person.key(), Instant::now());
    }

    /// Forgets the principal's session if it is `live` (it ended).
    pub fn forget(&self, person: &Person, live: &Arc<Live>) {
        let gone = lock(&self.map).remove_if(person.key(), &|s| s.live().is_some_and(|l| Arc::ptr_eq(l, live)));
        close_all(gone.into_iter().collect());
    }

    /// Closes the sessions idle past the idle time; returns how many.
    pub async fn expire(&self) -> usize {
        let old = lock(&self.map).expire(Instant::now(), &|s: &Arc<Slot>| s.busy());
        let n = old.len();
        close_slots(old).await;
        n
    }

    /// Closes every session (shutdown).
    pub async fn close_every(&self) {
        let all = lock(&self.map).drain();
        close_slots(all).await;
    }

    fn fingerprint(&self, headers: &[(String, String)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        for (k, v) in headers {
            h.write(k.to_ascii_lowercase().as_bytes());
            h.write_u8(0);
            h.write(v.as_bytes());
            h.write_u8(0);
        }
        h.finish()
    }
}

/// Closes sessions in the background (from under a lock).
fn close_all(slots: Vec<Arc<Slot>>) {
    if slots.is_empty() {
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(close_slots(slots));
    } else {
        for s in &slots {
            if let Some(l) = s.live() {
                l.ct.cancel();
            }
        }
    }
}

async fn close_slots(slots: Vec<Arc<Slot>>) {
    let closing = slots.iter().filter_map(|s| s.live().cloned()).map(|l| async move { l.close().await });
    futures::future::join_all(closing).await;
}

/// The headers a session is opened with, and the secrets they carry.
type Credential = (Vec<(String, String)>, Vec<String>);

/// The headers `person`'s session is opened with, and the secrets they
/// carry; or the error saying why there is no credential for them.
fn credential(server: &Server, person: &Person) -> Result<Credential, Map<String, Value>> {
    let name = &server.config.name;
    let Some(per_user) = &server.config.per_user else {
        return Err(error("UpstreamUnavailable", format!("server `{name}` has no per-user credential")));
    };
    let what = format!("the `{name}` MCP server");
    let auth = per_user.auth.resolve_for(&what, &person.who()).map_err(|e| {
        let mut m = error(
            "CredentialRequired",
            format!("server `{name}` acts as each user, with that user's own credential: {}", e.message),
        );
        m.insert("retryable".into(), Value::Bool(false));
        m
    })?;
    let headers = headers_of(&auth);
    // As for a presented credential: the credential part of `Scheme …` (the
    // scheme word stays visible, `Bearer [REDACTED]`), for Basic also the
    // decoded pair and the password.
    let mut secrets = Presented::new(headers.iter().cloned()).secrets();
    if !matches!(&*auth, Auth::Header { .. }) {
        secrets.extend(auth.secrets());
    }
    secrets.retain(|s| !s.is_empty());
    Ok((headers, secrets))
}

/// The header a concrete credential is sent as.
fn headers_of(auth: &Auth) -> Vec<(String, String)> {
    use base64::Engine as _;
    match auth {
        Auth::Bearer { token, .. } => vec![("Authorization".into(), format!("Bearer {}", token.expose()))],
        Auth::Header { name, value, .. } => vec![(name.clone(), value.expose().to_string())],
        Auth::Basic { user, password, .. } => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
            vec![("Authorization".into(), format!("Basic {b64}"))]
        }
        // `resolve_for` returns concrete credentials only.
        Auth::None | Auth::Passthrough(_) | Auth::PerPrincipal(_) => vec![],
    }
}

/// Opens one principal's session: connect with its credential, list its
/// tools, and watch the session (tool list changes; its end).
async fn open_live(
    server: Arc<Server>,
    options: PortalOptions,
    headers: Vec<(String, String)>,
    secrets: &[String],
    scrubber: &Scrubber,
    person: &Person,
) -> Result<Arc<Live>, Map<String, Value>> {
    let name = server.config.name.clone();
    let own = Scrubber::new(secrets.iter().cloned());
    let who = person.principal.as_deref().unwrap_or("(no principal)");
    let started = Instant::now();
    let (conn, tools, problems) = upstream::connect(&server, options.connect_timeout, &headers).await.map_err(|e| {
        let e = own.scrub_str(&scrubber.scrub_str(&e)).into_owned();
        tracing::warn!(server = %name, principal = %who, "opening the principal's session failed: {e}");
        let mut m = error(
            "UpstreamUnavailable",
            format!(
                "server `{name}` (one session per user) could not open your session: {e}. Only your session is \
                     affected; if the upstream refused your credential, check what your MCP client presents (or \
                     what the operator configured for you in `auth_for`), then call again"
            ),
        );
        m.insert("retryable".into(), Value::Bool(true));
        m
    })?;
    tracing::info!(server = %name, principal = %who, tools = tools.len(), ms = started.elapsed().as_millis() as u64, "opened a per-principal session");
    let both = |s: &str| own.scrub_str(&scrubber.scrub_str(s)).into_owned();
    let live = Arc::new(Live {
        peer: conn.peer.clone(),
        ct: conn.ct.clone(),
        watcher: Mutex::new(None),
        candidates: Mutex::new(Arc::new(crate::candidates(&server.config, &tools, &[scrubber, &own]))),
        problems: Mutex::new(problems.iter().map(|p| both(p)).collect()),
        scrubber: own.clone(),
        in_flight: AtomicUsize::new(0),
    });
    let weak = Arc::downgrade(&live);
    let (scrub_all, timeout) = (scrubber.clone(), options.connect_timeout);
    let mut conn = conn;
    let watcher = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut conn.waiting => break,
                _ = conn.list_changed.notified() => {
                    let Some(live) = weak.upgrade() else { break };
                    match tokio::time::timeout(timeout, upstream::list_tools(&live.peer)).await {
                        Ok(Ok((tools, problems))) => {
                            let fresh: Vec<RawTool> = tools;
                            *lock(&live.candidates) =
                                Arc::new(crate::candidates(&server.config, &fresh, &[&scrub_all, &live.scrubber]));
                            *lock(&live.problems) = problems;
                        }
                        Ok(Err(e)) => tracing::warn!(server = %server.config.name, "refreshing a principal's tools failed: {}", live.scrubber.scrub_str(&e)),
                        Err(_) => tracing::warn!(server = %server.config.name, "refreshing a principal's tools timed out"),
                    }
                }
            }
        }
    });
    *lock(&live.watcher) = Some(watcher);
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_session_is_never_handed_to_another_principal_or_credential() {
        let mut m: SessionMap<&str> = SessionMap::new(8, Duration::from_secs(60));
        let now = t0();
        assert!(m.insert("alice", 1, "alice-session", now, &|_| false).is_empty());
        assert_eq!(m.get("alice", 1, now), (Some("alice-session"), None));
        // Another principal: nothing, and alice's stays.
        assert_eq!(m.get("bob", 1, now), (None, None));
        assert_eq!(m.get("", 1, now), (None, None));
        assert_eq!(m.len(), 1);
        // alice with another credential: not hers any more; the old one is
        // handed back for closing.
        assert_eq!(m.get("alice", 2, now), (None, Some("alice-session")));
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn the_cap_closes_the_least_recently_used_idle_session() {
        let mut m: SessionMap<&str> = SessionMap::new(2, Duration::from_secs(60));
        let now = t0();
        m.insert("a", 1, "A", now, &|_| false);
        m.insert("b", 1, "B", now + Duration::from_secs(1), &|_| false);
        // a used after b: b is the least recently used.
        m.get("a", 1, now + Duration::from_secs(2));
        assert_eq!(m.insert("c", 1, "C", now + Duration::from_secs(3), &|_| false), vec!["B"]);
        assert_eq!(m.len(), 2);
        // A busy session is not evicted: the map grows rather than failing a call.
        assert_eq!(m.insert("d", 1, "D", now + Duration::from_secs(4), &|_| true), Vec::<&str>::new());
        assert_eq!(m.len(), 3);
        // Replacing a principal's session hands the old one back.
        assert_eq!(m.insert("d", 2, "D2", now + Duration::from_secs(5), &|_| true), vec!["D"]);
    }

    #[test]
    fn idle_sessions_expire_unless_busy() {
        let idle = Duration::from_secs(10);
        let mut m: SessionMap<&str> = SessionMap::new(8, idle);
        let now = t0();
        m.insert("a", 1, "A", now, &|_| false);
        m.insert("b", 1, "B", now, &|_| false);
        m.insert("c", 1, "C", now + Duration::from_secs(8), &|_| false);
        assert!(m.expire(now + Duration::from_secs(9), &|_| false).is_empty());
        let mut gone = m.expire(now + idle, &|v| *v == "B");
        gone.sort();
        assert_eq!(gone, vec!["A"], "b is busy, c is recent");
        m.touch("c", now + Duration::from_secs(15));
        assert!(m.expire(now + Duration::from_secs(20), &|v| *v == "B").is_empty());
        assert_eq!(m.expire(now + Duration::from_secs(30), &|_| false).len(), 2);
        assert_eq!(m.len(), 0);
    }

    #[test]
    fn remove_if_removes_only_the_same_session() {
        let mut m: SessionMap<&str> = SessionMap::new(8, Duration::from_secs(60));
        m.insert("a", 1, "A1", t0(), &|_| false);
        assert_eq!(m.remove_if("a", &|v| *v == "A0"), None);
        assert_eq!(m.remove_if("a", &|v| *v == "A1"), Some("A1"));
    }

    #[test]
    fn headers_of_each_concrete_credential() {
        use codemode_upstream::Secret;
        let b = Auth::Bearer { token: Secret::new("tok-1".into()), source: "$T".into() };
        assert_eq!(headers_of(&b), vec![("Authorization".to_string(), "Bearer tok-1".to_string())]);
        let h = Auth::Header { name: "X-Key".into(), value: Secret::new("k".into()), source: "$K".into() };
        assert_eq!(headers_of(&h), vec![("X-Key".to_string(), "k".to_string())]);
        let basic = Auth::Basic { user: "u".into(), password: Secret::new("p".into()), source: "$P".into() };
        assert_eq!(headers_of(&basic)[0].1, "Basic dTpw");
    }
}
