// about: Kinto from scratch: a bucket, a collection, three records, listed sorted by a field
// tool: execute
// config: kinto
// result: ["Kindred (1979)", "The Left Hand of Darkness (1969)", "A Wizard of Earthsea (1968)"]

async () => {
  const bid = "corpus-084", cid = "books";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id: bid, id: cid, data: {} });
  const books = [
    { title: "The Left Hand of Darkness", year: 1969 },
    { title: "A Wizard of Earthsea", year: 1968 },
    { title: "Kindred", year: 1979 },
  ];
  for (const data of books) {
    await kinto.request("POST /buckets/{bucket_id}/collections/{collection_id}/records", { bucket_id: bid, collection_id: cid, data });
  }
  const { data } = await kinto.request("GET /buckets/{bucket_id}/collections/{collection_id}/records", {
    bucket_id: bid, collection_id: cid, _sort: "-year",
  });
  return data.data.map((r) => `${r.title} (${r.year})`);
}
