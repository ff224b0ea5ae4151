//! Inbound authentication: static bearer tokens and OAuth 2.1 JWT access
//! tokens, as a layer that puts a [`Principal`] in the request's extensions
//! or answers 401/403 with an RFC 6750 / RFC 9728 challenge.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use crate::config::{Settings, TokenEntry};
use crate::jwt::{JwtError, JwtValidator};
use crate::principal::Principal;
use crate::server::AppState;

/// Why a request is not let in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No credential: 401 without an error code (RFC 6750 §3.1).
    Missing,
    /// A credential that is not accepted: 401 `invalid_token`.
    Invalid(String),
    /// We could not check it (the issuer's keys are unreachable): 503.
    Unavailable(String),
}

/// Checks credentials.
pub(crate) struct Authenticator {
    tokens: Vec<TokenEntry>,
    jwt: Option<Arc<JwtValidator>>,
    /// codemode as the authorization server (`[auth.signin]`).
    signin: Option<Arc<codemode_authz::AuthServer>>,
    /// Set when no auth is configured (loopback only): everyone is this.
    anonymous: Option<Principal>,
    /// `<public_url>/.well-known/oauth-protected-resource/mcp`, with OAuth.
    pub resource_metadata: Option<String>,
    /// Every scope this server knows, for challenges.
    all_scopes: Vec<String>,
    api_names: Vec<String>,
    /// The header codemode's own tokens come in (lower case).
    header: http::HeaderName,
    /// Inbound headers some API forwards: captured into the principal.
    passthrough: Vec<http::HeaderName>,
    /// Key of the names given to principals known only by what they
    /// forward (no inbound auth): random per process, so a name reveals
    /// nothing of the credential it stands for.
    name_key: ring::hmac::Key,
}

impl Authenticator {
    pub fn new(settings: &Settings, signin: Option<Arc<codemode_authz::AuthServer>>) -> Self {
        let jwt = settings.oauth.clone().map(|o| Arc::new(JwtValidator::new(o)));
        let anonymous = (settings.tokens.is_empty() && settings.oauth.is_none() && signin.is_none())
            .then(|| Principal::unrestricted("anonymous"));
        let all_scopes = match &signin {
            // What the consent page offers is what a client can ask for.
            Some(s) => s.scopes(),
            None => settings.api_names.iter().flat_map(|a| [format!("{a}:read"), format!("{a}:write")]).collect(),
        };
        Authenticator {
            tokens: settings.tokens.clone(),
            resource_metadata: (jwt.is_some() || signin.is_some())
                .then(|| format!("{}/.well-known/oauth-protected-resource/mcp", settings.public_url)),
            jwt,
            signin,
            anonymous,
            all_scopes,
            api_names: settings.api_names.clone(),
            header: http::HeaderName::from_bytes(settings.auth_header.as_bytes()).unwrap_or(header::AUTHORIZATION),
            passthrough: settings
                .passthrough
                .iter()
                .filter_map(|h| http::HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            name_key: ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .expect("the system's random source"),
        }
    }

    /// What the client presented in the headers some API forwards. Without
    /// inbound auth, the principal is then named after it (an HMAC under a
    /// per-process key), so two clients forwarding different credentials
    /// are two principals — their tasks, sessions, limits and rehearsal
    /// state apart — and one that forwards nothing stays `anonymous`.
    pub fn capture(&self, principal: Principal, headers: &HeaderMap) -> Principal {
        if self.passthrough.is_empty() {
            return principal;
        }
        let pairs: Vec<(String, String)> = self
            .passthrough
            .iter()
            .filter_map(|h| {
                let v = headers.get(h)?.to_str().ok()?;
                Some((h.as_str().to_string(), v.trim().to_string()))
            })
            .collect();
        let presented = codemode_pipeline::Presented::new(pairs);
        if presented.is_empty() {
            return principal;
        }
        let mut principal = principal;
        if self.anonymous.is_some() {
            let mut ctx = ring::hmac::Context::with_key(&self.name_key);
            for s in presented.secrets().iter().take(1) {
                ctx.update(s.as_bytes());
            }
            let tag = ctx.sign();
            let hex: String = tag.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
            principal.name = format!("passthrough-{hex}");
        }
        principal.presenting(presented)
    }

    pub fn jwt(&self) -> Option<&Arc<JwtValidator>> {
        self.jwt.as_ref()
    }

    pub fn signin(&self) -> Option<&Arc<codemode_authz::AuthServer>> {
        self.signin.as_ref()
    }

    pub fn all_scopes(&self) -> &[String] {
        &self.all_scopes
    }

    /// Who sent these headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Failure> {
        if let Some(p) = &self.anonymous {
            return Ok(p.clone());
        }
        let shown = if self.header == header::AUTHORIZATION { "Authorization" } else { self.header.as_str() };
        let mut values = headers.get_all(&self.header).iter();
        let Some(value) = values.next() else { return Err(Failure::Missing) };
        if values.next().is_some() {
            return Err(Failure::Invalid(format!("send one {shown} header, not several")));
        }
        let value = value.to_str().map_err(|_| Failure::Invalid(format!("the {shown} header is not text")))?;
        let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
        let token = if scheme.eq_ignore_ascii_case("bearer") {
            token
        } else if self.header != header::AUTHORIZATION && token.is_empty() {
            // Another header may carry the token alone.
            scheme
        } else {
            return Err(Failure::Invalid(format!("only Bearer tokens are accepted ({shown}: Bearer <token>)")));
        };
        let token = token.trim();
        if token.is_empty() {
            return Err(Failure::Invalid("the Bearer token is empty".into()));
        }
        if let Some(p) = self.static_token(token) {
            return Ok(p);
        }
        if let Some(signin) = &self.signin {
            return match signin.verify(token) {
                Ok(p) => Ok(p),
                Err(codemode_authz::Refused::Invalid(m)) => Err(Failure::Invalid(m)),
                Err(codemode_authz::Refused::NotOurs) => Err(Failure::Invalid(format!(
                    "the token is not one of this server's: sign in through {} (OAuth) to get one for {}",
                    signin.issuer(),
                    signin.resource()
                ))),
            };
        }
        match &self.jwt {
            Some(jwt) => match jwt.verify(token).await {
                Ok(v) => Ok(Principal { scopes: Some(v.scopes), ..Principal::unrestricted(v.subject).in_groups(v.groups) }),
                Err(JwtError::Opaque) => Err(Failure::Invalid(format!(
                    "opaque access tokens are not accepted: this server validates JWT access tokens signed by {} for the audience {}",
                    jwt.issuer(),
                    jwt.resource()
                ))),
                Err(JwtError::Invalid(m)) => Err(Failure::Invalid(m)),
                Err(JwtError::Unavailable(m)) => Err(Failure::Unavailable(m)),
            },
            None => Err(Failure::Invalid("the token is not one of this server's tokens".into())),
        }
    }

