//! `execute` as a task (the MCP tasks extension, `io.modelcontextprotocol/tasks`):
//! for clients that declare the extension, an `execute` that has not ended
//! within [`TaskSettings::inline_ms`] is answered with a task handle; the
//! client polls `tasks/get`, answers approval questions through
//! `tasks/update` (`input_required`), and may `tasks/cancel` it.
//!
//! rmcp's [`TaskManager`] keeps the lifecycle (states, TTL, input requests);
//! this module adds what a shared server needs on top:
//!
//! - **Ownership.** A task belongs to the principal that started it; anyone
//!   else asking about its id is told it does not exist (the same answer as
//!   for an id never issued, so ids cannot be probed).
//! - **A running cap per principal.** The HTTP layer's limit on concurrent
//!   tool calls ends with the request; a task outlives it, so tasks have
//!   their own cap, or one principal could start executions without bound.
//! - **Cancellation that stops the work.** `tasks/cancel` drops the
//!   execution ([`Detached`]): the JavaScript stops, in-flight HTTP requests
//!   are dropped, upstream MCP servers are sent `notifications/cancelled`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rmcp::model::{DetailedTask, ElicitRequest, ElicitResult, InputRequest, Task};
use rmcp::task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions};
use rmcp::ErrorData as McpError;

use crate::approve;
use crate::detached::{Detached, Question, Step};

/// `[tasks]`, resolved.
#[derive(Clone, Debug)]
pub struct TaskSettings {
    /// An `execute` that ends within this many milliseconds is answered
    /// directly, even for a client that can take a task: a task costs the
    /// client at least one more round trip.
    pub inline_ms: u64,
    /// How long a task and its result are kept (`ttlMs`).
    pub ttl_ms: u64,
    /// How often the client is asked to poll (`pollIntervalMs`).
    pub poll_interval_ms: u64,
    /// Tasks one principal may have running at once.
    pub max_running_per_principal: usize,
}

/// The tasks of this server, across sessions and requests.
pub struct Tasks {
    settings: TaskSettings,
    manager: TaskManager,
    /// Task id → the principal that started it.
    owners: Mutex<HashMap<String, String>>,
    /// Principal → tasks of theirs still running.
    running: Arc<Mutex<HashMap<String, usize>>>,
}

