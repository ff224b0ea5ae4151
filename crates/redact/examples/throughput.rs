//! Redaction throughput with every built-in detector on: MB/s over a ~1 MB
//! JSON result (a page of CRM-like customer records: names, e-mails, ids,
//! timestamps, amounts, a few cards, IBANs and tokens), as a JSON tree and as
//! text. Median of the runs; `serde_json` parsing the same text for scale.
//!
//! ```text
//! cargo run --release -p codemode-redact --example throughput [-- RUNS [--each]]
//! ```
//!
//! `--each` also times every detector alone on the tree.

use std::time::{Duration, Instant};

use codemode_redact::{Builtin, RedactRule, Redactor};
use serde_json::{json, Value};

/// A small deterministic generator (xorshift64*), so every run measures the
/// same document.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn id(&mut self, prefix: &str, len: usize) -> String {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let s: String = (0..len).map(|_| ALNUM[self.below(ALNUM.len() as u64) as usize] as char).collect();
        format!("{prefix}{s}")
    }
}

const FIRST: &[&str] =
    &["Jane", "John", "Amira", "Lukas", "Sofia", "Wei", "Olu", "Maria", "Noah", "Emma", "Jürgen", "Chloé"];
const LAST: &[&str] = &["Doe", "Smith", "Haddad", "Müller", "Rossi", "Chen", "Adeyemi", "García", "Kowalski", "Novak"];
const CITIES: &[&str] = &["Berlin", "Lisbon", "Toronto", "Osaka", "Lagos", "Denver", "Zürich", "Lyon"];
const DOMAINS: &[&str] = &["example.com", "mail.example.org", "corp.example.net", "example.co.uk"];
const STATUS: &[&str] = &["paid", "open", "refunded", "failed", "pending"];
const NOTES: &[&str] = &[
    "Customer asked about invoice INV-2024-000123; call back on Tuesday after 10:00.",
    "Prefers e-mail. Renewal due 2025-01-31, discount 15% approved by sales.",
    "Moved to the annual plan. Ticket #48213 closed.",
    "",
];

/// One customer record; `i` decides which carry the rarer finds.
fn customer(rng: &mut Rng, i: u64) -> Value {
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    let email = format!("{}.{}{}@{}", first.to_lowercase(), last.to_lowercase(), i, rng.pick(DOMAINS));
    let orders: Vec<Value> = (0..rng.below(4))
        .map(|_| {
            json!({
                "id": rng.id("ord_", 14),
                "amount": rng.below(100_000),
                "currency": "eur",
                "status": rng.pick(STATUS),
                "card_last4": format!("{:04}", rng.below(10_000)),
                "created_at": format!("2024-{:02}-{:02}T{:02}:{:02}:00Z", 1 + rng.below(12), 1 + rng.below(28), rng.below(24), rng.below(60)),
            })
        })
        .collect();
    let mut c = json!({
        "id": rng.id("cus_", 14),
        "object": "customer",
        "name": format!("{first} {last}"),
        "email": email,
        "phone": format!("+49 30 {:07}", rng.below(10_000_000)),
        "created": 1_700_000_000 + rng.below(40_000_000),
        "address": {"line1": format!("{} Hauptstraße", 1 + rng.below(200)), "city": rng.pick(CITIES), "postal_code": format!("{:05}", rng.below(100_000)), "country": "DE"},
        "balance": rng.below(1_000_000) as i64 - 500_000,
        "score": (rng.below(10_000) as f64) / 10_000.0,
        "tags": ["customer", rng.pick(&["vip", "beta", "churn-risk", "new"])],
        "metadata": {"plan": rng.pick(&["free", "pro", "enterprise"]), "seats": rng.below(500), "crm_id": rng.below(1 << 40)},
        "notes": rng.pick(NOTES),
        "orders": orders,
    });
    if i % 50 == 7 {
        c["payment_method"] = json!({"card": "4242 4242 4242 4242", "exp": "12/27"});
    }
    if i % 97 == 3 {
        c["payment_method"] = json!({"card_number": 5555555555554444u64});
    }
    if i % 120 == 11 {
        c["bank"] = json!({"iban": "DE89 3704 0044 0532 0130 00"});
    }
    if i % 400 == 5 {
        c["session"] = json!(concat!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ",
            ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        ));
    }
    c
}

