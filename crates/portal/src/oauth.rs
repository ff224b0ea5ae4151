//! OAuth 2.1 to upstream MCP servers that require it (Streamable HTTP).
//!
//! The OAuth mechanics are rmcp's (`auth` feature, on the `oauth2` crate):
//! discovery (RFC 9728 protected resource metadata from the server's 401
//! challenge, then RFC 8414 authorization server metadata), client
//! registration (a pre-configured `client_id`, a Client ID Metadata
//! Document, or dynamic registration — in the MCP spec's order),
//! authorization code + PKCE, refresh, and the client credentials grant.
//! This module adds what rmcp leaves to the application:
//!
//! - [`TokenStore`]: where tokens live — an AES-256-GCM encrypted file per
//!   server under the user's data dir (interactive sign-in), or memory
//!   (client credentials, re-obtained on every start). Refreshes of a file
//!   are serialised across processes by a file lock, so several codemode
//!   processes can share one sign-in with a rotating refresh token. Every token it has
//!   seen is kept for the [`Scrubber`], so no token of an upstream reaches
//!   the sandbox, a result, a log line or the audit store, even when a
//!   hostile upstream echoes it.
//! - [`OAuthHttp`]: the Streamable HTTP client of the portal's transport,
//!   rmcp's [`AuthClient`] (bearer on every request, refresh before
//!   expiry, one refresh-and-retry on a 401) plus a fresh client
//!   credentials token before the old one expires, and a typed
//!   "needs sign-in" verdict when the upstream keeps refusing.
//! - [`login`]: `codemode login <server>`: the authorization URL printed (or
//!   opened), a loopback listener that catches the redirect, the code
//!   exchanged and the tokens stored.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use oauth2::TokenResponse as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::auth::{
    AuthClient, AuthError, AuthorizationManager, AuthorizationRequest, AuthorizationSession, ClientCredentialsConfig,
    CredentialRefreshGuard, CredentialStore, OAuthClientConfig, StoredCredentials,
};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use codemode_upstream::Scrubber;

/// Environment variable holding the key of the token files (32 bytes, as
/// base64 or 64 hex digits). Without it the key is a file `key` next to the
/// tokens, created on first use (mode 0600).
pub const TOKEN_KEY_ENV: &str = "CODEMODE_TOKEN_KEY";
/// A token is refreshed when less than this much of its life is left (or
/// half its lifetime, for shorter-lived tokens) — rmcp's own rule, applied
/// to client credentials tokens too.
const REFRESH_BUFFER_SECS: u64 = 30;
/// Most tokens remembered per server for scrubbing (the current ones and
/// those they replaced: an upstream may echo an old token).
const REMEMBERED_TOKENS: usize = 32;
/// Longest wait for another process's refresh of the same token file.
const REFRESH_LOCK_WAIT: Duration = Duration::from_secs(60);
/// Largest request the login listener reads (the redirect is a `GET` line).
const CALLBACK_MAX_BYTES: usize = 16 * 1024;

/// `[[mcp]] auth = { type = "oauth", … }`, resolved: which grant, which
/// client, which scopes, where tokens are kept.
#[derive(Clone, PartialEq)]
pub struct OAuthConfig {
    /// How the token is obtained.
    pub grant: Grant,
    /// Scopes to ask for; empty: what the server's challenge or metadata
    /// names (rmcp's scope selection).
    pub scopes: Vec<String>,
    /// Directory of the encrypted token files (see [`default_store_dir`]).
    pub store_dir: PathBuf,
}

/// The OAuth grant an upstream is reached with.
#[derive(Clone, PartialEq)]
pub enum Grant {
    /// Authorization code + PKCE for an interactive user, who signs in once
    /// with `codemode login <server>`; refreshed from then on.
    AuthorizationCode {
        /// A client registered beforehand with the authorization server.
        /// Without it (and without `client_metadata_url`) codemode registers
        /// itself dynamically (RFC 7591) when it signs in.
        client_id: Option<String>,
        /// That client's secret, for confidential clients.
        client_secret: Option<String>,
        /// An `https` URL of a Client ID Metadata Document describing
        /// codemode, used as the `client_id` where the authorization server
        /// supports it.
        client_metadata_url: Option<String>,
        /// Port of the loopback redirect listener (`http://127.0.0.1:PORT/callback`);
        /// `None`: any free port (fine with dynamic registration; a
        /// pre-registered client usually needs a fixed one).
        redirect_port: Option<u16>,
    },
    /// Client credentials (machine to machine): no user, no sign-in.
    ClientCredentials {
        /// The client's id.
        client_id: String,
        /// The client's secret.
        client_secret: String,
    },
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let grant = match &self.grant {
            Grant::AuthorizationCode { client_id, client_secret, client_metadata_url, redirect_port } => format!(
                "AuthorizationCode {{ client_id: {client_id:?}, client_secret: {}, client_metadata_url: {client_metadata_url:?}, redirect_port: {redirect_port:?} }}",
                if client_secret.is_some() { "[redacted]" } else { "None" }
            ),
            Grant::ClientCredentials { client_id, .. } => {
                format!("ClientCredentials {{ client_id: {client_id:?}, client_secret: [redacted] }}")
            }
        };
        f.debug_struct("OAuthConfig")
            .field("grant", &format_args!("{grant}"))
            .field("scopes", &self.scopes)
            .field("store_dir", &self.store_dir)
            .finish()
    }
}

