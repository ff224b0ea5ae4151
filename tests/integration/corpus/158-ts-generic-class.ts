// about: a generic class with a typed cache field
// tool: execute
// config: bookshelf
// requires: typescript
// check: value["hits"] == 1 and value["size"] == 1 and isinstance(value["name"], str)

class Cache<K, V> {
  private store = new Map<K, V>();
  hits: number = 0;
  async get(key: K, load: (k: K) => Promise<V>): Promise<V> {
    if (this.store.has(key)) {
      this.hits++;
      return this.store.get(key)!;
    }
    const v = await load(key);
    this.store.set(key, v);
    return v;
  }
  get size(): number { return this.store.size; }
}

const authors = new Cache<string, { name: string }>();
const load = async (author_id: string) => (await bookshelf.request("GET /authors/{author_id}", { author_id })).data;
const id = "9b2e4f60-1c1d-4e2f-a3b4-c5d6e7f80912";
const a = await authors.get(id, load);
await authors.get(id, load);
return { hits: authors.hits, size: authors.size, name: a.name };
