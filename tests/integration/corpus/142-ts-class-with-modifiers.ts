// about: a small client class with private and readonly fields
// tool: execute
// config: github
// requires: typescript
// result: {"issues": 1, "pulls": 1}

class Repo {
  private readonly owner: string;
  private readonly repo: string;
  public calls: number = 0;

  constructor(owner: string, repo: string) {
    this.owner = owner;
    this.repo = repo;
  }

  async count(kind: "issues" | "pulls"): Promise<number> {
    this.calls++;
    const { data } = await github.request(`GET /repos/{owner}/{repo}/${kind}`, { owner: this.owner, repo: this.repo });
    return (data as unknown[]).length;
  }
}

const r = new Repo("octocat", "Hello-World");
return { issues: await r.count("issues"), pulls: await r.count("pulls") };