impl OAuthConfig {
    /// The configured secrets (a client secret), for the scrubber.
    pub fn secrets(&self) -> Vec<String> {
        match &self.grant {
            Grant::AuthorizationCode { client_secret, .. } => client_secret.iter().cloned().collect(),
            Grant::ClientCredentials { client_secret, .. } => vec![client_secret.clone()],
        }
    }

    /// Whether a person signs in (`codemode login`).
    pub fn is_interactive(&self) -> bool {
        matches!(self.grant, Grant::AuthorizationCode { .. })
    }
}

/// Where token files live unless configured: `$CODEMODE_DATA_DIR/oauth`,
/// else `$XDG_DATA_HOME/codemode/oauth`, else `~/.local/share/codemode/oauth`.
pub fn default_store_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = nonempty("CODEMODE_DATA_DIR") {
        return Some(d.join("oauth"));
    }
    if let Some(d) = nonempty("XDG_DATA_HOME") {
        return Some(d.join("codemode").join("oauth"));
    }
    nonempty("HOME").map(|h| h.join(".local/share/codemode/oauth"))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Tokens an upstream has been given, kept to scrub them from everything
/// the portal hands out. Cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct SeenTokens {
    inner: Arc<Mutex<(Vec<String>, Scrubber)>>,
}

impl SeenTokens {
    fn remember(&self, credentials: &StoredCredentials) {
        let Some(t) = &credentials.token_response else { return };
        let mut fresh = vec![t.access_token().secret().to_string()];
        if let Some(r) = t.refresh_token() {
            fresh.push(r.secret().to_string());
        }
        let mut g = crate::upstream::lock(&self.inner);
        let before = g.0.len();
        for f in fresh {
            if !f.is_empty() && !g.0.contains(&f) {
                g.0.push(f);
            }
        }
        if g.0.len() != before {
            let excess = g.0.len().saturating_sub(REMEMBERED_TOKENS);
            g.0.drain(..excess);
            g.1 = Scrubber::new(g.0.iter().cloned());
        }
    }

    /// A scrubber of every token seen so far.
    pub fn scrubber(&self) -> Scrubber {
        crate::upstream::lock(&self.inner).1.clone()
    }
}

/// Where one server's tokens are kept: an encrypted file (interactive
/// sign-in, so `codemode login` and `codemode serve` share it and a refresh
/// survives a restart), or memory (client credentials).
#[derive(Clone)]
pub(crate) struct TokenStore {
    file: Option<Arc<TokenFile>>,
    memory: Arc<tokio::sync::Mutex<Option<StoredCredentials>>>,
    pub seen: SeenTokens,
}

struct TokenFile {
    path: PathBuf,
    key: LessSafeKey,
    /// Binds the file to its server: a file copied onto another server's
    /// name does not decrypt.
    aad: String,
}

impl TokenStore {
    /// The store of `server` (named `name`, at `url`).
    pub fn open(name: &str, url: &str, config: &OAuthConfig) -> Result<TokenStore, String> {
        let file =
            if config.is_interactive() { Some(Arc::new(TokenFile::open(name, url, &config.store_dir)?)) } else { None };
        Ok(TokenStore { file, memory: Default::default(), seen: SeenTokens::default() })
    }

    /// The token file, if tokens are kept in one.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// When the token file last changed (a `codemode login` elsewhere).
    pub fn modified(&self) -> Option<SystemTime> {
        self.file.as_ref().and_then(|f| std::fs::metadata(&f.path).ok()?.modified().ok())
    }

    /// The stored credentials, if any (errors read as none, logged).
    pub async fn current(&self) -> Option<StoredCredentials> {
        match self.load().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }
}

fn store_error(e: impl std::fmt::Display) -> AuthError {
    AuthError::CredentialStoreError(e.to_string())
}

#[async_trait::async_trait]
impl CredentialStore for TokenStore {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        let c = match &self.file {
            Some(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.read()).await.map_err(store_error)?.map_err(store_error)?
            }
            None => self.memory.lock().await.clone(),
        };
        if let Some(c) = &c {
            self.seen.remember(c);
        }
        Ok(c)
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        self.seen.remember(&credentials);
        match &self.file {
            Some(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.write(Some(&credentials)))
                    .await
                    .map_err(store_error)?
                    .map_err(store_error)
            }
            None => {
                *self.memory.lock().await = Some(credentials);
                Ok(())
            }
        }
    }

    /// Serialises refreshes across every process and connection sharing
    /// the token file: rmcp takes this guard, then re-reads the file, then
    /// refreshes and saves, all under it. With a rotating refresh token two
    /// refreshes from the same stored token would be a reuse, and the
    /// provider would revoke the whole grant; under the lock the second
    /// refresher reads the first one's new token instead.
    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let Some(f) = &self.file else { return Ok(None) };
        let f = f.clone();
        let lock = tokio::task::spawn_blocking(move || f.lock_for_refresh())
            .await
            .map_err(store_error)?
            .map_err(store_error)?;
        Ok(Some(CredentialRefreshGuard::new(lock)))
    }

    async fn clear(&self) -> Result<(), AuthError> {
        match &self.file {
            Some(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.write(None)).await.map_err(store_error)?.map_err(store_error)
            }
            None => {
                *self.memory.lock().await = None;
                Ok(())
            }
        }
    }
}

