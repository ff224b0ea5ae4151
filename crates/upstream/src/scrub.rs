//! Removing credentials from everything that goes back to the sandbox.
//!
//! An upstream may echo what it received — in a body, a header, a redirect
//! `Location`, an error message — in plain or encoded form. A [`Scrubber`]
//! is built once from a set of secrets and replaces every occurrence of any
//! of these forms of each secret with [`REDACTED`]:
//!
//! - the raw value;
//! - base64 and base64url, padded and unpadded, at each of the three byte
//!   alignments. For alignment `k` the secret is encoded after `k` prefix
//!   bytes and only the characters that depend on the secret alone are kept
//!   (plus, as longer alternatives, the tail that ends the encoding). This
//!   also catches base64 of any text that *contains* the secret, such as a
//!   whole `Bearer …` header value or `user:password`;
//! - hex (matched case-insensitively, so upper and lower case);
//! - percent-encoding: every byte as `%XX`, and the partial encodings that
//!   common encoders produce (RFC 3986 unreserved kept, `encodeURIComponent`,
//!   `application/x-www-form-urlencoded`, reserved characters only);
//! - decoded views: when a string contains `\` escapes (JSON or JavaScript:
//!   `\u0041`, `\/`, `\x41`), `%XX` escapes or numeric HTML entities, it is
//!   also decoded and checked; if the decoded text holds a secret, the
//!   decoded, scrubbed text replaces the string. JSON bodies are scrubbed
//!   after parsing ([`Scrubber::scrub_value`]): every string value, every
//!   object key, and numbers whose digits form a secret.
//!
//! Matching is ASCII case-insensitive and leftmost-longest (one Aho–Corasick
//! automaton for all forms of all secrets), so overlapping forms are replaced
//! as one span. Secrets and forms shorter than [`MIN_PATTERN_LEN`] bytes are
//! skipped: scrubbing a 3-character secret would wreck unrelated output, so
//! very short secrets are not scrubbed at all.
//!
//! This is defence in depth, not a guarantee: an upstream (or an MCP server)
//! that wants to leak a secret can always transform it in a way no list of
//! encodings anticipates (reversed, split across fields, encrypted).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine as _;
use serde_json::{Map, Value};

/// What every secret-derived span is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Patterns (forms of a secret) shorter than this many bytes are not
/// scrubbed, so that tiny secrets do not wreck unrelated output.
pub const MIN_PATTERN_LEN: usize = 6;

/// Finds and replaces every known form of a set of secrets. Cheap to clone;
/// never prints the secrets (`Debug` shows only how many patterns it has).
#[derive(Clone, Default)]
pub struct Scrubber {
    matcher: Option<Arc<AhoCorasick>>,
    patterns: usize,
    /// The secrets it was built from, so that [`Scrubber::with`] can add
    /// one for a single execution (a pass-through credential).
    secrets: Arc<Vec<String>>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} patterns)", self.patterns)
    }
}

