//! The on-disk cache of remote spec documents.
//!
//! Every http(s) document a spec is read from (the root and what its `$ref`s
//! reach) is kept in the user's cache directory with the validators the
//! server sent (`ETag`, `Last-Modified`). The next read asks the server with
//! `If-None-Match` / `If-Modified-Since`: a `304 Not Modified` costs no
//! download, and when the server cannot be reached (or answers an error) the
//! cached copy is used and the caller gets a note saying so and how old the
//! copy is. Without a cached copy a failure is the error it always was.
//!
//! Documents obtained otherwise than by a GET (a GraphQL endpoint's
//! introspection, a POST with the API's credential) are cached the same way
//! under a key of their own ([`through`]): such a request has no validators,
//! so it is made every time and its answer compared with the cached copy —
//! the same bytes are a confirmation (no rewrite), other bytes replace the
//! entry, and a failure falls back to the copy with the same warning.
//!
//! One file per URL or key (`<hash>.spec`: one JSON line of metadata, then the body
//! exactly as served), written to a temporary file and renamed, so a reader
//! never sees half an entry and a crash leaves the old entry whole. The time
//! of the last successful revalidation sits beside it (`<hash>.checked`),
//! so a 304 does not rewrite a large body.
//!
//! Where: `CODEMODE_CACHE_DIR` (`off` turns the cache off), else
//! `$XDG_CACHE_HOME/codemode/specs`, else the platform's cache directory
//! (`~/.cache`, `~/Library/Caches`, `%LOCALAPPDATA%`) + `codemode/specs`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use url::Url;

/// How long one fetch of a remote document may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What a cached entry says about itself (the first line of its file).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryInfo {
    /// The URL the body came from, or the key of a document fetched some
    /// other way ([`through`]); checked on read (the file name is a hash).
    pub url: String,
    /// The server's `ETag`, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The server's `Last-Modified`, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// When the body was downloaded (seconds since the Unix epoch).
    pub fetched_at: u64,
    /// Length of the body in bytes (a shorter file is a torn entry).
    pub bytes: u64,
    /// When the server last confirmed the body (a 200 or a 304), if later
    /// than `fetched_at`. Read from the `.checked` file beside the entry.
    #[serde(skip)]
    pub checked_at: Option<u64>,
}

impl EntryInfo {
    /// Seconds since the server last confirmed this copy.
    pub fn age_secs(&self) -> u64 {
        now().saturating_sub(self.checked_at.unwrap_or(self.fetched_at).max(self.fetched_at))
    }
}

/// How a document was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Downloaded (a 200), and now cached.
    Downloaded,
    /// The cached copy, confirmed by the server (`304 Not Modified`).
    Revalidated,
    /// The cached copy, because the server could not confirm it: the reason
    /// and how old the copy is, for a warning.
    Stale {
        /// Why the server was not asked or did not answer.
        reason: String,
        /// Seconds since the server last confirmed the copy.
        age_secs: u64,
    },
    /// Downloaded with the cache off (or its directory unusable).
    Uncached,
}

/// A fetched document.
#[derive(Debug)]
pub struct Fetched {
    /// The body, as served.
    pub body: Vec<u8>,
    /// Where it came from.
    pub origin: Origin,
}

/// The cache directory, or `None` when the cache is off or no directory
/// can be found.
pub fn dir() -> Option<PathBuf> {
    dir_from(&|k| std::env::var_os(k))
}

fn dir_from(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    if let Some(d) = env("CODEMODE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return (d != "off").then(|| PathBuf::from(d));
    }
    let absolute = |k: &str| env(k).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = absolute("XDG_CACHE_HOME").or_else(|| {
        if cfg!(windows) {
            absolute("LOCALAPPDATA")
        } else if cfg!(target_os = "macos") {
            absolute("HOME").map(|h| h.join("Library").join("Caches"))
        } else {
            absolute("HOME").map(|h| h.join(".cache"))
        }
    })?;
    Some(base.join("codemode").join("specs"))
}

/// What the cache holds for `url`, if anything (for `codemode check`).
pub fn info(url: &Url) -> Option<EntryInfo> {
    info_of(url.as_str())
}

