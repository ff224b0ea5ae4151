//! The layer stack end to end: scopes, rules, dry run and approval in their
//! order, in front of a route that records what reached it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codemode_pipeline::*;
use serde_json::{json, Value};

/// Records every call that gets through.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Route for Recorder {
    fn send<'a>(&'a self, call: Call) -> BoxReply<'a> {
        self.0.lock().unwrap().push(call.describe());
        Box::pin(async { Ok(json!({"status": 200})) })
    }
}

/// Answers every question with `decision` after `delay`, tracking how many
/// questions are open at once.
struct Person {
    decision: Decision,
    delay: Duration,
    open: Arc<AtomicUsize>,
    most_open: Arc<AtomicUsize>,
    asked: Arc<AtomicUsize>,
}

impl Person {
    fn new(decision: Decision, delay: Duration) -> Arc<Person> {
        Arc::new(Person {
            decision,
            delay,
            open: Default::default(),
            most_open: Default::default(),
            asked: Default::default(),
        })
    }
}

impl Approver for Person {
    fn ask(&self, request: ApprovalRequest) -> Pin<Box<dyn Future<Output = Result<Decision, AskError>> + Send>> {
        assert!(request.message.contains(&request.call), "{}", request.message);
        let (open, most, asked) = (self.open.clone(), self.most_open.clone(), self.asked.clone());
        let (decision, delay) = (self.decision, self.delay);
        Box::pin(async move {
            asked.fetch_add(1, Ordering::SeqCst);
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            open.fetch_sub(1, Ordering::SeqCst);
            Ok(decision)
        })
    }
}

fn pipeline(lists: RuleLists, writes: bool, timeout: Duration) -> (Pipeline, Arc<Recorder>) {
    let mut policy = Policy::new();
    let rules = RuleSet::compile(&lists, TargetKind::Api).unwrap();
    policy.target("books", TargetRules { from: "api books".into(), rules, writes });
    let rec = Arc::new(Recorder::default());
    let layers: Vec<Arc<dyn Layer>> = vec![
        Arc::new(ScopeLayer),
        Arc::new(RuleLayer::new(Arc::new(policy))),
        Arc::new(DryRunLayer::default()),
        Arc::new(ApprovalLayer::new(timeout)),
    ];
    (Pipeline::new(layers, rec.clone()), rec)
}

fn call(method: &str, path: &str, exec: &Arc<Execution>) -> Call {
    let request =
        codemode_upstream::request::parse(&json!([{"method": method, "path": path, "body": {"a": 1}}])).unwrap();
    let op = HttpOp { api: "books".into(), request, template: None, operation_id: None, tags: vec![] };
    Call::new(Operation::Http(op), Access::of_method(method), exec.clone())
}

fn approve(list: &[&str]) -> RuleLists {
    RuleLists { approve: list.iter().map(|s| s.to_string()).collect(), ..Default::default() }
}

#[tokio::test]
async fn scopes_come_before_rules() {
    let (p, rec) = pipeline(RuleLists::default(), true, Duration::from_secs(1));
    let exec = Arc::new(Execution::new(Some(Principal::with_scopes("r", ["books:read"]))));
    let e = p.run(call("POST", "/b", &exec)).await.unwrap_err();
    assert_eq!(e.name, "ScopeError");
    assert_eq!(e.fields["api"], "books");
    assert!(p.run(call("GET", "/b", &exec)).await.is_ok());
    assert_eq!(*rec.0.lock().unwrap(), vec!["books GET /b"]);
}