impl Scrubber {
    /// A scrubber for `secrets` (and every encoded form of each). Secrets
    /// shorter than [`MIN_PATTERN_LEN`] bytes are ignored, and so are forms
    /// of longer ones that come out shorter than that (base64 pieces).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> = vec![];
        let mut kept: Vec<String> = vec![];
        for s in secrets {
            let s = s.as_ref();
            if s.len() >= MIN_PATTERN_LEN {
                forms(s.as_bytes(), &mut patterns);
                kept.push(s.to_string());
            }
        }
        patterns.retain(|p| p.len() >= MIN_PATTERN_LEN);
        patterns.sort();
        patterns.dedup();
        if patterns.is_empty() {
            return Scrubber::default();
        }
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("a few thousand literal patterns always build");
        Scrubber { patterns: patterns.len(), matcher: Some(Arc::new(matcher)), secrets: Arc::new(kept) }
    }

    /// This scrubber plus `more` secrets (and their encoded forms): for a
    /// credential known only during one execution, such as the token a
    /// client presented for pass-through. Returns a clone when `more` adds
    /// nothing.
    pub fn with<I, S>(&self, more: I) -> Scrubber
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let more: Vec<String> = more
            .into_iter()
            .map(|s| s.as_ref().to_string())
            .filter(|s| s.len() >= MIN_PATTERN_LEN && !self.secrets.contains(s))
            .collect();
        if more.is_empty() {
            return self.clone();
        }
        Scrubber::new(self.secrets.iter().cloned().chain(more))
    }

    /// A scrubber that changes nothing.
    pub fn none() -> Self {
        Scrubber::default()
    }

    /// True when there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// How many distinct patterns (forms of secrets) it looks for.
    pub fn pattern_count(&self) -> usize {
        self.patterns
    }

    /// True when `text`, or one of its decoded views, contains a secret.
    pub fn finds(&self, text: &str) -> bool {
        matches!(self.scrub_str(text), Cow::Owned(_))
    }

    /// `text` with every form of every secret replaced by [`REDACTED`];
    /// borrowed when nothing was found.
    pub fn scrub_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(ac) = &self.matcher else { return Cow::Borrowed(text) };
        let mut out: Cow<'a, str> = if ac.is_match(text) { Cow::Owned(replace(ac, text)) } else { Cow::Borrowed(text) };
        // Decoded views: an escaped secret hides from the literal patterns.
        // Each round replaces the text by a decoded, scrubbed view that held
        // a secret; bounded, since every round removes at least one.
        for _ in 0..4 {
            match decoded_view(ac, &out, 2) {
                Some(clean) => out = Cow::Owned(clean),
                None => break,
            }
        }
        out
    }

    /// `bytes` with every literal form of every secret replaced by
    /// [`REDACTED`] (a binary body: its bytes change length where a secret
    /// was, which is the point). Decoded views are for text and are not
    /// tried here; borrowed when nothing was found.
    pub fn scrub_bytes<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(ac) = &self.matcher else { return Cow::Borrowed(bytes) };
        if !ac.is_match(bytes) {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        ac.replace_all_with_bytes(bytes, &mut out, |_, _, dst| {
            dst.extend_from_slice(REDACTED.as_bytes());
            true
        });
        Cow::Owned(out)
    }

    /// Scrubs a JSON value in place: every string, every object key, and
    /// numbers whose text is a secret (they become the string [`REDACTED`]).
    pub fn scrub_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        // An explicit stack: values built on the host need not respect
        // serde_json's parse depth limit.
        let mut stack: Vec<&mut Value> = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => {
                    if let Cow::Owned(clean) = self.scrub_str(s) {
                        *s = clean;
                    }
                }
                Value::Number(n) => {
                    let text = n.to_string();
                    if let Cow::Owned(clean) = self.scrub_str(&text) {
                        *v = Value::String(clean);
                    }
                }
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    if map.keys().any(|k| self.finds(k)) {
                        let old = std::mem::take(map);
                        let mut fresh = Map::with_capacity(old.len());
                        for (k, val) in old {
                            fresh.insert(self.scrub_str(&k).into_owned(), val);
                        }
                        *map = fresh;
                    }
                    stack.extend(map.values_mut());
                }
                Value::Null | Value::Bool(_) => {}
            }
        }
    }

    /// [`Scrubber::scrub_value`] by value.
    pub fn scrubbed(&self, mut value: Value) -> Value {
        self.scrub_value(&mut value);
        value
    }
}

/// The first decoded view of `text` (up to `depth` decodings deep, e.g. a
/// JSON escape inside percent-encoding) that contains a secret, scrubbed.
fn decoded_view(ac: &AhoCorasick, text: &str, depth: u32) -> Option<String> {
    for decode in [json_unescape, percent_decode, html_unescape] {
        if let Some(decoded) = decode(text) {
            if ac.is_match(&decoded) {
                return Some(replace(ac, &decoded));
            }
            if depth > 1 {
                if let Some(clean) = decoded_view(ac, &decoded, depth - 1) {
                    return Some(clean);
                }
            }
        }
    }
    None
}

fn replace(ac: &AhoCorasick, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    ac.replace_all_with(text, &mut out, |_, _, dst| {
        dst.push_str(REDACTED);
        true
    });
    out
}

