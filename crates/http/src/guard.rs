//! Layers in front of everything MCP: `Host`/`Origin` allow-lists
//! (DNS-rebinding protection) and the readiness/draining gate.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::config::{default_port, normalize_host, HostRule, OriginRule, PortRule};
use crate::server::AppState;

/// Why `Host`/`Origin` were refused (`None`: fine).
pub(crate) fn check_host_and_origin(
    headers: &HeaderMap,
    uri: &http::Uri,
    hosts: &[HostRule],
    origins: &[OriginRule],
) -> Option<(StatusCode, &'static str)> {
    // Host (HTTP/1.1 always has exactly one; HTTP/2 may carry only `:authority`,
    // which hyper puts in the URI).
    let mut values = headers.get_all(header::HOST).iter();
    let host = match (values.next(), values.next()) {
        (Some(_), Some(_)) => {
            return Some((StatusCode::BAD_REQUEST, "Bad Request: more than one Host header; send exactly one"))
        }
        (Some(h), None) => match h.to_str().ok().and_then(|s| http::uri::Authority::try_from(s).ok()) {
            Some(a) => a,
            None => return Some((StatusCode::BAD_REQUEST, "Bad Request: invalid Host header; send Host: name[:port]")),
        },
        (None, _) => match uri.authority() {
            Some(a) => a.clone(),
            None => return Some((StatusCode::BAD_REQUEST, "Bad Request: missing Host header; send Host: name[:port]")),
        },
    };
    if let Some(refused) = authority_problem(&host, true) {
        return Some(refused);
    }
    // An absolute-form target (`POST http://other/mcp`) names the authority the
    // request is really for (RFC 9112 §3.2.2): it must be the Host.
    if let Some(target) = uri.authority() {
        if let Some(refused) = authority_problem(target, false) {
            return Some(refused);
        }
        let default = uri.scheme_str().and_then(|s| default_port(&s.to_ascii_lowercase()));
        let same_port = target.port_u16().or(default) == host.port_u16().or(default);
        if normalize_host(target.host()) != normalize_host(host.host()) || !same_port {
            return Some((
                StatusCode::BAD_REQUEST,
                "Bad Request: the request target's authority differs from the Host header; send the same host and port in both",
            ));
        }
    }
    let (name, port) = (normalize_host(host.host()), host.port_u16());
    let host_ok = hosts.iter().any(|r| match r {
        HostRule::Any => true,
        HostRule::Name { host, port: p } => {
            *host == name && p.is_none_or(|p| Some(p) == port || (port.is_none() && (p == 80 || p == 443)))
        }
    });
    if !host_ok {
        return Some((StatusCode::FORBIDDEN, "Forbidden: Host header is not allowed"));
    }
    // Origin: absent for non-browser clients, which pass.
    let origin = headers.get(header::ORIGIN)?;
    let Ok(origin) = origin.to_str() else { return Some((StatusCode::FORBIDDEN, "Forbidden: invalid Origin header")) };
    let origin = origin.trim();
    let ok = if origin.eq_ignore_ascii_case("null") {
        origins.iter().any(|r| matches!(r, OriginRule::Any | OriginRule::Null))
    } else {
        let parsed = http::Uri::try_from(origin).ok().and_then(|u| {
            let scheme = u.scheme_str()?.to_ascii_lowercase();
            let a = u.authority()?;
            let port = a.port_u16().or_else(|| default_port(&scheme))?;
            Some((scheme, normalize_host(a.host()), port))
        });
        match parsed {
            None => return Some((StatusCode::FORBIDDEN, "Forbidden: invalid Origin header")),
            Some((scheme, host, port)) => origins.iter().any(|r| match r {
                OriginRule::Any => true,
                OriginRule::Null => false,
                OriginRule::Tuple { scheme: s, host: h, port: p } => {
                    *s == scheme
                        && *h == host
                        && match p {
                            PortRule::Any => true,
                            PortRule::Exact(e) => *e == port,
                        }
                }
            }),
        }
    };
    if ok {
        None
    } else {
        Some((StatusCode::FORBIDDEN, "Forbidden: Origin header is not allowed"))
    }
}

