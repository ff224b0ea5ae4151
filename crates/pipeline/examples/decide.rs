//! What the rules cost one nested call, without the sandbox, the mock or MCP
//! around them: `Policy::decide` and a whole `Pipeline::run` (scopes, rules,
//! dry run, approval, in front of a route that answers at once), with no
//! rules and with 100.
//!
//! ```sh
//! cargo run --release -p codemode-pipeline --example decide [-- CALLS]
//! ```
//!
//! The 100 rules are the ones `bench/run.py --only p` configures: 30 `deny`
//! and 30 `approve` patterns that do not match the call, and 40 `allow`
//! patterns of which only the last matches, so every pattern is looked at.
//! The call is the bench's `GET /books` of the bundled bookshelf API
//! (template `/books`, operationId `listBooks`, tag `books`).

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use codemode_pipeline::*;
use serde_json::json;

/// The bench's 100 rules for the `GET /books` call (kept in step with
/// `pipeline_rules` in bench/run.py).
/// A pattern of form `i % 5` that does not match the bench's call.
fn miss(i: usize) -> String {
    match i % 5 {
        0 => format!("DELETE /nothing{i}/**"),
        1 => format!("GET /books/nothing{i}/*"),
        2 => format!("/**/nothing{i}"),
        3 => format!("operationId:nothing{i}*"),
        _ => format!("tag:nothing{i}"),
    }
}

fn rules_100() -> RuleLists {
    let mut allow: Vec<String> = (100..139).map(miss).collect();
    allow.push("GET /books".into());
    RuleLists { deny: (0..30).map(miss).collect(), allow, approve: (200..230).map(miss).collect() }
}

fn policy(lists: &RuleLists) -> Policy {
    let mut p = Policy::new();
    let rules = RuleSet::compile(lists, TargetKind::Api).expect("the bench's patterns compile");
    p.target("bookshelf", TargetRules { from: "api bookshelf".into(), rules, writes: true });
    p
}

fn the_call() -> Call {
    let request = codemode_upstream::request::parse(&json!(["GET /books"])).expect("a valid request");
    let op = HttpOp {
        api: "bookshelf".into(),
        request,
        template: Some("/books".into()),
        operation_id: Some("listBooks".into()),
        tags: vec!["books".into()],
    };
    Call::new(Operation::Http(op), Access::Read, Arc::new(Execution::new(None)))
}

/// Answers every call at once.
struct Answer;

impl Route for Answer {
    fn send<'a>(&'a self, _call: Call) -> BoxReply<'a> {
        Box::pin(async { Ok(json!({"status": 200})) })
    }
}

fn pipeline(p: Policy) -> Pipeline {
    let layers: Vec<Arc<dyn Layer>> = vec![
        Arc::new(ScopeLayer),
        Arc::new(RuleLayer::new(Arc::new(p))),
        Arc::new(DryRunLayer::default()),
        Arc::new(ApprovalLayer::new(Duration::from_secs(60))),
    ];
    Pipeline::new(layers, Arc::new(Answer))
}

/// Median over `rounds` of the time per call of `n` calls of `f`, ns.
fn time(rounds: usize, n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let mut per: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    per.sort_by(f64::total_cmp);
    let at = |q: f64| per[((per.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.5), at(0.75))
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rounds = 9;
    let none = policy(&RuleLists::default());
    let hundred = policy(&rules_100());
    assert_eq!(hundred.pattern_count(), 100);
    let call = the_call();
    assert_eq!(none.decide(&call), Verdict::Allow);
    assert_eq!(hundred.decide(&call), Verdict::Allow, "the 100 rules must let the bench's call through unasked");
    // The rules are live: another operation is refused by the allow list.
    let mut other = call.clone();
    if let Operation::Http(h) = &mut other.op {
        h.request.path = "/authors".into();
        h.template = Some("/authors".into());
        h.operation_id = Some("listAuthors".into());
        h.tags = vec!["authors".into()];
    }
    assert!(matches!(hundred.decide(&other), Verdict::Deny(..)));

    println!("{calls} calls x {rounds} rounds, median (p25-p75) ns per call; call: bookshelf GET /books");
    let row = |what: &str, (a, m, b): (f64, f64, f64)| println!("{what:<44} {m:>9.0} ({a:.0}-{b:.0})");
    let d0 = time(rounds, calls, || {
        black_box(none.decide(black_box(&call)));
    });
    row("Policy::decide, no rules", d0);
    let d100 = time(rounds, calls, || {
        black_box(hundred.decide(black_box(&call)));
    });
    row("Policy::decide, 100 rules", d100);

    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut run = |p: &Pipeline| {
        let mut fut = p.run(call.clone());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => {
                black_box(r.expect("the call gets through"));
            }
            Poll::Pending => panic!("the pipeline waited on a call no rule asks about"),
        }
    };
    let p0 = pipeline(policy(&RuleLists::default()));
    let p100 = pipeline(policy(&rules_100()));
    let r0 = time(rounds, calls, || run(&p0));
    row("Pipeline::run (4 layers + route), no rules", r0);
    let r100 = time(rounds, calls, || run(&p100));
    row("Pipeline::run (4 layers + route), 100 rules", r100);
    println!("by form: 100 non-matching `deny` patterns of one form each");
    for form in 0..5 {
        let lists = RuleLists { deny: (0..100).map(|i| miss(i * 5 + form)).collect(), ..Default::default() };
        let p = policy(&lists);
        assert_eq!(p.decide(&call), Verdict::Allow);
        let r = time(rounds, calls / 2, || {
            black_box(p.decide(black_box(&call)));
        });
        row(&format!("  Policy::decide, 100 x \"{}\"", miss(form).replace(&form.to_string(), "N")), r);
    }
    println!(
        "100 rules add {:.2} µs per call to decide, {:.2} µs to the whole pipeline (target < 20 µs)",
        (d100.1 - d0.1) / 1000.0,
        (r100.1 - r0.1) / 1000.0
    );
}
