import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startOAuthServer, SCOPE, type OAuthServer } from '../helpers/oauth-server.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { tokenConfig } from '../helpers/tokens.js';

const CLIENT = { id: 'redact-client', secret: 'redact-secret-5f1e2d3c4b5a6978' };

let lk: TestLatchkey;
let as: OAuthServer;
let echo: Upstream;

beforeAll(async () => {
  as = await startOAuthServer([{ client_id: CLIENT.id, client_secret: CLIENT.secret, grant_types: ['client_credentials'], scope: SCOPE }]);
  // Echoes the request headers: an access token would come straight back.
  echo = await startUpstream();
  const dir = tmpDir().path;
  lk = await startLatchkey({ LATCHKEY_CONFIG: tokenConfig(dir, {}) }, dir);
  await lk.admin.post('/v1/integrations', { integrationId: 'oauth-echo', baseUrl: echo.url });
  const rec = await lk.admin.post('/v1/integrations/oauth-echo/auth', {
    authType: 'OAUTH2_CLIENT_CREDENTIALS',
    oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, clientSecret: CLIENT.secret, scope: SCOPE },
  });
  expect(rec.status).toBe(201);
});
afterAll(async () => {
  await lk.close();
  await echo.close();
  await as.close();
});

describe('secrets a credential kind injects at send time', () => {
  it('an OAuth access token obtained by latchkey is redacted from the echo, in every encoding', async () => {
    const res = await call(`${lk.proxyUrl}/oauth-echo/whoami`, { headers: { 'x-latchkey-key': lk.adminKey, 'x-request-id': 'oauth-redact-1' } });
    expect(res.status).toBe(200);
    const sent = echo.seen.at(-1)!.headers.authorization as string;
    const token = sent.replace(/^Bearer /, '');
    // The upstream got a real token, long enough to be redacted; the caller gets it nowhere.
    expect(token.length).toBeGreaterThanOrEqual(8);
    expect(token).not.toContain('REDACTED');
    expect(res.json.headers.authorization).toBe('Bearer [REDACTED]');
    for (const form of [token, Buffer.from(token).toString('base64'), encodeURIComponent(token)]) expect(res.text).not.toContain(form);
    const rows = (await lk.admin.get('/v1/audit?integrationId=oauth-echo&limit=50')).json.data;
    expect(rows.find((r: { requestId: string }) => r.requestId === 'oauth-redact-1').redactions).toBeGreaterThanOrEqual(1);
  });
});
