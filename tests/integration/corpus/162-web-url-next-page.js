// about: following Kinto's Next-Page with new URL(...).searchParams
// tool: execute
// config: kinto
// requires: globals
// result: {"pages": 3, "ids": ["p1", "p2", "p3"]}

async () => {
  const bid = "corpus-162";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id: bid, id: "c", data: {} });
  for (const id of ["p1", "p2", "p3"]) {
    await kinto.request({ method: "PUT", path: `/buckets/${bid}/collections/c/records/${id}`, body: { data: { id } } });
  }
  const ids = [];
  let query = { _limit: 1, _sort: "id" };
  let pages = 0;
  while (query) {
    const res = await kinto.request({ path: `/buckets/${bid}/collections/c/records`, query });
    pages++;
    ids.push(...res.data.data.map((r) => r.id));
    const next = res.headers["next-page"];
    query = next ? Object.fromEntries(new URL(next).searchParams) : null;
  }
  return { pages, ids };
}
