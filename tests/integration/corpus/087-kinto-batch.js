// about: several writes in one round trip with POST /batch
// tool: execute
// config: kinto
// result: {"statuses": [201, 201, 201, 201], "count": 3}

async () => {
  const bid = "corpus-087";
  await kinto.request("PUT /buckets/{id}", { id: bid, data: {} });
  const path = `/buckets/${bid}/collections/tasks/records`;
  const { data } = await kinto.request("POST /batch", {
    requests: [
      { method: "PUT", path: `/buckets/${bid}/collections/tasks`, body: { data: {} } },
      ...["write docs", "review PR", "ship"].map((title) => ({ method: "POST", path, body: { data: { title } } })),
    ],
  });
  const list = await kinto.request({ path });
  return { statuses: data.responses.map((r) => r.status), count: list.data.data.length };
}
