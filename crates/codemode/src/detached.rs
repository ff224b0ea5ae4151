//! An `execute` that runs apart from the request that started it: as a task
//! (the tasks extension, [`crate::tasks`]), or parked on an approval
//! question between the rounds of an `input_required` exchange (MCP
//! 2026-07-28, where a server cannot send a request mid-call).
//!
//! The execution runs on its own tokio task; whoever drives it sees one
//! [`Step`] at a time — a question to put to the user, or the end. Dropping
//! the [`Detached`] stops it: the call future is dropped, which kills the
//! sandbox worker, drops in-flight HTTP requests and sends
//! `notifications/cancelled` to upstream MCP servers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use codemode_pipeline::{ApprovalRequest, Approver, AskError, Decision};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::render::Rendered;

/// A question the execution waits on, and where its answer goes.
pub struct Question {
    /// What to ask.
    pub request: ApprovalRequest,
    reply: oneshot::Sender<Decision>,
}

impl Question {
    /// Hands the user's decision to the waiting execution.
    pub fn answer(self, decision: Decision) {
        // The execution may have ended meanwhile (time limit): nothing waits.
        let _ = self.reply.send(decision);
    }

    /// Resolves when nobody waits for the answer any more (the approval
    /// timed out, or the execution ended).
    pub async fn withdrawn(&mut self) {
        self.reply.closed().await
    }

    /// Whether nobody waits for the answer any more.
    pub fn is_withdrawn(&self) -> bool {
        self.reply.is_closed()
    }
}

/// What a running execution did next.
pub enum Step {
    /// It waits for the answer to this question.
    Asks(Question),
    /// It ended with this result.
    Done(Rendered),
}

/// A running execution, driven one [`Step`] at a time; dropped, it stops.
pub struct Detached {
    run: JoinHandle<Rendered>,
    questions: mpsc::Receiver<Question>,
}

impl Detached {
    /// Runs `call` on its own task. `call` is given the approver to pass to
    /// the execution: its questions come out of [`Detached::next`].
    pub fn start<F, Fut>(call: F) -> Detached
    where
        F: FnOnce(Arc<dyn Approver>) -> Fut,
        Fut: Future<Output = Rendered> + Send + 'static,
    {
        // One question at a time per execution (the approval layer queues
        // parallel calls), so one slot is enough.
        let (tx, questions) = mpsc::channel(1);
        let run = tokio::spawn(call(Arc::new(ChannelApprover { questions: tx })));
        Detached { run, questions }
    }

    /// The next question, or the result. Cancel-safe: a step not taken
    /// stays for the next call.
    pub async fn next(&mut self) -> Step {
        tokio::select! {
            biased;
            Some(q) = self.questions.recv() => Step::Asks(q),
            done = &mut self.run => Step::Done(done.unwrap_or_else(|e| Rendered {
                is_error: true,
                text: format!("InternalError: the execution stopped unexpectedly ({e}); nothing after the last completed request was sent"),
                ..Rendered::default()
            })),
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        self.run.abort();
    }
}

/// Hands each question to the driver of a [`Detached`] execution.
struct ChannelApprover {
    questions: mpsc::Sender<Question>,
}

impl Approver for ChannelApprover {
    fn ask(&self, request: ApprovalRequest) -> Pin<Box<dyn Future<Output = Result<Decision, AskError>> + Send>> {
        let questions = self.questions.clone();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            questions
                .send(Question { request, reply })
                .await
                .map_err(|_| AskError::Failed("nobody drives this execution any more".into()))?;
            // Dropped unanswered: the task was cancelled, or the client never
            // came back with an answer. Either way: not approved.
            Ok(answer.await.unwrap_or(Decision::Cancel))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(text: &str) -> Rendered {
        Rendered { is_error: false, text: text.into(), note: None, console: None, plan: None, media: vec![] }
    }

    fn ask(text: &str) -> ApprovalRequest {
        ApprovalRequest { message: text.into(), call: "c".into(), rule: "r".into() }
    }

    #[tokio::test]
    async fn questions_come_out_one_at_a_time_then_the_result() {
        let mut run = Detached::start(|approver| async move {
            let first = approver.ask(ask("one?")).await.unwrap();
            let second = approver.ask(ask("two?")).await.unwrap();
            done(&format!("{first:?} {second:?}"))
        });
        let Step::Asks(q) = run.next().await else { panic!("expected a question") };
        assert_eq!(q.request.message, "one?");
        q.answer(Decision::Approve { remember: false });
        let Step::Asks(q) = run.next().await else { panic!("expected a question") };
        assert_eq!(q.request.message, "two?");
        q.answer(Decision::Decline);
        let Step::Done(r) = run.next().await else { panic!("expected the end") };
        assert_eq!(r.text, "Approve { remember: false } Decline");
    }

    #[tokio::test]
    async fn an_unanswered_question_is_a_cancel() {
        let mut run = Detached::start(|approver| async move { done(&format!("{:?}", approver.ask(ask("?")).await)) });
        let Step::Asks(q) = run.next().await else { panic!("expected a question") };
        drop(q);
        let Step::Done(r) = run.next().await else { panic!("expected the end") };
        assert_eq!(r.text, "Ok(Cancel)");
    }

    #[tokio::test]
    async fn dropping_it_stops_the_execution() {
        let (tx, rx) = oneshot::channel::<()>();
        let run = Detached::start(|_| async move {
            let _guard = tx; // dropped when the future is
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            done("never")
        });
        drop(run);
        tokio::time::timeout(std::time::Duration::from_secs(5), rx)
            .await
            .expect("the execution's future was dropped")
            .expect_err("and never finished");
    }
}
