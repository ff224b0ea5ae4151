// about: a concrete path built with a template literal instead of a route template
// tool: execute
// config: github
// result: {"tag": "v1.0.0", "draft": false}

async () => {
  const owner = "octocat";
  const repo = "Hello-World";
  const { data } = await github.request(`GET /repos/${owner}/${repo}/releases/latest`);
  return { tag: data.tag_name, draft: data.draft };
}
