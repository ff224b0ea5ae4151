// about: an XMLHttpRequest from browser habits: no network, the client is named
// tool: execute
// config: cloudflare
// error: XMLHttpRequest is not defined
// error: `cloudflare`

async () => {
  const xhr = new XMLHttpRequest();
  xhr.open("GET", "https://api.cloudflare.com/client/v4/zones");
  xhr.send();
}
