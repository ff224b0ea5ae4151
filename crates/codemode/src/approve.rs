//! Approval questions asked through MCP elicitation on the session of the
//! tool call that needs them.

use std::future::Future;
use std::pin::Pin;

use codemode_pipeline::{ApprovalRequest, Approver, AskError, Decision};
use rmcp::model::{ElicitRequestParams, ElicitationAction, ElicitationSchema};
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
                return Err(AskError::Unavailable(
                    "the MCP client did not declare the elicitation capability (form mode)".into(),
                ));
            }
            let schema = ElicitationSchema::builder()
                .optional_bool_with("remember", |b| {
                    b.title("Also approve this operation for the rest of this run").with_default(false)
                })
                .build()
                .map_err(|e| AskError::Failed(format!("building the question: {e}")))?;
            let params = ElicitRequestParams::FormElicitationParams {
                meta: None,
                message: request.message,
                requested_schema: schema,
            };
            let answer = peer.create_elicitation(params).await.map_err(|e| {
                let text = e.to_string();
                if text.contains("2026-07-28") {
                    AskError::Unavailable(
                        "the client speaks MCP 2026-07-28, where a server cannot ask mid-call (input_required is not supported yet)"
                            .into(),
                    )
                } else {
                    AskError::Failed(format!("the client did not answer the elicitation request: {text}"))
                }
            })?;
            Ok(match answer.action {
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
            })
        })
    }
}
