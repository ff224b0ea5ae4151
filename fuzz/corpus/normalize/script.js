const zones = await cloudflare.request({path: "/zones"});
zones.result.map(z => z.name)
