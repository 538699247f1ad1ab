import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { loginAndConsent, startOAuthServer, SCOPE, type OAuthServer } from '../helpers/oauth-server.js';
import { lastToken, startResourceServer, sleep, tokenConfig, tokenId } from '../helpers/tokens.js';
import { call } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { expectNoLeak } from '../helpers/leaks.js';
import type { Upstream } from '../helpers/upstream.js';

const CLIENT = { id: 'web-client', secret: 'web-secret-LEAKCHECK-0f9e8d7c6b5a4' };
const CATALOG_CLIENT = { id: 'catalog-client', secret: 'catalog-secret-LEAKCHECK-77aa66bb' };
/** Config oauth.redirectUri: a public URL in front of the admin listener (here nothing listens on it). */
const FIXED_REDIRECT = 'http://127.0.0.1:1/oauth/callback';

let lk: TestLatchkey;
let as: OAuthServer;
let api: Upstream;
/** Set: the resource server refuses the next token it sees once (as after a provider-side rotation). */
let refuseNext = false;
/** Refresh tokens that were rotated away: they must not linger anywhere either. */
const oldRefreshTokens: string[] = [];
const refreshCount = (): number => as.tokenRequests.refresh_token ?? 0;

beforeAll(async () => {
  const dir = tmpDir().path;
  lk = await startLatchkey({ LATCHKEY_LOG_LEVEL: 'trace', LATCHKEY_CONFIG: tokenConfig(dir, { refreshMarginSeconds: 1 }) }, dir);
  as = await startOAuthServer([
    {
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [`${lk.adminUrl}/oauth/callback`],
      scope: SCOPE,
    },
    {
      client_id: CATALOG_CLIENT.id,
      client_secret: CATALOG_CLIENT.secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [FIXED_REDIRECT],
      scope: SCOPE,
    },
  ]);
  api = await startResourceServer(async (token) => {
    if (refuseNext) {
      refuseNext = false;
      return false;
    }
    return as.isLiveToken(token);
  });
});
afterAll(async () => {
  await lk.close();
  await api.close();
  await as.close();
});

const authorize = (id: string, body: object = {}) =>
  lk.admin.post(`/v1/integrations/${id}/oauth/authorize`, {
    authorizeUrl: as.authorizeUrl,
    tokenUrl: as.tokenUrl,
    clientId: CLIENT.id,
    clientSecret: CLIENT.secret,
    scope: SCOPE,
    ...body,
  });

