//! Request path → documented operation (shared by rehearsal mode and the
//! host pipeline's rules, which name operations by their path template).
//!
//! Templates are split into segments: literal (`zones`), parameter
//! (`{zone_id}`) or mixed (`{name}.json`, `{owner}:{repo}`, matched with a
//! regular expression). A request matches the templates with the same number
//! of segments whose segments all match; among those that document the
//! request's method, the most specific wins: segments are compared left to
//! right, literal before mixed before parameter. Real specs declare
//! templates that a strict router (one parameter name per position) would
//! reject as conflicting (`/accounts/{account_id}` beside
//! `/accounts/{account_identifier}/...`), which is why this is not a
//! radix-tree router.

use std::collections::HashMap;

/// Methods in the order they are listed (in `Found::Method`).
pub const METHOD_ORDER: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

/// How specific a match is, segment by segment (lower is more specific), and
/// the decoded path parameters.
type Match = (Vec<u8>, Vec<(String, String)>);

/// One segment of a path template.
enum Seg {
    Lit(String),
    Param(String),
    Mixed(regex::Regex, Vec<String>),
}

/// A documented (method, template) pair.
pub struct Route {
    /// Upper-case method.
    pub method: String,
    /// Path template as in the spec.
    pub template: String,
    segs: Vec<Seg>,
}

/// The routing table.
pub struct Router {
    routes: Vec<Route>,
    by_len: HashMap<usize, Vec<usize>>,
}

/// What routing found.
pub enum Found {
    /// Route index and decoded path parameters.
    Route(usize, Vec<(String, String)>),
    /// The path exists, not with this method: the methods it has, and the template.
    Method(Vec<String>, String),
    /// No template matches.
    None,
}

