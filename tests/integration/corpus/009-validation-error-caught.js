// about: a request the spec rejects, caught; the error names each problem
// tool: execute
// config: bookshelf
// check: value["status"] == 400 and "author_id" in value["message"] and "year" in value["message"]

async () => {
  try {
    await bookshelf.request("POST /books", { title: "Too late", year: 3000 });
    return "sent";
  } catch (err) {
    return { status: err.status, message: JSON.stringify(err.data ?? err.message) };
  }
}