/// Every literal form of one secret (before the length filter).
fn forms(secret: &[u8], out: &mut Vec<String>) {
    if secret.is_empty() {
        return;
    }
    if let Ok(s) = std::str::from_utf8(secret) {
        out.push(s.to_string());
    }
    // Hex, and every byte percent-encoded (case-insensitive matching covers
    // upper and lower case digits).
    out.push(secret.iter().map(|b| format!("{b:02x}")).collect());
    out.push(secret.iter().map(|b| format!("%{b:02x}")).collect());
    // Partial percent-encodings, as common encoders produce them.
    use percent_encoding::{percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
    const UNRESERVED_KEPT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    const URI_COMPONENT: &AsciiSet = &UNRESERVED_KEPT.remove(b'!').remove(b'*').remove(b'\'').remove(b'(').remove(b')');
    // Only the reserved (gen-delims and sub-delims), `%`, space and controls.
    const RESERVED_ONLY: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'%')
        .add(b':')
        .add(b'/')
        .add(b'?')
        .add(b'#')
        .add(b'[')
        .add(b']')
        .add(b'@')
        .add(b'!')
        .add(b'$')
        .add(b'&')
        .add(b'\'')
        .add(b'(')
        .add(b')')
        .add(b'*')
        .add(b'+')
        .add(b',')
        .add(b';')
        .add(b'=');
    for set in [NON_ALPHANUMERIC, UNRESERVED_KEPT, URI_COMPONENT, RESERVED_ONLY, CONTROLS] {
        out.push(percent_encode(secret, set).to_string());
    }
    out.push(url::form_urlencoded::byte_serialize(secret).collect());
    // Base64 and base64url at each alignment: after `k` prefix bytes, the
    // characters from ceil(8k/6) on depend on the secret alone; those up to
    // floor(8(k+n)/6) do not depend on what follows it either.
    let n = secret.len();
    for k in 0..3usize {
        let mut input = vec![0u8; k];
        input.extend_from_slice(secret);
        let start = (8 * k).div_ceil(6);
        let core_end = 8 * (k + n) / 6;
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&input);
            if core_end > start {
                out.push(encoded[start..core_end].to_string());
            }
            // The secret at the end of the encoded text: its last partial
            // character (and padding) belong to it too.
            out.push(encoded[start..].to_string());
        }
    }
}

/// Decodes JSON / JavaScript string escapes (`\uXXXX` with surrogate pairs,
/// `\xHH`, `\/`, `\"`, `\\`, `\n`…), leniently; `None` when there are none.
fn json_unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let hex = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = chars.peek()?.to_digit(16)?;
            chars.next();
            v = v * 16 + d;
        }
        Some(v)
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('0') => out.push('\0'),
            Some('u') => {
                let Some(hi) = hex(&mut chars, 4) else {
                    out.push_str("\\u");
                    continue;
                };
                if (0xD800..0xDC00).contains(&hi) {
                    let mut look = chars.clone();
                    if look.next() == Some('\\') && look.next() == Some('u') {
                        if let Some(lo) = hex(&mut look, 4).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                            chars = look;
                            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                            continue;
                        }
                    }
                }
                out.push(char::from_u32(hi).unwrap_or('\u{FFFD}'));
            }
            Some('x') => match hex(&mut chars, 2) {
                Some(v) => out.push(char::from_u32(v).unwrap_or('\u{FFFD}')),
                None => out.push_str("\\x"),
            },
            Some(other) => out.push(other),
        }
    }
    Some(out)
}

/// Decodes `%XX` escapes; `None` when there are none.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    Some(percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
}

