// about: PATCH a record, read it back, keep only some fields with _fields
// tool: execute
// config: kinto
// result: {"patched": {"id": "n1", "done": true}, "fields": ["done", "id", "last_modified"]}

async () => {
  const bid = "corpus-088", cid = "notes";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id: bid, id: cid, data: {} });
  const rec = { bucket_id: bid, collection_id: cid, id: "n1" };
  await kinto.request("PUT /buckets/{bucket_id}/collections/{collection_id}/records/{id}", { ...rec, data: { text: "call Ada", done: false } });
  await kinto.request("PATCH /buckets/{bucket_id}/collections/{collection_id}/records/{id}", { ...rec, data: { done: true } });
  const { data } = await kinto.request("GET /buckets/{bucket_id}/collections/{collection_id}/records", {
    bucket_id: bid, collection_id: cid, _fields: "done",
  });
  const [first] = data.data;
  return { patched: { id: first.id, done: first.done }, fields: Object.keys(first).sort() };
}
