//! The endpoints: metadata, registration, authorize + consent, the upstream
//! callback, token and revocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth2::PkceCodeVerifier;
use serde_json::{json, Value};

use crate::store::{hash, now, random_token, Client, Grant, Kind};
use crate::AuthServer;

pub(crate) const METADATA: &str = "/.well-known/oauth-authorization-server";
pub(crate) const AUTHORIZE: &str = "/oauth/authorize";
pub(crate) const CONSENT: &str = "/oauth/consent";
pub(crate) const CALLBACK: &str = "/oauth/callback";
pub(crate) const TOKEN: &str = "/oauth/token";
pub(crate) const REGISTER: &str = "/oauth/register";
pub(crate) const REVOKE: &str = "/oauth/revoke";
pub(crate) const ACCESS_PREFIX: &str = "cm_at_";
const REFRESH_PREFIX: &str = "cm_rt_";
const CODE_PREFIX: &str = "cm_ac_";
/// A consent page or an upstream round trip left unfinished this long is forgotten.
const PENDING_TTL: i64 = 600;
/// An authorization code is good this long (RFC 6749 recommends ≤ 10 min).
const CODE_TTL: i64 = 60;
/// At most this many sign-ins in progress (a flood of /authorize cannot grow memory).
const MAX_PENDING: usize = 10_000;

/// The authorize request the client made, as checked.
#[derive(Clone, Debug)]
struct Request {
    client_id: String,
    client_name: Option<String>,
    redirect_uri: String,
    state: Option<String>,
    challenge: String,
    resource: String,
}

/// A consent page shown, waiting for the user's choice.
struct Consent {
    req: Request,
    created: i64,
}

/// Sent upstream, waiting for the callback.
struct Upcoming {
    req: Request,
    scopes: Vec<String>,
    verifier: PkceCodeVerifier,
    created: i64,
}

/// A codemode authorization code, waiting for the token request.
struct Code {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
    created: i64,
    used: bool,
}

