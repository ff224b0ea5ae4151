// about: the declaration of a Cloudflare write, read before writing the body
// tool: search
// config: cloudflare
// check: "zone_id" in text and "content" in text

async () => codemode.types("POST /zones/{zone_id}/dns_records")