/// A `Host` (or request-target authority) that is malformed in a way the
/// allow-list comparison would not catch: userinfo (`evil@127.0.0.1` names
/// 127.0.0.1 to us but reads differently elsewhere), an empty name, or an
/// empty port (`127.0.0.1:`).
fn authority_problem(a: &http::uri::Authority, in_host: bool) -> Option<(StatusCode, &'static str)> {
    let message = match (in_host, a.as_str()) {
        (true, s) if s.contains('@') => {
            "Bad Request: the Host header must not contain userinfo (`user@`); send Host: name[:port]"
        }
        (false, s) if s.contains('@') => "Bad Request: the request target must not contain userinfo (`user@`)",
        (true, _) if a.host().is_empty() => "Bad Request: the Host header has no host name; send Host: name[:port]",
        (false, _) if a.host().is_empty() => "Bad Request: the request target has no host name",
        (true, s) if s.ends_with(':') => "Bad Request: the Host header has an empty port; send Host: name[:port]",
        (false, s) if s.ends_with(':') => "Bad Request: the request target has an empty port",
        _ => return None,
    };
    Some((StatusCode::BAD_REQUEST, message))
}

/// The layer for `Host`/`Origin`.
pub(crate) async fn host_and_origin(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some((status, message)) =
        check_host_and_origin(req.headers(), req.uri(), &state.settings.hosts, &state.settings.origins)
    {
        tracing::warn!(
            host = ?req.headers().get(header::HOST),
            origin = ?req.headers().get(header::ORIGIN),
            "refused: {message} (possible DNS rebinding)"
        );
        return (status, message).into_response();
    }
    next.run(req).await
}

