//! Stateful rehearsal: resources kept in memory, one store per caller.
//!
//! A store maps a concrete collection path (`/zones/023e…/dns_records`) to
//! the resources in it, in creation order. Which requests touch it is read
//! from the spec's path templates (see `MockApi::stateful`): a template that
//! has an item template below it (`…/dns_records` and
//! `…/dns_records/{dns_record_id}`) is a collection.
//!
//! Memory is bounded: at most [`StateConfig::max_resources`] resources per
//! store, at most [`StateConfig::max_stores`] stores (the least recently
//! used is dropped), and a store unused for [`StateConfig::idle`] is dropped
//! — so sessions that end without saying so do not pile up.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use codemode_upstream::Caller;
use serde_json::Value;

/// Whose state a request sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One store per authenticated principal (one for the process over stdio).
    Principal,
    /// One store per MCP session of a principal (one for the process over
    /// stdio; per principal when the transport has no sessions).
    Session,
}

/// How a stateful rehearsal keeps its state.
#[derive(Clone, Debug)]
pub struct StateConfig {
    /// Whose state a request sees.
    pub scope: Scope,
    /// Resources one store holds at most; a create beyond is refused (507).
    pub max_resources: usize,
    /// Stores kept at most; the least recently used is dropped first.
    pub max_stores: usize,
    /// A store unused this long is dropped.
    pub idle: Duration,
}

impl StateConfig {
    /// The defaults: 10,000 resources per store, 1,000 stores, one hour idle.
    pub fn new(scope: Scope) -> StateConfig {
        StateConfig { scope, max_resources: 10_000, max_stores: 1_000, idle: Duration::from_secs(3600) }
    }
}

/// The resources of one caller.
#[derive(Debug)]
pub(crate) struct Store {
    used: Instant,
    /// Collection path → resources in creation order.
    pub collections: HashMap<String, Vec<Value>>,
    /// Resources in all collections.
    pub count: usize,
    /// Ids handed out so far (the seed of the next one).
    made: u64,
}

impl Store {
    /// An empty store (to hand out ids outside any caller's state).
    pub fn scratch() -> Store {
        Store::new(&HashMap::new())
    }

    fn new(seed: &HashMap<String, Vec<Value>>) -> Store {
        let count = seed.values().map(Vec::len).sum();
        Store { used: Instant::now(), collections: seed.clone(), count, made: 0 }
    }

    /// A fresh id shaped like `like` (a synthesised id of the resource): the
    /// next integer for numbers, a UUID for UUIDs, 32 hex digits otherwise
    /// (Cloudflare's identifiers), never one the collection already has.
    pub fn new_id(&mut self, collection: &str, like: Option<&Value>) -> Value {
        let existing = self.collections.get(collection);
        let taken = |v: &Value| existing.is_some_and(|list| list.iter().any(|r| r.get("id") == Some(v)));
        if let Some(Value::Number(_)) = like {
            let max = existing
                .map(|list| list.iter().filter_map(|r| r.get("id").and_then(Value::as_u64)).max().unwrap_or(0))
                .unwrap_or(0);
            return Value::from(max + 1);
        }
        loop {
            self.made += 1;
            let mut h = fnv::FnvHasher::default();
            h.write(collection.as_bytes());
            h.write_u64(self.made);
            let a = h.finish();
            h.write_u64(a);
            let hex = format!("{a:016x}{:016x}", h.finish());
            let id = match like {
                Some(Value::String(s)) if s.len() == 36 && s.matches('-').count() == 4 => Value::String(format!(
                    "{}-{}-4{}-8{}-{}",
                    &hex[0..8],
                    &hex[8..12],
                    &hex[13..16],
                    &hex[17..20],
                    &hex[20..32]
                )),
                _ => Value::String(hex),
            };
            if !taken(&id) {
                return id;
            }
        }
    }
}

