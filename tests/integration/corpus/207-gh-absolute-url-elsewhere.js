// about: a full URL outside the API's base URL (another GitHub host): refused, naming the base URL and a relative path to pass
// tool: execute
// config: github
// error: absolute URLs are not allowed: pass the path relative to https://api.github.com, e.g. "/
// absent: /zones

async () => github.request("GET https://uploads.github.com/repos/octocat/Hello-World/releases/1/assets")
