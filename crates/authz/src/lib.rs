//! `codemode-authz`: codemode as the OAuth 2.1 authorization server of its
//! MCP clients, in front of an upstream OAuth/OpenID provider, following
//! the MCP authorization spec (2025-11-25):
//!
//! ```text
//! MCP client ── 401 + resource_metadata ─▶ /.well-known/oauth-protected-resource (codemode-http)
//!            ── /.well-known/oauth-authorization-server (RFC 8414)
//!            ── /oauth/register (RFC 7591)  or a Client ID Metadata Document URL as client_id
//!            ── /oauth/authorize (PKCE S256, resource) ─▶ consent page: the user picks scopes
//!                  ─▶ upstream /authorize (those scopes' upstream scopes, PKCE) ─▶ user signs in
//!            ◀─ /oauth/callback: code exchanged upstream (oauth2 crate), upstream tokens sealed
//!                  in SQLite, a one-time codemode code to the client's redirect_uri
//!            ── /oauth/token (code + verifier; refresh with rotation) ─▶ opaque, short-lived,
//!                  audience-bound codemode tokens (stored hashed)
//!            ── /oauth/revoke (RFC 7009)
//! /mcp with codemode's token ─▶ Principal `user:<sub>` with the chosen scopes
//! the host, for an API with `auth = { type = "signin" }` ─▶ [`UserCredentials::bearer_for`]
//!            ─▶ that user's upstream access token (refreshed when it expires)
//! ```
//!
//! The state of a sign-in in progress (consent, the upstream round trip,
//! unexchanged codes) is kept in memory for minutes; grants and tokens are
//! in the SQLite file.

mod flow;
pub mod store;
mod upstream;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use codemode_pipeline::Principal;
use serde::Deserialize;

pub use flow::router;
use store::{now, Kind, Sealer, Store};

/// The prefix of a signed-in user's principal name (`user:<sub>`), so a
/// static token's name can never be taken for a signed-in user.
pub const PRINCIPAL_PREFIX: &str = "user:";

/// `[auth.signin]`: sign MCP clients in through an upstream provider.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The upstream OAuth/OpenID provider.
    pub upstream: UpstreamConfig,
    /// What the consent page offers; the user picks among these.
    pub scopes: Vec<OfferedScope>,
    /// Environment variable holding the 32-byte key upstream tokens are
    /// encrypted with (64 hex digits or base64).
    pub key_env: String,
    /// The SQLite file for clients, grants and tokens. Default
    /// `codemode-authz.db` in the working directory.
    #[serde(default)]
    pub store: Option<PathBuf>,
    /// Lifetime of codemode's access tokens, seconds. Default 600.
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Lifetime of codemode's refresh tokens, seconds. Default 30 days.
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// Accept `http://` Client ID Metadata Document URLs on loopback
    /// (development only; the spec requires `https`). Default false.
    #[serde(default)]
    pub allow_http_loopback_client_metadata: bool,
}

fn default_access_ttl() -> u64 {
    600
}
fn default_refresh_ttl() -> u64 {
    30 * 24 * 3600
}

/// `[auth.signin.upstream]`.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The provider's issuer, for discovery (`/.well-known/openid-configuration`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Its authorization endpoint (instead of discovery).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Its token endpoint (instead of discovery).
    #[serde(default)]
    pub token_url: Option<String>,
    /// Its userinfo endpoint, for providers that return no `id_token`.
    #[serde(default)]
    pub userinfo_url: Option<String>,
    /// codemode's client id at the provider.
    pub client_id: String,
    /// Environment variable holding codemode's client secret there.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Upstream scopes always asked for (e.g. `openid`, `offline_access`).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// One choice of the consent page.
#[derive(Clone, Debug, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferedScope {
    /// The codemode scope granted (`<api>:read`, `<api>:write`).
    pub name: String,
    /// The upstream scopes it needs (asked of the provider when chosen).
    #[serde(default)]
    pub upstream: Vec<String>,
    /// Shown on the consent page.
    #[serde(default)]
    pub description: Option<String>,
}

/// The upstream credential of a signed-in principal, for the host: one more
/// source of an API's credential next to the environment.
pub trait UserCredentials: Send + Sync {
    /// The principal's upstream access token (refreshed when expired), or an
    /// error for the model saying what to do (sign in again).
    fn bearer_for<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// The authorization server, built once at start-up.
pub struct AuthServer {
    pub(crate) issuer: String,
    pub(crate) resource: String,
    pub(crate) offered: Vec<OfferedScope>,
    pub(crate) always: Vec<String>,
    pub(crate) access_ttl: i64,
    pub(crate) refresh_ttl: i64,
    pub(crate) http_loopback_cimd: bool,
    pub(crate) store: Store,
    pub(crate) upstream: upstream::Upstream,
    pub(crate) http: reqwest::Client,
    pub(crate) pending: flow::Pending,
    /// One upstream refresh at a time (a rotated refresh token must not be
    /// spent twice).
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServer").field("issuer", &self.issuer).field("resource", &self.resource).finish()
    }
}

