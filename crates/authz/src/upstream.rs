//! The client side towards the upstream provider, with the `oauth2` crate:
//! the authorization URL (PKCE S256, the chosen scopes), the code exchange,
//! refreshes, and revocation (RFC 7009) when a grant ends. Its HTTP goes through codemode's `reqwest` client (no
//! redirects followed, a timeout).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use crate::store::{now, UpstreamTokens};

/// The OpenID `id_token` the token endpoint may add (its `sub` names the user).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IdToken {
    /// The compact JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdToken {}

type Response = StandardTokenResponse<IdToken, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Response,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The upstream provider's endpoints, resolved (configured or discovered).
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Its authorization endpoint.
    pub authorize: String,
    /// Its token endpoint.
    pub token: String,
    /// Its userinfo endpoint (the user's `sub` when no `id_token` comes back).
    pub userinfo: Option<String>,
    /// Its revocation endpoint (RFC 7009), where its metadata names one:
    /// a grant revoked at codemode is revoked there too.
    pub revocation: Option<String>,
}

/// The upstream client.
pub struct Upstream {
    client: OAuthClient,
    http: reqwest::Client,
    userinfo: Option<String>,
    /// RFC 7009 endpoint, sent to by hand: the `oauth2` crate refuses any
    /// revocation URL that is not `https`, where it accepts the token
    /// endpoint over `http` (a loopback provider in tests, a private one).
    revocation: Option<String>,
    client_id: String,
    secret: Option<String>,
}

/// An error from the upstream provider, for the user's browser and the log.
#[derive(Debug)]
pub struct UpstreamError(pub String);

impl Upstream {
    /// Builds the client. `redirect` is codemode's own `/oauth/callback`.
    pub fn new(
        endpoints: &Endpoints,
        client_id: &str,
        secret: Option<String>,
        redirect: &str,
        http: reqwest::Client,
    ) -> Result<Self, String> {
        let auth = AuthUrl::new(endpoints.authorize.clone()).map_err(|e| format!("authorize_url: {e}"))?;
        let token = TokenUrl::new(endpoints.token.clone()).map_err(|e| format!("token_url: {e}"))?;
        let redirect = RedirectUrl::new(redirect.to_string()).map_err(|e| format!("redirect: {e}"))?;
        if let Some(u) = &endpoints.revocation {
            url::Url::parse(u).map_err(|e| format!("revocation_endpoint `{u}`: {e}"))?;
        }
        let mut client = oauth2::Client::<
            BasicErrorResponse,
            Response,
            BasicTokenIntrospectionResponse,
            StandardRevocableToken,
            BasicRevocationErrorResponse,
        >::new(ClientId::new(client_id.into()))
        .set_auth_uri(auth)
        .set_token_uri(token)
        .set_redirect_uri(redirect);
        if let Some(s) = &secret {
            client = client.set_client_secret(ClientSecret::new(s.clone()));
        }
        Ok(Upstream {
            client,
            http,
            userinfo: endpoints.userinfo.clone(),
            revocation: endpoints.revocation.clone(),
            client_id: client_id.to_string(),
            secret,
        })
    }

    /// Where to send the user, with a fresh state and PKCE verifier (both kept
    /// by the caller until the callback).
    pub fn authorize_url(&self, scopes: &[String]) -> (url::Url, CsrfToken, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .url();
        (url, state, verifier)
    }

    /// Exchanges the upstream code; returns the tokens and the user's `sub`.
    pub async fn exchange(
        &self,
        code: String,
        verifier: PkceCodeVerifier,
    ) -> Result<(UpstreamTokens, String), UpstreamError> {
        let client = Http(self.http.clone());
        let r = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&client)
            .await
            .map_err(describe)?;
        let tokens = tokens_of(&r, None);
        let subject = match r.extra_fields().id_token.as_deref().and_then(subject_of_jwt) {
            Some(s) => s,
            None => self.userinfo_subject(&tokens.access_token).await?,
        };
        Ok((tokens, subject))
    }

    /// A new access token from the refresh token.
    pub async fn refresh(&self, old: &UpstreamTokens) -> Result<UpstreamTokens, UpstreamError> {
        let Some(rt) = &old.refresh_token else {
            return Err(UpstreamError(
                "the upstream access token expired and the provider gave no refresh token".into(),
            ));
        };
        let client = Http(self.http.clone());
        let rt = RefreshToken::new(rt.clone());
        let r = self.client.exchange_refresh_token(&rt).request_async(&client).await.map_err(describe)?;
        Ok(tokens_of(&r, old.refresh_token.clone()))
    }

    /// Revokes a user's upstream tokens at the provider (RFC 7009) when its
    /// metadata names a revocation endpoint: the refresh token first (at most
    /// providers that ends the whole upstream grant), then the access
    /// token. Failures are logged, never returned: codemode's own grant is
    /// revoked whatever the provider answers. Returns how many tokens the
    /// provider accepted for revocation.
    pub async fn revoke(&self, tokens: &UpstreamTokens) -> usize {
        let Some(url) = &self.revocation else { return 0 };
        let mut list = Vec::with_capacity(2);
        if let Some(r) = &tokens.refresh_token {
            list.push(("refresh_token", r.as_str()));
        }
        list.push(("access_token", tokens.access_token.as_str()));
        let mut revoked = 0;
        for (hint, token) in list {
            match self.revoke_one(url, token, hint).await {
                Ok(()) => revoked += 1,
                Err(reason) => tracing::warn!(hint, %reason, "the provider did not revoke the upstream token"),
            }
        }
        if revoked > 0 {
            tracing::info!(revoked, "upstream tokens revoked at the provider");
        }
        revoked
    }

    /// One RFC 7009 request: the token and its type hint as a form, the
    /// client authenticated as at the token endpoint (HTTP Basic with the
    /// form-encoded id and secret, RFC 6749 §2.3.1; a public client names
    /// itself in the form). 200 means revoked (or already unknown).
    async fn revoke_one(&self, url: &str, token: &str, hint: &str) -> Result<(), String> {
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut form = vec![("token", token), ("token_type_hint", hint)];
        let mut req = self.http.post(url).timeout(Duration::from_secs(15));
        match &self.secret {
            Some(secret) => req = req.basic_auth(enc(&self.client_id), Some(enc(secret))),
            None => form.push(("client_id", self.client_id.as_str())),
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let r = req
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("the provider could not be reached: {e}"))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status()))
        }
    }

    async fn userinfo_subject(&self, access: &str) -> Result<String, UpstreamError> {
        let Some(url) = &self.userinfo else {
            return Err(UpstreamError(
                "the provider returned no id_token and no userinfo_url is configured: cannot tell who signed in".into(),
            ));
        };
        let r = self
            .http
            .get(url)
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| UpstreamError(format!("userinfo request failed: {e}")))?;
        let v: serde_json::Value =
            r.json().await.map_err(|e| UpstreamError(format!("userinfo answer is not JSON: {e}")))?;
        // GitHub's `id` is a number; OpenID's `sub` a string.
        match v.get("sub").or_else(|| v.get("id")) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(UpstreamError("the userinfo answer names no user (`sub` or `id`)".into())),
        }
    }
}