/// The sign-ins in progress (in memory: a restart asks the user again).
#[derive(Default)]
pub(crate) struct Pending {
    consents: Mutex<HashMap<String, Consent>>,
    upcoming: Mutex<HashMap<String, Upcoming>>,
    codes: Mutex<HashMap<Vec<u8>, Code>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops what is too old; refuses a new entry past the cap.
fn make_room<K, V>(map: &mut HashMap<K, V>, created: impl Fn(&V) -> i64, ttl: i64) -> bool {
    let cutoff = now() - ttl;
    map.retain(|_, v| created(v) > cutoff);
    map.len() < MAX_PENDING
}

/// The routes, to be merged into codemode's HTTP router (behind its
/// Host/Origin checks).
pub fn router(server: Arc<AuthServer>) -> Router {
    Router::new()
        .route(METADATA, get(metadata))
        .route(&format!("{METADATA}/mcp"), get(metadata))
        .route(REGISTER, post(register))
        .route(AUTHORIZE, get(authorize))
        .route(CONSENT, post(consent))
        .route(CALLBACK, get(callback))
        .route(TOKEN, post(token))
        .route(REVOKE, post(revoke))
        .with_state(server)
}

/// RFC 8414 metadata.
async fn metadata(State(s): State<Arc<AuthServer>>) -> Response {
    let i = &s.issuer;
    let mut r = Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}{AUTHORIZE}"),
        "token_endpoint": format!("{i}{TOKEN}"),
        "registration_endpoint": format!("{i}{REGISTER}"),
        "revocation_endpoint": format!("{i}{REVOKE}"),
        "scopes_supported": s.scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

/// An OAuth error answer (RFC 6749 §5.2), never cached.
fn oauth_error(status: StatusCode, code: &str, description: impl Into<String>) -> Response {
    let mut r = (status, Json(json!({"error": code, "error_description": description.into()}))).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A redirect URI a client may register: https, http on loopback (RFC 8252
/// §7.3), or a private-use scheme in reverse-DNS form (§7.1); no fragment.
fn redirect_uri_ok(u: &str) -> Result<(), String> {
    let url = url::Url::parse(u).map_err(|e| format!("`{u}` is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`{u}` has a fragment, which redirect URIs may not have"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) => Ok(()),
        "http" => Err(format!("`{u}` is plain http to a host that is not loopback; use https")),
        "javascript" | "data" | "file" | "vbscript" | "blob" => Err(format!("`{u}` has a scheme that is refused")),
        s if s.contains('.') => Ok(()),
        _ => Err(format!("`{u}`: a private-use scheme must be in reverse-DNS form (com.example.app:/callback)")),
    }
}

/// RFC 7591 dynamic registration, for public clients.
async fn register(State(s): State<Arc<AuthServer>>, body: Bytes) -> Response {
    let bad = |m: String| oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", m);
    if body.len() > 16 * 1024 {
        return bad("the registration request is larger than 16 KiB".into());
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return bad("the registration request must be a JSON object".into());
    };
    let uris: Vec<String> = match v.get("redirect_uris").and_then(Value::as_array) {
        Some(a) if !a.is_empty() && a.len() <= 10 => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", "give 1 to 10 redirect_uris"),
    };
    for u in &uris {
        if let Err(m) = redirect_uri_ok(u) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", m);
        }
    }
    if let Some(m) = v.get("token_endpoint_auth_method").and_then(Value::as_str) {
        if m != "none" {
            return bad(format!(
                "token_endpoint_auth_method `{m}` is not supported: clients here are public (`none`) and prove themselves with PKCE"
            ));
        }
    }
    if let Some(g) = v.get("grant_types").and_then(Value::as_array) {
        if let Some(other) =
            g.iter().filter_map(Value::as_str).find(|g| !matches!(*g, "authorization_code" | "refresh_token"))
        {
            return bad(format!("grant type `{other}` is not supported (authorization_code, refresh_token)"));
        }
    }
    let name = v.get("client_name").and_then(Value::as_str).map(|n| n.chars().take(100).collect::<String>());
    let client = Client { id: random_token("cm_client_", 16), name: name.clone(), redirect_uris: uris.clone() };
    if let Err(e) = s.store.add_client(&client) {
        tracing::error!("authz store: {e}");
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the client could not be stored");
    }
    tracing::info!(client_id = %client.id, name = name.as_deref().unwrap_or(""), "client registered");
    (
        StatusCode::CREATED,
        Json(json!({
            "client_id": client.id,
            "client_id_issued_at": now(),
            "client_name": name,
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })),
    )
        .into_response()
}

/// The client: registered, or a Client ID Metadata Document at its URL.
async fn find_client(s: &AuthServer, id: &str) -> Result<Client, String> {
    if id.starts_with("https://") || (s.http_loopback_cimd && id.starts_with("http://")) {
        return fetch_metadata_document(s, id).await;
    }
    match s.store.client(id) {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(format!("unknown client_id `{}`: register first at {}{REGISTER}", clip(id), s.issuer)),
        Err(e) => {
            tracing::error!("authz store: {e}");
            Err("the client store cannot be read right now".into())
        }
    }
}

/// Client ID Metadata Documents (MCP 2025-11-25): the `client_id` is an
/// https URL whose JSON names the client and its redirect URIs.
async fn fetch_metadata_document(s: &AuthServer, id: &str) -> Result<Client, String> {
    let url = url::Url::parse(id).map_err(|e| format!("client_id `{}` is not a URL: {e}", clip(id)))?;
    if url.scheme() == "http" && !matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) {
        return Err("an http client_id document is accepted on loopback only".into());
    }
    if url.path() == "/" || url.fragment().is_some() {
        return Err("a client_id metadata URL needs a path and no fragment".into());
    }
    let r = s
        .http
        .get(url.clone())
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("the client metadata document {url} could not be fetched: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("the client metadata document {url} answered HTTP {}", r.status()));
    }
    let body = r.bytes().await.map_err(|e| format!("the client metadata document {url}: {e}"))?;
    if body.len() > 5 * 1024 {
        return Err(format!("the client metadata document {url} is larger than 5 KiB"));
    }
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| format!("the client metadata document {url} is not JSON: {e}"))?;
    if v.get("client_id").and_then(Value::as_str) != Some(id) {
        return Err(format!("the client metadata document {url} must have `client_id` equal to its own URL"));
    }
    let uris: Vec<String> = v
        .get("redirect_uris")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect();
    if uris.is_empty() {
        return Err(format!("the client metadata document {url} lists no redirect_uris"));
    }
    for u in &uris {
        redirect_uri_ok(u)?;
    }
    let name = v.get("client_name").and_then(Value::as_str).map(|n| n.chars().take(100).collect());
    Ok(Client { id: id.to_string(), name, redirect_uris: uris })
}

fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

/// An error page for the browser, when the redirect URI cannot be trusted
/// with it (RFC 6749 §4.1.2.1: never redirect to an unverified URI).
fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Sign-in failed</title><h1>Sign-in failed</h1><p>{}</p>",
        escape(message)
    );
    with_page_headers((status, Html(body)).into_response())
}

fn with_page_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Not framed (clickjacking of the consent), no scripts, forms only to us.
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Back to the client with an error (after its redirect URI was verified).
fn redirect_error(req: &Request, issuer: &str, code: &str, description: &str) -> Response {
    let mut u = match url::Url::parse(&req.redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, description),
    };
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("error", code).append_pair("error_description", description);
        if let Some(st) = &req.state {
            q.append_pair("state", st);
        }
        q.append_pair("iss", issuer);
    }
    with_page_headers(Redirect::to(u.as_str()).into_response())
}

/// `GET /oauth/authorize`: check the request, show the consent page.
async fn authorize(State(s): State<Arc<AuthServer>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return error_page(StatusCode::BAD_REQUEST, "the request has no client_id");
    };
    let client = match find_client(&s, client_id).await {
        Ok(c) => c,
        Err(m) => return error_page(StatusCode::BAD_REQUEST, &m),
    };
    // Exact match against a registered URI (OAuth 2.1 §4.1.1); one
    // registered URI may be left out.
    let redirect_uri = match get("redirect_uri") {
        Some(u) if client.redirect_uris.iter().any(|r| r == u) => u.to_string(),
        Some(u) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &format!("redirect_uri `{}` is not one this client registered", clip(u)),
            )
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return error_page(StatusCode::BAD_REQUEST, "the request has no redirect_uri"),
    };
    let mut req = Request {
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri,
        state: get("state").map(String::from),
        challenge: String::new(),
        resource: s.resource.clone(),
    };
    if get("response_type") != Some("code") {
        return redirect_error(&req, &s.issuer, "unsupported_response_type", "response_type must be `code`");
    }
    match (get("code_challenge"), get("code_challenge_method")) {
        (Some(c), Some("S256"))
            if c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            req.challenge = c.to_string()
        }
        (None, _) => {
            return redirect_error(
                &req,
                &s.issuer,
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            )
        }
        (Some(_), Some("S256")) => {
            return redirect_error(
                &req,
                &s.issuer,
                "invalid_request",
                "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
            )
        }
        _ => return redirect_error(&req, &s.issuer, "invalid_request", "code_challenge_method must be S256"),
    }
    if let Some(r) = get("resource") {
        if r.trim_end_matches('/') != s.resource.trim_end_matches('/') {
            return redirect_error(
                &req,
                &s.issuer,
                "invalid_target",
                &format!("tokens here are for the resource {}, not {}", s.resource, clip(r)),
            );
        }
    }
    let offered = s.scopes();
    let requested: Vec<String> =
        get("scope").map(|sc| sc.split_whitespace().map(String::from).collect()).unwrap_or_default();
    if let Some(unknown) = requested.iter().find(|r| !offered.contains(r)) {
        return redirect_error(
            &req,
            &s.issuer,
            "invalid_scope",
            &format!("scope `{}` is not offered here (offered: {})", clip(unknown), offered.join(" ")),
        );
    }
    let id = random_token("", 24);
    {
        let mut c = lock(&s.pending.consents);
        if !make_room(&mut c, |v| v.created, PENDING_TTL) {
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins in progress; try again in a minute");
        }
        c.insert(id.clone(), Consent { req: req.clone(), created: now() });
    }
    let checked = |n: &str| requested.is_empty() || requested.iter().any(|r| r == n);
    let mut items = String::new();
    for o in &s.offered {
        items.push_str(&format!(
            "<li><label><input type=checkbox name=scope value=\"{n}\"{c}> <code>{n}</code> {d}</label></li>",
            n = escape(&o.name),
            c = if checked(&o.name) { " checked" } else { "" },
            d = escape(o.description.as_deref().unwrap_or("")),
        ));
    }
    let who = req.client_name.clone().unwrap_or_else(|| req.client_id.clone());
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Allow access</title>\
         <h1>Allow <em>{who}</em> to use codemode?</h1>\
         <p>It will act as you, with only what you tick here. You will then sign in at the provider.</p>\
         <p>It will be sent back to <code>{uri}</code>.</p>\
         <form method=post action=\"{CONSENT}\"><input type=hidden name=consent value=\"{id}\"><ul>{items}</ul>\
         <button name=decision value=allow>Allow</button> <button name=decision value=deny>Deny</button></form>",
        who = escape(&who),
        uri = escape(&req.redirect_uri),
    );
    with_page_headers(Html(body).into_response())
}