/// The on-disk envelope: `nonce ‖ ciphertext ‖ tag`, base64.
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    codemode_oauth_tokens: u32,
    alg: String,
    data: String,
}

impl TokenFile {
    fn open(name: &str, url: &str, dir: &Path) -> Result<TokenFile, String> {
        create_private_dir(dir)?;
        let key = load_key(dir)?;
        let safe: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
        let tag: String = digest.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        Ok(TokenFile {
            path: dir.join(format!("{safe}-{tag}.tokens")),
            key,
            aad: format!("codemode oauth tokens v1\n{name}\n{url}"),
        })
    }

    /// The refresh lock: an exclusive `flock` on `<file>.lock` (a file of its
    /// own, because the token file is replaced by rename on every save).
    /// Released when the returned file is dropped, or by the kernel when
    /// its process dies, so a crashed holder never wedges the others.
    /// Waits at most [`REFRESH_LOCK_WAIT`] (a refresh is one request with
    /// a timeout of its own).
    fn lock_for_refresh(&self) -> Result<std::fs::File, String> {
        let path = self.path.with_extension("lock");
        let file = owner_only(std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false))
            .open(&path)
            .map_err(|e| format!("cannot open the refresh lock {}: {e}", path.display()))?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < REFRESH_LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(format!(
                        "another process has held the refresh lock {} for over {}s; if no codemode is refreshing, remove the file",
                        path.display(),
                        REFRESH_LOCK_WAIT.as_secs()
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!("cannot lock {}: {e}", path.display()))
                }
            }
        }
    }

    fn read(&self) -> Result<Option<StoredCredentials>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the token file {}: {e}", self.path.display())),
        };
        let bad = |why: &str| {
            format!(
                "the token file {} {why}; run `codemode login` again (or set {TOKEN_KEY_ENV} to the key it was written with)",
                self.path.display()
            )
        };
        let env: Envelope = serde_json::from_str(&text).map_err(|_| bad("is not a codemode token file"))?;
        if env.codemode_oauth_tokens != 1 || env.alg != "AES-256-GCM" {
            return Err(bad("has an unknown format version"));
        }
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(env.data).map_err(|_| bad("is damaged"))?;
        if bytes.len() < NONCE_LEN {
            return Err(bad("is damaged"));
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).map_err(|_| bad("is damaged"))?;
        let mut sealed = bytes.split_off(NONCE_LEN);
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(self.aad.as_bytes()), &mut sealed)
            .map_err(|_| bad("does not decrypt with this key (another key, or another server's file)"))?;
        serde_json::from_slice(plain).map(Some).map_err(|_| bad("holds no tokens codemode can read"))
    }

    fn write(&self, credentials: Option<&StoredCredentials>) -> Result<(), String> {
        let Some(credentials) = credentials else {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("cannot remove {}: {e}", self.path.display())),
            };
        };
        let mut data = serde_json::to_vec(credentials).map_err(|e| e.to_string())?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| "no randomness for a nonce".to_string())?;
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(self.aad.as_bytes()), &mut data)
            .map_err(|_| "cannot encrypt the tokens".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        let env = Envelope {
            codemode_oauth_tokens: 1,
            alg: "AES-256-GCM".into(),
            data: base64::engine::general_purpose::STANDARD.encode(out),
        };
        let text = serde_json::to_string(&env).map_err(|e| e.to_string())?;
        // Written beside, then renamed: a reader sees the old file or the new one.
        let tmp = self.path.with_extension(format!("tmp{}", std::process::id()));
        write_private(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("cannot write the token file {}: {e}", self.path.display()))
    }
}

