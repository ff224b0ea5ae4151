// about: a full https URL as the path: refused, saying to pass a relative path
// tool: execute
// config: github
// error: refused
// error: Pass a path relative to the API's base URL

async () => github.request("GET https://api.github.com/users/octocat")
