// about: rehearsing the not-found branch with a Prefer header
// tool: execute
// config: bookshelf
// result: {"found": false, "status": 404}

async () => {
  const id = "5f0c7a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";
  try {
    const r = await bookshelf.request({ path: `/books/${id}`, headers: { Prefer: "code=404" } });
    return { found: true, title: r.data.title };
  } catch (e) {
    if (e.status === 404) return { found: false, status: e.status };
    throw e;
  }
}