#[tokio::test]
async fn approval_is_asked_one_at_a_time_and_per_call() {
    let (p, rec) = pipeline(approve(&["POST /**"]), true, Duration::from_secs(5));
    let person = Person::new(Decision::Approve { remember: false }, Duration::from_millis(30));
    let exec = Arc::new(Execution::new(None).with_approver(Some(person.clone())));
    let calls = (0..4).map(|i| p.run(call("POST", &format!("/b/{i}"), &exec)));
    let results = futures_join(calls).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(person.asked.load(Ordering::SeqCst), 4);
    assert_eq!(person.most_open.load(Ordering::SeqCst), 1, "two questions were open at once");
    assert_eq!(rec.0.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn remember_approves_the_same_operation_for_the_rest_of_the_run() {
    let (p, rec) = pipeline(approve(&["POST /**"]), true, Duration::from_secs(5));
    let person = Person::new(Decision::Approve { remember: true }, Duration::from_millis(1));
    let exec = Arc::new(Execution::new(None).with_approver(Some(person.clone())));
    for _ in 0..3 {
        p.run(call("POST", "/b", &exec)).await.unwrap();
    }
    p.run(call("POST", "/other", &exec)).await.unwrap();
    assert_eq!(person.asked.load(Ordering::SeqCst), 2, "same operation asked again, or another one not asked");
    assert_eq!(rec.0.lock().unwrap().len(), 4);
    // A new execution asks again.
    let exec2 = Arc::new(Execution::new(None).with_approver(Some(person.clone())));
    p.run(call("POST", "/b", &exec2)).await.unwrap();
    assert_eq!(person.asked.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn declines_timeouts_and_no_approver_send_nothing() {
    let (p, rec) = pipeline(approve(&["POST /**"]), true, Duration::from_millis(50));
    let cases: Vec<(Option<Arc<dyn Approver>>, &str)> = vec![
        (Some(Person::new(Decision::Decline, Duration::ZERO)), "declined"),
        (Some(Person::new(Decision::Cancel, Duration::ZERO)), "cancelled"),
        (Some(Person::new(Decision::Approve { remember: false }, Duration::from_secs(5))), "timeout"),
        (None, "unavailable"),
    ];
    for (approver, reason) in cases {
        let exec = Arc::new(Execution::new(None).with_approver(approver));
        let e = p.run(call("POST", "/b", &exec)).await.unwrap_err();
        assert_eq!(e.name, "ApprovalDenied");
        assert_eq!(e.fields["reason"], reason, "{}", e.message);
        assert!(e.message.contains("was not sent"), "{}", e.message);
    }
    assert!(rec.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_question_pauses_the_time_limit() {
    let (p, _) = pipeline(approve(&["POST /**"]), true, Duration::from_secs(5));
    let paused = Arc::new(AtomicUsize::new(0));
    let held = paused.clone();
    let person = Person::new(Decision::Approve { remember: false }, Duration::from_millis(1));
    let exec = Arc::new(Execution::new(None).with_approver(Some(person)).with_pause(Arc::new(move || {
        held.fetch_add(1, Ordering::SeqCst);
        Box::new(())
    })));
    p.run(call("POST", "/b", &exec)).await.unwrap();
    p.run(call("GET", "/b", &exec)).await.unwrap();
    assert_eq!(paused.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dry_run_plans_writes_sends_reads_and_still_applies_rules() {
    let lists = RuleLists { deny: vec!["DELETE /**".into()], approve: vec!["PUT /**".into()], ..Default::default() };
    let (p, rec) = pipeline(lists, true, Duration::from_secs(1));
    let exec = Arc::new(Execution::new(None).with_dry_run(true));
    assert_eq!(p.run(call("GET", "/b", &exec)).await.unwrap()["status"], 200);
    let planned = p.run(call("POST", "/b", &exec)).await.unwrap();
    assert_eq!(planned["dryRun"], true);
    assert_eq!(planned["status"], 202);
    assert!(p.run(call("PUT", "/b/1", &exec)).await.is_ok(), "approval is not asked in a dry run");
    assert_eq!(p.run(call("DELETE", "/b/1", &exec)).await.unwrap_err().name, "PolicyError");
    assert_eq!(*rec.0.lock().unwrap(), vec!["books GET /b"]);
    let plan: Vec<Value> = DryRunLayer::plan(&exec);
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0], json!({"api": "books", "method": "POST", "path": "/b", "body": {"a": 1}}));
    assert_eq!(plan[1]["approval"], "required");
}

async fn futures_join<F: Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn layers_leave_notes_for_the_record() {
    let lists = RuleLists {
        allow: vec!["GET /**".into(), "POST /b".into()],
        approve: vec!["POST /**".into()],
        ..Default::default()
    };
    let (p, _) = pipeline(lists, false, Duration::from_secs(1));
    let person = Person::new(Decision::Approve { remember: false }, Duration::ZERO);
    let exec = Arc::new(Execution::new(Some(Principal::unrestricted("ann"))).with_approver(Some(person)));
    let c = call("POST", "/b", &exec);
    let notes = c.notes.clone();
    p.run(c).await.unwrap();
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes["allowedBy"], "allow \"POST /b\" (api books)");
    assert_eq!(notes["approval"]["decision"], "approved");
    assert_eq!(notes["approval"]["by"], "ann");
    let c = call("GET", "/b", &exec);
    let notes = c.notes.clone();
    p.run(c).await.unwrap();
    assert_eq!(notes.lock().unwrap()["allowedBy"], "allow \"GET /**\" (api books)");
}