/// `POST /oauth/consent`: the user's choice; on to the provider.
async fn consent(State(s): State<Arc<AuthServer>>, body: Bytes) -> Response {
    let mut id = None;
    let mut decision = None;
    let mut chosen: Vec<String> = vec![];
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "consent" => id = Some(v.into_owned()),
            "decision" => decision = Some(v.into_owned()),
            "scope" => chosen.push(v.into_owned()),
            _ => {}
        }
    }
    // One use: a consent id taken is gone, whatever happens next.
    let Some(c) = id.and_then(|id| lock(&s.pending.consents).remove(&id)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this consent page expired or was already answered; start the sign-in again from your MCP client",
        );
    };
    if c.created < now() - PENDING_TTL {
        return error_page(StatusCode::BAD_REQUEST, "this consent page expired; start the sign-in again");
    }
    if decision.as_deref() != Some("allow") {
        return redirect_error(&c.req, &s.issuer, "access_denied", "the user denied access");
    }
    let offered = s.scopes();
    chosen.retain(|n| offered.contains(n));
    chosen.sort();
    chosen.dedup();
    if chosen.is_empty() {
        return redirect_error(&c.req, &s.issuer, "access_denied", "the user granted no scope");
    }
    // The downscoping: only the upstream scopes of what was chosen.
    let mut up: Vec<String> = s.always.clone();
    for o in s.offered.iter().filter(|o| chosen.contains(&o.name)) {
        for u in &o.upstream {
            if !up.contains(u) {
                up.push(u.clone());
            }
        }
    }
    let (url, state, verifier) = s.upstream.authorize_url(&up);
    {
        let mut u = lock(&s.pending.upcoming);
        if !make_room(&mut u, |v| v.created, PENDING_TTL) {
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "too many sign-ins in progress; try again in a minute");
        }
        u.insert(state.secret().clone(), Upcoming { req: c.req, scopes: chosen, verifier, created: now() });
    }
    with_page_headers(Redirect::to(url.as_str()).into_response())
}

