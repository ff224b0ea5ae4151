// about: an ES import of Octokit: should say there are no modules and the client is the global `github`
// tool: execute
// config: github
// bug: a static `import` is a bare SyntaxError; the modules hint (`require` gets one) is not given
// now: SyntaxError
// error: no modules
// error: `github`

import { Octokit } from "@octokit/rest";
const octokit = new Octokit();
const { data } = await octokit.request("GET /users/{username}", { username: "octocat" });
data.login
