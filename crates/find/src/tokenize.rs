//! Text → search terms.
//!
//! API text is mostly identifiers (`/zones/{zone_id}/dns_records`,
//! `listZoneRulesets`, `issues/create-comment`) with some prose. A term is a
//! lower-case word stem: identifiers are split at punctuation and at case
//! changes, English stop words are dropped, and each word is reduced to its
//! Snowball (Porter 2) stem, so "rules", "Rule" and "ruleset"'s parts meet.

use rust_stemmers::{Algorithm, Stemmer};

/// Splits text into search terms. One per index build or query: the stemmer
/// is cheap to make but not free.
pub struct Tokenizer {
    stemmer: Stemmer,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self { stemmer: Stemmer::create(Algorithm::English) }
    }
}

/// Words too common in API prose to say anything about an operation.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "i", "in", "is", "it", "its", "me", "my",
    "of", "on", "or", "that", "the", "this", "to", "with", "you", "your", "all", "can", "will", "which", "when", "we",
    "do", "does", "if", "into", "https", "http", "www", "com",
];

/// Longest word kept: longer runs are hashes, base64 or other noise.
const MAX_WORD: usize = 40;

impl Tokenizer {
    /// Calls `each` with every term of `text`, in order.
    pub fn terms(&self, text: &str, mut each: impl FnMut(String)) {
        words(text, |word| {
            if word.len() > MAX_WORD {
                return;
            }
            let lower = word.to_lowercase();
            if STOP_WORDS.contains(&lower.as_str()) {
                return;
            }
            each(self.stemmer.stem(&lower).into_owned());
        });
    }

    /// Every term of `text`, in order.
    pub fn collect(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.terms(text, |t| out.push(t));
        out
    }
}

/// Calls `each` with the words of `text`: runs of letters and digits, split
/// where the case changes inside an identifier (`zoneId` → `zone`, `Id`;
/// `HTTPServer` → `HTTP`, `Server`). Digits stay with the letters before
/// them (`v2`, `oauth2`).
fn words(text: &str, mut each: impl FnMut(&str)) {
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut start: Option<usize> = None;
    for i in 0..bytes.len() {
        let (at, c) = bytes[i];
        if !c.is_alphanumeric() {
            if let Some(s) = start.take() {
                each(&text[s..at]);
            }
            continue;
        }
        match start {
            None => start = Some(at),
            Some(s) => {
                let prev = bytes[i - 1].1;
                let next = bytes.get(i + 1).map(|&(_, n)| n);
                let lower_to_upper = prev.is_lowercase() && c.is_uppercase();
                let acronym_end = prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase);
                if lower_to_upper || acronym_end {
                    each(&text[s..at]);
                    start = Some(at);
                }
            }
        }
    }
    if let Some(s) = start {
        each(&text[s..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        Tokenizer::default().collect(text)
    }

    #[test]
    fn identifiers_split_at_punctuation_and_case() {
        assert_eq!(terms("/zones/{zone_id}/dns_records"), ["zone", "zone", "id", "dns", "record"]);
        assert_eq!(terms("listZoneRulesets"), ["list", "zone", "ruleset"]);
        assert_eq!(terms("XMLParser getURLForV2"), ["xml", "parser", "get", "url", "v2"]);
        assert_eq!(terms("issues/create-comment"), ["issu", "creat", "comment"]);
    }

    #[test]
    fn stop_words_go_and_stems_meet() {
        assert_eq!(terms("Create an issue comment"), terms("creating issues comments"));
        assert_eq!(terms("WAF rules for a zone"), ["waf", "rule", "zone"]);
        assert!(terms("the of and").is_empty());
    }

    #[test]
    fn noise_and_unicode_do_not_break_it() {
        assert!(terms(&"x".repeat(5000)).is_empty(), "a huge run is noise, not a term");
        assert_eq!(terms("Zoné émoji 🎉 data"), ["zoné", "émoji", "data"]);
        assert!(terms("").is_empty());
        assert!(terms("{}/-_ \n\t").is_empty());
    }
}
