// about: a full https URL inside the API's base URL as the route: read as the path it names
// tool: execute
// config: github
// check: value["status"] == 200 and value["data"]["login"] == "octocat"

async () => github.request("GET https://api.github.com/users/octocat")