/// `GET /oauth/callback`: back from the provider.
async fn callback(State(s): State<Arc<AuthServer>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(up) = q.get("state").and_then(|st| lock(&s.pending.upcoming).remove(st)) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "unknown or used sign-in state; start the sign-in again from your MCP client",
        );
    };
    if up.created < now() - PENDING_TTL {
        return error_page(StatusCode::BAD_REQUEST, "the sign-in took too long; start again");
    }
    if let Some(e) = q.get("error") {
        let d = q.get("error_description").map(String::as_str).unwrap_or("");
        tracing::info!(error = %e, "the provider refused the sign-in");
        let code = if e == "access_denied" { "access_denied" } else { "server_error" };
        return redirect_error(&up.req, &s.issuer, code, &format!("the provider answered {}: {}", clip(e), clip(d)));
    }
    let Some(code) = q.get("code") else {
        return redirect_error(&up.req, &s.issuer, "server_error", "the provider sent no code");
    };
    let (tokens, subject) = match s.upstream.exchange(code.clone(), up.verifier).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(reason = %e.0, "upstream code exchange failed");
            return redirect_error(
                &up.req,
                &s.issuer,
                "server_error",
                &format!("signing in at the provider failed: {}", e.0),
            );
        }
    };
    let grant = Grant {
        id: random_token("g_", 16),
        subject,
        client_id: up.req.client_id.clone(),
        scopes: up.scopes,
        resource: up.req.resource.clone(),
    };
    if let Err(e) = s.store.add_grant(&grant, &tokens) {
        tracing::error!("authz store: {e}");
        return redirect_error(&up.req, &s.issuer, "server_error", "the grant could not be stored");
    }
    tracing::info!(principal = %grant.subject, client_id = %grant.client_id, scopes = %grant.scopes.join(" "), "signed in");
    let code = random_token(CODE_PREFIX, 32);
    lock(&s.pending.codes).retain(|_, c| c.created > now() - PENDING_TTL);
    lock(&s.pending.codes).insert(
        hash(&code),
        Code {
            grant,
            redirect_uri: up.req.redirect_uri.clone(),
            challenge: up.req.challenge.clone(),
            created: now(),
            used: false,
        },
    );
    let mut u = match url::Url::parse(&up.req.redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "the redirect URI is not a URL"),
    };
    {
        let mut qp = u.query_pairs_mut();
        qp.append_pair("code", &code);
        if let Some(st) = &up.req.state {
            qp.append_pair("state", st);
        }
        qp.append_pair("iss", &s.issuer);
    }
    with_page_headers(Redirect::to(u.as_str()).into_response())
}

fn form(body: &[u8]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        // A repeated parameter is an error (RFC 6749 §3.1); keep a marker.
        if m.insert(k.clone().into_owned(), v.into_owned()).is_some() {
            m.insert(format!("{k}#repeated"), String::new());
        }
    }
    m
}

fn s256(verifier: &str) -> String {
    use base64::Engine as _;
    let d = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// `POST /oauth/token`.
async fn token(State(s): State<Arc<AuthServer>>, body: Bytes) -> Response {
    let f = form(&body);
    if f.keys().any(|k| k.ends_with("#repeated")) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "a parameter is repeated");
    }
    let get = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let Some(client_id) = get("client_id") else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "send client_id (public clients authenticate with PKCE)",
        );
    };
    if let Some(r) = get("resource") {
        if r.trim_end_matches('/') != s.resource.trim_end_matches('/') {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!("tokens here are for {}", s.resource),
            );
        }
    }
    match get("grant_type") {
        Some("authorization_code") => {
            let Some(code) = get("code") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "send the code");
            };
            let taken = {
                let mut codes = lock(&s.pending.codes);
                match codes.get_mut(&hash(code)) {
                    None => None,
                    Some(c) if c.used => Some(Err(c.grant.id.clone())),
                    Some(c) => {
                        c.used = true;
                        Some(Ok((c.grant.clone(), c.redirect_uri.clone(), c.challenge.clone(), c.created)))
                    }
                }
            };
            let (grant, redirect_uri, challenge, created) = match taken {
                None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code is unknown or expired"),
                Some(Err(grant_id)) => {
                    // A replayed code: someone else has it; what it gave is revoked (RFC 6749 §4.1.2).
                    s.revoke_grant(&grant_id).await;
                    tracing::warn!(%client_id, "authorization code replayed: its grant is revoked");
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the code was already used; the tokens issued for it are revoked",
                    );
                }
                Some(Ok(t)) => t,
            };
            if created < now() - CODE_TTL {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code expired; sign in again");
            }
            if grant.client_id != client_id {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the code was issued to another client");
            }
            if get("redirect_uri").is_some_and(|u| u != redirect_uri) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri differs from the one of the authorization request",
                );
            }
            let Some(verifier) = get("code_verifier") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE: send the code_verifier");
            };
            if s256(verifier) != challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE: the code_verifier does not match the code_challenge",
                );
            }
            issue(&s, &grant)
        }
        Some("refresh_token") => {
            let Some(rt) = get("refresh_token") else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "send the refresh_token");
            };
            let rec = match s.store.token(rt) {
                Ok(Some(r)) if r.kind == Kind::Refresh => r,
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the refresh token is unknown or revoked; sign in again",
                    )
                }
            };
            if rec.grant.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token was issued to another client",
                );
            }
            if rec.expires_at <= now() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token expired; sign in again",
                );
            }
            // Rotation (OAuth 2.1 §4.3.1): a refresh token works once; a
            // second use means it leaked, and the whole grant goes.
            if rec.used || !s.store.use_token(rt).unwrap_or(false) {
                s.revoke_grant(&rec.grant.id).await;
                tracing::warn!(%client_id, "refresh token reused: its grant is revoked");
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the refresh token was already used; the grant is revoked, sign in again",
                );
            }
            let grant = rec.grant;
            if let Some(sc) = get("scope") {
                let mut want: Vec<&str> = sc.split_whitespace().collect();
                want.sort_unstable();
                let mut had: Vec<&str> = grant.scopes.iter().map(String::as_str).collect();
                had.sort_unstable();
                if want != had {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_scope",
                        format!(
                            "a refreshed token carries the scopes granted ({}); to change them, sign in again",
                            grant.scopes.join(" ")
                        ),
                    );
                }
            }
            issue(&s, &grant)
        }
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("`{}` is not supported (authorization_code, refresh_token)", clip(other)),
        ),
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "send grant_type"),
    }
}