/// Opens files for the owner alone (mode 0600) where permissions are Unix
/// modes; elsewhere (Windows) the file gets the ACL of its directory, the
/// user's own data directory.
fn owner_only(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| format!("cannot create the token directory {}: {e}", dir.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = owner_only(std::fs::OpenOptions::new().write(true).create(true).truncate(true)).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The key: [`TOKEN_KEY_ENV`], else `<dir>/key` (made on first use).
fn load_key(dir: &Path) -> Result<LessSafeKey, String> {
    let bytes = match std::env::var(TOKEN_KEY_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_key(v.trim()).ok_or_else(|| {
            format!("{TOKEN_KEY_ENV} must be 32 bytes as base64 or 64 hex digits (e.g. the output of `openssl rand -base64 32`)")
        })?,
        _ => {
            let path = dir.join("key");
            match std::fs::read(&path) {
                Ok(b) if b.len() == 32 => b,
                Ok(_) => return Err(format!("{} is not a 32-byte key; remove it and sign in again", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let mut b = vec![0u8; 32];
                    SystemRandom::new().fill(&mut b).map_err(|_| "no randomness for a key".to_string())?;
                    let made = owner_only(std::fs::OpenOptions::new().write(true).create_new(true))
                        .open(&path)
                        .and_then(|mut f| f.write_all(&b).and_then(|()| f.sync_all()));
                    match made {
                        Ok(()) => b,
                        // Another process made it first: use theirs.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
                        }
                        Err(e) => return Err(format!("cannot create the key file {}: {e}", path.display())),
                    }
                }
                Err(e) => return Err(format!("cannot read the key file {}: {e}", path.display())),
            }
        }
    };
    let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "the token key must be 32 bytes".to_string())?;
    Ok(LessSafeKey::new(key))
}

fn parse_key(text: &str) -> Option<Vec<u8>> {
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..32).map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect();
    }
    let b = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    (b.len() == 32).then_some(b)
}

/// The OAuth side of one server at run time: its store and whether it needs
/// a person to sign in (again).
pub(crate) struct OAuthRuntime {
    pub name: String,
    pub url: String,
    pub config: OAuthConfig,
    pub store: TokenStore,
    /// Set when the server refused every token codemode has (none stored,
    /// refresh refused, revoked): the supervisor parks instead of looping.
    needs_sign_in: AtomicBool,
    /// The token file's change time when that was decided: a newer file (a
    /// `codemode login` since) is worth a new attempt.
    file_at_refusal: Mutex<Option<SystemTime>>,
    /// Why, in words, for the model-facing error.
    why: Mutex<String>,
}

impl OAuthRuntime {
    pub fn new(name: &str, url: &str, config: OAuthConfig) -> Result<OAuthRuntime, String> {
        let store = TokenStore::open(name, url, &config)?;
        Ok(OAuthRuntime {
            name: name.into(),
            url: url.into(),
            config,
            store,
            needs_sign_in: AtomicBool::new(false),
            file_at_refusal: Mutex::new(None),
            why: Mutex::new(String::new()),
        })
    }

    /// Whether the last attempt ended in "needs sign-in".
    pub fn needs_sign_in(&self) -> bool {
        self.needs_sign_in.load(Ordering::SeqCst)
    }

    fn refuse(&self, why: impl Into<String>) {
        *crate::upstream::lock(&self.why) = why.into();
        *crate::upstream::lock(&self.file_at_refusal) = self.store.modified();
        self.needs_sign_in.store(true, Ordering::SeqCst);
    }

    /// Clears the verdict before a new attempt.
    pub fn reset(&self) {
        self.needs_sign_in.store(false, Ordering::SeqCst);
    }