/// What the cache holds under `key` (a URL, or a [`through`] key).
pub fn info_of(key: &str) -> Option<EntryInfo> {
    let dir = dir()?;
    read_entry(&dir, key, false).map(|(info, _)| info)
}

/// A document that is not a plain GET (a GraphQL introspection, a POST
/// with a credential), through the cache in `dir()` under `key`: `fetch`
/// is always run (there are no validators to ask with); an answer equal to
/// the cached copy is [`Origin::Revalidated`], another one replaces it
/// ([`Origin::Downloaded`]), and a failure with a copy cached is
/// [`Origin::Stale`]. Without a copy the failure is the error.
pub async fn through<F>(key: &str, fetch: F) -> Result<Fetched, String>
where
    F: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    match dir() {
        Some(d) => through_in(&d, key, fetch).await,
        None => fetch.await.map(|body| Fetched { body, origin: Origin::Uncached }),
    }
}

/// [`through`] with the cache in `dir`.
pub async fn through_in<F>(dir: &Path, key: &str, fetch: F) -> Result<Fetched, String>
where
    F: std::future::Future<Output = Result<Vec<u8>, String>>,
{
    let cached = read_entry(dir, key, true);
    match fetch.await {
        Ok(body) => {
            if let Some((_, Some(old))) = &cached {
                if *old == body {
                    let _ = write_atomic(&entry_path(dir, key, "checked"), now().to_string().as_bytes());
                    return Ok(Fetched { body, origin: Origin::Revalidated });
                }
            }
            let info = EntryInfo {
                url: key.to_string(),
                etag: None,
                last_modified: None,
                fetched_at: now(),
                bytes: body.len() as u64,
                checked_at: None,
            };
            let origin = match write_entry(dir, &info, &body) {
                Ok(()) => Origin::Downloaded,
                Err(_) => Origin::Uncached,
            };
            Ok(Fetched { body, origin })
        }
        Err(reason) => match cached {
            Some((info, body)) => Ok(Fetched {
                body: body.expect("read with the body"),
                origin: Origin::Stale { reason, age_secs: info.age_secs() },
            }),
            None => Err(reason),
        },
    }
}

/// Fetches `url` through the cache in `dir()` (see the module docs).
/// `max_bytes` bounds the body. The error is the reason, for a `LoadError`.
pub async fn fetch(url: &Url, http: &reqwest::Client, max_bytes: usize) -> Result<Fetched, String> {
    match dir() {
        Some(d) => fetch_in(&d, url, http, max_bytes).await,
        None => download(url, http, None, max_bytes)
            .await
            .and_then(|a| match a {
                Answer::Body { body, .. } => Ok(body),
                Answer::NotModified => Err("the server answered 304 Not Modified to an unconditional request".into()),
            })
            .map(|body| Fetched { body, origin: Origin::Uncached }),
    }
}

/// [`fetch`] with the cache in `dir`.
pub async fn fetch_in(dir: &Path, url: &Url, http: &reqwest::Client, max_bytes: usize) -> Result<Fetched, String> {
    let cached = read_entry(dir, url.as_str(), true);
    let validators = cached.as_ref().map(|(info, _)| info);
    match download(url, http, validators, max_bytes).await {
        Ok(Answer::Body { body, etag, last_modified }) => {
            let info = EntryInfo {
                url: url.to_string(),
                etag,
                last_modified,
                fetched_at: now(),
                bytes: body.len() as u64,
                checked_at: None,
            };
            let origin = match write_entry(dir, &info, &body) {
                Ok(()) => Origin::Downloaded,
                // A read-only or full disk must not stop the loading.
                Err(_) => Origin::Uncached,
            };
            Ok(Fetched { body, origin })
        }
        Ok(Answer::NotModified) => match cached {
            Some((_, body)) => {
                let _ = write_atomic(&entry_path(dir, url.as_str(), "checked"), now().to_string().as_bytes());
                Ok(Fetched { body: body.expect("read with the body"), origin: Origin::Revalidated })
            }
            None => Err("the server answered 304 Not Modified to an unconditional request".into()),
        },
        Err(reason) => match cached {
            Some((info, body)) => Ok(Fetched {
                body: body.expect("read with the body"),
                origin: Origin::Stale { reason, age_secs: info.age_secs() },
            }),
            None => Err(reason),
        },
    }
}