impl Tasks {
    /// An empty store.
    pub fn new(settings: TaskSettings) -> Self {
        Tasks {
            settings,
            manager: TaskManager::new(),
            owners: Mutex::new(HashMap::new()),
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &TaskSettings {
        &self.settings
    }

    /// A slot for one more running task of `owner`, or the refusal to give
    /// the model.
    pub fn admit(&self, owner: &str) -> Result<RunningSlot, String> {
        let mut running = self.running.lock().expect("tasks lock");
        let n = running.entry(owner.to_string()).or_insert(0);
        if *n >= self.settings.max_running_per_principal {
            return Err(format!(
                "LimitError: `{owner}` already has {n} executes running as tasks, the most this server allows ([tasks] max_running_per_principal = {}); wait for one to end (tasks/get) or cancel one (tasks/cancel), then call execute again",
                self.settings.max_running_per_principal
            ));
        }
        *n += 1;
        Ok(RunningSlot { running: self.running.clone(), owner: owner.to_string() })
    }

    /// Makes `run` a task of `owner`'s: `pending` is a question it already
    /// waits on; `handle` is where its progress reports go. Returns the
    /// task's first state, for `CreateTaskResult`.
    pub fn spawn(
        &self,
        owner: &str,
        slot: RunningSlot,
        run: Detached,
        pending: Option<Question>,
        handle: TaskHandle,
    ) -> Task {
        let options = TaskOptions::new()
            .with_ttl_ms(self.settings.ttl_ms)
            .with_poll_interval_ms(self.settings.poll_interval_ms)
            .with_status_message("running");
        let task = self.manager.spawn(options, move |ctx| {
            *handle.0.lock().expect("task handle lock") = Some(ctx.clone());
            drive(ctx, slot, run, pending)
        });
        let mut owners = self.owners.lock().expect("tasks lock");
        // Forget tasks the manager has dropped (past their TTL).
        if owners.len() > 64 {
            owners.retain(|id, _| self.manager.get_task(id).is_ok());
        }
        owners.insert(task.task_id.clone(), owner.to_string());
        task
    }

    /// `tasks/get`, for `owner` only.
    pub fn get(&self, owner: &str, id: &str) -> Result<DetailedTask, McpError> {
        self.check(owner, id)?;
        self.manager.get_task(id)
    }

    /// `tasks/update`, for `owner` only.
    pub fn update(
        &self,
        owner: &str,
        id: &str,
        responses: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> Result<(), McpError> {
        self.check(owner, id)?;
        self.manager.update_task(id, responses)
    }

    /// `tasks/cancel`, for `owner` only.
    pub fn cancel(&self, owner: &str, id: &str) -> Result<(), McpError> {
        self.check(owner, id)?;
        tracing::info!(task = id, principal = owner, "task cancelled by the client");
        self.manager.cancel_task(id)
    }

    fn check(&self, owner: &str, id: &str) -> Result<(), McpError> {
        match self.owners.lock().expect("tasks lock").get(id) {
            Some(o) if o == owner => Ok(()),
            // Someone else's task reads exactly like no task at all.
            _ => Err(McpError::invalid_params(format!("unknown task: {id}"), None)),
        }
    }
}

/// One running task of a principal's; dropped when the task's work ends
/// (finished, failed, cancelled or aborted).
pub struct RunningSlot {
    running: Arc<Mutex<HashMap<String, usize>>>,
    owner: String,
}

impl Drop for RunningSlot {
    fn drop(&mut self) {
        let mut running = self.running.lock().expect("tasks lock");
        if let Some(n) = running.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.owner);
            }
        }
    }
}

/// The running task, for the execution's progress reports: each becomes
/// the task's status message.
#[derive(Clone, Default)]
pub struct TaskHandle(Arc<Mutex<Option<TaskContext>>>);

impl TaskHandle {
    /// Shows `message` as the task's status (for `tasks/get`).
    pub fn status(&self, message: &str) {
        if let Some(ctx) = self.0.lock().expect("task handle lock").as_ref() {
            ctx.set_status_message(message);
        }
    }
}

