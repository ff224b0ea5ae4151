//! The layer stack: a small, tower-like middleware chain specialised to
//! [`Call`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::{Call, HostError};

/// What a call resolves to in the code: a value, or an error it can catch.
pub type Reply = Result<Value, HostError>;

/// A boxed future of a [`Reply`].
pub type BoxReply<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// One concern of the pipeline. A layer answers the call itself (refuses
/// it, records it) or passes it on with `next.run(call)`.
pub trait Layer: Send + Sync + 'static {
    /// Handles one call.
    fn handle<'a>(&'a self, call: Call, next: Next<'a>) -> BoxReply<'a>;
}

/// Where a call goes once every layer let it through: the network, the
/// rehearsal responder, or an upstream MCP server.
pub trait Route: Send + Sync + 'static {
    /// Sends the call.
    fn send<'a>(&'a self, call: Call) -> BoxReply<'a>;
}

/// The rest of the stack after the current layer.
pub struct Next<'a> {
    rest: &'a [Arc<dyn Layer>],
    route: &'a dyn Route,
}

impl<'a> Next<'a> {
    /// Passes the call to the next layer, or to the route after the last.
    pub fn run(self, call: Call) -> BoxReply<'a> {
        match self.rest.split_first() {
            Some((layer, rest)) => layer.handle(call, Next { rest, route: self.route }),
            None => self.route.send(call),
        }
    }
}

/// An ordered stack of layers in front of a route. Cheap to share.
pub struct Pipeline {
    layers: Vec<Arc<dyn Layer>>,
    route: Arc<dyn Route>,
}

impl Pipeline {
    /// A pipeline whose calls pass `layers` in order, then `route`.
    pub fn new(layers: Vec<Arc<dyn Layer>>, route: Arc<dyn Route>) -> Self {
        Pipeline { layers, route }
    }

    /// Runs one call through every layer.
    pub fn run(&self, call: Call) -> BoxReply<'_> {
        Next { rest: &self.layers, route: self.route.as_ref() }.run(call)
    }
}
