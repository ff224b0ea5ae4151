// A real OpenID provider on loopback for tests and benches: npm
// `oidc-provider` (a certified implementation), installed once by
// tests/peers/oidc/install.sh into .peers/oidc. Everything a test varies is
// in one JSON config:
//
//   node tests/peers/oidc/server.mjs --port 9000 --config provider.json
//
//   {
//     "clients": [{"client_id": "codemode", "client_secret": "…",
//                  "redirect_uris": ["http://127.0.0.1:8080/oauth/callback"],
//                  "grant_types": ["authorization_code", "refresh_token"]}],
//     "scopes": ["openid", "profile", "email"],          // supported scopes
//     "claims": {"profile": ["name"], "email": ["email"]},// claims per scope
//     "ttl": {"AccessToken": 60, "IdToken": 60, "RefreshToken": 3600},
//     "accounts": {"alice": {"name": "Alice", "email": "alice@example.com"}},
//     "refresh_tokens": "always",  // or "offline_access" (the OpenID default)
//     "rotate_refresh_tokens": true, // every refresh token works once (else oidc-provider's default rule)
//     "refresh_delay_ms": 1500,    // answer refresh_token grants this much later (to make refreshes overlap)
//     "resource": {"url": "http://127.0.0.1:9100/mcp", "scope": "tickets:read tickets:write", "ttl": 6},
//                                  // RFC 8707 resource indicators: opaque access tokens for that one resource
//     "test_routes": true,         // POST /__test/revoke ends every grant issued so far
//     "features": {"clientCredentials": {"enabled": true}}  // merged into oidc-provider's
//   }
//
// Any login name is accepted (the development interactions: a login form,
// then a consent form, both posted to /interaction/<uid>); its claims come
// from `accounts` when listed. The provider prints "listening <issuer>" on
// stdout once it accepts connections, and one JSON line per token issued or
// revoked and per userinfo call to stderr (for tests that check what the
// provider saw).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const port = Number(arg('port', '9000'));
const host = arg('host', '127.0.0.1');
const cfg = arg('config') ? JSON.parse(readFileSync(arg('config'), 'utf8')) : {};
const issuer = `http://${host}:${port}`;

// oidc-provider lives in <repo>/.peers/oidc (or OIDC_PROVIDER_DIR).
const here = path.dirname(new URL(import.meta.url).pathname);
const dir = process.env.OIDC_PROVIDER_DIR || path.resolve(here, '../../../.peers/oidc');
const require = createRequire(path.join(dir, 'package.json'));
const { default: Provider } = await import(require.resolve('oidc-provider'));

const accounts = cfg.accounts || {};
const claims = cfg.claims || { profile: ['name'], email: ['email'] };
const features = { devInteractions: { enabled: true }, revocation: { enabled: true }, ...(cfg.features || {}) };
if (cfg.resource) {
  // Tokens for one protected resource (an MCP server): opaque, so the
  // resource server checks them by introspection and sees a revocation at once.
  const { url, scope, ttl } = cfg.resource;
  features.resourceIndicators = {
    enabled: true,
    defaultResource: () => url,
    useGrantedResource: () => true,
    getResourceServerInfo: (_ctx, indicator) => {
      if (indicator !== url) throw new Error(`unknown resource ${indicator}`);
      return { scope, accessTokenFormat: 'opaque', accessTokenTTL: ttl || 3600 };
    },
  };
}
const provider = new Provider(issuer, {
  clients: cfg.clients || [],
  scopes: cfg.scopes || ['openid', 'profile', 'email', 'offline_access'],
  claims: { openid: ['sub'], ...claims },
  ttl: { AccessToken: 60, IdToken: 60, RefreshToken: 3600, Interaction: 600, Session: 3600, Grant: 3600, ...(cfg.ttl || {}) },
  cookies: { keys: ['codemode-tests-only'] },
  pkce: { required: () => true },
  features,
  ...(cfg.rotate_refresh_tokens ? { rotateRefreshToken: true } : {}),
  issueRefreshToken:
    (cfg.refresh_tokens || 'always') === 'always'
      ? async (_ctx, client) => client.grantTypeAllowed('refresh_token')
      : async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  async findAccount(_ctx, id) {
    return {
      accountId: id,
      async claims(_use, _scope) {
        return { sub: id, ...(accounts[id] || { name: id, email: `${id}@example.com` }) };
      },
    };
  },
});
provider.proxy = false;

const log = (event, extra) => process.stderr.write(`${JSON.stringify({ event, ...extra })}\n`);
for (const ev of ['access_token.saved', 'access_token.issued', 'refresh_token.saved', 'client_credentials.saved', 'access_token.destroyed', 'grant.revoked']) {
  provider.on(ev, (token) => log(ev, {
    client: token?.clientId,
    account: token?.accountId,
    scope: token?.scope,
    // OIDC_LOG_TOKENS=1: the token itself (an opaque token's value is its
    // jti), for tests that prove a token never leaks. Never in real use.
    ...(process.env.OIDC_LOG_TOKENS === '1' ? { value: token?.jti } : {}),
  }));
}
provider.on('grant.revoked', (_ctx, grantId) => log('grant.revoked.id', { grant: grantId }));
provider.on('server_error', (_ctx, err) => log('server_error', { message: String(err) }));

// Every grant issued, for POST /__test/revoke.
const grants = new Set();
provider.on('access_token.saved', (t) => t.grantId && grants.add(t.grantId));
provider.on('refresh_token.saved', (t) => t.grantId && grants.add(t.grantId));

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
provider.use(async (ctx, next) => {
  if (cfg.test_routes && ctx.method === 'POST' && ctx.path === '/__test/revoke') {
    // What an admin's "sign out everywhere" does: every grant ends, so
    // refresh tokens stop working too.
    let n = 0;
    for (const id of grants) {
      await provider.AccessToken.revokeByGrantId(id);
      await provider.RefreshToken.revokeByGrantId(id);
      const g = await provider.Grant.find(id);
      if (g) await g.destroy();
      n += 1;
    }
    grants.clear();
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ revoked: n });
    return;
  }
  await next();
  if (ctx.path === '/me') {
    log('userinfo', { status: ctx.status, method: ctx.method });
  }
  if (ctx.path === '/token' && ctx.oidc?.params?.grant_type === 'refresh_token') {
    log('refresh', { status: ctx.status, error: ctx.body?.error, at: Date.now() });
    if (cfg.refresh_delay_ms) await sleep(cfg.refresh_delay_ms);
  }
});

provider.listen(port, host, () => {
  process.stdout.write(`listening ${issuer}\n`);
});
