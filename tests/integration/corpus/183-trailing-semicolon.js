// about: the async arrow with a trailing semicolon, as models often end it
// tool: execute
// config: bookshelf
// bug: `async () => { … };` (a trailing `;`) is read as a script whose last value is the function, which is never called: the answer is "undefined (the code returned no value; `return` the data you need)" although the code returns; it should run like the arrow without the `;`
// now: undefined (the code returned no value
// result: 3

async () => {
  const { data } = await bookshelf.request("GET /books");
  return data.total;
};
