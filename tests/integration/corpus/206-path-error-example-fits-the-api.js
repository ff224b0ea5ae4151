// about: a bad path on GitHub: the error's example path should be GitHub's, not Cloudflare's
// tool: execute
// config: github
// bug: the path errors of request() (crates/upstream/src/request.rs: check_path, and "`path` is required") give `such as "/zones"` — a Cloudflare path — on every API; the example should come from the configured API, as the hints of fetch/require do
// now: such as "/zones"
// error: relative to the API's base URL
// absent: /zones

async () => github.request({ method: "GET", path: "repos/octocat/Hello-World" })
