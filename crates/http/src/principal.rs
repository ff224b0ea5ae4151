//! Finding the [`Principal`] of a tool call served over HTTP.

pub use codemode_pipeline::Principal;

/// The principal of a tool call served over HTTP, from
/// `RequestContext::extensions` (rmcp puts the request's
/// `http::request::Parts` there; the auth layer put the principal in their
/// extensions). `None` over stdio.
pub fn principal_of(extensions: &rmcp::model::Extensions) -> Option<&Principal> {
    extensions.get::<http::request::Parts>().and_then(|p| p.extensions.get::<Principal>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_through_the_request_parts() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.extensions.insert(Principal::unrestricted("a"));
        let mut ext = rmcp::model::Extensions::new();
        assert!(principal_of(&ext).is_none());
        ext.insert(parts);
        assert_eq!(principal_of(&ext).unwrap().name, "a");
    }
}
