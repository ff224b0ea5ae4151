//! The inverted index and BM25F scoring.
//!
//! BM25F (Robertson, Zaragoza and Taylor, 2004) scores a document made of
//! fields: each field's term count is normalised by that field's length
//! against its average, weighted, summed into one pseudo-frequency, and only
//! then saturated — so a term in a short summary outweighs the same term deep
//! in a long description, and repeating a word in many fields does not add up
//! without bound.
//!
//! Indexes are *segments*: a query can span several (the operations indexed
//! once at start-up, and the MCP tools indexed when the tool list changes);
//! document frequencies and average lengths are summed across the segments
//! searched, so the scores of their documents compare.

use std::collections::HashMap;

use crate::tokenize::Tokenizer;

/// The most fields a document can have.
pub const MAX_FIELDS: usize = 8;

/// Term saturation: how quickly more occurrences stop adding to the score.
const K1: f32 = 1.2;

/// Most terms of a phrase field kept for phrase matching.
const MAX_PHRASE: usize = 64;

/// Score multiplier, at most, for query terms found in order and adjacent in
/// a phrase field ("create an issue comment" in "Create an issue comment"
/// rather than in "Create a reaction for an issue comment").
const PHRASE_BONUS: f32 = 0.5;

/// Extra multiplier when a phrase field is exactly the query.
const EXACT_BONUS: f32 = 0.25;

/// How one field counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Field {
    /// Multiplies the field's term counts (a summary counts more than a
    /// description).
    pub weight: f32,
    /// Length normalisation, 0 (none) to 1 (full): 0.75 is BM25's usual.
    pub b: f32,
    /// Whether word order counts here: query terms found in order and
    /// adjacent in this field (a summary, a title) rank the document higher.
    pub phrase: bool,
}

/// One posting: a document and its term count in each field.
#[derive(Clone, Copy, Debug)]
struct Posting {
    doc: u32,
    tf: [u16; MAX_FIELDS],
}

/// Adds documents, then [`finish`](Self::finish)es into an [`Index`].
pub struct IndexBuilder {
    fields: Vec<Field>,
    tokenizer: Tokenizer,
    terms: HashMap<Box<str>, u32>,
    postings: Vec<Vec<Posting>>,
    lengths: Vec<u32>,
    boosts: Vec<f32>,
    /// Per document, per phrase field: its term ids in order.
    sequences: Vec<Box<[u32]>>,
}

/// A finished, read-only index over documents with the same fields.
pub struct Index {
    fields: Vec<Field>,
    terms: HashMap<Box<str>, u32>,
    postings: Vec<Box<[Posting]>>,
    /// `docs × fields` term counts, row per document.
    lengths: Box<[u32]>,
    /// Per field, the sum of `lengths`.
    totals: Vec<u64>,
    boosts: Box<[f32]>,
    /// `docs × phrase fields` term-id sequences.
    sequences: Box<[Box<[u32]>]>,
    phrase_fields: usize,
}

impl IndexBuilder {
    /// An empty index whose documents have these fields, in this order.
    ///
    /// # Panics
    /// With no fields or more than [`MAX_FIELDS`].
    pub fn new(fields: &[Field]) -> Self {
        assert!(!fields.is_empty() && fields.len() <= MAX_FIELDS, "1 to {MAX_FIELDS} fields");
        Self {
            fields: fields.to_vec(),
            tokenizer: Tokenizer::default(),
            terms: HashMap::new(),
            postings: Vec::new(),
            lengths: Vec::new(),
            boosts: Vec::new(),
            sequences: Vec::new(),
        }
    }

