// about: a labeled 404 path in try/catch, rehearsed with Prefer: code=404
// tool: execute
// config: github
// result: {"repo": "octocat/nope", "exists": false, "status": 404}

async () => {
  const check = async (owner, repo) => {
    try {
      await github.request("GET /repos/{owner}/{repo}", { owner, repo, headers: { Prefer: "code=404" } });
      return { repo: `${owner}/${repo}`, exists: true };
    } catch (error) {
      if (error.status === 404) return { repo: `${owner}/${repo}`, exists: false, status: error.status };
      throw error;
    }
  };
  return check("octocat", "nope");
}
