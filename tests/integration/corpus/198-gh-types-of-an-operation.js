// about: TypeScript declarations of a GitHub operation: its parameters, to write the call
// tool: search
// config: github
// check: "per_page" in text and "state" in text and "owner" in text

async () => codemode.types("GET /repos/{owner}/{repo}/issues")