    /// Adds a document, one text per field (missing trailing fields are
    /// empty), with a score multiplier (1.0 for none; below 1 ranks it lower,
    /// e.g. a deprecated operation). Returns its number: documents are
    /// numbered from 0 in the order added.
    pub fn add(&mut self, texts: &[&str], boost: f32) -> u32 {
        let doc = u32::try_from(self.boosts.len()).expect("fewer than 2^32 documents");
        let mut counts: HashMap<u32, [u16; MAX_FIELDS]> = HashMap::new();
        for (f, field) in self.fields.iter().enumerate() {
            let text = texts.get(f).copied().unwrap_or("");
            let mut len = 0u32;
            let mut sequence = Vec::new();
            self.tokenizer.terms(text, |term| {
                len += 1;
                let next = self.postings.len() as u32;
                let id = *self.terms.entry(term.into_boxed_str()).or_insert(next);
                if id == next {
                    self.postings.push(Vec::new());
                }
                let tf = &mut counts.entry(id).or_insert([0; MAX_FIELDS])[f];
                *tf = tf.saturating_add(1);
                if field.phrase && sequence.len() < MAX_PHRASE {
                    sequence.push(id);
                }
            });
            self.lengths.push(len);
            if field.phrase {
                self.sequences.push(sequence.into_boxed_slice());
            }
        }
        for (id, tf) in counts {
            self.postings[id as usize].push(Posting { doc, tf });
        }
        self.boosts.push(if boost.is_finite() && boost > 0.0 { boost } else { 1.0 });
        doc
    }

    /// The index, ready to search.
    pub fn finish(self) -> Index {
        let n = self.fields.len();
        let phrase_fields = self.fields.iter().filter(|f| f.phrase).count();
        let mut totals = vec![0u64; n];
        for row in self.lengths.chunks(n) {
            for (t, &l) in totals.iter_mut().zip(row) {
                *t += u64::from(l);
            }
        }
        Index {
            fields: self.fields,
            terms: self.terms,
            postings: self
                .postings
                .into_iter()
                .map(|mut p| {
                    p.sort_unstable_by_key(|p| p.doc);
                    p.into_boxed_slice()
                })
                .collect(),
            lengths: self.lengths.into_boxed_slice(),
            totals,
            boosts: self.boosts.into_boxed_slice(),
            sequences: self.sequences.into_boxed_slice(),
            phrase_fields,
        }
    }
}

impl Index {
    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.boosts.len()
    }

    /// True when it holds no document.
    pub fn is_empty(&self) -> bool {
        self.boosts.is_empty()
    }

    fn postings(&self, term: &str) -> &[Posting] {
        self.terms.get(term).map(|&id| &*self.postings[id as usize]).unwrap_or(&[])
    }

    /// The phrase multiplier of `doc` for a query whose terms have these
    /// ids here (`None`: not in this index): 1 plus a share of
    /// [`PHRASE_BONUS`] for the longest run of query terms found in order
    /// and adjacent in a phrase field, plus [`EXACT_BONUS`] when that field
    /// is exactly the query.
    fn phrase_factor(&self, doc: u32, query: &[Option<u32>]) -> f32 {
        if query.len() < 2 || self.phrase_fields == 0 {
            return 1.0;
        }
        let mut best = 1.0f32;
        for k in 0..self.phrase_fields {
            let seq = &self.sequences[doc as usize * self.phrase_fields + k];
            let mut run = 0;
            for start in 0..seq.len() {
                for (q0, _) in query.iter().enumerate() {
                    let n = seq[start..].iter().zip(&query[q0..]).take_while(|(t, q)| Some(**t) == **q).count();
                    run = run.max(n);
                }
            }
            if run < 2 {
                continue;
            }
            let mut factor = 1.0 + PHRASE_BONUS * (run - 1) as f32 / (query.len() - 1) as f32;
            if seq.len() == query.len() && seq.iter().zip(query).all(|(t, q)| Some(*t) == *q) {
                factor += EXACT_BONUS;
            }
            best = best.max(factor);
        }
        best
    }
}

/// A parsed query: its distinct terms, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    terms: Vec<String>,
}

impl Query {
    /// The most terms a query keeps: later words are ignored.
    pub const MAX_TERMS: usize = 32;