/// Every caller's store.
#[derive(Debug)]
pub(crate) struct Stores {
    pub config: StateConfig,
    /// What a new store starts with (the seed file's resources).
    pub seed: HashMap<String, Vec<Value>>,
    stores: Mutex<HashMap<String, Store>>,
}

impl Stores {
    pub fn new(config: StateConfig) -> Stores {
        Stores { config, seed: HashMap::new(), stores: Mutex::new(HashMap::new()) }
    }

    /// The key of `caller`'s store. Session keys include the principal: a
    /// session id presented by someone else never reaches its store.
    fn key(&self, caller: &Caller) -> String {
        let principal = caller.principal.as_deref().unwrap_or("");
        match (self.config.scope, &caller.session) {
            (Scope::Session, Some(session)) => format!("s\u{0}{principal}\u{0}{session}"),
            _ => format!("p\u{0}{principal}"),
        }
    }

    /// Runs `f` on `caller`'s store (created from the seed on first use),
    /// dropping idle stores and the least recently used beyond the cap.
    pub fn with<R>(&self, caller: &Caller, f: impl FnOnce(&mut Store) -> R) -> R {
        let key = self.key(caller);
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        stores.retain(|k, s| *k == key || now.duration_since(s.used) < self.config.idle);
        if !stores.contains_key(&key) {
            while stores.len() >= self.config.max_stores.max(1) {
                let Some(oldest) = stores.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone()) else { break };
                stores.remove(&oldest);
            }
        }
        let store = stores.entry(key).or_insert_with(|| Store::new(&self.seed));
        store.used = now;
        f(store)
    }

    /// How many stores are held (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.stores.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caller(p: &str, s: Option<&str>) -> Caller {
        Caller { principal: Some(p.into()), session: s.map(String::from) }
    }

    #[test]
    fn stores_are_per_principal_or_per_session() {
        let stores = Stores::new(StateConfig::new(Scope::Session));
        stores.with(&caller("alice", Some("1")), |s| s.collections.insert("/x".into(), vec![json!({"id": 1})]));
        assert!(stores.with(&caller("alice", Some("2")), |s| s.collections.is_empty()));
        // Another principal presenting alice's session id gets its own store.
        assert!(stores.with(&caller("mallory", Some("1")), |s| s.collections.is_empty()));
        assert!(stores.with(&caller("alice", Some("1")), |s| s.collections.contains_key("/x")));

        let stores = Stores::new(StateConfig::new(Scope::Principal));
        stores.with(&caller("alice", Some("1")), |s| s.collections.insert("/x".into(), vec![]));
        assert!(stores.with(&caller("alice", Some("2")), |s| s.collections.contains_key("/x")));
        assert!(stores.with(&caller("bob", Some("1")), |s| s.collections.is_empty()));
    }

    #[test]
    fn stores_are_bounded_and_expire() {
        let mut config = StateConfig::new(Scope::Principal);
        config.max_stores = 2;
        let stores = Stores::new(config);
        for p in ["a", "b", "c"] {
            stores.with(&caller(p, None), |_| ());
        }
        assert_eq!(stores.len(), 2);
        let mut config = StateConfig::new(Scope::Principal);
        config.idle = Duration::ZERO;
        let stores = Stores::new(config);
        stores.with(&caller("a", None), |_| ());
        stores.with(&caller("b", None), |_| ());
        assert_eq!(stores.len(), 1);
    }

    #[test]
    fn new_ids_are_shaped_like_the_spec_and_unique() {
        let mut store = Store::new(&HashMap::new());
        let hex = store.new_id("/x", Some(&json!("023e105f4ecef8ad9ca31a8372d0c353")));
        assert_eq!(hex.as_str().unwrap().len(), 32);
        assert_ne!(hex, store.new_id("/x", None));
        let uuid = store.new_id("/x", Some(&json!("5f0c7a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f")));
        assert_eq!(uuid.as_str().unwrap().len(), 36);
        store.collections.insert("/n".into(), vec![json!({"id": 4})]);
        assert_eq!(store.new_id("/n", Some(&json!(1))), json!(5));
    }
}
