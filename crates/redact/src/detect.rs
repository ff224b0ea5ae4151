//! The detectors: what each one finds, and the checks that keep it from
//! finding what is not there.
//!
//! Every detector reports byte spans of the text it was given. Spans always
//! start and end on ASCII characters of the match (or on a custom regex's
//! match boundaries), so they are char boundaries.

use std::fmt;
use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use regex::Regex;

/// A built-in detector. Each has a stable id ([`Builtin::id`]) that the
/// config names (`detectors = ["email", …]`), that markers carry
/// (`[redacted:email]`), that counts are keyed by and that DLP errors name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Builtin {
    /// `email`: `local@domain.tld`, also with the `@` percent-encoded
    /// (`jane%40example.com` in a query string).
    Email,
    /// `card`: payment card numbers — 13 to 19 digits, plain or in groups
    /// separated by single spaces or dashes (one kind per number), starting
    /// with a major-network digit (2–6), passing the Luhn check, not part of
    /// a longer number, word or decimal.
    Card,
    /// `iban`: international bank account numbers — a known country code,
    /// that country's length, optional single spaces, the mod-97 check.
    Iban,
    /// `aws_key`: AWS access key ids (`AKIA…`, `ASIA…`, `ABIA…`, `ACCA…` +
    /// 16), and 40-character secret access keys where the context names them
    /// (`aws_secret_access_key = …`, `"SecretAccessKey": "…"`, a JSON key of
    /// that name).
    AwsKey,
    /// `gcp_key`: Google API keys (`AIza` + 35). Service-account JSON keys
    /// are caught by `pem_private_key`.
    GcpKey,
    /// `github_token`: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` tokens and
    /// fine-grained `github_pat_` tokens.
    GithubToken,
    /// `slack_token`: `xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`, `xoxs-` tokens.
    SlackToken,
    /// `stripe_key`: secret and restricted keys, live or test
    /// (`sk_live_`, `rk_live_`, `sk_test_`, `rk_test_`).
    StripeKey,
    /// `jwt`: JSON Web Tokens — three (or, encrypted, five) base64url parts
    /// whose header decodes to a JSON object with an `alg`.
    Jwt,
    /// `pem_private_key`: `-----BEGIN … PRIVATE KEY-----` through its
    /// `-----END … PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP
    /// blocks), real or `\n`-escaped line breaks; a block cut off before its
    /// end is redacted as far as its base64 goes.
    PemPrivateKey,
}

impl Builtin {
    /// Every built-in detector, in the order they are listed and applied.
    pub const ALL: [Builtin; 10] = [
        Builtin::Email,
        Builtin::Card,
        Builtin::Iban,
        Builtin::AwsKey,
        Builtin::GcpKey,
        Builtin::GithubToken,
        Builtin::SlackToken,
        Builtin::StripeKey,
        Builtin::Jwt,
        Builtin::PemPrivateKey,
    ];