/// Decodes numeric HTML entities (`&#65;`, `&#x41;`); `None` when there are
/// none.
fn html_unescape(s: &str) -> Option<String> {
    if !s.contains("&#") {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("&#") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let (radix, digits_at) = if after.starts_with(['x', 'X']) { (16, 1) } else { (10, 0) };
        let digits: String = after[digits_at..].chars().take_while(|c| c.is_digit(radix)).take(8).collect();
        let end = digits_at + digits.len();
        match u32::from_str_radix(&digits, radix).ok().and_then(char::from_u32) {
            Some(c) if !digits.is_empty() => {
                out.push(c);
                rest = after[end..].strip_prefix(';').unwrap_or(&after[end..]);
            }
            _ => {
                out.push_str("&#");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use serde_json::json;

    const CANARY: &str = "cAnary-T0ken_9f3b2e7d+/x";

    fn scrubber() -> Scrubber {
        Scrubber::new([CANARY])
    }

    #[test]
    fn with_adds_a_secret_for_one_execution_and_keeps_the_old_ones() {
        let base = Scrubber::new(["service-secret-123"]);
        let exec = base.with(["presented-token-456", "short"]);
        let both = format!("a service-secret-123 b {} c", STANDARD.encode("Bearer presented-token-456"));
        let out = exec.scrub_str(&both);
        assert!(!out.contains("service-secret") && !out.contains("cHJlc2VudGVk"), "{out}");
        // The service's scrubber is unchanged, and adding nothing new is a clone.
        assert!(!base.finds("presented-token-456"));
        assert_eq!(base.with(["service-secret-123", "tiny"]).pattern_count(), base.pattern_count());
        assert!(Scrubber::none().with(["presented-token-456"]).finds("x presented-token-456"));
    }

    /// Asserts that no form of the canary survives in `out`.
    fn clean(out: &str, what: &str) {
        let lower = out.to_ascii_lowercase();
        for needle in ["9f3b2e7d", "canary-t0ken", "t0ken_9f3"] {
            assert!(!lower.contains(needle), "{what}: `{needle}` survived in {out:?}");
        }
        assert!(out.contains(REDACTED), "{what}: nothing was redacted in {out:?}");
    }

    /// (name, encoded text, the characters that depend on the secret alone
    /// when that is not the whole text).
    fn encodings(secret: &str) -> Vec<(String, String, Option<String>)> {
        let b = secret.as_bytes();
        let whole = |name: &str, form: String| (name.to_string(), form, None);
        let mut v = vec![
            whole("raw", secret.to_string()),
            whole("upper", secret.to_ascii_uppercase()),
            whole("lower", secret.to_ascii_lowercase()),
            whole("hex", b.iter().map(|x| format!("{x:02x}")).collect()),
            whole("HEX", b.iter().map(|x| format!("{x:02X}")).collect()),
            whole("percent every byte", b.iter().map(|x| format!("%{x:02X}")).collect()),
            whole("percent every byte lower", b.iter().map(|x| format!("%{x:02x}")).collect()),
            whole(
                "percent partial",
                percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string(),
            ),
            whole("form", url::form_urlencoded::byte_serialize(b).collect()),
        ];
        for prefix in ["", "a", "ab"] {
            let k = prefix.len();
            let (start, end) = ((8 * k).div_ceil(6), 8 * (k + b.len()) / 6);
            let engines: [(&str, &base64::engine::GeneralPurpose); 4] = [
                ("b64", &STANDARD),
                ("b64 nopad", &STANDARD_NO_PAD),
                ("b64url", &URL_SAFE),
                ("b64url nopad", &URL_SAFE_NO_PAD),
            ];
            for (name, e) in engines {
                let alone = e.encode(format!("{prefix}{secret}"));
                let core = alone[start..end].to_string();
                let followed = e.encode(format!("{prefix}{secret}-and-more"));
                v.push((format!("{name} after {prefix:?}"), alone, Some(core.clone())));
                v.push((format!("{name} after {prefix:?}, followed"), followed, Some(core)));
            }
        }
        v
    }

    #[test]
    fn every_encoding_at_every_offset_is_scrubbed() {
        let s = scrubber();
        for (name, form, core) in encodings(CANARY) {
            for pad in ["", "x", "xy", "xyz"] {
                let text = format!("{pad}before {pad}{form}{pad} after");
                let out = s.scrub_str(&text);
                let what = format!("{name} at offset {}", pad.len());
                match core {
                    None => {
                        clean(&out, &what);
                        assert_eq!(out, format!("{pad}before {pad}{REDACTED}{pad} after"), "{what}");
                    }
                    Some(ref core) => {
                        // No 4 characters of what depends on the secret alone remain.
                        let lower = out.to_ascii_lowercase();
                        for w in core.as_bytes().windows(4) {
                            let w = std::str::from_utf8(w).unwrap().to_ascii_lowercase();
                            assert!(!lower.contains(&w), "{what}: `{w}` survived in {out}");
                        }
                        assert!(out.starts_with(&format!("{pad}before {pad}")), "{what}: {out}");
                        assert!(out.ends_with(&format!("{pad} after")), "{what}: {out}");
                    }
                }
            }
        }
    }

    #[test]
    fn base64_of_enclosing_text_is_scrubbed() {
        let s = scrubber();
        for text in [format!("Bearer {CANARY}"), format!("user:{CANARY}"), format!("{{\"token\":\"{CANARY}\"}}")] {
            for e in [&STANDARD, &URL_SAFE_NO_PAD] {
                let enc = e.encode(&text);
                let out = s.scrub_str(&enc);
                assert!(out.contains(REDACTED), "{text}: {out}");
                // At most the characters that mix prefix and secret bits remain.
                let keep = out.replace(REDACTED, "");
                assert!(keep.len() <= enc.len() - CANARY.len() * 4 / 3 + 2, "{text}: kept {keep}");
            }
        }
    }

    #[test]
    fn basic_password_alone_and_with_user() {
        let s = Scrubber::new(["hunter2-pass", "alice:hunter2-pass"]);
        for text in [STANDARD.encode("hunter2-pass"), STANDARD.encode("alice:hunter2-pass"), "hunter2-pass".into()] {
            let out = s.scrub_str(&text);
            assert!(out.contains(REDACTED) && out.len() <= REDACTED.len() + 3, "{text}: {out}");
        }
    }

    #[test]
    fn json_escapes_are_seen_through() {
        let s = scrubber();
        let one = CANARY.replacen('A', "\\u0041", 1);
        let all: String = CANARY.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let slashes = CANARY.replace('/', "\\/");
        let js_hex = CANARY.replacen('c', "\\x63", 1);
        for escaped in [one, all, slashes, js_hex] {
            // As raw text (a non-JSON body, a header).
            let raw = format!("echo: \"{escaped}\" end");
            clean(&s.scrub_str(&raw), &raw);
            if escaped.contains("\\x") {
                continue; // not JSON
            }
            // As a JSON body: scrubbed after decoding.
            let mut v: Value = serde_json::from_str(&format!("{{\"a\": [\"{escaped}\"], \"{escaped}\": 1}}")).unwrap();
            s.scrub_value(&mut v);
            let out = v.to_string();
            clean(&out, &escaped);
        }
    }

    #[test]
    fn json_values_keys_and_numbers() {
        let s = Scrubber::new(["12345678", CANARY]);
        let mut v = json!({"n": 12345678, "k": {CANARY: "x"}, "deep": [[[{"s": format!("x{CANARY}y")}]]]});
        s.scrub_value(&mut v);
        assert_eq!(v, json!({"n": REDACTED, "k": {REDACTED: "x"}, "deep": [[[{"s": format!("x{REDACTED}y")}]]]}));
    }

    #[test]
    fn other_decoded_views() {
        let s = scrubber();
        let html: String = CANARY.chars().map(|c| format!("&#{};", c as u32)).collect();
        clean(&s.scrub_str(&format!("<p>{html}</p>")), "html decimal");
        let html: String = CANARY.chars().map(|c| format!("&#x{:x};", c as u32)).collect();
        clean(&s.scrub_str(&html), "html hex");
        // Only some characters percent-encoded (no encoder does this).
        let odd = CANARY.replacen('T', "%54", 1).replacen('9', "%39", 1);
        clean(&s.scrub_str(&odd), "odd percent");
        // JSON escape inside percent-encoding.
        let nested = CANARY.replacen('A', "%5Cu0041", 1);
        clean(&s.scrub_str(&nested), "nested");
    }

    #[test]
    fn unrelated_text_is_untouched() {
        let s = scrubber();
        for text in [
            "",
            "hello world",
            "{\"a\": \"\\u0041\\/b\", \"p\": \"100%25 sure\"}",
            "&#65; &#x42; &amp; 50% + 20%",
            "Canary token 9f3b unrelated, YWJjZGVm, 616263646566",
            "\\x \\u12 \\ trailing \\",
        ] {
            assert!(matches!(s.scrub_str(text), Cow::Borrowed(_)), "{text} was changed to {}", s.scrub_str(text));
        }
        let mut v = json!({"a": [1, 2.5, "x\\u0041"], "b": {"c": null, "d": true}});
        let before = v.clone();
        s.scrub_value(&mut v);
        assert_eq!(v, before);
    }

    #[test]
    fn short_secrets_and_forms_are_skipped() {
        let s = Scrubber::new(["abc", ""]);
        // "abc" itself and its short forms are skipped; nothing wrecks text.
        assert_eq!(s.scrub_str("abc abcd xabcx"), "abc abcd xabcx");
        assert!(Scrubber::new(Vec::<String>::new()).is_empty());
        assert!(!format!("{s:?}").contains("abc"));
    }
}
