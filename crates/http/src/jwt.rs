//! JWT access tokens (RFC 9068) checked against the issuer's JWKS.
//!
//! Only asymmetric signatures are accepted (`none` and HMAC never): the
//! algorithm comes from the token's header but must be in the configured
//! list and match the key's type (and its `alg`, when the key names one), so
//! a token cannot pick how it is checked. Signatures are verified with ring
//! before any claim is read. Keys are fetched over HTTP(S), cached, fetched
//! again when old, and — for a `kid` not in the cache, as after a key
//! rotation — fetched again at most once per `jwks_min_refresh_secs`, by one
//! request while the others wait for it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, RwLock};

use crate::config::OAuthSettings;

/// A signature algorithm we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub(crate) enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 9] =
        [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512, Alg::ES256, Alg::ES384, Alg::EdDSA];

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }

    fn kty(self) -> &'static str {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => "RSA",
            Alg::ES256 | Alg::ES384 => "EC",
            Alg::EdDSA => "OKP",
        }
    }
}

/// A public key from the JWKS, decoded.
#[derive(Debug)]
pub(crate) struct Key {
    kid: Option<String>,
    /// The key's own `alg`, if it names one.
    alg: Option<String>,
    material: Material,
}

#[derive(Debug)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point, with its curve.
    Ec {
        curve: &'static str,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

impl Key {
    fn suits(&self, alg: Alg) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return false;
        }
        match (&self.material, alg) {
            (Material::Rsa { .. }, a) => a.kty() == "RSA",
            (Material::Ec { curve, .. }, Alg::ES256) => *curve == "P-256",
            (Material::Ec { curve, .. }, Alg::ES384) => *curve == "P-384",
            (Material::Ed25519(_), Alg::EdDSA) => true,
            _ => false,
        }
    }

    fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                    Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                    Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                signature::RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
                    .verify(params, message, sig)
                    .is_ok()
            }
            Material::Ec { point, .. } => {
                let a: &'static dyn signature::VerificationAlgorithm = match alg {
                    Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                    _ => return false,
                };
                UnparsedPublicKey::new(a, point).verify(message, sig).is_ok()
            }
            Material::Ed25519(x) => {
                alg == Alg::EdDSA && UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig).is_ok()
            }
        }
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Decodes one JWK; `None` for keys we cannot use (other types, curves,
/// encryption keys, malformed).
pub(crate) fn decode_jwk(v: &Value) -> Option<Key> {
    let o = v.as_object()?;
    let s = |k: &str| o.get(k).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let material = match s("kty")? {
        "RSA" => {
            let mut n = b64(s("n")?)?;
            let e = b64(s("e")?)?;
            while n.first() == Some(&0) {
                n.remove(0);
            }
            if n.is_empty() || e.is_empty() {
                return None;
            }
            Material::Rsa { n, e }
        }
        "EC" => {
            let (curve, len) = match s("crv")? {
                "P-256" => ("P-256", 32),
                "P-384" => ("P-384", 48),
                _ => return None,
            };
            let x = b64(s("x")?)?;
            let y = b64(s("y")?)?;
            if x.len() != len || y.len() != len {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Material::Ec { curve, point }
        }
        "OKP" => {
            if s("crv")? != "Ed25519" {
                return None;
            }
            let x = b64(s("x")?)?;
            if x.len() != 32 {
                return None;
            }
            Material::Ed25519(x)
        }
        _ => return None,
    };
    Some(Key { kid: s("kid").map(str::to_string), alg: s("alg").map(str::to_string), material })
}

/// Why a token was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JwtError {
    /// Not a JWT at all.
    Opaque,
    /// A JWT that fails a check; the message says which.
    Invalid(String),
    /// The issuer's keys could not be fetched (our problem, not the client's).
    Unavailable(String),
}

/// A token that passed every check.
#[derive(Debug)]
pub(crate) struct Verified {
    pub subject: String,
    pub scopes: BTreeSet<String>,
    pub groups: Vec<String>,
}

struct Cache {
    keys: Vec<Arc<Key>>,
    fetched: Option<Instant>,
}

/// Validates access tokens for one issuer and audience.
pub(crate) struct JwtValidator {
    settings: OAuthSettings,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    /// Held while fetching; the time of the last fetch attempt.
    fetching: Mutex<Option<Instant>>,
    /// The JWKS URL once known (configured or discovered).
    jwks_url: RwLock<Option<String>>,
}

impl JwtValidator {
    pub fn new(settings: OAuthSettings) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let jwks_url = RwLock::new(settings.jwks_url.clone());
        JwtValidator {
            settings,
            http,
            cache: RwLock::new(Cache { keys: Vec::new(), fetched: None }),
            fetching: Mutex::new(None),
            jwks_url,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn resource(&self) -> &str {
        &self.settings.resource
    }

    /// Fetches the keys now (at start-up, so the first request does not
    /// wait); failures are logged and retried on use.
    pub async fn prefetch(&self) {
        if let Err(e) = self.refresh(true).await {
            tracing::warn!(issuer = %self.settings.issuer, "could not fetch the issuer's signing keys yet: {e}");
        }
    }

    /// Checks `token`.
    pub async fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() == 5 {
            return Err(JwtError::Invalid("encrypted tokens (JWE) are not accepted; send a signed JWT".into()));
        }
        if parts.len() != 3 {
            return Err(JwtError::Opaque);
        }
        let header: Map<String, Value> = match b64(parts[0]).and_then(|h| serde_json::from_slice::<Value>(&h).ok()) {
            Some(Value::Object(h)) if h.contains_key("alg") => h,
            _ => return Err(JwtError::Opaque),
        };
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = match Alg::parse(alg_name) {
            Some(a) if self.settings.algorithms.contains(&a) => a,
            _ if alg_name.eq_ignore_ascii_case("none") => {
                return Err(JwtError::Invalid("unsigned tokens (alg \"none\") are refused".into()))
            }
            _ if alg_name.starts_with("HS") => {
                return Err(JwtError::Invalid(format!(
                    "symmetric signatures ({alg_name}) are refused; the issuer must sign with its private key"
                )))
            }
            _ => return Err(JwtError::Invalid(format!("the signature algorithm `{alg_name}` is not accepted here"))),
        };
        if header.contains_key("crit") {
            return Err(JwtError::Invalid("tokens with critical header extensions (crit) are not understood".into()));
        }
        if let Some(typ) = header.get("typ").and_then(Value::as_str) {
            let t = typ.to_ascii_lowercase();
            if !matches!(t.as_str(), "jwt" | "at+jwt" | "application/at+jwt") {
                return Err(JwtError::Invalid(format!("a token of type `{typ}` is not an access token")));
            }
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let sig = b64(parts[2]).ok_or_else(|| JwtError::Invalid("the signature is not base64url".into()))?;
        let message = &token.as_bytes()[..parts[0].len() + 1 + parts[1].len()];

        // Find the key and check the signature before reading any claim.
        let mut verified = self.check_signature(alg, kid, message, &sig).await?;
        if !verified && !self.knows(alg, kid).await {
            // A key we have not seen, as after a rotation: fetch the set
            // again (at most once per min_refresh, whoever asks).
            if self.refresh(false).await.map_err(JwtError::Unavailable)? {
                verified = self.check_signature(alg, kid, message, &sig).await?;
            }
        }
        if !verified {
            return Err(JwtError::Invalid(match kid {
                Some(k) if !self.knows(alg, Some(k)).await => {
                    format!("the signing key `{k}` is not among the issuer's current keys")
                }
                _ => "the signature does not verify".into(),
            }));
        }

        let claims: Map<String, Value> = match b64(parts[1]).and_then(|c| serde_json::from_slice::<Value>(&c).ok()) {
            Some(Value::Object(c)) => c,
            _ => return Err(JwtError::Invalid("the claims are not a JSON object".into())),
        };
        self.check_claims(&claims, now())
    }

    async fn check_signature(&self, alg: Alg, kid: Option<&str>, message: &[u8], sig: &[u8]) -> Result<bool, JwtError> {
        let stale = {
            let c = self.cache.read().await;
            c.fetched.is_none_or(|t| t.elapsed() > self.settings.max_age)
        };
        if stale {
            if let Err(e) = self.refresh(true).await {
                if self.cache.read().await.fetched.is_none() {
                    return Err(JwtError::Unavailable(e));
                }
                tracing::warn!("keeping the issuer's previous signing keys: {e}");
            }
        }
        let cache = self.cache.read().await;
        if cache.fetched.is_none() {
            return Err(JwtError::Unavailable("the issuer's signing keys have not been fetched yet".into()));
        }
        Ok(cache
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.suits(alg))
            .any(|k| k.verify(alg, message, sig)))
    }

    /// Is there a key for this `kid` (any suitable key when the token names
    /// none)?
    async fn knows(&self, alg: Alg, kid: Option<&str>) -> bool {
        let cache = self.cache.read().await;
        cache.keys.iter().any(|k| match kid {
            Some(kid) => k.kid.as_deref() == Some(kid),
            None => k.suits(alg),
        })
    }

    /// The claims check, for a token whose signature verified.
    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<Verified, JwtError> {
        let s = &self.settings;
        let invalid = |m: String| Err(JwtError::Invalid(m));
        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if iss == s.issuer => {}
            Some(iss) => return invalid(format!("the token was issued by `{iss}`, not by `{}`", s.issuer)),
            None => return invalid("the token has no issuer (iss)".into()),
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == s.resource,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(&s.resource)),
            _ => false,
        };
        if !aud_ok {
            return invalid(format!("the token's audience (aud) is not this server: it must include `{}`", s.resource));
        }
        let number = |k: &str| claims.get(k).and_then(Value::as_f64).map(|f| f as u64);
        match number("exp") {
            Some(exp) if now > exp.saturating_add(s.leeway) => {
                return invalid(format!("the token expired {} s ago", now - exp))
            }
            Some(_) => {}
            None => return invalid("the token has no expiry (exp)".into()),
        }
        if let Some(nbf) = number("nbf") {
            if now.saturating_add(s.leeway) < nbf {
                return invalid(format!("the token is not valid for another {} s (nbf)", nbf - now));
            }
        }
        let subject =
            match claims.get("sub").and_then(Value::as_str).or_else(|| claims.get("client_id").and_then(Value::as_str))
            {
                Some(sub) if !sub.is_empty() => sub.to_string(),
                _ => return invalid("the token names no subject (sub)".into()),
            };
        let mut scopes = BTreeSet::new();
        match claims.get("scope") {
            Some(Value::String(sc)) => scopes.extend(sc.split_whitespace().map(str::to_string)),
            Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
        match claims.get("scp") {
            Some(Value::String(sc)) => scopes.extend(sc.split_whitespace().map(str::to_string)),
            Some(Value::Array(a)) => scopes.extend(a.iter().filter_map(Value::as_str).map(str::to_string)),
            _ => {}
        }
        let groups = match claims.get(&s.groups_claim) {
            Some(Value::String(g)) => g.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => vec![],
        };
        Ok(Verified { subject, scopes, groups })
    }

    /// Fetches the key set. `scheduled`: because the cache is empty or old
    /// (always allowed, but only one fetch at a time); otherwise because of
    /// an unknown key, allowed once per `min_refresh`. Returns whether a
    /// fetch happened (or another request's fetch finished meanwhile).
    async fn refresh(&self, scheduled: bool) -> Result<bool, String> {
        let before = self.cache.read().await.fetched;
        let mut last = self.fetching.lock().await;
        // Someone else fetched while we waited for the lock.
        if self.cache.read().await.fetched != before {
            return Ok(true);
        }
        if let Some(t) = *last {
            let floor = if scheduled { Duration::from_secs(1) } else { self.settings.min_refresh };
            if t.elapsed() < floor {
                return Ok(false);
            }
        }
        *last = Some(Instant::now());
        let keys = self.fetch().await?;
        tracing::info!(issuer = %self.settings.issuer, keys = keys.len(), "fetched the issuer's signing keys");
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(true)
    }

    async fn fetch(&self) -> Result<Vec<Arc<Key>>, String> {
        let known = self.jwks_url.read().await.clone();
        let url = match known {
            Some(u) => u,
            None => {
                let u = self.discover().await?;
                *self.jwks_url.write().await = Some(u.clone());
                u
            }
        };
        let doc = self.get_json(&url).await?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{url} is not a JWK set (no `keys` array)"))?;
        let decoded: Vec<Arc<Key>> = keys.iter().filter_map(decode_jwk).map(Arc::new).collect();
        if decoded.is_empty() && !keys.is_empty() {
            return Err(format!("{url} has no signing key codemode can use (RSA, EC P-256/P-384, Ed25519)"));
        }
        Ok(decoded)
    }

    /// `jwks_uri` from RFC 8414 metadata, else OpenID Connect discovery.
    async fn discover(&self) -> Result<String, String> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let u = url::Url::parse(issuer).map_err(|e| format!("issuer: {e}"))?;
        let origin = u.origin().ascii_serialization();
        let path = u.path().trim_end_matches('/');
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ];
        let mut errors = Vec::new();
        for c in candidates {
            match self.get_json(&c).await {
                Ok(meta) => {
                    if meta.get("issuer").and_then(Value::as_str).map(|i| i.trim_end_matches('/')) != Some(issuer) {
                        errors.push(format!("{c} names another issuer"));
                        continue;
                    }
                    match meta.get("jwks_uri").and_then(Value::as_str) {
                        Some(j) if crate::config::is_allowed_fetch_url(j) => return Ok(j.to_string()),
                        Some(j) => errors.push(format!("{c}: jwks_uri `{j}` is not https")),
                        None => errors.push(format!("{c} has no jwks_uri")),
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        Err(format!("could not discover the issuer's jwks_uri ({}); set auth.oauth.jwks_url", errors.join("; ")))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        const MAX: usize = 512 * 1024;
        let mut resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX {
                return Err(format!("GET {url}: larger than {MAX} bytes"));
            }
        }
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    pub(crate) fn settings(jwks_url: &str) -> OAuthSettings {
        OAuthSettings {
            issuer: "http://127.0.0.1/issuer".into(),
            jwks_url: Some(jwks_url.into()),
            resource: "http://127.0.0.1:8080/mcp".into(),
            leeway: 30,
            algorithms: Alg::ALL.to_vec(),
            min_refresh: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            groups_claim: "groups".into(),
        }
    }

    pub(crate) struct EcKey {
        pub kid: String,
        pair: EcdsaKeyPair,
    }

    impl EcKey {
        pub fn new(kid: &str) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            EcKey { kid: kid.into(), pair }
        }
        pub fn jwk(&self) -> Value {
            let p = self.pair.public_key().as_ref();
            json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
                   "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
        }
        pub fn sign(&self, header: Value, claims: Value) -> String {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
            let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
            let msg = format!("{h}.{c}");
            let sig = self.pair.sign(&SystemRandom::new(), msg.as_bytes()).unwrap();
            format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
        pub fn token(&self, claims: Value) -> String {
            self.sign(json!({"alg": "ES256", "kid": self.kid, "typ": "at+jwt"}), claims)
        }
    }

    pub(crate) fn claims(s: &OAuthSettings) -> Value {
        json!({"iss": s.issuer, "aud": s.resource, "sub": "alice", "exp": now() + 300, "iat": now(),
               "scope": "books:read cf:write"})
    }

    /// A validator with `keys` already in its cache (no HTTP).
    async fn validator(keys: &[Value]) -> JwtValidator {
        let mut s = settings("http://127.0.0.1:9/jwks");
        s.min_refresh = Duration::from_secs(3600);
        let v = JwtValidator::new(s);
        {
            let mut c = v.cache.write().await;
            c.keys = keys.iter().filter_map(decode_jwk).map(Arc::new).collect();
            c.fetched = Some(Instant::now());
        }
        *v.fetching.lock().await = Some(Instant::now());
        v
    }

    #[tokio::test]
    async fn a_good_token_passes_and_carries_its_scopes() {
        let k = EcKey::new("k1");
        let v = validator(&[k.jwk()]).await;
        let ok = v.verify(&k.token(claims(&v.settings))).await.unwrap();
        assert_eq!(ok.subject, "alice");
        assert_eq!(ok.scopes.iter().collect::<Vec<_>>(), vec!["books:read", "cf:write"]);
    }

    #[tokio::test]
    async fn every_bad_token_is_refused_with_its_reason() {
        let k = EcKey::new("k1");
        let other = EcKey::new("k1");
        let v = validator(&[k.jwk()]).await;
        let c = claims(&v.settings);
        let with = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut c = c.as_object().unwrap().clone();
            f(&mut c);
            k.token(Value::Object(c))
        };
        let reason = |r: Result<Verified, JwtError>| match r {
            Err(JwtError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(v.verify("opaque-token-123").await.unwrap_err(), JwtError::Opaque);
        assert_eq!(v.verify("a.b.c").await.unwrap_err(), JwtError::Opaque);
        assert!(reason(v.verify(&other.token(c.clone())).await).contains("does not verify"));
        assert!(reason(v.verify(&with(&|c| drop(c.insert("iss".into(), json!("https://evil"))))).await)
            .contains("issued by `https://evil`"));
        assert!(reason(v.verify(&with(&|c| drop(c.insert("aud".into(), json!("https://other/mcp"))))).await)
            .contains("audience"));
        assert!(
            reason(v.verify(&with(&|c| drop(c.insert("exp".into(), json!(now() - 120))))).await).contains("expired")
        );
        // Within the leeway: accepted.
        assert!(v.verify(&with(&|c| drop(c.insert("exp".into(), json!(now() - 10))))).await.is_ok());
        assert!(reason(v.verify(&with(&|c| drop(c.insert("nbf".into(), json!(now() + 120))))).await).contains("nbf"));
        assert!(reason(v.verify(&with(&|c| drop(c.remove("exp")))).await).contains("no expiry"));
        assert!(reason(v.verify(&with(&|c| drop(c.remove("sub")))).await).contains("subject"));
        let unknown = EcKey::new("k2");
        assert!(reason(v.verify(&unknown.token(c.clone())).await).contains("`k2` is not among"));
        // alg confusion
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
        );
        assert!(reason(v.verify(&none).await).contains("none"));
        let hs = k.sign(json!({"alg": "HS256", "kid": "k1"}), c.clone());
        assert!(reason(v.verify(&hs).await).contains("symmetric"));
        let rs = k.sign(json!({"alg": "RS256", "kid": "k1"}), c.clone());
        assert!(reason(v.verify(&rs).await).contains("does not verify"));
        let id = k.sign(json!({"alg": "ES256", "kid": "k1", "typ": "id_token+jwt"}), c.clone());
        assert!(reason(v.verify(&id).await).contains("not an access token"));
        let crit = k.sign(json!({"alg": "ES256", "kid": "k1", "crit": ["x"]}), c.clone());
        assert!(reason(v.verify(&crit).await).contains("crit"));
        assert!(reason(v.verify("a.b.c.d.e").await).contains("JWE"));
    }

    #[tokio::test]
    async fn ed25519_and_arrays_of_audiences_and_scp() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let v = validator(&[jwk]).await;
        let claims = json!({"iss": v.settings.issuer, "aud": ["x", v.settings.resource], "sub": "svc", "exp": now() + 60,
                            "scp": ["books:read"]});
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","kid":"ed"}"#);
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let msg = format!("{h}.{c}");
        let token = format!("{msg}.{}", URL_SAFE_NO_PAD.encode(pair.sign(msg.as_bytes()).as_ref()));
        let ok = v.verify(&token).await.unwrap();
        assert_eq!(ok.subject, "svc");
        assert!(ok.scopes.contains("books:read"));
    }

    #[test]
    fn unusable_keys_are_skipped() {
        assert!(decode_jwk(&json!({"kty": "oct", "k": "AAAA"})).is_none());
        assert!(decode_jwk(&json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"})).is_none());
        assert!(decode_jwk(&json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"})).is_none());
        let k = decode_jwk(&json!({"kty": "RSA", "n": "AAEC", "e": "AQAB", "alg": "RS256"})).unwrap();
        assert!(k.suits(Alg::RS256) && !k.suits(Alg::PS256) && !k.suits(Alg::ES256));
    }
}