    /// Parses `text` the way documents are indexed.
    pub fn new(text: &str) -> Self {
        let mut terms: Vec<String> = Vec::new();
        Tokenizer::default().terms(text, |t| {
            if terms.len() < Self::MAX_TERMS && !terms.contains(&t) {
                terms.push(t);
            }
        });
        Self { terms }
    }

    /// True when nothing searchable is left (only stop words or punctuation).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Its terms, as indexed (lower case, stemmed).
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
}

/// One result: which segment, which document in it, and its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The position of its index in the `segments` searched.
    pub segment: usize,
    /// The document's number in that index.
    pub doc: u32,
    /// BM25F score times the share of query terms matched and the
    /// document's boost; higher is better.
    pub score: f32,
}

/// The best `limit` documents of `segments` for `query`, best first; ties
/// keep index order. `keep(segment, doc)` hides documents (what a caller may
/// not see) without changing the statistics, so scores do not reveal them.
///
/// # Panics
/// When the segments' fields differ.
pub fn search(segments: &[&Index], query: &Query, limit: usize, keep: impl Fn(usize, u32) -> bool) -> Vec<Hit> {
    let Some(first) = segments.first() else { return Vec::new() };
    assert!(segments.iter().all(|s| s.fields == first.fields), "segments searched together share their fields");
    let fields = &first.fields;
    let docs: usize = segments.iter().map(|s| s.len()).sum();
    if docs == 0 || query.is_empty() || limit == 0 {
        return Vec::new();
    }
    let average: Vec<f32> =
        (0..fields.len()).map(|f| segments.iter().map(|s| s.totals[f]).sum::<u64>() as f32 / docs as f32).collect();
    // Per segment, per document: score and how many query terms matched.
    let mut scores: Vec<Vec<(f32, u16)>> = segments.iter().map(|s| vec![(0.0, 0); s.len()]).collect();
    for term in &query.terms {
        let df: usize = segments.iter().map(|s| s.postings(term).len()).sum();
        if df == 0 {
            continue;
        }
        let idf = (1.0 + (docs as f32 - df as f32 + 0.5) / (df as f32 + 0.5)).ln();
        for (s, segment) in segments.iter().enumerate() {
            for p in segment.postings(term) {
                let row = &segment.lengths[p.doc as usize * fields.len()..][..fields.len()];
                let mut tf = 0.0;
                for (f, field) in fields.iter().enumerate() {
                    if p.tf[f] == 0 || average[f] == 0.0 {
                        continue;
                    }
                    let norm = 1.0 - field.b + field.b * row[f] as f32 / average[f];
                    tf += field.weight * f32::from(p.tf[f]) / norm;
                }
                let entry = &mut scores[s][p.doc as usize];
                entry.0 += idf * tf / (K1 + tf);
                entry.1 += 1;
            }
        }
    }
    let wanted = query.terms.len() as f32;
    let ids: Vec<Vec<Option<u32>>> =
        segments.iter().map(|s| query.terms.iter().map(|t| s.terms.get(t.as_str()).copied()).collect()).collect();
    let mut hits: Vec<Hit> = scores
        .iter()
        .enumerate()
        .flat_map(|(s, docs)| {
            let ids = &ids[s];
            docs.iter().enumerate().filter(|(_, (_, m))| *m > 0).map(move |(d, &(score, matched))| {
                let segment = segments[s];
                let phrase = if matched > 1 { segment.phrase_factor(d as u32, ids) } else { 1.0 };
                Hit {
                    segment: s,
                    doc: d as u32,
                    score: score * (f32::from(matched) / wanted) * segment.boosts[d] * phrase,
                }
            })
        })
        .filter(|h| keep(h.segment, h.doc))
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.segment.cmp(&b.segment)).then(a.doc.cmp(&b.doc)));
    hits.truncate(limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: [Field; 2] =
        [Field { weight: 3.0, b: 0.75, phrase: true }, Field { weight: 1.0, b: 0.75, phrase: false }];

    fn index(docs: &[(&str, &str)]) -> Index {
        let mut b = IndexBuilder::new(&FIELDS);
        for (title, body) in docs {
            b.add(&[title, body], 1.0);
        }
        b.finish()
    }

    fn ranked(segments: &[&Index], q: &str) -> Vec<(usize, u32)> {
        search(segments, &Query::new(q), 10, |_, _| true).into_iter().map(|h| (h.segment, h.doc)).collect()
    }

    #[test]
    fn a_title_match_beats_a_body_match_and_all_terms_beat_some() {
        let i = index(&[
            ("List comments", "Lists every issue comment of a repository"),
            ("Create an issue comment", "Adds a comment"),
            ("Create a commit comment", "Comments on a commit"),
            ("Create a reaction for an issue comment", "Reacts"),
            ("Delete a label", "Removes the label"),
        ]);
        let r = ranked(&[&i], "create an issue comment");
        assert_eq!(r[0], (0, 1), "exact title first: {r:?}");
        assert_eq!(r[1], (0, 3), "all terms, longer title: {r:?}");
        assert!(!r.contains(&(0, 4)), "no shared term, no hit");
    }

    #[test]
    fn words_in_order_beat_the_same_words_apart() {
        let i = index(&[
            ("Create reaction for an issue comment", "issue comment reactions"),
            ("Create an issue comment", ""),
            ("Comment on an issue to create", ""),
        ]);
        let hits = search(&[&i], &Query::new("create an issue comment"), 10, |_, _| true);
        assert_eq!(hits[0].doc, 1, "{hits:?}");
        assert_eq!(hits[1].doc, 0, "a run of two in order: {hits:?}");
    }

    #[test]
    fn rare_terms_count_more_than_common_ones() {
        let i = index(&[("zone settings", ""), ("zone dns", ""), ("zone waf", ""), ("zone", "")]);
        let r = ranked(&[&i], "zone waf");
        assert_eq!(r[0], (0, 2));
    }

    #[test]
    fn segments_share_statistics_and_filters_hide_without_reranking() {
        let a = index(&[("dns records", ""), ("zones", "")]);
        let b = index(&[("dns lookup tool", "")]);
        let both = search(&[&a, &b], &Query::new("dns record"), 10, |_, _| true);
        assert_eq!((both[0].segment, both[0].doc), (0, 0));
        assert_eq!((both[1].segment, both[1].doc), (1, 0));
        let hidden = search(&[&a, &b], &Query::new("dns record"), 10, |s, _| s == 1);
        assert_eq!(hidden.len(), 1);
        assert_eq!(hidden[0].score, both[1].score, "hiding a document does not change the others' scores");
    }

    #[test]
    fn boosts_limits_and_empty_inputs() {
        let mut b = IndexBuilder::new(&FIELDS);
        b.add(&["old waf rules"], 0.5);
        b.add(&["waf rules"], 1.0);
        b.add(&["nan boost waf"], f32::NAN);
        let i = b.finish();
        assert_eq!(ranked(&[&i], "waf rules")[0], (0, 1));
        assert_eq!(search(&[&i], &Query::new("waf"), 1, |_, _| true).len(), 1);
        assert!(search(&[&i], &Query::new("the of"), 10, |_, _| true).is_empty());
        assert!(search(&[], &Query::new("waf"), 10, |_, _| true).is_empty());
        assert!(search(&[&index(&[])], &Query::new("waf"), 10, |_, _| true).is_empty());
        assert!(search(&[&i], &Query::new("waf"), 0, |_, _| true).is_empty());
        assert!(search(&[&i], &Query::new("waf"), 10, |_, _| true).iter().all(|h| h.score.is_finite()));
    }

    #[test]
    fn queries_are_bounded_and_deduplicated() {
        let q = Query::new(&"alpha beta alpha ".repeat(10));
        assert_eq!(q.terms(), ["alpha", "beta"]);
        let many: String = (0..100).map(|i| format!("w{i} ")).collect();
        assert_eq!(Query::new(&many).terms().len(), Query::MAX_TERMS);
    }
}
