//! Approvals on MCP 2026-07-28 without a task: `input_required`.
//!
//! On 2026-07-28 a server cannot send a request in the middle of a call.
//! When an `execute` needs an approval, the call is answered with an
//! `InputRequiredResult` carrying the question; the client asks its user
//! and calls again with the answer and the `requestState` it was given.
//! The JavaScript cannot be frozen into that state, and running it again
//! would send every request before the approval twice — so the execution
//! stays running here, parked on its question, and `requestState` is only
//! an unguessable handle on it. The retry resumes the same run.
//!
//! A handle is good for one retry, by the principal that started the run,
//! with the same code. A run nobody comes back for is dropped once its
//! question has timed out (`[policy] approval_timeout_secs`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::model::{ElicitRequest, ElicitResult, InputRequest, InputRequests, InputRequiredResult, InputResponses};

use crate::approve;
use crate::detached::{Detached, Question};

/// The key of the one input request of a round.
pub const APPROVAL_KEY: &str = "approval";

/// Runs parked on a question, by handle.
pub struct Rounds {
    parked: Mutex<HashMap<String, Parked>>,
    /// How long a parked run is kept without a retry.
    keep: Duration,
    /// Parked runs one principal may have.
    max_per_principal: usize,
}

struct Parked {
    owner: String,
    code: String,
    run: Detached,
    question: Question,
    at: Instant,
}

/// A run taken back up by a retry, with the answer already delivered.
pub struct Resumed(pub Detached);

impl Rounds {
    /// Keeps parked runs for `keep`; at most `max_per_principal` each.
    pub fn new(keep: Duration, max_per_principal: usize) -> Self {
        Rounds { parked: Mutex::new(HashMap::new()), keep, max_per_principal }
    }

    /// Parks `run` on `question` and gives the result that asks the client.
    /// Refused (the question answered as cancelled) when `owner` already
    /// has as many parked runs as allowed.
    pub fn park(
        &self,
        owner: &str,
        code: String,
        run: Detached,
        question: Question,
    ) -> Result<InputRequiredResult, String> {
        let Ok(params) = approve::question(&question.request) else {
            question.answer(codemode_pipeline::Decision::Cancel);
            return Err("the approval question could not be built".into());
        };
        let mut parked = self.parked.lock().expect("rounds lock");
        self.sweep(&mut parked);
        let mine = parked.values().filter(|p| p.owner == owner).count();
        if mine >= self.max_per_principal {
            drop(parked);
            question.answer(codemode_pipeline::Decision::Cancel);
            drop(run);
            return Err(format!(
                "LimitError: `{owner}` already has {mine} executes waiting for an approval answer, the most this server allows; answer or abandon those first"
            ));
        }
        let handle = uuid::Uuid::new_v4().to_string();
        let mut requests = InputRequests::new();
        requests.insert(APPROVAL_KEY.into(), InputRequest::Elicitation(ElicitRequest::new(params)));
        parked.insert(handle.clone(), Parked { owner: owner.to_string(), code, run, question, at: Instant::now() });
        Ok(InputRequiredResult::new(Some(requests), Some(handle)))
    }

    /// Takes the run `handle` names back up, delivering the answer in
    /// `responses`. An unknown handle, someone else's, or one for other
    /// code is refused with a sentence the model can act on.
    pub fn resume(
        &self,
        owner: &str,
        code: &str,
        handle: &str,
        responses: Option<&InputResponses>,
    ) -> Result<Resumed, String> {
        let mut parked = self.parked.lock().expect("rounds lock");
        self.sweep(&mut parked);
        // Someone else's handle is left alone: their run goes on waiting.
        let fits = parked.get(handle).is_some_and(|p| p.owner == owner && p.code == code);
        let Some(p) = fits.then(|| parked.remove(handle)).flatten() else {
            return Err("the execute this answer belongs to is no longer waiting (it was answered already, timed out, or belongs to another caller); requests it made before the question were sent, so check their effect before you call execute again".into());
        };
        let decision = responses
            .and_then(|r| r.get(APPROVAL_KEY))
            .and_then(|v| serde_json::from_value::<ElicitResult>(v.clone()).ok())
            .map(|a| approve::decision_of(&a))
            .unwrap_or(codemode_pipeline::Decision::Cancel);
        p.question.answer(decision);
        Ok(Resumed(p.run))
    }

    /// Drops runs kept too long, and those whose question is gone (timed
    /// out inside the execution): nobody will come for them.
    fn sweep(&self, parked: &mut HashMap<String, Parked>) {
        let keep = self.keep;
        parked.retain(|_, p| p.at.elapsed() < keep && !p.question.is_withdrawn());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detached::Step;
    use crate::render::Rendered;

    fn start() -> Detached {
        Detached::start(|approver| async move {
            let d = approver
                .ask(codemode_pipeline::ApprovalRequest { message: "ok?".into(), call: "c".into(), rule: "r".into() })
                .await;
            Rendered { is_error: false, text: format!("{d:?}"), note: None, console: None, plan: None, media: vec![] }
        })
    }

    async fn parked(rounds: &Rounds, owner: &str) -> InputRequiredResult {
        let mut run = start();
        let Step::Asks(q) = run.next().await else { panic!("expected a question") };
        rounds.park(owner, "code".into(), run, q).unwrap()
    }

    #[tokio::test]
    async fn a_retry_with_the_answer_resumes_the_same_run() {
        let rounds = Rounds::new(Duration::from_secs(60), 4);
        let asked = parked(&rounds, "alice").await;
        let v = serde_json::to_value(&asked).unwrap();
        assert_eq!(v["resultType"], "input_required");
        assert_eq!(v["inputRequests"]["approval"]["method"], "elicitation/create");
        let handle = asked.request_state.unwrap();
        let mut answer = InputResponses::new();
        answer.insert(APPROVAL_KEY.into(), serde_json::json!({"action": "accept"}));
        let Resumed(mut run) = rounds.resume("alice", "code", &handle, Some(&answer)).unwrap();
        let Step::Done(r) = run.next().await else { panic!("expected the end") };
        assert_eq!(r.text, "Ok(Approve { remember: false })");
        // One retry per handle.
        assert!(rounds.resume("alice", "code", &handle, Some(&answer)).is_err());
    }

    #[tokio::test]
    async fn a_handle_is_bound_to_its_owner_and_its_code() {
        let rounds = Rounds::new(Duration::from_secs(60), 4);
        let handle = parked(&rounds, "alice").await.request_state.unwrap();
        assert!(rounds.resume("bob", "code", &handle, None).is_err());
        assert!(rounds.resume("alice", "other code", &handle, None).is_err());
        assert!(rounds.resume("alice", "code", "made-up", None).is_err());
        // None of that touched alice's run: her retry still resumes it.
        assert!(rounds.resume("alice", "code", &handle, None).is_ok());
    }

    #[tokio::test]
    async fn no_answer_is_no_approval_and_parked_runs_are_capped() {
        let rounds = Rounds::new(Duration::from_secs(60), 1);
        let handle = parked(&rounds, "alice").await.request_state.unwrap();
        let mut run = start();
        let Step::Asks(q) = run.next().await else { panic!() };
        let err = rounds.park("alice", "code".into(), run, q).unwrap_err();
        assert!(err.contains("waiting for an approval"), "{err}");
        let Resumed(mut run) = rounds.resume("alice", "code", &handle, None).unwrap();
        let Step::Done(r) = run.next().await else { panic!() };
        assert_eq!(r.text, "Ok(Cancel)");
    }
}
