// about: fetch with an Authorization header from the environment: the hint shows the Cloudflare client
// tool: execute
// config: cloudflare
// error: fetch is not defined
// error: cloudflare.request('GET
// error: {status, headers, data}

async () => {
  const res = await fetch("https://api.cloudflare.com/client/v4/zones", {
    headers: { Authorization: `Bearer ${CLOUDFLARE_API_TOKEN}` },
  });
  return (await res.json()).result;
}
