//! The host pipeline: the one place that decides what the code's calls may do.
//!
//! Every nested call that model code makes in `execute` — `<api>.request(...)`,
//! `codemode.<server>_<tool>(...)` — is parsed once into a typed [`Call`]
//! (who, which API or server, which operation, read or write, arguments) and
//! passes one ordered stack of [`Layer`]s before a [`Route`] sends it:
//!
//! ```text
//! Call ─▶ ScopeLayer ─▶ RuleLayer ─▶ DryRunLayer ─▶ ApprovalLayer ─▶ Route (network, rehearsal, portal)
//! ```
//!
//! Each layer owns one concern and its state; a layer either answers the
//! call itself (a refusal, a planned write) or hands it to [`Next`]. New
//! concerns (audit, telemetry, redaction) are new layers, not new `if`s.
//! Every refusal is a [`HostError`]: one shape (`name`, `message`, fields)
//! for every path.

pub mod approval;
mod call;
pub mod dry_run;
mod error;
mod layer;
mod principal;
pub mod rules;
mod scope;

pub use approval::{ApprovalLayer, ApprovalRequest, Approver, AskError, Decision};
pub use call::{Access, Call, Execution, GraphqlOp, HttpOp, Operation, ToolOp};
pub use codemode_upstream::{Presented, Who};
pub use dry_run::DryRunLayer;
pub use error::HostError;
pub use layer::{BoxReply, Layer, Next, Pipeline, Reply, Route};
pub use principal::Principal;
pub use rules::{Policy, RuleLayer, RuleLists, RuleSet, TargetKind, TargetRules, Verdict};
pub use scope::ScopeLayer;
