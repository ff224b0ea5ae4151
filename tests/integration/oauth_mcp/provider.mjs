// A real OpenID provider (npm `oidc-provider`, a certified implementation) on
// loopback for the upstream-MCP OAuth tests: dynamic registration, PKCE,
// resource indicators (RFC 8707, opaque access tokens for the MCP server),
// refresh tokens, introspection (the MCP server's token verifier),
// revocation, and client credentials. Sign-in and consent are the provider's
// own development forms, posted by the test's headless user agent.
//
//   node provider.mjs PORT RESOURCE_URL ACCESS_TTL_SECS
//
// prints one JSON line {"issuer": ...} once listening. Test-only route:
// POST /__test/revoke ends every grant issued so far (what an admin's
// "sign out everywhere" does), so refresh tokens stop working too.
import http from 'node:http';

const modules = process.env.OIDC_PROVIDER_MODULES;
const Provider = (await import(modules ? `${modules}/oidc-provider/lib/index.js` : 'oidc-provider')).default;

const [port, resource, ttl] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4] || 3600)];
const issuer = `http://127.0.0.1:${port}`;
const SCOPES = 'tickets:read tickets:write';

const provider = new Provider(issuer, {
  clients: [
    // The MCP server itself, to introspect tokens.
    { client_id: 'tickets-rs', client_secret: 'rs-secret-0123456789abcdef', grant_types: [], response_types: [], redirect_uris: [] },
    // A machine client (client credentials).
    { client_id: 'm2m', client_secret: process.env.M2M_SECRET || 'm2m-secret-0123456789abcdef', grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: SCOPES, token_endpoint_auth_method: 'client_secret_post' },
  ],
  scopes: ['openid', 'offline_access', 'tickets:read', 'tickets:write'],
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== resource) throw new Error(`unknown resource ${indicator}`);
        return { scope: SCOPES, accessTokenFormat: 'opaque', accessTokenTTL: ttl };
      },
    },
  },
  pkce: { required: () => true },
  // Refresh tokens for every client allowed the grant (not only with offline_access).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: { AccessToken: ttl, ClientCredentials: ttl, RefreshToken: 24 * 3600, Grant: 24 * 3600, Session: 24 * 3600, Interaction: 600, AuthorizationCode: 60 },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
});
provider.proxy = false;

const grants = new Set();
provider.on('grant.success', (ctx) => {
  const id = ctx.oidc.entities.AccessToken?.grantId || ctx.oidc.entities.RefreshToken?.grantId || ctx.oidc.entities.AuthorizationCode?.grantId;
  if (id) grants.add(id);
});
provider.on('access_token.saved', (t) => t.grantId && grants.add(t.grantId));

const callback = provider.callback();
http.createServer(async (req, res) => {
  if (req.method === 'POST' && req.url === '/__test/revoke') {
    let n = 0;
    for (const id of grants) {
      await provider.AccessToken.revokeByGrantId(id);
      await provider.RefreshToken.revokeByGrantId(id);
      const g = await provider.Grant.find(id);
      if (g) await g.destroy();
      n += 1;
    }
    grants.clear();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ revoked: n }));
    return;
  }
  callback(req, res);
}).listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ issuer }) + '\n');
});