    /// Compares the token's SHA-256 with every configured hash, in constant
    /// time, without stopping at a match.
    fn static_token(&self, token: &str) -> Option<Principal> {
        if self.tokens.is_empty() {
            return None;
        }
        let h = crate::config::sha256(token.as_bytes());
        let mut found = None;
        for t in &self.tokens {
            let diff = t.sha256.iter().zip(h.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(Principal {
                    scopes: t.scopes.clone(),
                    ..Principal::unrestricted(t.name.clone()).in_groups(t.groups.clone())
                });
            }
        }
        found
    }

    /// Does the principal hold any scope on any configured API? If not,
    /// nothing it could call would be allowed: 403 at the HTTP layer.
    pub fn has_any_scope(&self, p: &Principal) -> bool {
        self.api_names.iter().any(|a| p.allows_any(a))
    }

    fn challenge(&self, error: Option<(&str, &str)>, scope: Option<&str>) -> HeaderValue {
        let mut parts = vec!["Bearer realm=\"codemode\"".to_string()];
        if let Some((code, description)) = error {
            parts.push(format!("error=\"{code}\""));
            parts.push(format!("error_description=\"{}\"", quote_safe(description)));
        }
        if let Some(scope) = scope {
            parts.push(format!("scope=\"{}\"", quote_safe(scope)));
        }
        if let Some(rm) = &self.resource_metadata {
            parts.push(format!("resource_metadata=\"{rm}\""));
        }
        HeaderValue::from_str(&parts.join(", ")).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The response for a failed authentication.
    pub fn reject(&self, failure: &Failure) -> Response {
        let scopes = self.all_scopes.join(" ");
        let (status, www, body) = match failure {
            Failure::Missing => (
                StatusCode::UNAUTHORIZED,
                Some(self.challenge(None, (self.jwt.is_some() || self.signin.is_some()).then_some(scopes.as_str()))),
                json!({"error": "unauthorized", "error_description": "this server needs a Bearer token (Authorization: Bearer <token>)"}),
            ),
            Failure::Invalid(m) => (
                StatusCode::UNAUTHORIZED,
                Some(self.challenge(Some(("invalid_token", m)), None)),
                json!({"error": "invalid_token", "error_description": m}),
            ),
            Failure::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                json!({"error": "temporarily_unavailable", "error_description": format!("the token cannot be checked right now: {m}")}),
            ),
        };
        let mut r = (status, axum::Json(body)).into_response();
        if let Some(www) = www {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, www);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }

    /// 403 `insufficient_scope` for a principal with no scope on any API.
    pub fn forbid(&self, p: &Principal) -> Response {
        let scopes = self.all_scopes.join(" ");
        let m = format!(
            "the credential of `{}` carries no scope for any API here (it has: {}); it needs at least one of: {scopes}",
            p.name,
            p.scope_list()
        );
        let mut r = (StatusCode::FORBIDDEN, axum::Json(json!({"error": "insufficient_scope", "error_description": m})))
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.challenge(Some(("insufficient_scope", &m)), Some(&scopes)));
        r
    }
}

/// RFC 6750 quoted strings: no `"` or `\`, printable ASCII only.
fn quote_safe(s: &str) -> String {
    s.chars().map(|c| if c == '"' || c == '\\' || !(' '..='~').contains(&c) { '\'' } else { c }).collect()
}

/// The layer: authenticate, check there is something the principal may do,
/// and put the principal in the request's extensions.
pub(crate) async fn require(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let auth = &state.auth;
    let principal = match auth.authenticate(req.headers()).await {
        Ok(p) => p,
        Err(f) => {
            let peer = req.extensions().get::<crate::server::Peer>().map(|p| p.0.to_string()).unwrap_or_default();
            match &f {
                Failure::Missing => tracing::debug!(%peer, "request without credentials"),
                Failure::Invalid(m) => tracing::info!(%peer, reason = %m, "credential refused"),
                Failure::Unavailable(m) => tracing::warn!(%peer, reason = %m, "credential could not be checked"),
            }
            return auth.reject(&f);
        }
    };
    if !auth.has_any_scope(&principal) {
        tracing::info!(principal = %principal.name, scopes = %principal.scope_list(), "no scope for any API: 403");
        return auth.forbid(&principal);
    }
    let principal = auth.capture(principal, req.headers());
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{resolve, AuthConfig, ServerConfig, StaticToken};

    fn settings(tokens: Vec<StaticToken>) -> Settings {
        resolve(&ServerConfig::default(), &AuthConfig { tokens, ..Default::default() }, &["books".into()], &|_| None)
            .unwrap()
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {t}")).unwrap());
        h
    }

    fn hex(b: [u8; 32]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[tokio::test]
    async fn without_auth_everyone_is_anonymous() {
        let a = Authenticator::new(&settings(vec![]), None);
        assert_eq!(a.authenticate(&HeaderMap::new()).await.unwrap(), Principal::unrestricted("anonymous"));
    }

    #[tokio::test]
    async fn static_tokens() {
        let a = Authenticator::new(
            &settings(vec![
                StaticToken {
                    name: "ci".into(),
                    sha256: Some(hex(crate::config::sha256(b"ci-token-0123456789"))),
                    scopes: vec!["books:read".into()],
                    ..Default::default()
                },
                StaticToken {
                    name: "admin".into(),
                    sha256: Some(hex(crate::config::sha256(b"admin-token-0123456789"))),
                    scopes: vec!["*".into()],
                    ..Default::default()
                },
            ]),
            None,
        );
        let ci = a.authenticate(&bearer("ci-token-0123456789")).await.unwrap();
        assert_eq!(ci, Principal::with_scopes("ci", ["books:read"]));
        assert_eq!(a.authenticate(&bearer("admin-token-0123456789")).await.unwrap().scopes, None);
        assert_eq!(a.authenticate(&HeaderMap::new()).await.unwrap_err(), Failure::Missing);
        assert!(matches!(a.authenticate(&bearer("nope")).await.unwrap_err(), Failure::Invalid(_)));
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YTpi"));
        assert!(matches!(a.authenticate(&basic).await.unwrap_err(), Failure::Invalid(m) if m.contains("Bearer")));
        // lower-case scheme is fine
        let mut lower = HeaderMap::new();
        lower.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer ci-token-0123456789"));
        assert!(a.authenticate(&lower).await.is_ok());
    }

    #[test]
    fn challenges() {
        let a = Authenticator::new(
            &settings(vec![StaticToken {
                name: "ci".into(),
                sha256: Some(hex([0; 32])),
                scopes: vec!["*".into()],
                ..Default::default()
            }]),
            None,
        );
        let r = a.reject(&Failure::Invalid("bad \"sig\"".into()));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let www = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(www, "Bearer realm=\"codemode\", error=\"invalid_token\", error_description=\"bad 'sig'\"");
        let r = a.forbid(&Principal::with_scopes("x", ["other:read"]));
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let www = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"books:read books:write\""),
            "{www}"
        );
        assert!(!a.has_any_scope(&Principal::with_scopes("x", ["other:read"])));
        assert!(a.has_any_scope(&Principal::with_scopes("x", ["books:write"])));
    }
}