/// Splits a path into segments, ignoring a trailing slash.
pub fn segments(path: &str) -> Vec<&str> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let p = p.strip_suffix('/').unwrap_or(p);
    if p.is_empty() {
        vec![]
    } else {
        p.split('/').collect()
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse_seg(seg: &str) -> Seg {
    if !seg.contains('{') {
        return Seg::Lit(seg.to_string());
    }
    if seg.starts_with('{') && seg.ends_with('}') && seg.matches('{').count() == 1 {
        return Seg::Param(seg[1..seg.len() - 1].to_string());
    }
    let mut pattern = String::from("^");
    let mut names = Vec::new();
    let mut rest = seg;
    while let Some(open) = rest.find('{') {
        pattern.push_str(&regex::escape(&rest[..open]));
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            pattern.push_str(&regex::escape(&rest[open..]));
            rest = "";
            break;
        };
        pattern.push_str("(.+?)");
        names.push(rest[open + 1..close].to_string());
        rest = &rest[close + 1..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    match regex::Regex::new(&pattern) {
        Ok(re) => Seg::Mixed(re, names),
        Err(_) => Seg::Lit(seg.to_string()),
    }
}

impl Router {
    /// Builds the table from (method, template) pairs; route `i` is pair `i`.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Router {
        let mut routes = Vec::new();
        let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
        for (method, template) in pairs {
            let segs: Vec<Seg> = segments(&template).into_iter().map(parse_seg).collect();
            by_len.entry(segs.len()).or_default().push(routes.len());
            routes.push(Route { method, template, segs });
        }
        Router { routes, by_len }
    }

    /// The routes, in the order given.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` and `path` (percent-encoded, relative to
    /// the API's base).
    pub fn find(&self, method: &str, path: &str) -> Found {
        let req = segments(path);
        let decoded: Vec<String> = req.iter().map(|s| decode(s)).collect();
        let mut best: Option<(usize, Match)> = None;
        let mut allowed: Vec<(Vec<u8>, &str, &str)> = Vec::new();
        for &i in self.by_len.get(&req.len()).map(Vec::as_slice).unwrap_or(&[]) {
            let route = &self.routes[i];
            let Some((rank, params)) = matches(route, &req, &decoded) else { continue };
            if route.method == method {
                if best.as_ref().is_none_or(|(_, (r, _))| rank < *r) {
                    best = Some((i, (rank, params)));
                }
            } else {
                allowed.push((rank, &route.method, &route.template));
            }
        }
        if let Some((i, (_, params))) = best {
            return Found::Route(i, params);
        }
        if allowed.is_empty() {
            return Found::None;
        }
        allowed.sort_by(|a, b| a.0.cmp(&b.0));
        let template = allowed[0].2.to_string();
        let mut methods: Vec<String> = allowed.iter().map(|(_, m, _)| m.to_string()).collect();
        methods.sort_by_key(|m| METHOD_ORDER.iter().position(|x| x == m).unwrap_or(99));
        methods.dedup();
        Found::Method(methods, template)
    }

    /// Up to `n` documented operations closest to a path that matched none,
    /// as `METHOD /template`: most shared literal segments first, then the
    /// same number of segments, the same method, and the smallest edit
    /// distance between the templates and the path.
    pub fn closest(&self, method: &str, path: &str, n: usize) -> Vec<String> {
        let req = segments(path);
        let decoded: Vec<String> = req.iter().map(|s| decode(s)).collect();
        let mut scored: Vec<(i64, usize, &Route)> = self
            .routes
            .iter()
            .map(|r| {
                let mut score = 0i64;
                for (i, s) in r.segs.iter().enumerate() {
                    match s {
                        Seg::Lit(l) => {
                            if decoded.get(i).is_some_and(|d| d == l) {
                                score += 4;
                            } else if decoded.iter().any(|d| d == l) {
                                score += 2;
                            } else if decoded.iter().any(|d| strsim::normalized_levenshtein(d, l) > 0.7) {
                                score += 1;
                            }
                        }
                        Seg::Param(_) | Seg::Mixed(..) => {
                            if i < decoded.len() {
                                score += 1;
                            }
                        }
                    }
                }
                score -= 2 * (r.segs.len() as i64 - req.len() as i64).abs();
                if r.method == method {
                    score += 1;
                }
                let distance = strsim::levenshtein(&r.template, path);
                (score, distance, r)
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.template.cmp(&b.2.template)));
        let mut out: Vec<String> = Vec::new();
        for (_, _, r) in scored {
            let s = format!("{} {}", r.method, r.template);
            if !out.contains(&s) {
                out.push(s);
            }
            if out.len() == n {
                break;
            }
        }
        out
    }
}

/// Whether `route` matches the segments; its specificity rank (lower is more
/// specific) and the decoded parameters.
fn matches(route: &Route, raw: &[&str], decoded: &[String]) -> Option<Match> {
    let mut rank = Vec::with_capacity(raw.len());
    let mut params = Vec::new();
    for ((seg, raw), dec) in route.segs.iter().zip(raw).zip(decoded) {
        match seg {
            Seg::Lit(l) => {
                if l != raw && l != dec {
                    return None;
                }
                rank.push(0);
            }
            Seg::Mixed(re, names) => {
                let caps = re.captures(dec)?;
                for (i, name) in names.iter().enumerate() {
                    params.push((name.clone(), caps.get(i + 1).map(|m| m.as_str()).unwrap_or("").to_string()));
                }
                rank.push(1);
            }
            Seg::Param(name) => {
                if raw.is_empty() {
                    return None;
                }
                params.push((name.clone(), dec.clone()));
                rank.push(2);
            }
        }
    }
    Some((rank, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(
            [
                ("GET", "/zones"),
                ("GET", "/zones/{zone_id}"),
                ("PATCH", "/zones/{zone_id}"),
                ("GET", "/zones/settings"),
                ("GET", "/zones/{zone_id}/dns_records"),
                ("GET", "/files/{name}.json"),
            ]
            .map(|(m, t)| (m.to_string(), t.to_string())),
        )
    }

    #[test]
    fn literals_beat_parameters() {
        let r = router();
        match r.find("GET", "/zones/settings") {
            Found::Route(i, p) => {
                assert_eq!(r.routes()[i].template, "/zones/settings");
                assert!(p.is_empty());
            }
            _ => panic!("no route"),
        }
        match r.find("GET", "/zones/abc%20d/") {
            Found::Route(i, p) => {
                assert_eq!(r.routes()[i].template, "/zones/{zone_id}");
                assert_eq!(p, vec![("zone_id".to_string(), "abc d".to_string())]);
            }
            _ => panic!("no route"),
        }
        match r.find("GET", "/files/report.json") {
            Found::Route(i, p) => {
                assert_eq!(r.routes()[i].template, "/files/{name}.json");
                assert_eq!(p, vec![("name".to_string(), "report".to_string())]);
            }
            _ => panic!("no route"),
        }
    }

    #[test]
    fn wrong_method_and_unknown_paths() {
        let r = router();
        match r.find("DELETE", "/zones/1") {
            Found::Method(m, t) => {
                assert_eq!(m, vec!["GET", "PATCH"]);
                assert_eq!(t, "/zones/{zone_id}");
            }
            _ => panic!("expected 405"),
        }
        assert!(matches!(r.find("GET", "/zone/1/dns_record"), Found::None));
        let near = r.closest("GET", "/zones/1/dns_record", 3);
        assert_eq!(near[0], "GET /zones/{zone_id}/dns_records", "{near:?}");
    }
}