/// A new access + refresh token pair for `grant`.
fn issue(s: &AuthServer, grant: &Grant) -> Response {
    let access = random_token(ACCESS_PREFIX, 32);
    let refresh = random_token(REFRESH_PREFIX, 32);
    let stored = s
        .store
        .add_token(&access, &grant.id, Kind::Access, now() + s.access_ttl)
        .and_then(|_| s.store.add_token(&refresh, &grant.id, Kind::Refresh, now() + s.refresh_ttl));
    if let Err(e) = stored {
        tracing::error!("authz store: {e}");
        return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the token could not be stored");
    }
    let mut r = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": s.access_ttl,
        "refresh_token": refresh,
        "scope": grant.scopes.join(" "),
    }))
    .into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known.
async fn revoke(State(s): State<Arc<AuthServer>>, body: Bytes) -> Response {
    let f = form(&body);
    let Some(t) = f.get("token").filter(|t| !t.is_empty()) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "send the token to revoke");
    };
    if let Ok(Some(rec)) = s.store.token(t) {
        // A public client is identified by its client_id: another client's
        // token is left alone (and the answer is the same 200).
        if f.get("client_id").is_none_or(|c| *c == rec.grant.client_id) {
            match rec.kind {
                // The refresh token stands for the grant: all of it goes,
                // the upstream tokens included (at the provider too).
                Kind::Refresh => s.revoke_grant(&rec.grant.id).await,
                Kind::Access => {
                    let _ = s.store.delete_token(t);
                }
            }
            tracing::info!(principal = %rec.grant.subject, kind = ?rec.kind, "token revoked");
        }
    }
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        assert!(redirect_uri_ok("https://app.example/cb").is_ok());
        assert!(redirect_uri_ok("http://127.0.0.1:5555/cb").is_ok());
        assert!(redirect_uri_ok("http://localhost/cb").is_ok());
        assert!(redirect_uri_ok("com.example.app:/cb").is_ok());
        assert!(redirect_uri_ok("http://evil.example/cb").is_err());
        assert!(redirect_uri_ok("javascript:alert(1)").is_err());
        assert!(redirect_uri_ok("https://app.example/cb#x").is_err());
    }

    #[test]
    fn pkce_s256_is_base64url_sha256() {
        // Computed independently: base64.urlsafe_b64encode(sha256(v)).rstrip("=") in Python.
        assert_eq!(s256("dBjftJeZ4CVP-mB92K2uhyUd8GnqNaZtGpKOZbqjOLg"), "_0jK9VCHKeHZmQ6eEqudSOOf5i3y0H_PQ_6du_TcevE");
    }

    #[test]
    fn pages_escape_what_clients_name() {
        assert_eq!(escape("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
    }
}