fn document(target_bytes: usize) -> Value {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut data = vec![];
    let mut size = 0;
    let mut i = 0;
    while size < target_bytes {
        let c = customer(&mut rng, i);
        size += serde_json::to_string(&c).unwrap().len() + 1;
        data.push(c);
        i += 1;
    }
    json!({"object": "list", "has_more": true, "url": "/v1/customers", "data": data})
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Median time of `runs` redactions of a fresh copy of `doc`.
fn time_value(r: &Redactor, doc: &Value, runs: usize) -> (Duration, codemode_redact::Counts) {
    let mut times = vec![];
    let mut counts = Default::default();
    for _ in 0..runs {
        let mut v = doc.clone();
        let t = Instant::now();
        counts = r.redact_value(&mut v, None);
        times.push(t.elapsed());
        std::hint::black_box(&v);
    }
    (median(times), counts)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(21).max(10);
    let each = std::env::args().any(|a| a == "--each");

    let doc = document(1_000_000);
    let text = serde_json::to_string(&doc).unwrap();
    let bytes = text.len();
    let records = doc["data"].as_array().unwrap().len();
    let all = Redactor::new(&[RedactRule { detectors: vec!["all".into()], ..Default::default() }]).unwrap();

    println!("document: {bytes} bytes of JSON, {records} records; {runs} runs each, median");

    let mut parse = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let v: Value = serde_json::from_str(&text).unwrap();
        parse.push(t.elapsed());
        std::hint::black_box(v);
    }
    let parse = median(parse);

    let (tree, counts) = time_value(&all, &doc, runs);

    let mut texts = vec![];
    let mut text_counts = Default::default();
    for _ in 0..runs {
        let t = Instant::now();
        let (out, c) = all.redact_str(&text, None);
        texts.push(t.elapsed());
        std::hint::black_box(out);
        text_counts = c;
    }
    let text_time = median(texts);

    // JSON text in, JSON text out: parse, redact the tree, serialize.
    let mut json_times = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let out = all.redact_json(&text, None).unwrap();
        json_times.push(t.elapsed());
        std::hint::black_box(out);
    }
    let json_time = median(json_times);

    // The same records with nothing to find (no e-mails, cards, …): the
    // cost of looking alone.
    let mut clean = doc.clone();
    all.redact_value(&mut clean, None);
    let clean_text = serde_json::to_string(&clean).unwrap();
    let (clean_time, none) = time_value(&all, &clean, runs);
    assert!(none.is_empty(), "the redacted document still had finds: {none:?}");

    println!(
        "all built-ins, JSON tree:  {:>7.1} MB/s  ({:.2} ms)  markers: {}",
        mbps(bytes, tree),
        tree.as_secs_f64() * 1e3,
        counts.to_json()
    );
    println!(
        "all built-ins, text:       {:>7.1} MB/s  ({:.2} ms)  markers: {}",
        mbps(bytes, text_time),
        text_time.as_secs_f64() * 1e3,
        text_counts.to_json()
    );
    println!(
        "all built-ins, JSON text (parse + tree + serialize): {:>7.1} MB/s  ({:.2} ms)",
        mbps(bytes, json_time),
        json_time.as_secs_f64() * 1e3
    );
    println!(
        "all built-ins, tree, nothing to find: {:>7.1} MB/s  ({:.2} ms)",
        mbps(clean_text.len(), clean_time),
        clean_time.as_secs_f64() * 1e3
    );
    println!(
        "for scale, serde_json::from_str of the text: {:>7.1} MB/s  ({:.2} ms); tree redaction / parse = {:.2}",
        mbps(bytes, parse),
        parse.as_secs_f64() * 1e3,
        tree.as_secs_f64() / parse.as_secs_f64()
    );

    if each {
        for b in Builtin::ALL {
            let r = Redactor::new(&[RedactRule { detectors: vec![b.id().into()], ..Default::default() }]).unwrap();
            let (t, c) = time_value(&r, &doc, runs);
            let mut texts = vec![];
            for _ in 0..runs {
                let t = Instant::now();
                std::hint::black_box(r.redact_str(&text, None));
                texts.push(t.elapsed());
            }
            let tt = median(texts);
            println!(
                "  {:<16} tree {:>7.1} MB/s  text {:>7.1} MB/s  markers {}",
                b.id(),
                mbps(bytes, t),
                mbps(bytes, tt),
                c.total()
            );
        }
    }
}