    /// The stable id: `email`, `card`, `iban`, `aws_key`, `gcp_key`,
    /// `github_token`, `slack_token`, `stripe_key`, `jwt`,
    /// `pem_private_key`.
    pub fn id(self) -> &'static str {
        match self {
            Builtin::Email => "email",
            Builtin::Card => "card",
            Builtin::Iban => "iban",
            Builtin::AwsKey => "aws_key",
            Builtin::GcpKey => "gcp_key",
            Builtin::GithubToken => "github_token",
            Builtin::SlackToken => "slack_token",
            Builtin::StripeKey => "stripe_key",
            Builtin::Jwt => "jwt",
            Builtin::PemPrivateKey => "pem_private_key",
        }
    }

    /// The detector with this id.
    pub fn from_id(id: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.id() == id)
    }

    /// What it finds, in words (`a payment card number`), for messages.
    pub fn what(self) -> &'static str {
        match self {
            Builtin::Email => "an e-mail address",
            Builtin::Card => "a payment card number",
            Builtin::Iban => "an IBAN (bank account number)",
            Builtin::AwsKey => "an AWS access key",
            Builtin::GcpKey => "a Google API key",
            Builtin::GithubToken => "a GitHub token",
            Builtin::SlackToken => "a Slack token",
            Builtin::StripeKey => "a Stripe secret key",
            Builtin::Jwt => "a JSON Web Token",
            Builtin::PemPrivateKey => "a PEM private key",
        }
    }

    /// Appends the spans (`start..end` byte offsets) of what it finds in
    /// `text`, in order.
    pub fn find(self, text: &str, out: &mut Vec<(usize, usize)>) {
        let b = text.as_bytes();
        match self {
            Builtin::Email => {
                if b.contains(&b'@') || text.contains("%40") {
                    out.extend(EMAIL.find_iter(text).map(|m| (m.start(), m.end())));
                }
            }
            Builtin::Card => find_cards(b, out),
            Builtin::Iban => find_ibans(b, out),
            Builtin::AwsKey => {
                scan(&AWS_KEY_ID, text, out, |s, e| !before(b, s, is_alnum) && !after(b, e, is_alnum));
                for c in AWS_SECRET.captures_iter(text) {
                    let m = c.get(1).expect("group 1 always takes part");
                    if !after(b, m.end(), |c| is_alnum(c) || matches!(c, b'/' | b'+' | b'=')) {
                        out.push((m.start(), m.end()));
                    }
                }
                // Two passes: keep the spans in order.
                out.sort_unstable();
            }
            Builtin::GcpKey => {
                let tok = |c: u8| is_alnum(c) || c == b'_' || c == b'-';
                scan(&GCP_KEY, text, out, |s, e| !before(b, s, tok) && !after(b, e, tok))
            }
            Builtin::GithubToken => {
                let tok = |c: u8| is_alnum(c) || c == b'_';
                scan(&GITHUB_TOKEN, text, out, |s, e| !before(b, s, tok) && !after(b, e, tok))
            }
            Builtin::SlackToken => scan(&SLACK_TOKEN, text, out, |s, _| !before(b, s, is_alnum)),
            Builtin::StripeKey => {
                let tok = |c: u8| is_alnum(c) || c == b'_';
                scan(&STRIPE_KEY, text, out, |s, e| !before(b, s, tok) && !after(b, e, is_alnum))
            }
            Builtin::Jwt => {
                let tok = |c: u8| is_alnum(c) || c == b'_' || c == b'-';
                scan(&JWT, text, out, |s, e| !before(b, s, tok) && is_jwt(&text[s..e]))
            }
            Builtin::PemPrivateKey => out.extend(PEM.find_iter(text).map(|m| (m.start(), m.end()))),
        }
    }
}

/// What one cheap pass over a text's bytes saw: enough to rule most
/// detectors out before any of them runs. Each built-in has a necessary
/// condition here (a byte or pair of bytes its matches always contain, and
/// a least length), so skipping on it never loses a find.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Triggers {
    bits: u8,
    digits: usize,
    upper: usize,
    len: usize,
}

const T_AT: u8 = 1; // `@` or `%` (email)
const T_AWS: u8 = 2; // `A` then K/S/B/C (AKIA, ASIA, ABIA, ACCA)
const T_KEY: u8 = 4; // `ey`, any case (…_access_key)
const T_GCP: u8 = 8; // `Iz` (AIza)
const T_UNDERSCORE: u8 = 16; // GitHub and Stripe prefixes
const T_SLACK: u8 = 32; // `xo` (xox…)
const T_JWT: u8 = 64; // `yJ` (eyJ)
const T_PEM: u8 = 128; // `--`

impl Triggers {
    /// One pass over `text`: digits and capitals counted without branches,
    /// the few bytes that can start or end a trigger pair looked at more
    /// closely.
    pub(crate) fn of(text: &str) -> Triggers {
        let (mut bits, mut digits, mut upper, mut p) = (0u8, 0usize, 0usize, 0u8);
        for &c in text.as_bytes() {
            let k = CLASS[c as usize];
            digits += (k & C_DIGIT) as usize;
            upper += ((k & C_UPPER) >> 1) as usize;
            if k & C_SPECIAL != 0 {
                bits |= match c {
                    b'@' | b'%' => T_AT,
                    b'_' => T_UNDERSCORE,
                    b'-' if p == b'-' => T_PEM,
                    b'y' | b'Y' if p | 0x20 == b'e' => T_KEY,
                    b'z' if p == b'I' => T_GCP,
                    b'o' if p == b'x' => T_SLACK,
                    b'J' if p == b'y' => T_JWT,
                    b'K' | b'S' | b'B' | b'C' if p == b'A' => T_AWS,
                    _ => 0,
                };
            }
            p = c;
        }
        Triggers { bits, digits, upper, len: text.len() }
    }
}

const C_DIGIT: u8 = 1;
const C_UPPER: u8 = 2;
const C_SPECIAL: u8 = 4;

/// Byte classes for [`Triggers::of`].
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_digit() {
            t[c] |= C_DIGIT;
        }
        if b.is_ascii_uppercase() {
            t[c] |= C_UPPER;
        }
        if matches!(b, b'@' | b'%' | b'_' | b'-' | b'y' | b'Y' | b'z' | b'o' | b'J' | b'K' | b'S' | b'B' | b'C') {
            t[c] |= C_SPECIAL;
        }
        c += 1;
    }
    t
};

