// about: Kinto's query filters (gt_, in_, like_, plain equality) in the query object
// tool: execute
// config: kinto
// result: {"after1980": ["b", "c"], "fantasy": ["b"], "like": ["a"], "sfAfter1980": ["c"]}

async () => {
  const bid = "corpus-085", cid = "items";
  await kinto.request({ method: "PUT", path: `/buckets/${bid}`, body: { data: {} } });
  await kinto.request({ method: "PUT", path: `/buckets/${bid}/collections/${cid}`, body: { data: {} } });
  const rows = [
    { id: "a", title: "The Dispossessed", year: 1974, genre: "sf" },
    { id: "b", title: "Tehanu", year: 1990, genre: "fantasy" },
    { id: "c", title: "Dawn", year: 1987, genre: "sf" },
  ];
  await Promise.all(rows.map(({ id, ...data }) =>
    kinto.request({ method: "PUT", path: `/buckets/${bid}/collections/${cid}/records/${id}`, body: { data } })));
  const ids = async (query) => {
    const res = await kinto.request({ path: `/buckets/${bid}/collections/${cid}/records`, query: { ...query, _sort: "id" } });
    return res.data.data.map((r) => r.id);
  };
  return {
    after1980: await ids({ gt_year: 1980 }),
    fantasy: await ids({ in_genre: "fantasy,poetry" }),
    like: await ids({ like_title: "*sposs*" }),
    sfAfter1980: await ids({ genre: "sf", gt_year: 1980 }),
  };
}
