// about: `catch (e: unknown)` narrowed with instanceof and a cast
// tool: execute
// config: github
// requires: typescript
// result: {"status": 404, "isError": true}

async () => {
  try {
    await github.request("GET /repos/{owner}/{repo}", { owner: "octocat", repo: "missing", headers: { Prefer: "code=404" } });
    return { status: 200, isError: false };
  } catch (e: unknown) {
    const status = (e as { status?: number }).status;
    return { status, isError: e instanceof Error };
  }
}
