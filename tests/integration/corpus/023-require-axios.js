// about: require('axios'): there are no modules, the client is a global
// tool: execute
// config: bookshelf
// error: require is not defined
// error: no modules
// error: `bookshelf`

const axios = require("axios");
const { data } = await axios.get("https://bookshelf.example.com/v1/books");
return data.books;
