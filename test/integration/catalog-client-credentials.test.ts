/**
 * POST /v1/integrations/{provider}/credentials for an OAuth 2 provider that
 * offers the client-credentials grant: a client id and secret, checked with
 * one token request at a real authorization server (oidc-provider), stored as
 * OAUTH2_CLIENT_CREDENTIALS, and used by the next call.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startOAuthServer, SCOPE, type OAuthServer } from '../helpers/oauth-server.js';
import { startResourceServer } from '../helpers/tokens.js';
import { call } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { expectNoLeak } from '../helpers/leaks.js';
import type { Upstream } from '../helpers/upstream.js';
import { builtInCatalogPath, type ProviderEntry } from '../../src/catalog/catalog.js';

const CLIENT = { id: 'catalog-cc-client', secret: 'catalog-cc-secret-LEAKCHECK-0a1b2c3d4e5f' };

let lk: TestLatchkey;
let as: OAuthServer;
let api: Upstream;
const builtIn = JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[];
const spotify = builtIn.find((p) => p.provider === 'spotify') as ProviderEntry;
const ccCount = (): number => as.tokenRequests.client_credentials ?? 0;

beforeAll(async () => {
  as = await startOAuthServer([{ client_id: CLIENT.id, client_secret: CLIENT.secret, grant_types: ['client_credentials'], scope: SCOPE }]);
  api = await startResourceServer((token) => as.isLiveToken(token));
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  // The built-in client-credentials entry, pointed at the local servers.
  const local = { baseUrl: api.url, allowedHosts: [new URL(api.url).host] };
  writeFileSync(
    cfg,
    JSON.stringify({
      providers: [
        { ...spotify, ...local, oauth2: { ...spotify.oauth2, tokenUrl: as.tokenUrl } },
        { ...spotify, ...local, provider: 'cc-down', oauth2: { ...spotify.oauth2, tokenUrl: `http://127.0.0.1:${closedPort}/token` } },
        { ...spotify, ...local, provider: 'connect-only', oauth2: { ...spotify.oauth2, tokenUrl: as.tokenUrl, clientCredentials: false } },
      ],
    }),
  );
  lk = await startLatchkey({ LATCHKEY_LOG_LEVEL: 'trace', LATCHKEY_CONFIG: cfg }, dir);
});
afterAll(async () => {
  await lk.close();
  await api.close();
  await as.close();
});

const store = (provider: string, body: unknown) => lk.admin.post(`/v1/integrations/${provider}/credentials`, body);
const records = () => (lk.store.db.prepare('SELECT count(*) AS n FROM auth_records').get() as { n: number }).n;

describe('a client-credentials provider in the catalog', () => {
  it('the built-in entry says it offers the grant', async () => {
    const got = await lk.admin.get('/v1/catalog/spotify');
    expect(got.json).toMatchObject({ provider: 'spotify', kind: 'oauth2', oauth2: { clientCredentials: true, clientAuth: 'basic' } });
  });

  it('stores a client id and secret the token endpoint accepts, validated, and the next call carries the token (no second token request)', async () => {
    const before = ccCount();
    const res = await store('spotify', { credentials: { clientId: CLIENT.id, clientSecret: CLIENT.secret, scope: SCOPE }, label: 'App' });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ integrationId: 'spotify', provider: 'spotify', label: 'App', status: 'validated' });
    expect(ccCount()).toBe(before + 1);
    const rec = await lk.admin.get(`/v1/integrations/spotify/auth/${res.json.credentialId}`);
    expect(rec.json).toMatchObject({
      authType: 'OAUTH2_CLIENT_CREDENTIALS',
      provider: 'spotify',
      label: 'App',
      oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, scope: SCOPE, clientAuth: 'basic' },
      status: 'active',
    });
    expect(Date.parse(rec.json.tokenExpiresAt as string)).toBeGreaterThan(Date.now());
    const proxied = await call(`${lk.proxyUrl}/spotify/v1/me`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(proxied.status).toBe(200);
    // The token the check obtained was kept: the call needed no request of its own.
    expect(ccCount()).toBe(before + 1);
    await expectNoLeak(lk, { clientSecret: CLIENT.secret }, ['spotify']);
  });

  it('a secret the token endpoint refuses is 422 and nothing is stored', async () => {
    const before = records();
    const res = await store('spotify', { credentials: { clientId: CLIENT.id, clientSecret: 'not-the-secret-0000000000' }, integrationId: 'spotify-bad' });
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe('CREDENTIAL_VALIDATION_FAILED');
    expect(records()).toBe(before);
    expect((await lk.admin.get('/v1/integrations/spotify-bad')).status).toBe(404);
  });

  it('a token endpoint that cannot be reached stores them unverified', async () => {
    const res = await store('cc-down', { credentials: { clientId: 'someone', clientSecret: 'some-secret-value-123456' } });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ integrationId: 'cc-down', status: 'unverified' });
  });

  it('missing and unknown fields are one 400 naming each', async () => {
    const res = await store('spotify', { credentials: { client_id: 'x', scope: SCOPE } });
    expect(res.status).toBe(400);
    expect(res.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'credentials.clientId',
      'credentials.clientSecret',
      'credentials.client_id',
    ]);
  });

  it('a provider without the grant still points to the connect flow', async () => {
    const res = await store('connect-only', { credentials: { clientId: CLIENT.id, clientSecret: CLIENT.secret } });
    expect(res.status).toBe(400);
    expect(res.json.error.details[0].problem).toContain('/v1/integrations/connect-only/oauth/authorize');
  });
});