/// What the server said.
enum Answer {
    Body { body: Vec<u8>, etag: Option<String>, last_modified: Option<String> },
    NotModified,
}

async fn download(
    url: &Url,
    http: &reqwest::Client,
    validators: Option<&EntryInfo>,
    max_bytes: usize,
) -> Result<Answer, String> {
    let mut request = http.get(url.clone()).timeout(FETCH_TIMEOUT);
    if let Some(v) = validators {
        if let Some(etag) = &v.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &v.last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
    }
    let resp = request.send().await.map_err(|e| format!("cannot fetch: {e}"))?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED && validators.is_some() {
        return Ok(Answer::NotModified);
    }
    if !resp.status().is_success() {
        return Err(format!("fetching it returned HTTP {}", resp.status()));
    }
    let header = |name| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let etag = header(reqwest::header::ETAG);
    let last_modified = header(reqwest::header::LAST_MODIFIED);
    let body = resp.bytes().await.map_err(|e| format!("cannot read body: {e}"))?;
    if body.len() > max_bytes {
        return Err(format!("document is larger than {} MiB", max_bytes / (1024 * 1024)));
    }
    Ok(Answer::Body { body: body.to_vec(), etag, last_modified })
}

/// The entry for `key` (a URL or a [`through`] key) with its body (when
/// `with_body`); `None` when there is none, or it is torn, foreign (a hash
/// collision) or unreadable.
fn read_entry(dir: &Path, key: &str, with_body: bool) -> Option<(EntryInfo, Option<Vec<u8>>)> {
    let path = entry_path(dir, key, "spec");
    let (mut info, body) = if with_body {
        let data = std::fs::read(&path).ok()?;
        let newline = data.iter().position(|&b| b == b'\n')?;
        let info: EntryInfo = serde_json::from_slice(&data[..newline]).ok()?;
        let body = data[newline + 1..].to_vec();
        (body.len() as u64 == info.bytes).then_some(())?;
        (info, Some(body))
    } else {
        let file = std::fs::File::open(&path).ok()?;
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut first).ok()?;
        (serde_json::from_str::<EntryInfo>(first.trim_end()).ok()?, None)
    };
    (info.url == key).then_some(())?;
    info.checked_at = std::fs::read_to_string(entry_path(dir, key, "checked")).ok().and_then(|t| t.trim().parse().ok());
    Some((info, body))
}

fn write_entry(dir: &Path, info: &EntryInfo, body: &[u8]) -> std::io::Result<()> {
    let key = info.url.as_str();
    let mut data = serde_json::to_vec(info).map_err(std::io::Error::other)?;
    data.push(b'\n');
    data.extend_from_slice(body);
    write_atomic(&entry_path(dir, key, "spec"), &data)?;
    // A fresh download is its own confirmation: an older `.checked` goes.
    let _ = std::fs::remove_file(entry_path(dir, key, "checked"));
    Ok(())
}

/// Writes `data` to a temporary file beside `path` and renames it over
/// `path`: readers see the old file or the new one, never a part. The
/// directory is created private (the URLs may name private hosts).
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("entry paths have a directory");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
        std::process::id(),
        now_nanos()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `<dir>/<16 hex digits of FNV-1a of the URL or key>.<ext>`: a stable