const openCallback = async (url: string) => {
  const res = await request(url, { headers: { accept: 'text/html' } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
};

/** The whole flow for a new integration: returns the auth id of the stored record. */
async function connect(id: string): Promise<string> {
  expect((await lk.admin.post('/v1/integrations', { integrationId: id, baseUrl: api.url })).status).toBe(201);
  const started = await authorize(id);
  expect(started.status).toBe(201);
  const back = await loginAndConsent(started.json.url as string);
  const page = await openCallback(back);
  expect(page.status).toBe(200);
  const list = await lk.admin.get(`/v1/integrations/${id}/auth`);
  return list.json.data[0].authId as string;
}

const proxied = (id: string, options: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}) =>
  call(`${lk.proxyUrl}/${id}/things`, { ...options, headers: { 'x-latchkey-key': lk.adminKey, ...options.headers } });

describe('connect flow', () => {
  it('authorize URL -> login and consent at the provider -> callback -> record stored -> proxied call carries the token', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'crm', baseUrl: api.url });
    const started = await authorize('crm');
    expect(started.status).toBe(201);
    const { url, state, expiresAt } = started.json as { url: string; state: string; expiresAt: string };
    const u = new URL(url);
    expect(u.origin + u.pathname).toBe(as.authorizeUrl);
    expect(u.searchParams.get('code_challenge_method')).toBe('S256');
    expect(u.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(u.searchParams.get('state')).toBe(state);
    expect(u.searchParams.get('redirect_uri')).toBe(`${lk.adminUrl}/oauth/callback`);
    expect(u.searchParams.get('client_secret')).toBeNull();
    const ttl = Date.parse(expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(9 * 60_000);
    expect(ttl).toBeLessThanOrEqual(10 * 60_000);

    const back = await loginAndConsent(url);
    expect(back.startsWith(`${lk.adminUrl}/oauth/callback?`)).toBe(true);
    const page = await openCallback(back);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.text).toContain('Connected');

    const list = await lk.admin.get('/v1/integrations/crm/auth');
    expect(list.json.data).toHaveLength(1);
    const rec = list.json.data[0];
    expect(rec).toMatchObject({
      authType: 'OAUTH2_REFRESH_TOKEN',
      oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, scope: SCOPE, clientAuth: 'basic' },
      status: 'active',
    });
    expect(Date.parse(rec.tokenExpiresAt as string)).toBeGreaterThan(Date.now());
    const secrets = lk.store.authRecords.openSecrets('crm', rec.authId as string);
    expect(secrets.refreshToken).toBeTruthy();
    expect(page.text).not.toContain(secrets.refreshToken);

    const before = refreshCount();
    const r = await proxied('crm');
    expect(r.status).toBe(200);
    expect(await as.isLiveToken(lastToken(api))).toBe(true);
    // The exchange's access token is used first: no renewal was needed.
    expect(refreshCount()).toBe(before);
    const audit = await lk.admin.get('/v1/audit?integrationId=crm');
    expect(audit.json.data.map((a: { action: string }) => a.action)).toEqual(expect.arrayContaining(['oauth.authorize', 'oauth.connect']));
  });

  it('replayed, expired and wrong state: 400 INVALID_STATE, nothing stored', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'states', baseUrl: api.url });
    const first = await authorize('states');
    const back = await loginAndConsent(first.json.url as string);
    expect((await openCallback(back)).status).toBe(200);
    const replayed = await call(back);
    expect(replayed.status).toBe(400);
    expect(replayed.json.error.code).toBe('INVALID_STATE');
    expect(replayed.headers['x-latchkey-error']).toBe('INVALID_STATE');

    const wrong = await call(`${lk.adminUrl}/oauth/callback?code=abc&state=not-a-state-we-issued`);
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.code).toBe('INVALID_STATE');
    expect((await call(`${lk.adminUrl}/oauth/callback?code=abc`)).json.error.code).toBe('INVALID_STATE');

    const second = await authorize('states');
    const back2 = await loginAndConsent(second.json.url as string);
    // Ten minutes pass: the stored expiry is moved into the past.
    lk.store.db.prepare('UPDATE oauth_states SET expires_at = ? WHERE used_at IS NULL').run(Date.now() - 1);
    const expired = await openCallback(back2);
    expect(expired.status).toBe(400);
    expect(expired.headers['x-latchkey-error']).toBe('INVALID_STATE');
    expect(expired.text).toContain('INVALID_STATE');
    expect((await lk.admin.get('/v1/integrations/states/auth')).json.data).toHaveLength(1);
  });

  it('the authorize route checks its input', async () => {
    const unknown = await authorize('no-such-integration');
    expect(unknown.status).toBe(404);
    await lk.admin.post('/v1/integrations', { integrationId: 'checks', baseUrl: api.url });
    const bad = await lk.admin.post('/v1/integrations/checks/oauth/authorize', {
      authorizeUrl: 'http://login.example.com/auth',
      clientId: 'x',
      extraParams: { state: 'mine' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['authorizeUrl', 'extraParams.state', 'tokenUrl']);
    const anon = await call(`${lk.adminUrl}/v1/integrations/checks/oauth/authorize`, { method: 'POST' });
    expect(anon.status).toBe(401);
  });
});

