//! What outlives a request: registered clients, grants (with the user's
//! upstream tokens, encrypted) and codemode's own tokens (hashed), in SQLite.
//!
//! Tokens are stored as their SHA-256 only, so a copy of the database
//! gives no usable codemode token. Upstream tokens are sealed with
//! AES-256-GCM under the key from `key_env`, with the grant id as
//! associated data (a sealed blob moved to another grant does not open).

use std::path::Path;
use std::sync::Mutex;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `len` random bytes as base64url (no padding), with a prefix that says
/// what kind of token it is (for people reading logs and for scanners).
pub fn random_token(prefix: &str, len: usize) -> String {
    use base64::Engine as _;
    let mut b = vec![0u8; len];
    SystemRandom::new().fill(&mut b).expect("the system random source works");
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// SHA-256 of a token, as stored.
pub fn hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

/// The user's tokens at the upstream provider (only ever stored sealed).
#[derive(Clone, Serialize, Deserialize)]
pub struct UpstreamTokens {
    /// The upstream access token.
    pub access_token: String,
    /// The upstream refresh token, if the provider issued one.
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds), if the provider said.
    pub expires_at: Option<i64>,
    /// The scopes the provider granted (space-separated), if it said.
    pub scope: Option<String>,
}

impl std::fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamTokens([redacted])")
    }
}

/// A registered client (RFC 7591). Clients that present a Client ID
/// Metadata Document are not stored: their document is fetched each time.
#[derive(Clone, Debug)]
pub struct Client {
    /// The `client_id`.
    pub id: String,
    /// Its name, shown on the consent page.
    pub name: Option<String>,
    /// The exact redirect URIs it may use.
    pub redirect_uris: Vec<String>,
}

/// One user's consent to one client: the scopes chosen and the upstream
/// tokens obtained for them.
#[derive(Clone, Debug)]
pub struct Grant {
    /// Random id.
    pub id: String,
    /// The user at the upstream provider (`sub`).
    pub subject: String,
    /// The client it was granted to.
    pub client_id: String,
    /// The codemode scopes the user chose.
    pub scopes: Vec<String>,
    /// The resource (audience) its tokens are for.
    pub resource: String,
}

/// Which of codemode's tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sent by the MCP client with each request.
    Access,
    /// Exchanged at the token endpoint for a new pair.
    Refresh,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Refresh => "refresh",
        }
    }
}

/// What a token looked up is.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    /// The grant it belongs to.
    pub grant: Grant,
    /// Access or refresh.
    pub kind: Kind,
    /// Unix seconds.
    pub expires_at: i64,
    /// A refresh token already exchanged (its reuse revokes the grant).
    pub used: bool,
}

/// The AES-256-GCM key upstream tokens are sealed with.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// From 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, String> {
        let k = UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| "the encryption key must be exactly 32 bytes (64 hex digits or 43/44 base64 characters)")?;
        Ok(Sealer { key: LessSafeKey::new(k) })
    }

    /// nonce ‖ ciphertext ‖ tag.
    fn seal(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system random source works");
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad.as_bytes()), &mut buf)
            .expect("AES-GCM sealing of a small buffer does not fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    fn open(&self, aad: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = ct.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf).ok()?;
        Some(plain.to_vec())
    }
}

/// The SQLite store. Every operation is one short statement or
/// transaction under the connection's lock.
pub struct Store {
    db: Mutex<Connection>,
    sealer: Sealer,
}