impl Builtin {
    /// False when `t` shows that [`Builtin::find`] cannot find anything.
    pub(crate) fn may_match(self, t: &Triggers) -> bool {
        let has = |bit: u8| t.bits & bit != 0;
        match self {
            Builtin::Email => has(T_AT) && t.len >= 6,
            Builtin::Card => t.digits >= CARD_MIN,
            Builtin::Iban => t.upper >= 2 && t.digits >= 2 && t.len >= 15,
            Builtin::AwsKey => (has(T_AWS) && t.len >= 20) || (has(T_KEY) && t.len >= 43),
            Builtin::GcpKey => has(T_GCP) && t.len >= 39,
            Builtin::GithubToken => has(T_UNDERSCORE) && t.len >= 33,
            Builtin::SlackToken => has(T_SLACK) && t.len >= 15,
            Builtin::StripeKey => has(T_UNDERSCORE) && t.len >= 18,
            Builtin::Jwt => has(T_JWT) && t.len >= 16,
            Builtin::PemPrivateKey => has(T_PEM) && t.len >= 27,
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The ids of every built-in detector, comma-separated (for messages).
pub(crate) fn builtin_ids() -> String {
    Builtin::ALL.map(Builtin::id).join(", ")
}

macro_rules! regex {
    ($name:ident, $re:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($re).expect("built-in patterns compile"));
    };
}

regex!(EMAIL, r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}");
regex!(AWS_KEY_ID, r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}");
regex!(
    AWS_SECRET,
    r#"(?i:aws[_-]?secret[_-]?access[_-]?key|secret[_-]?access[_-]?key|aws[_-]?secret[_-]?key)[\\"']{0,3}[ \t]{0,8}[:=][ \t]{0,8}[\\"']{0,3}([A-Za-z0-9/+]{40})"#
);
regex!(GCP_KEY, r"AIza[0-9A-Za-z_-]{35}");
regex!(GITHUB_TOKEN, r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,242}");
regex!(SLACK_TOKEN, r"xox[abprs]-[A-Za-z0-9-]{10,250}");
regex!(STRIPE_KEY, r"[sr]k_(?:live|test)_[A-Za-z0-9]{10,247}");
regex!(JWT, r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?");
// A complete block: the body is anything but `"` and `--` (base64 and the
// `Proc-Type`/`DEK-Info` headers of legacy encrypted keys have neither), so
// the match cannot run past a JSON string or into the next block. A block
// cut off before its END line: as far as base64, whitespace and `\n`-style
// escapes go.
regex!(
    PEM,
    r#"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:(?:[^"-]|-[^"-])*-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|(?:[A-Za-z0-9+/=\s]|\\[nr/])*)"#
);

fn scan(re: &Regex, text: &str, out: &mut Vec<(usize, usize)>, ok: impl Fn(usize, usize) -> bool) {
    for m in re.find_iter(text) {
        if ok(m.start(), m.end()) {
            out.push((m.start(), m.end()));
        }
    }
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// True when the byte before `i` exists and is one of `class`.
fn before(b: &[u8], i: usize, class: impl Fn(u8) -> bool) -> bool {
    i > 0 && class(b[i - 1])
}

/// True when the byte at `e` exists and is one of `class`.
fn after(b: &[u8], e: usize, class: impl Fn(u8) -> bool) -> bool {
    b.get(e).is_some_and(|&c| class(c))
}

// ---------------------------------------------------------------- cards

/// The most digits a card number has.
const CARD_MAX: usize = 19;
/// The fewest.
const CARD_MIN: usize = 13;

/// Card numbers: maximal runs of digit groups joined by single spaces or
/// dashes are found first; a card is a window of whole groups within a run
/// (so a longer digit string is never cut into a card).
fn find_cards(b: &[u8], out: &mut Vec<(usize, usize)>) {
    let n = b.len();
    let mut i = 0;
    // (start, end) of each digit group of the current run, and the
    // separator before each group (0 for the first).
    let mut groups: Vec<(usize, usize, u8)> = Vec::new();
    while i < n {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        // Measure the run first: most digit runs are short.
        let start = i;
        let mut digits = 0;
        let mut j = i;
        loop {
            while j < n && b[j].is_ascii_digit() {
                j += 1;
                digits += 1;
            }
            if j + 1 < n && matches!(b[j], b' ' | b'-') && b[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        let end = j;
        i = end;
        if digits < CARD_MIN {
            continue;
        }
        groups.clear();
        let mut k = start;
        let mut sep = 0u8;
        while k < end {
            let gs = k;
            while k < end && b[k].is_ascii_digit() {
                k += 1;
            }
            groups.push((gs, k, sep));
            if k < end {
                sep = b[k];
                k += 1;
            }
        }
        // Context of the run: a card stands alone — not glued to letters
        // (hex, base64, identifiers) and not the digits of a decimal.
        let decimal_before = start >= 2 && matches!(b[start - 1], b'.' | b',') && b[start - 2].is_ascii_digit();
        let left_ok = !(before(b, start, is_alnum) || decimal_before);
        let right_ok =
            !(after(b, end, is_alnum) || end + 1 < n && matches!(b[end], b'.' | b',') && b[end + 1].is_ascii_digit());
        let m = groups.len();
        let mut g = 0;
        while g < m {
            match card_window(b, &groups, g, left_ok, right_ok) {
                Some(last) => {
                    out.push((groups[g].0, groups[last].1));
                    g = last + 1;
                }
                None => g += 1,
            }
        }
    }
}

/// The longest window of groups `first..=last` that is a card, if any.
fn card_window(b: &[u8], groups: &[(usize, usize, u8)], first: usize, left_ok: bool, right_ok: bool) -> Option<usize> {
    if first == 0 && !left_ok {
        return None;
    }
    let m = groups.len();
    let mut digits = 0;
    let mut best = None;
    for last in first..m {
        let (gs, ge, sep) = groups[last];
        let len = ge - gs;
        digits += len;
        if digits > CARD_MAX {
            break;
        }
        // One kind of separator per number.
        if last > first + 1 && sep != groups[first + 1].2 {
            break;
        }
        let shape = if last == first { (CARD_MIN..=CARD_MAX).contains(&len) } else { (1..=6).contains(&len) };
        if shape && digits >= CARD_MIN && (last + 1 < m || right_ok) && card_number(b, &groups[first..=last]) {
            best = Some(last);
        }
        // Groups inside a grouped number have 4 to 6 digits (4-4-4-4,
        // 4-6-5, 6-6-4, …); only the last may be shorter.
        if !(4..=6).contains(&len) {
            break;
        }
    }
    best
}

/// Network prefix and Luhn over the digits of `groups`.
fn card_number(b: &[u8], groups: &[(usize, usize, u8)]) -> bool {
    let mut digits = [0u8; CARD_MAX];
    let mut n = 0;
    for &(s, e, _) in groups {
        for &c in &b[s..e] {
            digits[n] = c - b'0';
            n += 1;
        }
    }
    (2..=6).contains(&digits[0]) && luhn(&digits[..n])
}

/// The Luhn (mod 10) check.
pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &d) in digits.iter().rev().enumerate() {
        let d = d as u32;
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------- IBANs

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

fn iban_length(cc: &[u8]) -> Option<usize> {
    IBAN_LENGTHS.iter().find(|(c, _)| c[..] == *cc).map(|&(_, n)| n)
}

/// IBANs: two upper-case letters and two digits not glued to a word, then
/// the country's length of upper-case letters and digits (single spaces
/// allowed between them), then no further letter or digit, and mod 97 = 1.
fn find_ibans(b: &[u8], out: &mut Vec<(usize, usize)>) {
    let n = b.len();
    let mut i = 0;
    let mut chars = [0u8; 34];
    while i + 4 <= n {
        if !(b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && !before(b, i, is_alnum))
        {
            i += 1;
            continue;
        }
        let Some(len) = iban_length(&b[i..i + 2]) else {
            i += 1;
            continue;
        };
        let upper_alnum = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
        let mut count = 0;
        let mut j = i;
        while count < len && j < n {
            if upper_alnum(b[j]) {
                chars[count] = b[j];
                count += 1;
                j += 1;
            } else if b[j] == b' ' && count >= 4 && j + 1 < n && upper_alnum(b[j + 1]) {
                j += 1;
            } else {
                break;
            }
        }
        if count == len && !after(b, j, is_alnum) && mod97(&chars[..len]) {
            out.push((i, j));
            i = j;
        } else {
            i += 1;
        }
    }
}

/// The IBAN check: the first four characters moved to the end, letters as
/// 10–35, the number mod 97 is 1.
pub(crate) fn mod97(iban: &[u8]) -> bool {
    let mut r = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        r = if c.is_ascii_digit() {
            (r * 10 + (c - b'0') as u32) % 97
        } else {
            (r * 100 + (c - b'A') as u32 + 10) % 97
        };
    }
    r == 1
}

// ---------------------------------------------------------------- JWTs

/// A JWT's header is base64url of a JSON object with a string `alg`; a
/// signed token (three parts) has a payload.
fn is_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let header = parts.next().unwrap_or("");
    let payload = parts.next().unwrap_or("");
    let count = 2 + parts.count();
    if count == 3 && payload.is_empty() {
        return false;
    }
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else { return false };
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(m)) => m.get("alg").is_some_and(|a| a.is_string()),
        _ => false,
    }
}

// ---------------------------------------------------------------- AWS secret keys by name

/// True for a JSON key that names an AWS secret access key
/// (`aws_secret_access_key`, `SecretAccessKey`, `secretAccessKey`,
/// `AWS_SECRET_KEY`, …).
pub(crate) fn names_aws_secret(key: &str) -> bool {
    if key.len() > 24 || key.len() < 9 {
        return false;
    }
    let mut norm = [0u8; 24];
    let mut n = 0;
    for c in key.bytes() {
        if c != b'_' && c != b'-' {
            norm[n] = c.to_ascii_lowercase();
            n += 1;
        }
    }
    matches!(&norm[..n], b"awssecretaccesskey" | b"secretaccesskey" | b"awssecretkey")
}

/// True for a value shaped like an AWS secret access key: 40 characters of
/// base64 (`A–Z a–z 0–9 / +`).
pub(crate) fn shaped_like_aws_secret(value: &str) -> bool {
    value.len() == 40 && value.bytes().all(|c| is_alnum(c) || c == b'/' || c == b'+')
}

// ---------------------------------------------------------------- custom

/// The name of the capture group that, when a custom pattern has it, is
/// the part that gets replaced (`id=(?P<value>[0-9]+)` keeps `id=`).
pub const VALUE_GROUP: &str = "value";

/// A custom detector: a regex and the marker name it reports.
#[derive(Debug)]
pub(crate) struct Custom {
    pub(crate) name: String,
    re: Regex,
    group: Option<usize>,
}

impl Custom {
    /// Compiles `pattern` for the detector `name`.
    pub(crate) fn new(name: &str, pattern: &str) -> Result<Custom, String> {
        let re = regex::RegexBuilder::new(pattern)
            .size_limit(4 << 20)
            .build()
            .map_err(|e| format!("not a valid regex: {}", one_line(&e.to_string())))?;
        if re.is_match("") {
            return Err("the pattern matches the empty string; it must match some text".into());
        }
        let group = re.capture_names().position(|n| n == Some(VALUE_GROUP));
        Ok(Custom { name: name.into(), re, group })
    }

    fn find(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        match self.group {
            None => out.extend(self.re.find_iter(text).map(|m| (m.start(), m.end()))),
            Some(g) => {
                for c in self.re.captures_iter(text) {
                    if let Some(m) = c.get(g) {
                        out.push((m.start(), m.end()));
                    }
                }
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True for a name a custom detector may have: 1–40 of `A–Z a–z 0–9 _ . -`
/// (what a marker `[redacted:<name>]` may contain).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 40 && name.bytes().all(is_marker_name_byte)
}

pub(crate) fn is_marker_name_byte(c: u8) -> bool {
    is_alnum(c) || matches!(c, b'_' | b'.' | b'-')
}

/// A built-in or a custom detector.
#[derive(Clone, Debug)]
pub(crate) enum Detector {
    Builtin(Builtin),
    Custom(Arc<Custom>),
}

impl Detector {
    pub(crate) fn id(&self) -> &str {
        match self {
            Detector::Builtin(b) => b.id(),
            Detector::Custom(c) => &c.name,
        }
    }

    pub(crate) fn find(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        match self {
            Detector::Builtin(b) => b.find(text, out),
            Detector::Custom(c) => c.find(text, out),
        }
    }

    /// Like [`Detector::find`], skipped when `t` rules a built-in out.
    pub(crate) fn find_with(&self, text: &str, t: &Triggers, out: &mut Vec<(usize, usize)>) {
        match self {
            Detector::Builtin(b) if !b.may_match(t) => {}
            d => d.find(text, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `b` finds in `text`, as the matched text.
    fn found(b: Builtin, text: &str) -> Vec<&str> {
        let mut out = vec![];
        b.find(text, &mut out);
        out.into_iter().map(|(s, e)| &text[s..e]).collect()
    }

    fn finds_exactly(b: Builtin, text: &str, expected: &str) {
        assert_eq!(found(b, text), vec![expected], "{b} in {text:?}");
    }

    fn finds_nothing(b: Builtin, text: &str) {
        assert_eq!(found(b, text), Vec::<&str>::new(), "{b} in {text:?}");
    }

    // Tokens are assembled from pieces so that secret scanners do not flag
    // this file; they have real formats and lengths.
    const GITHUB_CLASSIC: &str = concat!("ghp", "_", "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
    const GITHUB_FINE: &str = concat!(
        "github_pat",
        "_11ABCDEFG0123456789abc_",
        "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVw"
    );
    const SLACK: &str = concat!("xoxb", "-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
    const STRIPE: &str = concat!("sk", "_live_", "51H8xYzAbCdEfGhIjKlMnOpQr");
    const GCP: &str = concat!("AIza", "SyA-1234567890abcdefghijklmnopqrstu");
    const AWS_ID: &str = concat!("AKIA", "IOSFODNN7EXAMPLE");
    const AWS_SECRET: &str = concat!("wJalrXUtnFEMI", "/K7MDENG/bPxRfiCYEXAMPLEKEY");
    const JWT_SAMPLE: &str = concat!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    );

    #[test]
    fn ids_are_stable_and_round_trip() {
        let ids: Vec<&str> = Builtin::ALL.iter().map(|b| b.id()).collect();
        assert_eq!(
            ids,
            [
                "email",
                "card",
                "iban",
                "aws_key",
                "gcp_key",
                "github_token",
                "slack_token",
                "stripe_key",
                "jwt",
                "pem_private_key"
            ]
        );
        for b in Builtin::ALL {
            assert_eq!(Builtin::from_id(b.id()), Some(b));
        }
        assert_eq!(Builtin::from_id("all"), None);
    }

    #[test]
    fn email() {
        let b = Builtin::Email;
        finds_exactly(b, "jane.doe@example.com", "jane.doe@example.com");
        finds_exactly(b, "Contact: <jane.doe+crm@mail.example.co.uk>.", "jane.doe+crm@mail.example.co.uk");
        // Inside a URL, plain and percent-encoded.
        finds_exactly(b, "https://crm.example.com/contacts?email=jane.doe@example.com&page=2", "jane.doe@example.com");
        finds_exactly(b, "/contacts?email=jane.doe%40example.com&page=2", "jane.doe%40example.com");
        finds_exactly(b, "mailto:ops@example.org?subject=hi", "ops@example.org");
        assert_eq!(found(b, "a@example.com, b@example.net"), vec!["a@example.com", "b@example.net"]);
        for no in ["@mention me", "lodash@4.17.21", "user@localhost", "a@b", "no at sign here.com", "x@.com"] {
            finds_nothing(b, no);
        }
    }

    #[test]
    fn card_true_positives() {
        let b = Builtin::Card;
        for card in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "5105105105105100",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "3530111333300000",
            "36227206271667",
            "4222222222222",
            "6200000000000005",
        ] {
            finds_exactly(b, card, card);
            finds_exactly(b, &format!("card: {card}, exp 12/26"), card);
            finds_exactly(b, &format!("\"number\":\"{card}\""), card);
        }
        // Split by spaces inside a sentence, with numbers around it.
        finds_exactly(b, "Paid 42 EUR with 4111 1111 1111 1111 on 2024-01-15", "4111 1111 1111 1111");
        // A card followed by a short group that spoils the check: the card is
        // the groups that pass.
        finds_exactly(b, "4111 1111 1111 1111 12", "4111 1111 1111 1111");
        finds_exactly(b, "ref 1234 4111 1111 1111 1111", "4111 1111 1111 1111");
        assert_eq!(found(b, "4111111111111111 5555555555554444"), vec!["4111111111111111", "5555555555554444"]);
    }

    #[test]
    fn card_true_negatives() {
        let b = Builtin::Card;
        for no in [
            "4111111111111112",                // Luhn fails
            "4111 1111 1111 1112",             // Luhn fails, grouped
            "1234567812345670",                // passes Luhn, no card network starts with 1
            "9780000000000002",                // nor 9
            "41111111111111110000",            // 20 digits: a longer number
            "1234541111111111111111",          // a card's digits inside a longer number
            "0.4111111111111111",              // the decimals of a number
            "4111111111111111.25",             // a number with decimals
            "a4111111111111111",               // glued to hex or an identifier
            "4111111111111111f",               //
            "4111 1111-1111 1111",             // two kinds of separator
            "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", // not card-shaped groups
            "+1 555 123 4567 890",             // a phone number
            "978-3-16-148410-0",               // an ISBN
            "2024-01-15 10:30:00",             // dates and times
            "1700000000 1700000001",           // two timestamps
            "",
        ] {
            finds_nothing(b, no);
        }
    }

    #[test]
    fn card_luhn_failures_are_never_matched() {
        // Every 16-digit number in a range: exactly those passing Luhn match.
        let mut matched = 0;
        for n in 4_000_000_000_000_000u64..4_000_000_000_002_000 {
            let s = n.to_string();
            let digits: Vec<u8> = s.bytes().map(|c| c - b'0').collect();
            let hit = !found(Builtin::Card, &s).is_empty();
            assert_eq!(hit, luhn(&digits), "{s}");
            matched += hit as usize;
        }
        assert_eq!(matched, 200);
        // Nanosecond timestamps that happen to pass Luhn start with 1.
        let ts = (1_700_000_000_000_000_000u64..).find(|n| {
            let d: Vec<u8> = n.to_string().bytes().map(|c| c - b'0').collect();
            luhn(&d)
        });
        finds_nothing(Builtin::Card, &ts.unwrap().to_string());
    }

    #[test]
    fn iban() {
        let b = Builtin::Iban;
        for iban in [
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "CH9300762011623852957",
            "NO9386011117947",
            "BE68539007547034",
        ] {
            finds_exactly(b, iban, iban);
            finds_exactly(b, &format!("IBAN: {iban}."), iban);
        }
        // The country's length ends it, even with more text after a space.
        finds_exactly(b, "to DE89 3704 0044 0532 0130 00 EUR 100", "DE89 3704 0044 0532 0130 00");
        assert_eq!(
            found(b, "DE89 3704 0044 0532 0130 00 GB82 WEST 1234 5698 7654 32"),
            vec!["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"]
        );
        for no in [
            "DE89370400440532013001",  // mod 97 fails
            "DE88370400440532013000",  // check digits wrong
            "XX89370400440532013000",  // no such country
            "DE8937040044053201300",   // too short for DE
            "DE893704004405320130001", // too long for DE
            "de89370400440532013000",  // lower case
            "XDE89370400440532013000", // glued to a word
            "ISO 8601 AB12 PLACEHOLDER",
        ] {
            finds_nothing(b, no);
        }
    }

    #[test]
    fn aws_keys() {
        let b = Builtin::AwsKey;
        finds_exactly(b, AWS_ID, AWS_ID);
        finds_exactly(b, &format!("key id {AWS_ID}, region eu-west-1"), AWS_ID);
        let sts = AWS_ID.replacen("AKIA", "ASIA", 1);
        finds_exactly(b, &sts, &sts);
        // Secret keys only where the context names them.
        finds_exactly(b, &format!("aws_secret_access_key = {AWS_SECRET}\n"), AWS_SECRET);
        finds_exactly(b, &format!("AWS_SECRET_ACCESS_KEY={AWS_SECRET}"), AWS_SECRET);
        finds_exactly(b, &format!("{{\"SecretAccessKey\": \"{AWS_SECRET}\"}}"), AWS_SECRET);
        finds_exactly(b, &format!("{{\\\"secretAccessKey\\\":\\\"{AWS_SECRET}\\\"}}"), AWS_SECRET);
        assert_eq!(
            found(b, &format!("[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n")),
            vec![AWS_ID, AWS_SECRET]
        );
        for no in [
            &format!("x{AWS_ID}"),
            &AWS_ID[..19],
            &format!("{AWS_ID}X"),
            AWS_SECRET,                                            // no context
            "commit da39a3ee5e6b4b0d3255bfef95601890afd80709",     // a SHA-1
            &format!("aws_secret_access_key = {AWS_SECRET}EXTRA"), // longer than a key
            &format!("session_token = {AWS_SECRET}"),
        ] {
            finds_nothing(b, no);
        }
        assert!(names_aws_secret("aws_secret_access_key") && names_aws_secret("SecretAccessKey"));
        assert!(!names_aws_secret("secret") && !names_aws_secret("access_key_id"));
    }

    #[test]
    fn gcp_github_slack_stripe() {
        finds_exactly(Builtin::GcpKey, &format!("?key={GCP}&q=1"), GCP);
        finds_nothing(Builtin::GcpKey, &GCP[..38]);
        finds_nothing(Builtin::GcpKey, &format!("{GCP}x"));

        finds_exactly(Builtin::GithubToken, &format!("token {GITHUB_CLASSIC}"), GITHUB_CLASSIC);
        finds_exactly(Builtin::GithubToken, GITHUB_FINE, GITHUB_FINE);
        for p in ["gho", "ghu", "ghs", "ghr"] {
            let t = GITHUB_CLASSIC.replacen("ghp", p, 1);
            finds_exactly(Builtin::GithubToken, &t, &t);
        }
        finds_nothing(Builtin::GithubToken, &GITHUB_CLASSIC[..30]);
        finds_nothing(Builtin::GithubToken, &GITHUB_CLASSIC.replacen("ghp", "ghx", 1));
        finds_nothing(Builtin::GithubToken, "the github_pat_ prefix");

        finds_exactly(Builtin::SlackToken, &format!("SLACK_TOKEN={SLACK}"), SLACK);
        for p in ["xoxa", "xoxp", "xoxr", "xoxs"] {
            let t = SLACK.replacen("xoxb", p, 1);
            finds_exactly(Builtin::SlackToken, &t, &t);
        }
        finds_nothing(Builtin::SlackToken, "xoxb-short");
        finds_nothing(Builtin::SlackToken, &SLACK.replacen("xoxb", "xoxz", 1));

        finds_exactly(Builtin::StripeKey, &format!("Stripe key: {STRIPE}."), STRIPE);
        for p in ["rk_live_", "sk_test_", "rk_test_"] {
            let t = STRIPE.replacen("sk_live_", p, 1);
            finds_exactly(Builtin::StripeKey, &t, &t);
        }
        // Publishable keys are public; too short is not a key.
        finds_nothing(Builtin::StripeKey, &STRIPE.replacen("sk_", "pk_", 1));
        finds_nothing(Builtin::StripeKey, "sk_live_abc");
    }

    #[test]
    fn jwt() {
        let b = Builtin::Jwt;
        finds_exactly(b, JWT_SAMPLE, JWT_SAMPLE);
        // Inside a Bearer header value.
        finds_exactly(b, &format!("Authorization: Bearer {JWT_SAMPLE}\r\n"), JWT_SAMPLE);
        finds_exactly(b, &format!("{{\"access_token\":\"{JWT_SAMPLE}\",\"expires_in\":3600}}"), JWT_SAMPLE);
        // alg "none": no signature.
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.";
        finds_exactly(b, none, none);
        for no in [
            "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln", // header without alg
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",    // one part
            "eyJub3QgYmFzZTY0.eyJzdWIiOiIxIn0.c2ln",   // header not JSON
            "eyJhbGciOiJub25lIn0..",                   // no payload
            &format!("x{JWT_SAMPLE}"),
        ] {
            finds_nothing(b, no);
        }
    }

    #[test]
    fn pem_private_keys() {
        let b = Builtin::PemPrivateKey;
        let body =
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1+fWIcPm15A8+raZ4d\n";
        for kind in ["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "] {
            let pem = format!("-----BEGIN {kind}PRIVATE KEY-----\n{body}-----END {kind}PRIVATE KEY-----");
            finds_exactly(b, &format!("key:\n{pem}\nthanks"), &pem);
            // As JSON text, with escaped line breaks.
            let escaped = pem.replace('\n', "\\n");
            finds_exactly(b, &format!("{{\"private_key\":\"{escaped}\\n\",\"x\":1}}"), &escaped);
        }
        // Legacy encrypted PEM headers.
        let legacy = format!(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF\n\n{body}-----END RSA PRIVATE KEY-----"
        );
        finds_exactly(b, &legacy, &legacy);
        // PGP blocks.
        let pgp = format!("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}=abcd\n-----END PGP PRIVATE KEY BLOCK-----");
        finds_exactly(b, &pgp, &pgp);
        // Cut off before its end: as far as the base64 goes.
        let cut = format!("-----BEGIN PRIVATE KEY-----\n{body}");
        finds_exactly(b, &format!("{cut}\"}}"), &cut);
        // Two blocks are two finds.
        let one = format!("-----BEGIN PRIVATE KEY-----\n{body}-----END PRIVATE KEY-----");
        assert_eq!(found(b, &format!("{one}\n{one}")), vec![one.as_str(), one.as_str()]);
        for no in [
            format!("-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----"),
            format!("-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----"),
            "the PRIVATE KEY of the service".to_string(),
        ] {
            finds_nothing(b, &no);
        }
    }

    #[test]
    fn checks() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(mod97(b"GB82WEST12345698765432"));
        assert!(!mod97(b"GB82WEST12345698765433"));
        assert!(is_jwt(JWT_SAMPLE));
    }

    #[test]
    fn custom_patterns() {
        let c = Custom::new("employee_id", r"EMP-[0-9]{6}").unwrap();
        let mut out = vec![];
        c.find("ids EMP-123456 and EMP-654321", &mut out);
        assert_eq!(out, vec![(4, 14), (19, 29)]);
        let g = Custom::new("x", r"id=(?P<value>[0-9]+)").unwrap();
        out.clear();
        g.find("id=42&id=7", &mut out);
        assert_eq!(out, vec![(3, 5), (9, 10)]);
        assert!(Custom::new("x", "(").unwrap_err().starts_with("not a valid regex"));
        assert!(Custom::new("x", "a*").unwrap_err().contains("empty string"));
        // Look-around and backreferences are not in the linear-time syntax.
        assert!(Custom::new("x", r"(?=a)").is_err());
        assert!(Custom::new("x", r"(a)\1").is_err());
    }
}