describe('refresh tokens', () => {
  it('a revoked refresh token: reauthorization_required, 502 TOKEN_REFRESH_FAILED, audited, nothing sent upstream', async () => {
    as.ttl.accessToken = 2;
    const authId = await connect('revoked');
    as.ttl.accessToken = 3600;
    const { refreshToken } = lk.store.authRecords.openSecrets('revoked', authId);
    const revoke = await request(as.revocationUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token: refreshToken as string, token_type_hint: 'refresh_token' }).toString(),
    });
    expect(revoke.statusCode).toBe(200);
    await revoke.body.dump();
    // The exchange's two-second token is due one second (the margin) before it ends.
    await sleep(1200);
    const seen = api.seen.length;
    const r = await proxied('revoked');
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('TOKEN_REFRESH_FAILED');
    expect(api.seen.length).toBe(seen);
    const view = await lk.admin.get(`/v1/integrations/revoked/auth/${authId}`);
    expect(view.json.status).toBe('reauthorization_required');
    expect(view.json.tokenExpiresAt).toBeNull();
    const audit = await lk.admin.get('/v1/audit?integrationId=revoked');
    expect(audit.json.data.some((a: { action: string; authId: string }) => a.action === 'auth.reauthorization_required' && a.authId === authId)).toBe(true);
    const metrics = await call(`${lk.adminUrl}/metrics`);
    expect(metrics.text).toMatch(/latchkey_token_refresh_failures_total\{integration="revoked",reason="refused"\} 1/);
  });

  it('an upstream 401 to the current token: one renewal, one replay of the buffered body; the caller never sees the 401', async () => {
    const replayAuth = await connect('replay');
    oldRefreshTokens.push(lk.store.authRecords.openSecrets('replay', replayAuth).refreshToken as string);
    const warm = await proxied('replay');
    expect(warm.status).toBe(200);
    const before = refreshCount();
    const seen = api.seen.length;
    refuseNext = true;
    const body = JSON.stringify({ hello: 'world', pad: 'x'.repeat(1000) });
    const r = await proxied('replay', { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    expect(r.json.bytes).toBe(Buffer.byteLength(body));
    expect(refreshCount()).toBe(before + 1);
    expect(api.seen.length).toBe(seen + 2);
    const [refused, replayed] = api.seen.slice(-2);
    const bearer = (h: string | string[] | undefined) => String(h).replace(/^Bearer /, '');
    expect(tokenId(bearer(refused!.headers.authorization))).toBe(warm.json.token);
    expect(tokenId(bearer(replayed!.headers.authorization))).toBe(r.json.token);
    expect(r.json.token).not.toBe(warm.json.token);
    expect(await as.isLiveToken(bearer(replayed!.headers.authorization))).toBe(true);
  });

  it('a streamed 5 MiB upload gets the 401 passed back, with no renewal', async () => {
    await connect('big-upload');
    expect((await proxied('big-upload')).status).toBe(200);
    const before = refreshCount();
    const seen = api.seen.length;
    refuseNext = true;
    const big = Buffer.alloc(5 * 1024 * 1024, 0x61);
    const r = await proxied('big-upload', { method: 'PUT', body: big, headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(401);
    expect(r.json).toEqual({ error: 'invalid_token', bytes: big.length });
    expect(r.headers['x-latchkey-error']).toBeUndefined();
    expect(refreshCount()).toBe(before);
    expect(api.seen.length).toBe(seen + 1);
  });

  it('no client secret, refresh token (current or rotated away) or access token in the database, WAL, trace logs, audit rows or admin responses', async () => {
    // A pending flow holds the client secret too (sealed).
    expect((await authorize('crm')).status).toBe(201);
    const values: Record<string, string> = { clientSecret: CLIENT.secret };
    const ids = ['crm', 'states', 'revoked', 'replay', 'big-upload'];
    for (const id of ids) {
      for (const rec of lk.store.authRecords.list(id)) values[`refresh-${id}-${rec.authId}`] = lk.store.authRecords.openSecrets(id, rec.authId).refreshToken as string;
    }
    oldRefreshTokens.forEach((t, i) => (values[`rotatedAway${i}`] = t));
    const tokens = [...new Set(api.seen.map((r) => String(r.headers.authorization ?? '').replace(/^Bearer /, '')).filter(Boolean))];
    expect(tokens.length).toBeGreaterThanOrEqual(4);
    tokens.forEach((t, i) => (values[`accessToken${i}`] = t));
    await expectNoLeak(lk, values, ids);
  });
});

describe('a catalog provider of kind oauth2', () => {
  let lk2: TestLatchkey;
  beforeAll(async () => {
    const dir = tmpDir().path;
    const provider = {
      provider: 'localidp',
      displayName: 'Local IdP',
      kind: 'oauth2',
      baseUrl: api.url,
      allowedHosts: [api.host],
      requiredFields: [],
      optionalFields: [],
      oauth2: { authorizeUrl: as.authorizeUrl, tokenUrl: as.tokenUrl, scopes: [SCOPE] },
    };
    lk2 = await startLatchkey({ LATCHKEY_CONFIG: tokenConfig(dir, { redirectUri: FIXED_REDIRECT }, { providers: [provider] }) }, dir);
  });
  afterAll(async () => {
    await lk2.close();
  });

  it('POST /v1/integrations/{provider}/oauth/authorize needs only the client id and secret; the integration is created at the callback', async () => {
    const started = await lk2.admin.post('/v1/integrations/localidp/oauth/authorize', { clientId: CATALOG_CLIENT.id, clientSecret: CATALOG_CLIENT.secret });
    expect(started.status).toBe(201);
    const u = new URL(started.json.url as string);
    expect(u.searchParams.get('scope')).toBe(SCOPE);
    expect(u.searchParams.get('redirect_uri')).toBe(FIXED_REDIRECT);
    // Nothing is written before the person finishes.
    expect((await lk2.admin.get('/v1/integrations/localidp')).status).toBe(404);
    const back = new URL(await loginAndConsent(started.json.url as string));
    expect(back.origin + back.pathname).toBe(FIXED_REDIRECT);
    // The public redirect URI reaches the admin listener (a reverse proxy would do this).
    const page = await openCallback(`${lk2.adminUrl}/oauth/callback${back.search}`);
    expect(page.status).toBe(200);
    const integration = await lk2.admin.get('/v1/integrations/localidp');
    expect(integration.json).toMatchObject({ integrationId: 'localidp', baseUrl: api.url });
    const r = await call(`${lk2.proxyUrl}/localidp/things`, { headers: { 'x-latchkey-key': lk2.adminKey } });
    expect(r.status).toBe(200);
    expect(await as.isLiveToken(lastToken(api))).toBe(true);
  });

  it('POST /v1/integrations/{provider}/credentials points an oauth2 provider at the connect flow', async () => {
    const r = await lk2.admin.post('/v1/integrations/google/credentials', { credentials: {} });
    expect(r.status).toBe(400);
    expect(r.json.error.message).toContain('/v1/integrations/google/oauth/authorize');
  });
});