impl Store {
    /// Opens (creating) the database at `path` (`:memory:` for none).
    pub fn open(path: &Path, sealer: Sealer) -> Result<Self, String> {
        let db = Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, name TEXT, redirect_uris TEXT NOT NULL, created INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS grants (id TEXT PRIMARY KEY, subject TEXT NOT NULL, client_id TEXT NOT NULL,
                scopes TEXT NOT NULL, resource TEXT NOT NULL, upstream BLOB, revoked INTEGER NOT NULL DEFAULT 0,
                updated INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS grants_subject ON grants(subject, updated);
             CREATE TABLE IF NOT EXISTS tokens (hash BLOB PRIMARY KEY, grant_id TEXT NOT NULL, kind TEXT NOT NULL,
                expires INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
             CREATE INDEX IF NOT EXISTS tokens_grant ON tokens(grant_id);",
        )
        .map_err(|e| format!("cannot set up {}: {e}", path.display()))?;
        Ok(Store { db: Mutex::new(db), sealer })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a client.
    pub fn add_client(&self, c: &Client) -> rusqlite::Result<()> {
        let uris = serde_json::to_string(&c.redirect_uris).unwrap_or_default();
        self.db().execute(
            "INSERT INTO clients (id, name, redirect_uris, created) VALUES (?1, ?2, ?3, ?4)",
            params![c.id, c.name, uris, now()],
        )?;
        Ok(())
    }

    /// A registered client.
    pub fn client(&self, id: &str) -> rusqlite::Result<Option<Client>> {
        self.db()
            .query_row("SELECT name, redirect_uris FROM clients WHERE id = ?1", params![id], |r| {
                let uris: String = r.get(1)?;
                Ok(Client {
                    id: id.to_string(),
                    name: r.get(0)?,
                    redirect_uris: serde_json::from_str(&uris).unwrap_or_default(),
                })
            })
            .optional()
    }

    /// Stores a new grant with its sealed upstream tokens.
    pub fn add_grant(&self, g: &Grant, upstream: &UpstreamTokens) -> rusqlite::Result<()> {
        let sealed = self.seal(&g.id, upstream);
        self.db().execute(
            "INSERT INTO grants (id, subject, client_id, scopes, resource, upstream, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![g.id, g.subject, g.client_id, g.scopes.join(" "), g.resource, sealed, now()],
        )?;
        Ok(())
    }

    fn seal(&self, grant_id: &str, t: &UpstreamTokens) -> Vec<u8> {
        self.sealer.seal(grant_id, &serde_json::to_vec(t).expect("tokens serialize"))
    }

    /// Replaces a grant's upstream tokens (after a refresh).
    pub fn set_upstream(&self, grant_id: &str, upstream: &UpstreamTokens) -> rusqlite::Result<()> {
        let sealed = self.seal(grant_id, upstream);
        self.db().execute(
            "UPDATE grants SET upstream = ?2, updated = ?3 WHERE id = ?1 AND revoked = 0",
            params![grant_id, sealed, now()],
        )?;
        Ok(())
    }

    /// The newest live grant of `subject` with its upstream tokens.
    pub fn upstream_of(&self, subject: &str) -> rusqlite::Result<Option<(String, UpstreamTokens)>> {
        let row: Option<(String, Vec<u8>)> = self
            .db()
            .query_row(
                "SELECT id, upstream FROM grants WHERE subject = ?1 AND revoked = 0 AND upstream IS NOT NULL
                 ORDER BY updated DESC LIMIT 1",
                params![subject],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(id, sealed)| {
            let plain = self.sealer.open(&id, &sealed)?;
            let t: UpstreamTokens = serde_json::from_slice(&plain).ok()?;
            Some((id, t))
        }))
    }

    /// The grant's upstream tokens, opened (for tests of the sealing).
    pub fn raw_upstream(&self, grant_id: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        self.db()
            .query_row("SELECT upstream FROM grants WHERE id = ?1", params![grant_id], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()
            .map(Option::flatten)
    }

    /// Stores one of codemode's tokens (its hash).
    pub fn add_token(&self, token: &str, grant_id: &str, kind: Kind, expires_at: i64) -> rusqlite::Result<()> {
        self.db().execute(
            "INSERT INTO tokens (hash, grant_id, kind, expires) VALUES (?1, ?2, ?3, ?4)",
            params![hash(token), grant_id, kind.as_str(), expires_at],
        )?;
        Ok(())
    }

    /// Looks a token up (revoked grants' tokens are not found).
    pub fn token(&self, token: &str) -> rusqlite::Result<Option<TokenRecord>> {
        self.db()
            .query_row(
                "SELECT t.kind, t.expires, t.used, g.id, g.subject, g.client_id, g.scopes, g.resource
                 FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ?1 AND g.revoked = 0",
                params![hash(token)],
                |r| {
                    let kind: String = r.get(0)?;
                    let scopes: String = r.get(6)?;
                    Ok(TokenRecord {
                        kind: if kind == "refresh" { Kind::Refresh } else { Kind::Access },
                        expires_at: r.get(1)?,
                        used: r.get::<_, i64>(2)? != 0,
                        grant: Grant {
                            id: r.get(3)?,
                            subject: r.get(4)?,
                            client_id: r.get(5)?,
                            scopes: scopes.split_whitespace().map(String::from).collect(),
                            resource: r.get(7)?,
                        },
                    })
                },
            )
            .optional()
    }

    /// Marks a refresh token exchanged; false when it already was (a
    /// replay, or two exchanges racing: only one wins).
    pub fn use_token(&self, token: &str) -> rusqlite::Result<bool> {
        let n = self.db().execute("UPDATE tokens SET used = 1 WHERE hash = ?1 AND used = 0", params![hash(token)])?;
        Ok(n == 1)
    }

    /// Revokes one access token.
    pub fn delete_token(&self, token: &str) -> rusqlite::Result<()> {
        self.db().execute("DELETE FROM tokens WHERE hash = ?1", params![hash(token)])?;
        Ok(())
    }

    /// Revokes a grant: every token of it stops working and the upstream
    /// tokens are erased. Returns those upstream tokens (opened), the
    /// first time only, so the caller can revoke them at the provider.
    pub fn revoke_grant(&self, grant_id: &str) -> rusqlite::Result<Option<UpstreamTokens>> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let sealed: Option<Vec<u8>> = tx
            .query_row("SELECT upstream FROM grants WHERE id = ?1 AND revoked = 0", params![grant_id], |r| {
                r.get::<_, Option<Vec<u8>>>(0)
            })
            .optional()?
            .flatten();
        tx.execute("UPDATE grants SET revoked = 1, upstream = NULL WHERE id = ?1", params![grant_id])?;
        tx.execute("DELETE FROM tokens WHERE grant_id = ?1", params![grant_id])?;
        tx.commit()?;
        Ok(sealed.and_then(|s| self.sealer.open(grant_id, &s)).and_then(|plain| serde_json::from_slice(&plain).ok()))
    }

    /// Drops expired tokens.
    pub fn prune(&self) -> rusqlite::Result<usize> {
        self.db().execute("DELETE FROM tokens WHERE expires < ?1", params![now() - 60])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open(Path::new(":memory:"), Sealer::new(&[7u8; 32]).unwrap()).unwrap()
    }

    fn grant(id: &str) -> Grant {
        Grant {
            id: id.into(),
            subject: "alice".into(),
            client_id: "c".into(),
            scopes: vec!["a:read".into()],
            resource: "http://x/mcp".into(),
        }
    }

    fn up(t: &str) -> UpstreamTokens {
        UpstreamTokens { access_token: t.into(), refresh_token: Some("r-secret".into()), expires_at: None, scope: None }
    }

    #[test]
    fn upstream_tokens_are_sealed_and_bound_to_their_grant() {
        let s = store();
        s.add_grant(&grant("g1"), &up("upstream-canary-token")).unwrap();
        let raw = s.raw_upstream("g1").unwrap().unwrap();
        assert!(!raw.windows(8).any(|w| w == b"upstream"), "stored in the clear");
        assert_eq!(s.upstream_of("alice").unwrap().unwrap().1.access_token, "upstream-canary-token");
        // The sealed blob of g1 copied onto g2 does not open.
        s.add_grant(&grant("g2"), &up("other")).unwrap();
        s.db()
            .execute("UPDATE grants SET upstream = ?1, updated = updated + 10 WHERE id = 'g2'", params![raw])
            .unwrap();
        assert!(s.upstream_of("alice").unwrap().is_none());
        // Another key does not open it either.
        let other = Sealer::new(&[8u8; 32]).unwrap();
        assert!(other.open("g1", &raw).is_none());
        assert!(Sealer::new(&[1u8; 31]).is_err());
    }

    #[test]
    fn tokens_are_hashed_used_once_and_die_with_their_grant() {
        let s = store();
        s.add_grant(&grant("g1"), &up("u")).unwrap();
        s.add_token("cm_rt_abc", "g1", Kind::Refresh, now() + 60).unwrap();
        let stored: Vec<u8> = s.db().query_row("SELECT hash FROM tokens", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, hash("cm_rt_abc"));
        assert_eq!(s.token("cm_rt_abc").unwrap().unwrap().kind, Kind::Refresh);
        assert!(s.use_token("cm_rt_abc").unwrap());
        assert!(!s.use_token("cm_rt_abc").unwrap(), "a second use must fail");
        let upstream = s.revoke_grant("g1").unwrap();
        assert_eq!(upstream.map(|t| t.access_token).as_deref(), Some("u"), "the upstream tokens, for the provider");
        assert!(s.revoke_grant("g1").unwrap().is_none(), "only the first revocation hands them out");
        assert!(s.token("cm_rt_abc").unwrap().is_none());
        assert!(s.upstream_of("alice").unwrap().is_none());
        assert!(s.raw_upstream("g1").unwrap().is_none(), "upstream tokens erased on revocation");
    }
}
