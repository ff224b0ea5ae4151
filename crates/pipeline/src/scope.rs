//! Scopes: what the principal's credential carries.

use crate::{Access, BoxReply, Call, HostError, Layer, Next, Operation};

/// Refuses calls the principal's scopes do not cover: `<api>:read` for
/// GET/HEAD and `<api>:write` for other methods; `<server>:read` for tools
/// annotated `readOnlyHint` and `<server>:write` for the rest. Scopes only
/// narrow: a principal without scopes (stdio, no auth) is limited by the
/// config alone.
#[derive(Debug, Default)]
pub struct ScopeLayer;

impl Layer for ScopeLayer {
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a> {
        let Some(p) = &call.exec.principal else { return next.run(call) };
        let write = call.access == Access::Write;
        let verdict = match &call.op {
            Operation::Http(h) => p.allows(&h.api, write),
            Operation::Graphql(g) => p.allows(&g.api, write),
            Operation::Tool(t) => p.allows_tool(&t.server, &t.name, write),
        };
        match verdict {
            Ok(()) => next.run(call),
            Err(message) => {
                let mut e = HostError::new("ScopeError", message);
                e.fields = call.context();
                e.fields.insert("retryable".into(), false.into());
                Box::pin(async move { Err(e) })
            }
        }
    }
}