fn tokens_of(r: &Response, old_refresh: Option<String>) -> UpstreamTokens {
    UpstreamTokens {
        access_token: r.access_token().secret().clone(),
        // A provider that does not rotate refresh tokens keeps the old one valid.
        refresh_token: r.refresh_token().map(|t| t.secret().clone()).or(old_refresh),
        expires_at: r.expires_in().map(|d| now() + d.as_secs() as i64),
        scope: r.scopes().map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
    }
}

/// The `sub` of a JWT's payload. The `id_token` comes straight from the
/// provider's token endpoint over the connection codemode opened (OpenID
/// Connect Core §3.1.3.7 lets TLS stand in for the signature check there);
/// it is never accepted from a browser.
fn subject_of_jwt(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().filter(|s| !s.is_empty()).map(String::from)
}

fn describe<RE: std::error::Error + 'static>(e: oauth2::RequestTokenError<RE, BasicErrorResponse>) -> UpstreamError {
    UpstreamError(match e {
        oauth2::RequestTokenError::ServerResponse(r) => format!(
            "the provider refused: {}{}",
            r.error(),
            r.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        oauth2::RequestTokenError::Request(e) => format!("the provider could not be reached: {e}"),
        oauth2::RequestTokenError::Parse(e, _) => format!("the provider's answer could not be read: {e}"),
        oauth2::RequestTokenError::Other(m) => m,
    })
}

/// The transport error of [`send`].
#[derive(Debug)]
pub struct HttpError(String);
impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for HttpError {}

/// oauth2's HTTP client: codemode's reqwest client (a named type, so the
/// futures are `Send` for the handlers).
struct Http(reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), request))
    }
}

/// One oauth2 request over reqwest (bodies are small: capped at 64 KiB).
async fn send(http: reqwest::Client, r: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, HttpError> {
    let (parts, body) = r.into_parts();
    let mut req = http.request(parts.method, parts.uri.to_string()).headers(parts.headers).body(body);
    req = req.timeout(Duration::from_secs(15));
    let resp = req.send().await.map_err(|e| HttpError(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    if bytes.len() > 64 * 1024 {
        return Err(HttpError("the provider's answer is larger than 64 KiB".into()));
    }
    let mut out = http::Response::new(bytes.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// Reads `/.well-known/openid-configuration` (then RFC 8414's
/// `/.well-known/oauth-authorization-server`) of `issuer`.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, String> {
    let base = issuer.trim_end_matches('/');
    let mut last = String::new();
    for well_known in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let url = format!("{base}{well_known}");
        match http.get(&url).timeout(Duration::from_secs(10)).send().await {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await.map_err(|e| format!("{url}: not JSON: {e}"))?;
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
                let (Some(authorize), Some(token)) = (s("authorization_endpoint"), s("token_endpoint")) else {
                    return Err(format!("{url} names no authorization_endpoint or token_endpoint"));
                };
                return Ok(Endpoints {
                    authorize,
                    token,
                    userinfo: s("userinfo_endpoint"),
                    revocation: s("revocation_endpoint"),
                });
            }
            Ok(r) => last = format!("{url}: HTTP {}", r.status()),
            Err(e) => last = format!("{url}: {e}"),
        }
    }
    Err(format!("cannot discover the upstream provider's endpoints ({last}); set authorize_url and token_url"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_from_an_id_token() {
        // {"sub":"alice"}
        assert_eq!(super::subject_of_jwt("e30.eyJzdWIiOiJhbGljZSJ9.sig").as_deref(), Some("alice"));
        assert_eq!(super::subject_of_jwt("e30.e30.sig"), None);
        assert_eq!(super::subject_of_jwt("garbage"), None);
    }
}
