import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startOAuthServer, SCOPE, type OAuthServer } from '../helpers/oauth-server.js';
import { lastToken, startResourceServer, sleep, tokenConfig } from '../helpers/tokens.js';
import { basic, call, viaForwardProxy } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { expectNoLeak } from '../helpers/leaks.js';
import type { Upstream } from '../helpers/upstream.js';

const CLIENT = { id: 'cc-client', secret: 'cc-secret-LEAKCHECK-5f1e2d3c4b5a69788796' };

let lk: TestLatchkey;
let as: OAuthServer;
let api: Upstream;
const ccCount = (): number => as.tokenRequests.client_credentials ?? 0;

beforeAll(async () => {
  as = await startOAuthServer([
    { client_id: CLIENT.id, client_secret: CLIENT.secret, grant_types: ['client_credentials'], scope: SCOPE },
  ]);
  api = await startResourceServer((token) => as.isLiveToken(token));
  const dir = tmpDir().path;
  // A one-second margin keeps the expiry test short.
  lk = await startLatchkey({ LATCHKEY_LOG_LEVEL: 'trace', LATCHKEY_CONFIG: tokenConfig(dir, { refreshMarginSeconds: 1 }) }, dir);
});
afterAll(async () => {
  await lk.close();
  await api.close();
  await as.close();
});

async function integrationWithClientCredentials(id: string): Promise<string> {
  expect((await lk.admin.post('/v1/integrations', { integrationId: id, baseUrl: api.url })).status).toBe(201);
  const rec = await lk.admin.post(`/v1/integrations/${id}/auth`, {
    authType: 'oauth2_client_credentials',
    oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, clientSecret: CLIENT.secret, scope: SCOPE },
  });
  expect(rec.status).toBe(201);
  return rec.json.authId as string;
}

const proxied = (id: string) => call(`${lk.proxyUrl}/${id}/items`, { headers: { 'x-latchkey-key': lk.adminKey } });

