// about: reading a bucket that does not exist: the status tells a missing bucket from a forbidden one
// tool: execute
// config: kinto
// check: value["status"] in (403, 404) and value["name"] == "UpstreamError" and isinstance(value["message"], str)

async () => {
  try {
    await kinto.request("GET /buckets/{id}", { id: "corpus-never-created" });
    return { status: 200 };
  } catch ({ name, status, message }) {
    return { name, status, message };
  }
}
