// about: an ES import of Octokit: the error says there are no modules and the client is the global `github`
// tool: execute
// config: github
// error: no modules
// error: `github`

import { Octokit } from "@octokit/rest";
const octokit = new Octokit();
const { data } = await octokit.request("GET /users/{username}", { username: "octocat" });
data.login
