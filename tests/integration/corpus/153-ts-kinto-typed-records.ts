// about: Kinto with typed records and a generic list helper
// tool: execute
// config: kinto
// requires: typescript
// result: ["buy milk", "write tests"]

interface Task { id?: string; title: string; done: boolean }
interface KintoList<T> { data: (T & { id: string; last_modified: number })[] }

async (): Promise<string[]> => {
  const bucket_id = "corpus-153", collection_id = "tasks";
  await kinto.request("PUT /buckets/{id}", { id: bucket_id, data: {} });
  await kinto.request("PUT /buckets/{bucket_id}/collections/{id}", { bucket_id, id: collection_id, data: {} });
  const tasks: Task[] = [{ title: "write tests", done: false }, { title: "buy milk", done: false }, { title: "ship", done: true }];
  for (const data of tasks) {
    await kinto.request("POST /buckets/{bucket_id}/collections/{collection_id}/records", { bucket_id, collection_id, data });
  }
  const res = await kinto.request("GET /buckets/{bucket_id}/collections/{collection_id}/records", { bucket_id, collection_id, done: false, _sort: "title" });
  const list = res.data as KintoList<Task>;
  return list.data.map((t) => t.title);
}
