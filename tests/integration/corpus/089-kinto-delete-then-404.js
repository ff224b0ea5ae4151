// about: delete a record, then a read of it is a 404 caught by status
// tool: execute
// config: kinto
// result: {"deleted": true, "afterwards": 404}

async () => {
  const bid = "corpus-089";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id: bid, id: "tmp", data: {} });
  const rec = { bucket_id: bid, collection_id: "tmp", id: "gone" };
  await kinto.request("PUT /buckets/{bucket_id}/collections/{collection_id}/records/{id}", { ...rec, data: { x: 1 } });
  const del = await kinto.request("DELETE /buckets/{bucket_id}/collections/{collection_id}/records/{id}", rec);
  try {
    await kinto.request("GET /buckets/{bucket_id}/collections/{collection_id}/records/{id}", rec);
    return { deleted: del.data.data.deleted, afterwards: 200 };
  } catch (e) {
    return { deleted: del.data.data.deleted, afterwards: e.status };
  }
}
