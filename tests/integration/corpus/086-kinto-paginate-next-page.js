// about: paginating with _limit and the _token from the Next-Page header, without URL()
// tool: execute
// config: kinto
// result: {"pages": 3, "ids": ["r1", "r2", "r3", "r4", "r5"]}

async () => {
  const bid = "corpus-086", cid = "pages";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id: bid, id: cid, data: {} });
  for (const n of [1, 2, 3, 4, 5]) {
    await kinto.request("PUT /buckets/{bucket_id}/collections/{collection_id}/records/{id}", {
      bucket_id: bid, collection_id: cid, id: `r${n}`, data: { n },
    });
  }
  const ids = [];
  let token;
  let pages = 0;
  do {
    const res = await kinto.request("GET /buckets/{bucket_id}/collections/{collection_id}/records", {
      bucket_id: bid, collection_id: cid, _limit: 2, _sort: "n", ...(token ? { _token: token } : {}),
    });
    pages++;
    ids.push(...res.data.data.map((r) => r.id));
    const next = res.headers["next-page"];
    token = next ? decodeURIComponent(/[?&]_token=([^&]+)/.exec(next)[1]) : undefined;
  } while (token);
  return { pages, ids };
}