describe('OAUTH2_CLIENT_CREDENTIALS', () => {
  it('the record shows its settings, status and expiry, never the secret', async () => {
    const authId = await integrationWithClientCredentials('cc-view');
    const got = await lk.admin.get(`/v1/integrations/cc-view/auth/${authId}`);
    expect(got.json).toMatchObject({
      authType: 'OAUTH2_CLIENT_CREDENTIALS',
      oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, scope: SCOPE, clientAuth: 'basic' },
      status: 'active',
      tokenExpiresAt: null,
    });
    expect(got.text).not.toContain(CLIENT.secret);
    await proxied('cc-view');
    const after = await lk.admin.get(`/v1/integrations/cc-view/auth/${authId}`);
    expect(Date.parse(after.json.tokenExpiresAt as string)).toBeGreaterThan(Date.now());
  });

  it('a missing field or an http token URL on a non-loopback host is a 400 naming the field', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'cc-bad', baseUrl: api.url });
    const missing = await lk.admin.post('/v1/integrations/cc-bad/auth', { authType: 'OAUTH2_CLIENT_CREDENTIALS', oauth2: { tokenUrl: as.tokenUrl } });
    expect(missing.status).toBe(400);
    expect(missing.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['oauth2.clientId', 'oauth2.clientSecret']);
    const insecure = await lk.admin.post('/v1/integrations/cc-bad/auth', {
      authType: 'OAUTH2_CLIENT_CREDENTIALS',
      oauth2: { tokenUrl: 'http://auth.example.com/token', clientId: 'a', clientSecret: 'b' },
    });
    expect(insecure.status).toBe(400);
    expect(insecure.json.error.details[0].field).toBe('oauth2.tokenUrl');
    expect((await lk.admin.get('/v1/integrations/cc-bad/auth')).json.data).toEqual([]);
  });

  it('the first call fetches a token, the next 100 reuse it', async () => {
    await integrationWithClientCredentials('cc-reuse');
    const before = ccCount();
    const first = await proxied('cc-reuse');
    expect(first.status).toBe(200);
    expect(ccCount()).toBe(before + 1);
    const token = first.json.token as string;
    expect(await as.isLiveToken(lastToken(api))).toBe(true);
    for (let i = 0; i < 100; i++) {
      const r = await proxied('cc-reuse');
      expect(r.status).toBe(200);
      expect(r.json.token).toBe(token);
    }
    expect(ccCount()).toBe(before + 1);
  });

  it('the token is injected the same way in header and forward-proxy mode', async () => {
    await integrationWithClientCredentials('cc-modes');
    const byHeader = await call(`${lk.proxyUrl}/items`, { headers: { 'x-latchkey-key': lk.adminKey, 'x-latchkey-integration': 'cc-modes' } });
    expect(byHeader.status).toBe(200);
    const forward = await viaForwardProxy(lk.proxyUrl, `${api.url}/items`, { headers: { 'proxy-authorization': basic('cc-modes', lk.adminKey) } });
    expect(forward.status).toBe(200);
    expect(forward.json.token).toBe(byHeader.json.token);
    expect(await as.isLiveToken(lastToken(api))).toBe(true);
  });

  it('after expiry the token is renewed, and 50 concurrent calls at expiry cause exactly one token request', async () => {
    await integrationWithClientCredentials('cc-expiry');
    as.ttl.clientCredentials = 3;
    const before = ccCount();
    const first = await proxied('cc-expiry');
    expect(first.status).toBe(200);
    expect(ccCount()).toBe(before + 1);
    // Renewal is due one second (the margin) before the three-second token expires.
    await sleep(2200);
    as.ttl.clientCredentials = 3600;
    const all = await Promise.all(Array.from({ length: 50 }, () => proxied('cc-expiry')));
    expect(all.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(ccCount()).toBe(before + 2);
    const renewed = new Set(all.map((r) => r.json.token as string));
    expect(renewed.size).toBe(1);
    expect(renewed.has(first.json.token as string)).toBe(false);
  });

  it('a wrong client secret: reauthorization_required, 502 TOKEN_REFRESH_FAILED, audited and counted, nothing sent upstream', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'cc-wrong', baseUrl: api.url });
    const rec = await lk.admin.post('/v1/integrations/cc-wrong/auth', {
      authType: 'OAUTH2_CLIENT_CREDENTIALS',
      oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, clientSecret: 'not-the-secret', scope: SCOPE },
    });
    const seen = api.seen.length;
    const before = ccCount();
    const r = await proxied('cc-wrong');
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('TOKEN_REFRESH_FAILED');
    expect(r.headers['x-latchkey-error']).toBe('TOKEN_REFRESH_FAILED');
    expect(api.seen.length).toBe(seen);
    // Marked: the next call does not ask the token endpoint again.
    expect((await proxied('cc-wrong')).status).toBe(502);
    expect(ccCount()).toBe(before + 1);
    const view = await lk.admin.get(`/v1/integrations/cc-wrong/auth/${rec.json.authId as string}`);
    expect(view.json.status).toBe('reauthorization_required');
    const audit = await lk.admin.get('/v1/audit?integrationId=cc-wrong');
    expect(audit.json.data.some((a: { action: string }) => a.action === 'auth.reauthorization_required')).toBe(true);
    const metrics = await call(`${lk.adminUrl}/metrics`);
    expect(metrics.text).toMatch(/latchkey_token_refresh_failures_total\{integration="cc-wrong",reason="refused"\} 1/);
    // Fixing the secret (PATCH) brings the record back.
    const fixed = await lk.admin.patch(`/v1/integrations/cc-wrong/auth/${rec.json.authId as string}`, { oauth2: { clientSecret: CLIENT.secret } });
    expect(fixed.json.status).toBe('active');
    expect((await proxied('cc-wrong')).status).toBe(200);
  });

  it('an unreachable token endpoint: 502 TOKEN_REFRESH_FAILED, then backoff before the next attempt', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'cc-down', baseUrl: api.url });
    await lk.admin.post('/v1/integrations/cc-down/auth', {
      authType: 'OAUTH2_CLIENT_CREDENTIALS',
      // Port 9 on loopback: nothing listens (connection refused).
      oauth2: { tokenUrl: 'http://127.0.0.1:9/token', clientId: CLIENT.id, clientSecret: CLIENT.secret },
    });
    const seen = api.seen.length;
    const first = await proxied('cc-down');
    expect(first.status).toBe(502);
    expect(first.json.error.code).toBe('TOKEN_REFRESH_FAILED');
    expect(first.json.error.message).toMatch(/unreachable/);
    const second = await proxied('cc-down');
    expect(second.status).toBe(502);
    expect(second.json.error.message).toMatch(/next attempt in/);
    expect(api.seen.length).toBe(seen);
    expect(lk.logs()).not.toContain(CLIENT.secret);
  });

  it('no client secret or access token in the database, its WAL, trace logs, audit rows or admin responses', async () => {
    const tokens = [...new Set(api.seen.map((r) => String(r.headers.authorization ?? '').replace(/^Bearer /, '')).filter(Boolean))];
    expect(tokens.length).toBeGreaterThanOrEqual(3);
    const values: Record<string, string> = { clientSecret: CLIENT.secret };
    tokens.forEach((t, i) => (values[`accessToken${i}`] = t));
    await expectNoLeak(lk, values, ['cc-view', 'cc-reuse', 'cc-modes', 'cc-expiry', 'cc-wrong', 'cc-down']);
  });
});
