//! Data-loss rules: keep secrets and personal data out of what the model
//! sees, and out of what its code sends.
//!
//! Two config tables, one set of detectors:
//!
//! - **`[[redact]]`** ([`RedactRule`] → [`Redactor`]): everything coming
//!   back to the model — call results, errors, console output — has every
//!   find replaced by a typed marker, `[redacted:email]`,
//!   `[redacted:card]`, `[redacted:<name>]`; JSON trees stay valid JSON
//!   (strings, keys, and numbers that hide a card), redacting is idempotent,
//!   and counts per detector come back for the audit record and metrics.
//! - **`[[dlp]]`** ([`DlpRule`] → [`DlpLayer`], a [`codemode_pipeline::Layer`]):
//!   a call to a named API / MCP server (or any) whose path, query, headers,
//!   body or tool arguments match is refused before it is sent, with a
//!   `DlpError` that names the rule and the detector — never the data — and
//!   a `dlp` note on the call for the audit.
//!
//! ```toml
//! [[redact]]
//! detectors = ["all"]
//!
//! [[redact]]
//! pattern = "EMP-[0-9]{6}"
//! name = "employee_id"
//! apis = ["hr"]
//!
//! [[dlp]]
//! id = "no-cards-to-crm"
//! detectors = ["card"]
//! apis = ["crm"]
//! action = "block"
//! ```
//!
//! ## Detectors
//!
//! | id | finds | guarded by |
//! |---|---|---|
//! | `email` | `local@domain.tld`, `@` also as `%40` | a dotted domain with a letter TLD |
//! | `card` | payment card numbers, 13–19 digits, plain or grouped by single spaces/dashes | Luhn, network digit 2–6, group shapes, not inside a longer number, word or decimal |
//! | `iban` | IBANs, plain or in groups | known country and its length, mod 97 |
//! | `aws_key` | `AKIA…`/`ASIA…`/`ABIA…`/`ACCA…` key ids; 40-char secret keys | secrets only next to their name (`aws_secret_access_key = …`, `"SecretAccessKey": …`, a JSON key) |
//! | `gcp_key` | `AIza…` Google API keys | exact length, token boundaries |
//! | `github_token` | `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`, `github_pat_` | length, token boundaries |
//! | `slack_token` | `xoxa-`/`xoxb-`/`xoxp-`/`xoxr-`/`xoxs-` | length |
//! | `stripe_key` | `sk_live_`/`rk_live_`/`sk_test_`/`rk_test_` | length |
//! | `jwt` | `eyJ….….…` (and five-part encrypted tokens) | the header decodes to JSON with `alg` |
//! | `pem_private_key` | `-----BEGIN … PRIVATE KEY-----` … `END` | the block's own framing |
//!
//! Custom detectors are regexes (`pattern`, optionally with a `(?P<value>…)`
//! group that marks the part to replace). Every pattern, built in or not,
//! runs on the [`regex`] crate, whose matching is linear in the text: no
//! input can make a rule slow.

#![warn(missing_docs)]

mod detect;
mod dlp;
mod redact;

pub use detect::{Builtin, VALUE_GROUP};
pub use dlp::{DlpAction, DlpLayer, DlpMatch, DlpRule, PATTERN_DETECTOR};
pub use redact::{marker, Counts, RedactRule, Redactor, MARKER_PREFIX};

/// A config problem: `(key, message)`, the key as written in the config
/// (`redact[0].pattern`, `dlp[1].detectors[0]`).
pub type Problem = (String, String);

/// Checks and compiles both tables at once: the redactor and the DLP layer,
/// or every problem of either (bad regexes, unknown detector ids — the
/// message lists the valid ones —, empty rules, duplicate ids).
pub fn compile(redact: &[RedactRule], dlp: &[DlpRule]) -> Result<(Redactor, DlpLayer), Vec<Problem>> {
    match (Redactor::new(redact), DlpLayer::new(dlp)) {
        (Ok(r), Ok(d)) => Ok((r, d)),
        (r, d) => Err(r.err().into_iter().flatten().chain(d.err().into_iter().flatten()).collect()),
    }
}

/// The ids of the built-in detectors.
pub fn detector_ids() -> impl Iterator<Item = &'static str> {
    Builtin::ALL.into_iter().map(Builtin::id)
}
