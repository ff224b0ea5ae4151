// about: following Next-Page by passing its full URL (inside the base URL) as the path
// tool: execute
// config: kinto
// result: 3

async () => {
  const bid = "corpus-092";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id: bid, id: "c", data: {} });
  for (const id of ["a", "b", "c"]) {
    await kinto.request({ method: "PUT", path: `/buckets/${bid}/collections/c/records/${id}`, body: { data: {} } });
  }
  let res = await kinto.request({ path: `/buckets/${bid}/collections/c/records`, query: { _limit: 1 } });
  const all = [...res.data.data];
  while (res.headers["next-page"]) {
    res = await kinto.request({ path: res.headers["next-page"] });
    all.push(...res.data.data);
  }
  return all.length;
}
