//! Ranked text search over short documents, for `codemode.find(query)`.
//!
//! A model that does not know an API's vocabulary writes poor discovery code
//! (`path.includes("waf")` misses rulesets; `summary.includes("comment")`
//! returns a hundred operations). `codemode.find("waf rules for a zone")`
//! asks the host instead, which ranks every operation and tool with BM25F
//! over their fields (path, summary, operationId, tags, description,
//! parameter names …).
//!
//! This crate knows nothing of OpenAPI or MCP: callers choose the fields and
//! their weights, add one document per operation or tool
//! ([`IndexBuilder`]), and [`search`] one or more [`Index`] segments with a
//! [`Query`]. Text is split into stemmed terms by [`Tokenizer`].
//!
//! ```
//! use codemode_find::{search, Field, IndexBuilder, Query};
//! let fields = [Field { weight: 3.0, b: 0.75, phrase: true }, Field { weight: 1.0, b: 0.75, phrase: false }];
//! let mut b = IndexBuilder::new(&fields);
//! b.add(&["List DNS records", "/zones/{zone_id}/dns_records"], 1.0);
//! b.add(&["List zones", "/zones"], 1.0);
//! let index = b.finish();
//! let hits = search(&[&index], &Query::new("dns record"), 10, |_, _| true);
//! assert_eq!(hits[0].doc, 0);
//! ```

mod index;
mod tokenize;

pub use index::{search, Field, Hit, Index, IndexBuilder, Query, MAX_FIELDS};
pub use tokenize::Tokenizer;