/// name (the standard library's hasher may change between releases) of
/// fixed length.
fn entry_path(dir: &Path, key: &str, ext: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    dir.join(format!("{h:016x}.{ext}"))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// `3 d 4 h`, `5 min`, `12 s`: an age for people.
pub fn human_age(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.into())
    }

    #[test]
    fn the_directory_follows_the_override_then_xdg_then_home() {
        assert_eq!(dir_from(&env(&[("CODEMODE_CACHE_DIR", "/c"), ("HOME", "/h")])), Some("/c".into()));
        assert_eq!(dir_from(&env(&[("CODEMODE_CACHE_DIR", "off"), ("HOME", "/h")])), None);
        assert_eq!(
            dir_from(&env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/codemode/specs"))
        );
        // A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
        let home = dir_from(&env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")]));
        if cfg!(target_os = "linux") {
            assert_eq!(home, Some(PathBuf::from("/h/.cache/codemode/specs")));
        }
        assert_eq!(dir_from(&env(&[])), None);
    }

    #[test]
    fn entries_round_trip_and_torn_or_foreign_ones_are_ignored() {
        let dir = std::env::temp_dir().join(format!("codemode-cache-test-{}", std::process::id()));
        let url = Url::parse("https://example.com/openapi.json").unwrap();
        let info = EntryInfo {
            url: url.to_string(),
            etag: Some("\"v1\"".into()),
            last_modified: None,
            fetched_at: now() - 10,
            bytes: 4,
            checked_at: None,
        };
        write_entry(&dir, &info, b"{}\n ").unwrap();
        let (read, body) = read_entry(&dir, url.as_str(), true).unwrap();
        assert_eq!(read, info);
        assert_eq!(body.unwrap(), b"{}\n ");
        assert!(read.age_secs() >= 10);
        assert_eq!(self::info_in(&dir, &url).unwrap().etag, info.etag);
        // A body cut short (a torn copy from elsewhere) is no entry.
        let path = entry_path(&dir, url.as_str(), "spec");
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() - 1]).unwrap();
        assert!(read_entry(&dir, url.as_str(), true).is_none());
        // Another URL's entry under this name (a collision) is no entry.
        let other = Url::parse("https://example.com/other.json").unwrap();
        std::fs::write(entry_path(&dir, other.as_str(), "spec"), &data).unwrap();
        assert!(read_entry(&dir, other.as_str(), true).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn info_in(dir: &Path, url: &Url) -> Option<EntryInfo> {
        read_entry(dir, url.as_str(), false).map(|(i, _)| i)
    }

    #[tokio::test]
    async fn documents_fetched_otherwise_are_compared_and_fall_back_when_the_fetch_fails() {
        let dir = std::env::temp_dir().join(format!("codemode-cache-through-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = "graphql introspection of books at http://127.0.0.1:1/graphql";
        // No copy and a failure: the failure.
        let e = through_in(&dir, key, async { Err("connection refused".to_string()) }).await.unwrap_err();
        assert_eq!(e, "connection refused");
        // First answer: cached.
        let f = through_in(&dir, key, async { Ok(b"{\"a\":1}".to_vec()) }).await.unwrap();
        assert_eq!(f.origin, Origin::Downloaded);
        let written = std::fs::metadata(entry_path(&dir, key, "spec")).unwrap().modified().unwrap();
        // The same answer: a confirmation, the entry not rewritten.
        let f = through_in(&dir, key, async { Ok(b"{\"a\":1}".to_vec()) }).await.unwrap();
        assert_eq!(f.origin, Origin::Revalidated);
        assert_eq!(std::fs::metadata(entry_path(&dir, key, "spec")).unwrap().modified().unwrap(), written);
        assert!(read_entry(&dir, key, false).unwrap().0.checked_at.is_some());
        // Another answer replaces it.
        let f = through_in(&dir, key, async { Ok(b"{\"a\":2}".to_vec()) }).await.unwrap();
        assert_eq!(f.origin, Origin::Downloaded);
        // A failure: the latest copy, stale, with the reason.
        let f = through_in(&dir, key, async { Err("HTTP 502".to_string()) }).await.unwrap();
        assert_eq!(f.body, b"{\"a\":2}");
        assert!(matches!(f.origin, Origin::Stale { ref reason, .. } if reason == "HTTP 502"), "{:?}", f.origin);
        // Another key is another entry.
        assert!(through_in(&dir, "other", async { Err("down".to_string()) }).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(human_age(5), "5 s");
        assert_eq!(human_age(600), "10 min");
        assert_eq!(human_age(3 * 3600 + 120), "3 h 2 min");
        assert_eq!(human_age(3 * 86_400 + 3600), "3 d 1 h");
    }
}