/// The layer that answers 503 while the APIs load and while shutting down.
pub(crate) async fn ready(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if state.draining.load(Ordering::Acquire) {
        let mut r =
            (StatusCode::SERVICE_UNAVAILABLE, "codemode is shutting down; retry on another replica").into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    if !state.ready.load(Ordering::Acquire) {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, "codemode is still loading its APIs").into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_host_rule, parse_origin_rule};

    fn h(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            m.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        m
    }

    #[test]
    fn loopback_defaults() {
        let hosts: Vec<_> = ["localhost", "127.0.0.1", "[::1]"].iter().filter_map(|s| parse_host_rule(s)).collect();
        let origins: Vec<_> =
            ["http://localhost:*", "http://127.0.0.1:*"].iter().filter_map(|s| parse_origin_rule(s)).collect();
        let u = http::Uri::from_static("/mcp");
        let check = |host, origin| check_host_and_origin(&h(host, origin), &u, &hosts, &origins).map(|x| x.0);
        assert_eq!(check("127.0.0.1:8080", None), None);
        assert_eq!(check("localhost:1", Some("http://localhost:6274")), None);
        assert_eq!(check("[::1]:8080", None), None);
        assert_eq!(check("evil.example.com", Some("http://evil.example.com")), Some(StatusCode::FORBIDDEN));
        assert_eq!(check("evil.example.com:8080", None), Some(StatusCode::FORBIDDEN));
        assert_eq!(check("127.0.0.1:8080", Some("http://evil.example.com")), Some(StatusCode::FORBIDDEN));
        assert_eq!(check("127.0.0.1:8080", Some("null")), Some(StatusCode::FORBIDDEN));
        assert_eq!(check("127.0.0.1:8080", Some("not a url")), Some(StatusCode::FORBIDDEN));
    }

    #[test]
    fn exact_ports_and_default_ports() {
        let hosts = vec![parse_host_rule("mcp.example.com:443").unwrap(), parse_host_rule("api.example.com").unwrap()];
        let origins = vec![parse_origin_rule("https://app.example.com").unwrap()];
        let u = http::Uri::from_static("/mcp");
        let check = |host, origin| check_host_and_origin(&h(host, origin), &u, &hosts, &origins).map(|x| x.0);
        assert_eq!(check("mcp.example.com:443", None), None);
        assert_eq!(check("mcp.example.com:8443", None), Some(StatusCode::FORBIDDEN));
        assert_eq!(check("mcp.example.com", None), None);
        assert_eq!(check("api.example.com:9999", None), None);
        assert_eq!(check("api.example.com", Some("https://app.example.com")), None);
        assert_eq!(check("api.example.com", Some("https://app.example.com:443")), None);
        assert_eq!(check("api.example.com", Some("https://app.example.com:444")), Some(StatusCode::FORBIDDEN));
        assert_eq!(check("api.example.com", Some("http://app.example.com")), Some(StatusCode::FORBIDDEN));
    }

    #[test]
    fn host_parsing_slack_is_refused() {
        let hosts: Vec<_> = ["localhost", "127.0.0.1", "[::1]"].iter().filter_map(|s| parse_host_rule(s)).collect();
        let any = vec![HostRule::Any];
        let origin = http::Uri::from_static("/mcp");
        let check = |host: &str, hosts: &[HostRule]| check_host_and_origin(&h(host, None), &origin, hosts, &[]);
        for bad in ["evil@127.0.0.1:8080", "evil@127.0.0.1", "u:p@localhost", "@127.0.0.1", ":8080", "127.0.0.1:", ""] {
            for rules in [&hosts, &any] {
                let refused = check(bad, rules);
                assert!(matches!(refused, Some((StatusCode::BAD_REQUEST, _))), "{bad:?} → {refused:?}");
            }
        }
        assert!(check("evil@127.0.0.1:8080", &hosts).unwrap().1.contains("userinfo"));
        // A trailing dot names another host as far as the allow-list goes.
        assert_eq!(check("localhost.:8080", &hosts).map(|x| x.0), Some(StatusCode::FORBIDDEN));
        // Two Host headers.
        let mut two = h("127.0.0.1:8080", None);
        two.append(header::HOST, HeaderValue::from_static("evil.example.com"));
        let refused = check_host_and_origin(&two, &origin, &hosts, &[]).unwrap();
        assert_eq!(refused.0, StatusCode::BAD_REQUEST);
        assert!(refused.1.contains("more than one Host"), "{}", refused.1);
        // Absolute-form targets: the authority must be the Host's.
        let abs = |target: &'static str, host: &str| {
            check_host_and_origin(&h(host, None), &http::Uri::from_static(target), &hosts, &[]).map(|x| x.0)
        };
        assert_eq!(abs("http://127.0.0.1:8080/mcp", "127.0.0.1:8080"), None);
        assert_eq!(abs("http://127.0.0.1/mcp", "127.0.0.1:80"), None);
        assert_eq!(abs("http://evil.example.com/mcp", "127.0.0.1:8080"), Some(StatusCode::BAD_REQUEST));
        assert_eq!(abs("http://127.0.0.1:9999/mcp", "127.0.0.1:8080"), Some(StatusCode::BAD_REQUEST));
        assert_eq!(abs("http://evil@127.0.0.1:8080/mcp", "127.0.0.1:8080"), Some(StatusCode::BAD_REQUEST));
        // HTTP/2: only `:authority`, in the URI.
        let none = HeaderMap::new();
        let h2 = |target: &'static str| {
            check_host_and_origin(&none, &http::Uri::from_static(target), &hosts, &[]).map(|x| x.0)
        };
        assert_eq!(h2("http://127.0.0.1:8080/mcp"), None);
        assert_eq!(h2("http://evil@127.0.0.1:8080/mcp"), Some(StatusCode::BAD_REQUEST));
    }
}