    /// Whether someone signed in since the refusal (the token file changed).
    pub fn signed_in_since(&self) -> bool {
        let then = *crate::upstream::lock(&self.file_at_refusal);
        match (self.store.modified(), then) {
            (Some(now), Some(then)) => now > then,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The model-facing message: what happened and the command that fixes it.
    pub fn sign_in_message(&self) -> String {
        let why = crate::upstream::lock(&self.why).clone();
        let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
        match &self.config.grant {
            Grant::AuthorizationCode { .. } => format!(
                "server `{0}` needs sign-in{why}: run `codemode login {0}` (a person signs in once in a browser; codemode keeps and refreshes the token), then call again",
                self.name
            ),
            Grant::ClientCredentials { .. } => format!(
                "server `{0}` refused codemode's client credentials{why}: check the client id and secret configured for it (`[[mcp]] auth`), then call again",
                self.name
            ),
        }
    }

    fn client_credentials(&self) -> Option<ClientCredentialsConfig> {
        match &self.config.grant {
            Grant::ClientCredentials { client_id, client_secret } => Some(ClientCredentialsConfig::ClientSecret {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                scopes: self.config.scopes.clone(),
                // RFC 8707: the token is for this MCP server (its canonical URL).
                resource: Some(self.url.clone()),
            }),
            Grant::AuthorizationCode { .. } => None,
        }
    }
}

/// A manager for `url` with this store, discovery not yet done.
async fn manager(rt: &OAuthRuntime) -> Result<AuthorizationManager, String> {
    let mut m = AuthorizationManager::new(rt.url.as_str())
        .await
        .map_err(|e| format!("cannot set up OAuth for {}: {e}", rt.url))?;
    m.set_credential_store(rt.store.clone());
    Ok(m)
}

/// Builds the authorized HTTP client for one connection attempt: the stored
/// sign-in (refreshed if it is about to expire) or a client credentials
/// token. An `Err` after which [`OAuthRuntime::needs_sign_in`] is set means
/// a person (or a fixed configuration) has to act; any other `Err` is worth
/// a retry.
pub(crate) async fn connect_client(rt: &Arc<OAuthRuntime>, http: reqwest::Client) -> Result<OAuthHttp, String> {
    rt.reset();
    let mut m = manager(rt).await?;
    match rt.client_credentials() {
        None => {
            let restored = m.initialize_from_store().await.map_err(|e| discovery_error(rt, e))?;
            if !restored {
                rt.refuse("codemode has no token for it yet");
                return Err(rt.sign_in_message());
            }
            // rmcp restores the client as a public one; a confidential
            // pre-registered client refreshes with its secret.
            if let Grant::AuthorizationCode { client_id: Some(id), client_secret: Some(secret), .. } = &rt.config.grant
            {
                if rt.store.current().await.is_some_and(|c| &c.client_id == id) {
                    m.configure_client(
                        OAuthClientConfig::new(id.clone(), rt.url.clone()).with_client_secret(secret.clone()),
                    )
                    .map_err(|e| format!("cannot configure the OAuth client of server `{}`: {e}", rt.name))?;
                }
            }
            match m.get_access_token().await {
                Ok(_) => {}
                Err(AuthError::AuthorizationRequired) => {
                    rt.refuse("the stored sign-in has expired and could not be refreshed");
                    return Err(rt.sign_in_message());
                }
                Err(e) => return Err(format!("cannot refresh the token of server `{}`: {e}", rt.name)),
            }
        }
        Some(cc) => {
            exchange_client_credentials(rt, &mut m, &cc).await?;
        }
    }
    Ok(OAuthHttp { inner: AuthClient::new(http, m), rt: rt.clone() })
}

async fn exchange_client_credentials(
    rt: &OAuthRuntime,
    m: &mut AuthorizationManager,
    cc: &ClientCredentialsConfig,
) -> Result<(), String> {
    let resolution = m.resolve_metadata().await.map_err(|e| discovery_error(rt, e))?;
    if !resolution.source.is_discovered() {
        return Err(format!(
            "server `{}` publishes no OAuth metadata (RFC 9728 / RFC 8414), so there is no token endpoint for client credentials",
            rt.name
        ));
    }
    m.set_metadata(resolution.metadata);
    m.validate_client_credentials_metadata(cc).map_err(|e| cc_error(rt, e))?;
    m.configure_client_credentials(cc).map_err(|e| cc_error(rt, e))?;
    m.exchange_client_credentials(cc).await.map_err(|e| cc_error(rt, e))?;
    Ok(())
}

fn cc_error(rt: &OAuthRuntime, e: AuthError) -> String {
    // The authorization server's verdict on these credentials will not
    // change by retrying: park, do not loop.
    if matches!(e, AuthError::ClientCredentialsError(_)) {
        rt.refuse(e.to_string());
        return rt.sign_in_message();
    }
    format!("client credentials for server `{}`: {e}", rt.name)
}

fn discovery_error(rt: &OAuthRuntime, e: AuthError) -> String {
    format!("OAuth discovery for server `{}` at {} failed: {e}", rt.name, rt.url)
}

/// The portal's Streamable HTTP client for an OAuth server: rmcp's
/// [`AuthClient`] (which adds the bearer, refreshes before expiry and retries
/// once after a 401 with a refreshed token), plus client credentials renewal
/// and the "needs sign-in" verdict.
#[derive(Clone)]
pub(crate) struct OAuthHttp {
    inner: AuthClient<reqwest::Client>,
    rt: Arc<OAuthRuntime>,
}

type HttpError = StreamableHttpError<reqwest::Error>;

impl OAuthHttp {
    /// Renews a client credentials token that is about to expire (there is
    /// no refresh token for that grant), before the request that would fail.
    async fn before(&self) -> Result<(), HttpError> {
        let Some(cc) = self.rt.client_credentials() else { return Ok(()) };
        let Some(stored) = self.rt.store.current().await else { return self.renew(&cc).await };
        let fresh = match (stored.token_response.as_ref().and_then(|t| t.expires_in()), stored.token_received_at) {
            (Some(ttl), Some(at)) => {
                let remaining = ttl.as_secs().saturating_sub(now_secs().saturating_sub(at));
                remaining >= REFRESH_BUFFER_SECS.min(ttl.as_secs() / 2).max(1)
            }
            _ => true,
        };
        if fresh {
            Ok(())
        } else {
            self.renew(&cc).await
        }
    }

    async fn renew(&self, cc: &ClientCredentialsConfig) -> Result<(), HttpError> {
        let m = self.inner.auth_manager.lock().await;
        m.exchange_client_credentials(cc).await.map(|_| ()).map_err(|e| {
            if matches!(e, AuthError::ClientCredentialsError(_)) {
                self.rt.refuse(e.to_string());
            }
            HttpError::Auth(e)
        })
    }

    /// Runs one request through the checks; a 401 that rmcp's refresh did
    /// not cure ends in "needs sign-in" (after one fresh client credentials
    /// token, for that grant).
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, HttpError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, HttpError>>,
    {
        self.before().await?;
        match call().await {
            Err(StreamableHttpError::AuthRequired(challenge)) => {
                if let Some(cc) = self.rt.client_credentials() {
                    self.renew(&cc).await?;
                    match call().await {
                        Err(StreamableHttpError::AuthRequired(c)) => {
                            self.rt.refuse("it refused a fresh client credentials token");
                            Err(StreamableHttpError::AuthRequired(c))
                        }
                        r => r,
                    }
                } else {
                    self.rt.refuse("it refused the stored token (revoked or expired) and no refresh helped");
                    Err(StreamableHttpError::AuthRequired(challenge))
                }
            }
            r => r,
        }
    }
}

/// Which of the inner client's `post_message` variants a request takes:
/// each passes different response limits on to the HTTP client.
#[derive(Clone, Copy)]
enum PostLimits {
    /// `post_message`: the client's defaults.
    Default,
    /// `post_message_with_max_sse_event_size`.
    MaxSseEvent(usize),
    /// `post_message_with_response_limits`.
    Response(StreamableHttpResponseLimits),
}

type SseStream = futures::stream::BoxStream<'static, Result<sse_stream::Sse, sse_stream::Error>>;

impl OAuthHttp {
    /// Every `post_message` variant: through [`OAuthHttp::run`], with its limits.
    async fn post(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: PostLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.run(|| {
            let (uri, message, session_id, auth_header, headers) =
                (uri.clone(), message.clone(), session_id.clone(), auth_header.clone(), custom_headers.clone());
            async move {
                match limits {
                    PostLimits::Default => {
                        self.inner.post_message(uri, message, session_id, auth_header, headers).await
                    }
                    PostLimits::MaxSseEvent(max) => {
                        self.inner
                            .post_message_with_max_sse_event_size(uri, message, session_id, auth_header, headers, max)
                            .await
                    }
                    PostLimits::Response(l) => {
                        self.inner
                            .post_message_with_response_limits(uri, message, session_id, auth_header, headers, l)
                            .await
                    }
                }
            }
        })
        .await
    }

    /// Both `get_stream` variants (`max_sse_event_size`: `None` for the client's default).
    async fn stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: Option<usize>,
    ) -> Result<SseStream, HttpError> {
        self.run(|| {
            let (uri, session_id, last_event_id, auth_header, headers) =
                (uri.clone(), session_id.clone(), last_event_id.clone(), auth_header.clone(), custom_headers.clone());
            async move {
                match max_sse_event_size {
                    None => self.inner.get_stream(uri, session_id, last_event_id, auth_header, headers).await,
                    Some(max) => {
                        self.inner
                            .get_stream_with_max_sse_event_size(
                                uri,
                                session_id,
                                last_event_id,
                                auth_header,
                                headers,
                                max,
                            )
                            .await
                    }
                }
            }
        })
        .await
    }
}

impl StreamableHttpClient for OAuthHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post(uri, message, session_id, auth_header, custom_headers, PostLimits::Default).await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let limits = PostLimits::MaxSseEvent(max_sse_event_size);
        self.post(uri, message, session_id, auth_header, custom_headers, limits).await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post(uri, message, session_id, auth_header, custom_headers, PostLimits::Response(limits)).await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        self.run(|| {
            self.inner.delete_session(uri.clone(), session_id.clone(), auth_header.clone(), custom_headers.clone())
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<SseStream, HttpError> {
        self.stream(uri, session_id, last_event_id, auth_header, custom_headers, None).await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<SseStream, HttpError> {
        self.stream(uri, session_id, last_event_id, auth_header, custom_headers, Some(max_sse_event_size)).await
    }
}

/// How `codemode login` behaves.
#[derive(Clone, Debug)]
pub struct LoginOptions {
    /// Open the URL in the user's browser (`xdg-open` / `open`) besides printing it.
    pub open_browser: bool,
    /// Longest wait for the browser to come back to the loopback listener.
    pub timeout: Duration,
}

/// What a sign-in produced (no token in it).
#[derive(Clone, Debug)]
pub struct LoginReport {
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Where the tokens are (encrypted).
    pub store: Option<PathBuf>,
    /// Seconds the access token lives (if the server said).
    pub expires_in: Option<u64>,
    /// Whether a refresh token was issued (else the user signs in again when it expires).
    pub refreshable: bool,
}

/// `codemode login <server>`: signs a person in to `server` and stores the
/// tokens (authorization code + PKCE through a loopback redirect), or for a
/// client credentials server checks that its credentials get a token. The
/// authorization URL is written to `out` (one line of its own).
pub async fn login(
    server: &crate::ServerConfig,
    options: &LoginOptions,
    out: &mut (dyn std::io::Write + Send),
) -> Result<LoginReport, String> {
    let crate::Transport::Http { url, .. } = &server.transport else {
        return Err(format!(
            "server `{}` is not reached over Streamable HTTP; OAuth applies to `url` servers only",
            server.name
        ));
    };
    let Some(config) = &server.oauth else {
        return Err(format!(
            "server `{}` has no `auth = {{ type = \"oauth\" }}` in its [[mcp]] table; nothing to sign in to",
            server.name
        ));
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = Arc::new(OAuthRuntime::new(&server.name, url, config.clone())?);
    let mut m = manager(&rt).await?;
    if let Some(cc) = rt.client_credentials() {
        exchange_client_credentials(&rt, &mut m, &cc).await?;
        let stored = rt.store.current().await;
        return Ok(report(stored.as_ref(), None));
    }
    let Grant::AuthorizationCode { client_id, client_secret, client_metadata_url, redirect_port } = &config.grant
    else {
        unreachable!("client credentials handled above")
    };
    // Discovery starts from the server's own 401 (its WWW-Authenticate names
    // the protected resource metadata), as the MCP spec has clients do.
    let challenge = challenge_of(url).await?;
    let resolution =
        m.resolve_metadata_from_challenge(challenge.as_deref()).await.map_err(|e| discovery_error(&rt, e))?;
    if !resolution.source.is_discovered() {
        return Err(format!(
            "server `{}` publishes no OAuth metadata (RFC 9728 protected resource metadata, RFC 8414 authorization server metadata); it may not use OAuth at all",
            server.name
        ));
    }
    m.set_metadata(resolution.metadata);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", redirect_port.unwrap_or(0))).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1:{} for the sign-in redirect: {e}", redirect_port.unwrap_or(0))
    })?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let mut request = AuthorizationRequest::new(redirect_uri.clone()).with_client_name("codemode");
    if !config.scopes.is_empty() {
        request = request.with_scopes(config.scopes.iter().cloned());
    }
    if let Some(ch) = &challenge {
        request = request.with_challenge(ch.clone());
    }
    if let Some(id) = client_id {
        request = request.with_preregistered_client(id.clone());
        if let Some(secret) = client_secret {
            request = request.with_client_secret(secret.clone());
        }
    }
    if let Some(u) = client_metadata_url {
        request = request.with_client_metadata_url(u.clone());
    }
    let session =
        AuthorizationSession::new(m, request).await.map_err(|(_, e)| format!("cannot start the sign-in: {e}"))?;
    let auth_url = session.get_authorization_url().to_string();
    let _ = writeln!(out, "Sign in to `{}` by opening this URL in a browser:\n{auth_url}", server.name);
    let _ = out.flush();
    if options.open_browser {
        open_browser(&auth_url, out);
    }
    let callback =
        tokio::time::timeout(options.timeout, wait_for_callback(&listener, port)).await.map_err(|_| {
            format!(
                "no sign-in came back to {redirect_uri} within {}s; run `codemode login {}` again",
                options.timeout.as_secs(),
                server.name
            )
        })??;
    session.handle_callback_url(&callback).await.map_err(|e| format!("the sign-in did not complete: {e}"))?;
    let stored = rt.store.current().await;
    Ok(report(stored.as_ref(), rt.store.path().map(Path::to_path_buf)))
}

fn report(stored: Option<&StoredCredentials>, store: Option<PathBuf>) -> LoginReport {
    let token = stored.and_then(|s| s.token_response.as_ref());
    LoginReport {
        scopes: stored.map(|s| s.granted_scopes.clone()).unwrap_or_default(),
        store,
        expires_in: token.and_then(|t| t.expires_in()).map(|d| d.as_secs()),
        refreshable: token.is_some_and(|t| t.refresh_token().is_some()),
    }
}

/// The `WWW-Authenticate` of the server's answer to an unauthenticated
/// `initialize` (`None` if it did not answer 401 with one).
async fn challenge_of(url: &str) -> Result<Option<String>, String> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "codemode-login", "version": env!("CARGO_PKG_VERSION")}}
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    Ok(resp.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

fn open_browser(url: &str, out: &mut (dyn std::io::Write + Send)) {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let started = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = started {
        let _ = writeln!(out, "(could not start `{program}`: {e}; open the URL yourself)");
    }
}

/// Serves the loopback redirect: answers requests until one is
/// `GET /callback?…`; returns its full URL. Other paths (a browser's
/// favicon) get a 404.
async fn wait_for_callback(listener: &tokio::net::TcpListener, port: u16) -> Result<String, String> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(|e| format!("the sign-in listener failed: {e}"))?;
        let mut buf = Vec::with_capacity(2048);
        let mut chunk = [0u8; 2048];
        let head = loop {
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
            let Ok(Ok(n)) = read else { break None };
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > CALLBACK_MAX_BYTES {
                break Some(String::from_utf8_lossy(&buf).into_owned());
            }
        };
        let Some(head) = head else { continue };
        let target = head.lines().next().and_then(|l| l.strip_prefix("GET ")).and_then(|l| l.split(' ').next());
        match target {
            Some(t) if t.starts_with("/callback?") => {
                let page = "<!doctype html><title>codemode</title><p>Signed in. You can close this tab and go back to codemode.</p>";
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                            page.len()
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = stream.shutdown().await;
                return Ok(format!("http://127.0.0.1:{port}{t}"));
            }
            _ => {
                let _ =
                    stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::basic::BasicTokenType;
    use oauth2::{AccessToken, RefreshToken};
    use rmcp::transport::auth::{OAuthTokenResponse, VendorExtraTokenFields};

    fn config(dir: &Path) -> OAuthConfig {
        OAuthConfig {
            grant: Grant::AuthorizationCode {
                client_id: None,
                client_secret: None,
                client_metadata_url: None,
                redirect_port: None,
            },
            scopes: vec![],
            store_dir: dir.to_path_buf(),
        }
    }

    fn credentials(access: &str, refresh: &str) -> StoredCredentials {
        let mut t = OAuthTokenResponse::new(
            AccessToken::new(access.into()),
            BasicTokenType::Bearer,
            VendorExtraTokenFields::default(),
        );
        t.set_refresh_token(Some(RefreshToken::new(refresh.into())));
        t.set_expires_in(Some(&Duration::from_secs(60)));
        StoredCredentials::new("client-1".into(), Some(t), vec!["tickets:read".into()], Some(now_secs()))
    }

    #[tokio::test]
    async fn the_token_file_is_encrypted_bound_to_its_server_and_private() {
        let dir = std::env::temp_dir().join(format!("codemode-oauth-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = TokenStore::open("docs", "http://127.0.0.1:9/mcp", &config(&dir)).unwrap();
        assert!(store.load().await.unwrap().is_none());
        store.save(credentials("access-SECRET-0123456789", "refresh-SECRET-0123456789")).await.unwrap();
        let path = store.path().unwrap().to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("SECRET"), "the file holds the token in clear: {text}");
        let b64 = base64::engine::general_purpose::STANDARD.encode("access-SECRET-0123456789");
        assert!(!text.contains(&b64[..16]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(dir.join("key")).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Reads back; every token is remembered for scrubbing.
        let again = TokenStore::open("docs", "http://127.0.0.1:9/mcp", &config(&dir)).unwrap();
        let c = again.load().await.unwrap().unwrap();
        assert_eq!(c.token_response.unwrap().access_token().secret(), "access-SECRET-0123456789");
        let scrubbed = again.seen.scrubber().scrub_str("x refresh-SECRET-0123456789 y").into_owned();
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        // Another server's name on the same file does not decrypt.
        let other = TokenStore::open("evil", "http://127.0.0.1:9/mcp", &config(&dir)).unwrap();
        std::fs::copy(&path, other.path().unwrap()).unwrap();
        let e = other.load().await.unwrap_err().to_string();
        assert!(e.contains("does not decrypt"), "{e}");
        // A damaged file is an error that says what to do, not a panic.
        std::fs::write(&path, "{\"codemode_oauth_tokens\":1,\"alg\":\"AES-256-GCM\",\"data\":\"AAAA\"}").unwrap();
        let e = again.load().await.unwrap_err().to_string();
        assert!(e.contains("codemode login"), "{e}");
        again.clear().await.unwrap();
        assert!(again.load().await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn refreshes_of_one_token_file_take_turns() {
        use std::sync::atomic::AtomicUsize;
        let dir = std::env::temp_dir().join(format!("codemode-oauth-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (inside, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut tasks = vec![];
        for _ in 0..6 {
            // A store of its own each, as separate processes have: the lock
            // is the file's, not the store object's.
            let store = TokenStore::open("docs", "http://127.0.0.1:9/mcp", &config(&dir)).unwrap();
            let (inside, most) = (inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let guard = store.acquire_refresh_guard().await.unwrap();
                assert!(guard.is_some(), "a token file has a refresh guard");
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "two refreshes held the lock at once");
        // Client credentials live in memory: nothing to share, no lock.
        let memory = TokenStore::open(
            "m2m",
            "http://127.0.0.1:9/mcp",
            &OAuthConfig {
                grant: Grant::ClientCredentials { client_id: "m".into(), client_secret: "s".into() },
                ..config(&dir)
            },
        )
        .unwrap();
        assert!(memory.acquire_refresh_guard().await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_parse_as_base64_or_hex_only_at_32_bytes() {
        assert_eq!(parse_key(&"ab".repeat(32)).unwrap().len(), 32);
        assert_eq!(parse_key(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap(), vec![7u8; 32]);
        assert!(parse_key("short").is_none());
        assert!(parse_key(&base64::engine::general_purpose::STANDARD.encode([7u8; 16])).is_none());
    }

    #[test]
    fn debug_hides_the_client_secret() {
        let c = OAuthConfig {
            grant: Grant::ClientCredentials { client_id: "m2m".into(), client_secret: "s3cr3t-value".into() },
            scopes: vec![],
            store_dir: PathBuf::from("/x"),
        };
        let d = format!("{c:?}");
        assert!(d.contains("m2m") && !d.contains("s3cr3t"), "{d}");
        assert_eq!(c.secrets(), vec!["s3cr3t-value".to_string()]);
    }
}