/// Why a bearer token is not let in.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not one of codemode's tokens: another verifier may know it.
    NotOurs,
    /// Ours, but not valid (expired, revoked, another audience): the reason.
    Invalid(String),
}

impl Config {
    /// What is wrong with the config and its environment (for `codemode
    /// check` and start-up), as `auth.signin.…: message` lines. The upstream
    /// provider's discovery is checked at start-up only.
    pub fn problems(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        let mut problems = vec![];
        match env(&self.key_env) {
            None => problems.push(format!(
                "auth.signin.key_env: the environment variable `{}` is not set; put 32 random bytes in it (openssl rand -hex 32)",
                self.key_env
            )),
            Some(v) if decode_key(&v).is_none() => problems.push(format!(
                "auth.signin.key_env: `{}` is not 32 bytes as 64 hex digits or base64 (openssl rand -hex 32)",
                self.key_env
            )),
            Some(_) => {}
        }
        if let Some(k) = &self.upstream.client_secret_env {
            if env(k).is_none_or(|v| v.is_empty()) {
                problems
                    .push(format!("auth.signin.upstream.client_secret_env: the environment variable `{k}` is not set"));
            }
        }
        let u = &self.upstream;
        if u.issuer.is_none() && (u.authorize_url.is_none() || u.token_url.is_none()) {
            problems
                .push("auth.signin.upstream: set `issuer` (discovered) or both `authorize_url` and `token_url`".into());
        }
        if self.scopes.is_empty() {
            problems.push(
                "auth.signin.scopes: offer at least one scope (e.g. { name = \"books:read\", upstream = [\"read\"] })"
                    .into(),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.scopes.iter().enumerate() {
            if s.name.is_empty() || s.name.contains(char::is_whitespace) || !seen.insert(s.name.clone()) {
                problems.push(format!(
                    "auth.signin.scopes[{i}].name: `{}` is empty, has spaces or is offered twice",
                    s.name
                ));
            }
        }
        if self.access_token_ttl_secs == 0 || self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            problems.push(
                "auth.signin: access_token_ttl_secs must be > 0 and refresh_token_ttl_secs at least as long".into(),
            );
        }
        problems
    }
}

impl AuthServer {
    /// Resolves the config: the key and the secret from `env`, the upstream
    /// endpoints (discovered when not configured), the store. `issuer` is
    /// codemode's public URL; `resource` its MCP endpoint URL.
    pub async fn new(
        config: &Config,
        issuer: &str,
        resource: &str,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Arc<Self>, Vec<String>> {
        let mut problems = config.problems(env);
        let key = env(&config.key_env).as_deref().and_then(decode_key);
        let secret = config.upstream.client_secret_env.as_deref().and_then(env);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("codemode/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| vec![format!("cannot build the HTTP client: {e}")])?;
        let u = &config.upstream;
        let endpoints = match (&u.authorize_url, &u.token_url, &u.issuer) {
            (Some(a), Some(t), _) => Some(upstream::Endpoints {
                authorize: a.clone(),
                token: t.clone(),
                userinfo: u.userinfo_url.clone(),
                revocation: None,
            }),
            (_, _, Some(issuer)) => match upstream::discover(&http, issuer).await {
                Ok(mut e) => {
                    e.authorize = u.authorize_url.clone().unwrap_or(e.authorize);
                    e.token = u.token_url.clone().unwrap_or(e.token);
                    e.userinfo = u.userinfo_url.clone().or(e.userinfo);
                    Some(e)
                }
                Err(m) => {
                    problems.push(format!("auth.signin.upstream: {m}"));
                    None
                }
            },
            _ => None,
        };
        let issuer = issuer.trim_end_matches('/').to_string();
        let (Some(key), Some(endpoints), true) = (key, endpoints, problems.is_empty()) else { return Err(problems) };
        let upstream = upstream::Upstream::new(
            &endpoints,
            &u.client_id,
            secret,
            &format!("{issuer}{}", flow::CALLBACK),
            http.clone(),
        )
        .map_err(|m| vec![format!("auth.signin.upstream: {m}")])?;
        let path = config.store.clone().unwrap_or_else(|| PathBuf::from("codemode-authz.db"));
        let store = Store::open(&path, Sealer::new(&key).map_err(|m| vec![m])?)
            .map_err(|m| vec![format!("auth.signin.store: {m}")])?;
        let _ = store.prune();
        Ok(Arc::new(AuthServer {
            issuer,
            resource: resource.to_string(),
            offered: config.scopes.clone(),
            always: u.scopes.clone(),
            access_ttl: config.access_token_ttl_secs as i64,
            refresh_ttl: config.refresh_token_ttl_secs as i64,
            http_loopback_cimd: config.allow_http_loopback_client_metadata,
            store,
            upstream,
            http,
            pending: flow::Pending::default(),
            refreshing: tokio::sync::Mutex::new(()),
        }))
    }

    /// codemode's issuer identifier (its public URL).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The resource (MCP endpoint URL) codemode's tokens are bound to.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The scopes offered.
    pub fn scopes(&self) -> Vec<String> {
        self.offered.iter().map(|s| s.name.clone()).collect()
    }

    /// Checks one of codemode's access tokens: the principal it was issued
    /// for, with the scopes the user chose.
    pub fn verify(&self, token: &str) -> Result<Principal, Refused> {
        if !token.starts_with(flow::ACCESS_PREFIX) {
            return Err(Refused::NotOurs);
        }
        let token_endpoint = format!("{}{}", self.issuer, flow::TOKEN);
        let rec = match self.store.token(token) {
            Ok(Some(r)) if r.kind == Kind::Access => r,
            Ok(_) => return Err(Refused::Invalid("the access token is unknown or was revoked; sign in again".into())),
            Err(e) => {
                tracing::error!("authz store: {e}");
                return Err(Refused::Invalid("the token store cannot be read right now".into()));
            }
        };
        if rec.expires_at <= now() {
            return Err(Refused::Invalid(format!(
                "the access token has expired; get a new one with the refresh token at {token_endpoint}"
            )));
        }
        if rec.grant.resource != self.resource {
            return Err(Refused::Invalid(format!(
                "the access token was issued for another resource ({}), not {}",
                rec.grant.resource, self.resource
            )));
        }
        Ok(Principal {
            scopes: Some(rec.grant.scopes.into_iter().collect()),
            ..Principal::unrestricted(format!("{PRINCIPAL_PREFIX}{}", rec.grant.subject))
        })
    }

    /// Ends a grant (revoked at codemode's RFC 7009 endpoint, or a reused
    /// code or refresh token): every codemode token of it stops working,
    /// its sealed upstream tokens are erased, and — where the provider's
    /// metadata names a revocation endpoint — the user's upstream tokens
    /// are revoked there too (a failure there is logged, not fatal).
    pub(crate) async fn revoke_grant(&self, grant_id: &str) {
        match self.store.revoke_grant(grant_id) {
            Ok(Some(tokens)) => {
                self.upstream.revoke(&tokens).await;
            }
            Ok(None) => {}
            Err(e) => tracing::error!("authz store: cannot revoke a grant: {e}"),
        }
    }

    async fn upstream_token(&self, principal: &Principal) -> Result<String, String> {
        let Some(subject) = principal.name.strip_prefix(PRINCIPAL_PREFIX) else {
            return Err(format!(
                "this API uses each user's own sign-in, and `{}` did not sign in through codemode's OAuth; connect with OAuth sign-in",
                principal.name
            ));
        };
        let again = "sign in again (reconnect the MCP client) to give codemode a new upstream token";
        let found = self.store.upstream_of(subject).map_err(|e| format!("the token store cannot be read: {e}"))?;
        let Some((grant, tokens)) = found else { return Err(format!("no upstream token is stored for you; {again}")) };
        if tokens.expires_at.is_none_or(|t| t > now() + 30) {
            return Ok(tokens.access_token);
        }
        let _one = self.refreshing.lock().await;
        // Another call may have refreshed it while this one waited.
        if let Ok(Some((g, t))) = self.store.upstream_of(subject) {
            if g == grant && t.expires_at.is_none_or(|e| e > now() + 30) {
                return Ok(t.access_token);
            }
        }
        match self.upstream.refresh(&tokens).await {
            Ok(fresh) => {
                self.store
                    .set_upstream(&grant, &fresh)
                    .map_err(|e| format!("the token store cannot be written: {e}"))?;
                tracing::info!(principal = %principal.name, "upstream access token refreshed");
                Ok(fresh.access_token)
            }
            Err(e) => {
                tracing::warn!(principal = %principal.name, reason = %e.0, "upstream refresh failed");
                Err(format!("your upstream access token expired and could not be refreshed ({}); {again}", e.0))
            }
        }
    }
}

impl UserCredentials for AuthServer {
    fn bearer_for<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(self.upstream_token(principal))
    }
}

fn decode_key(v: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let v = v.trim();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..32).map(|i| u8::from_str_radix(&v[2 * i..2 * i + 2], 16).ok()).collect();
    }
    for e in [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE_NO_PAD] {
        if let Ok(k) = e.decode(v.trim_end_matches('=')).or_else(|_| e.decode(v)) {
            if k.len() == 32 {
                return Some(k);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys() {
        assert_eq!(super::decode_key(&"ab".repeat(32)).unwrap(), vec![0xab; 32]);
        assert_eq!(super::decode_key("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap(), vec![0; 32]);
        assert!(super::decode_key("short").is_none());
    }
}
