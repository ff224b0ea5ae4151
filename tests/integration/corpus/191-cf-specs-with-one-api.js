// about: `specs` by name works with one API too, beside `spec`
// tool: search
// config: cloudflare
// result: {"names": ["cloudflare"], "same": "Cloudflare API"}

async () => ({ names: Object.keys(specs), same: specs.cloudflare.info.title === spec.info.title ? spec.info.title : "different" })