/// The task's work: drive the execution to its end, putting each approval
/// question to the client as an input request, and stop it on cancel.
fn drive(ctx: TaskContext, slot: RunningSlot, mut run: Detached, mut pending: Option<Question>) -> TaskFuture {
    Box::pin(async move {
        let _slot = slot;
        let mut asked = 0u32;
        loop {
            let mut question = match pending.take() {
                Some(q) => q,
                None => tokio::select! {
                    // Dropping `run` on the way out stops the execution.
                    _ = ctx.cancelled() => return Err(TaskExit::Cancelled),
                    step = run.next() => match step {
                        Step::Done(rendered) => return Ok(crate::server::to_result(rendered)),
                        Step::Asks(q) => q,
                    },
                },
            };
            asked += 1;
            let Ok(params) = approve::question(&question.request) else {
                question.answer(codemode_pipeline::Decision::Cancel);
                continue;
            };
            ctx.set_status_message(format!("waiting for approval: {}", question.request.call));
            let request = InputRequest::Elicitation(ElicitRequest::new(params));
            tokio::select! {
                answer = ctx.request_input(format!("approval-{asked}"), request) => match answer {
                    Ok(value) => {
                        let decision = serde_json::from_value::<ElicitResult>(value)
                            .map(|a| approve::decision_of(&a))
                            .unwrap_or(codemode_pipeline::Decision::Cancel);
                        question.answer(decision);
                        ctx.set_status_message("running");
                    }
                    Err(exit) => return Err(exit),
                },
                // The approval timed out inside the execution: it goes on
                // without the answer (refused), and so do we.
                _ = question.withdrawn() => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Rendered;
    use rmcp::model::{TaskPayload, TaskStatus};
    use std::time::Duration;

    fn settings(max: usize) -> TaskSettings {
        TaskSettings { inline_ms: 0, ttl_ms: 60_000, poll_interval_ms: 10, max_running_per_principal: max }
    }

    fn rendered(text: &str) -> Rendered {
        Rendered { is_error: false, text: text.into(), note: None, console: None, plan: None, media: vec![] }
    }

    async fn settle(tasks: &Tasks, owner: &str, id: &str) -> DetailedTask {
        for _ in 0..500 {
            let t = tasks.get(owner, id).unwrap();
            if t.status().is_terminal() {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("task {id} did not settle");
    }

    #[tokio::test]
    async fn a_task_is_its_owners_alone() {
        let tasks = Tasks::new(settings(4));
        let slot = tasks.admit("alice").unwrap();
        let run = Detached::start(|_| async { rendered("42") });
        let task = tasks.spawn("alice", slot, run, None, TaskHandle::default());
        let done = settle(&tasks, "alice", &task.task_id).await;
        match done.payload {
            TaskPayload::Completed { result } => assert_eq!(result["content"][0]["text"], "42"),
            other => panic!("{other:?}"),
        }
        // Bob gets the answer an id never issued gets, for every method.
        let never = tasks.get("alice", "no-such-task").unwrap_err();
        for e in [
            tasks.get("bob", &task.task_id).unwrap_err(),
            tasks.cancel("bob", &task.task_id).unwrap_err(),
            tasks.update("bob", &task.task_id, []).unwrap_err(),
        ] {
            assert_eq!(e.code, never.code);
            assert_eq!(e.message.replace(&task.task_id, "ID"), never.message.replace("no-such-task", "ID"));
        }
    }

    #[tokio::test]
    async fn running_tasks_are_capped_per_principal_and_the_slot_comes_back() {
        let tasks = Tasks::new(settings(1));
        let slot = tasks.admit("alice").unwrap();
        let err = tasks.admit("alice").err().unwrap();
        assert!(err.contains("max_running_per_principal = 1"), "{err}");
        assert!(tasks.admit("bob").is_ok(), "the cap is per principal");
        let run = Detached::start(|_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            rendered("never")
        });
        let task = tasks.spawn("alice", slot, run, None, TaskHandle::default());
        assert!(tasks.admit("alice").is_err());
        tasks.cancel("alice", &task.task_id).unwrap();
        let done = settle(&tasks, "alice", &task.task_id).await;
        assert_eq!(done.status(), TaskStatus::Cancelled);
        assert!(tasks.admit("alice").is_ok(), "a cancelled task gives its slot back");
    }

    #[tokio::test]
    async fn approvals_are_input_requests_and_the_answer_reaches_the_execution() {
        let tasks = Tasks::new(settings(4));
        let slot = tasks.admit("alice").unwrap();
        let run = Detached::start(|approver| async move {
            let d = approver
                .ask(codemode_pipeline::ApprovalRequest {
                    message: "Send POST /books?".into(),
                    call: "shelf POST /books".into(),
                    rule: "r".into(),
                })
                .await;
            rendered(&format!("{d:?}"))
        });
        let task = tasks.spawn("alice", slot, run, None, TaskHandle::default());
        let key = loop {
            let t = tasks.get("alice", &task.task_id).unwrap();
            if let TaskPayload::InputRequired { input_requests } = t.payload {
                let (key, request) = input_requests.into_iter().next().unwrap();
                let v = serde_json::to_value(&request).unwrap();
                assert_eq!(v["method"], "elicitation/create");
                assert_eq!(v["params"]["message"], "Send POST /books?");
                break key;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        tasks
            .update(
                "alice",
                &task.task_id,
                [(key, serde_json::json!({"action": "accept", "content": {"remember": true}}))],
            )
            .unwrap();
        let done = settle(&tasks, "alice", &task.task_id).await;
        match done.payload {
            TaskPayload::Completed { result } => {
                assert_eq!(result["content"][0]["text"], "Ok(Approve { remember: true })")
            }
            other => panic!("{other:?}"),
        }
    }
}
