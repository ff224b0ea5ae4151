//! One error shape for every host error.

use serde_json::{json, Map, Value};

/// An error thrown into the code as an `Error`: `name`, `message`, and
/// fields that say what it was about (`api`, `method`, `path`, `status`,
/// `data`, `server`, `tool`, `rule`, `reason`, `retryable`, …). Every path —
/// scopes, rules, approval, the network, rehearsal, the portal — answers in
/// this shape.
#[derive(Clone, Debug, PartialEq)]
pub struct HostError {
    /// `Error.name`: `TypeError`, `ScopeError`, `PolicyError`,
    /// `ApprovalDenied`, `UpstreamError`, `ToolError`, ….
    pub name: String,
    /// What happened and what to do, in words a model can act on.
    pub message: String,
    /// Everything else, as properties of the thrown error.
    pub fields: Map<String, Value>,
}

impl HostError {
    /// An error with no fields.
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        HostError { name: name.into(), message: message.into(), fields: Map::new() }
    }

    /// Bad arguments from the code.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new("TypeError", message)
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Reads an error object a router produced (`{name, message, …}`).
    pub fn from_json(v: Value) -> Self {
        let mut fields = match v {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("message".into(), Value::String(other.to_string()));
                m
            }
        };
        let name = match fields.remove("name") {
            Some(Value::String(s)) => s,
            _ => "Error".into(),
        };
        let message = match fields.remove("message") {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        HostError { name, message, fields }
    }

    /// As the JSON object the sandbox turns into an `Error`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(self.fields.len() + 2);
        m.insert("name".into(), json!(self.name));
        m.insert("message".into(), json!(self.message));
        for (k, v) in &self.fields {
            if k != "name" && k != "message" {
                m.insert(k.clone(), v.clone());
            }
        }
        Value::Object(m)
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let e = HostError::new("PolicyError", "no").with("api", "books").with("retryable", false);
        let v = e.to_json();
        assert_eq!(v, json!({"name": "PolicyError", "message": "no", "api": "books", "retryable": false}));
        assert_eq!(HostError::from_json(v), e);
        let odd = HostError::from_json(json!("text"));
        assert_eq!((odd.name.as_str(), odd.message.as_str()), ("Error", "\"text\""));
    }

    #[test]
    fn fields_cannot_replace_name_or_message() {
        let mut e = HostError::new("ScopeError", "real");
        e.fields.insert("name".into(), json!("Fake"));
        let v = e.to_json();
        assert_eq!(v["name"], "ScopeError");
    }
}
