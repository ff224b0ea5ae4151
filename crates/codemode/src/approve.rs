//! Approval questions, asked of the MCP client's user in whichever way the
//! call can ask: a server→client elicitation on the call's session
//! ([`ElicitApprover`]), or — for calls that run apart from their request
//! (tasks, and `input_required` on 2026-07-28) — handed to whoever drives
//! the call ([`crate::detached`]), which asks with the same question and
//! reads the answer the same way ([`question`], [`decision_of`]).

use std::future::Future;
use std::pin::Pin;

use codemode_pipeline::{ApprovalRequest, Approver, AskError, Decision};
use rmcp::model::{ClientCapabilities, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema};
use rmcp::service::{ElicitationMode, Peer};
use rmcp::RoleServer;

/// Asks the user of the MCP client behind `peer` (form-mode elicitation
/// with one optional boolean, `remember`).
pub struct ElicitApprover {
    peer: Peer<RoleServer>,
}

impl ElicitApprover {
    /// An approver on `peer`'s session.
    pub fn new(peer: Peer<RoleServer>) -> Self {
        ElicitApprover { peer }
    }
}

/// The form every approval asks with: the question, and one optional
/// boolean, `remember`.
pub fn question(request: &ApprovalRequest) -> Result<ElicitRequestParams, AskError> {
    let schema = ElicitationSchema::builder()
        .optional_bool_with("remember", |b| {
            b.title("Also approve this operation for the rest of this run").with_default(false)
        })
        .build()
        .map_err(|e| AskError::Failed(format!("building the question: {e}")))?;
    Ok(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: request.message.clone(),
        requested_schema: schema,
    })
}

/// The decision an elicitation answer carries: accept (with `remember`
/// when ticked), decline, or anything else as cancel.
pub fn decision_of(answer: &ElicitResult) -> Decision {
    match answer.action {
        ElicitationAction::Accept => {
            let remember = answer
                .content
                .as_ref()
                .and_then(|c| c.get("remember"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            Decision::Approve { remember }
        }
        ElicitationAction::Decline => Decision::Decline,
        _ => Decision::Cancel,
    }
}

/// Whether a client with these capabilities can be asked a form-mode
/// question (an `elicitation` capability with `form`, or with neither mode
/// named, which the spec reads as form).
pub fn can_ask(capabilities: Option<&ClientCapabilities>) -> bool {
    capabilities.and_then(|c| c.elicitation.as_ref()).is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// The answer for a client that cannot be asked: every question is
/// refused as unavailable, with the reason.
pub struct CannotAsk(pub &'static str);

/// Why a client that did not declare elicitation cannot be asked.
pub const NO_ELICITATION: &str = "the MCP client did not declare the elicitation capability (form mode)";

impl Approver for CannotAsk {
    fn ask(&self, _: ApprovalRequest) -> Pin<Box<dyn Future<Output = Result<Decision, AskError>> + Send>> {
        let reason = self.0;
        Box::pin(async move { Err(AskError::Unavailable(reason.into())) })
    }
}

impl Approver for ElicitApprover {
    fn ask(&self, request: ApprovalRequest) -> Pin<Box<dyn Future<Output = Result<Decision, AskError>> + Send>> {
        let peer = self.peer.clone();
        Box::pin(async move {
            if peer.peer_info().is_none() {
                return Err(AskError::Unavailable(
                    "this server answers each request on its own (stateless HTTP), so it has no session to ask on mid-call"
                        .into(),
                ));
            }
            if !peer.supported_elicitation_modes().contains(&ElicitationMode::Form) {
                return Err(AskError::Unavailable(NO_ELICITATION.into()));
            }
            let answer = peer
                .create_elicitation(question(&request)?)
                .await
                .map_err(|e| AskError::Failed(format!("the client did not answer the elicitation request: {e}")))?;
            Ok(decision_of(&answer))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(v: serde_json::Value) -> ElicitResult {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn answers_read_as_decisions() {
        assert_eq!(
            decision_of(&answer(serde_json::json!({"action": "accept", "content": {"remember": true}}))),
            Decision::Approve { remember: true }
        );
        assert_eq!(
            decision_of(&answer(serde_json::json!({"action": "accept"}))),
            Decision::Approve { remember: false }
        );
        assert_eq!(decision_of(&answer(serde_json::json!({"action": "decline"}))), Decision::Decline);
        assert_eq!(decision_of(&answer(serde_json::json!({"action": "cancel"}))), Decision::Cancel);
    }

    #[test]
    fn form_mode_is_what_can_be_asked() {
        let caps = |v: serde_json::Value| serde_json::from_value::<ClientCapabilities>(v).unwrap();
        assert!(!can_ask(None));
        assert!(!can_ask(Some(&caps(serde_json::json!({})))));
        assert!(can_ask(Some(&caps(serde_json::json!({"elicitation": {}})))));
        assert!(can_ask(Some(&caps(serde_json::json!({"elicitation": {"form": {}}})))));
        assert!(!can_ask(Some(&caps(serde_json::json!({"elicitation": {"url": {}}})))));
    }

    #[test]
    fn the_question_is_a_form_with_remember() {
        let q = question(&ApprovalRequest { message: "Send it?".into(), call: "c".into(), rule: "r".into() }).unwrap();
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(v["message"], "Send it?");
        assert_eq!(v["requestedSchema"]["properties"]["remember"]["type"], "boolean");
    }
}
