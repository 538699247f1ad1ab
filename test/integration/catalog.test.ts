import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { adminClient, basic, call, type Reply } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { builtInCatalogPath, type ProviderEntry } from '../../src/catalog/catalog.js';

const GOOD = { api: 'dd-api-GOODSECRET-1', app: 'dd-app-GOODSECRET-2', maps: 'maps-GOODSECRET-3', sid: 'AC-GOODSID', token: 'tw-GOODSECRET-4' };
const BAD = { api: 'dd-api-BADSECRET-9', app: 'dd-app-BADSECRET-8' };

let lk: TestLatchkey;
let up: Upstream;
let closedPort: number;
const builtIn = JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[];
const entry = (id: string) => builtIn.find((p) => p.provider === id) as ProviderEntry;

/** A stand-in for the providers' APIs: the same checks their probes rely on. */
function provider(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (url.pathname === '/api/v1/validate') {
    const ok = req.headers['dd-api-key'] === GOOD.api && req.headers['dd-application-key'] === GOOD.app;
    return json(ok ? 200 : 403, { valid: ok });
  }
  if (url.pathname === '/maps/api/geocode/json') {
    return json(200, { status: url.searchParams.get('key') === GOOD.maps ? 'OK' : 'REQUEST_DENIED' });
  }
  if (url.pathname === `/2010-04-01/Accounts/${GOOD.sid}.json`) {
    return json(req.headers.authorization === basic(GOOD.sid, GOOD.token) ? 200 : 401, {});
  }
  json(200, { method: req.method, url: req.url, headers: req.headers });
}

beforeAll(async () => {
  up = await startUpstream(provider);
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const local = { allowedHosts: [up.host] };
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      catalog: { probeTimeoutMs: 2000 },
      providers: [
        { ...entry('datadog'), baseUrl: up.url, ...local },
        { ...entry('google-maps'), baseUrl: `${up.url}/maps/api`, ...local },
        { ...entry('twilio'), baseUrl: `${up.url}/2010-04-01`, ...local },
        { ...entry('sendgrid'), baseUrl: `http://127.0.0.1:${closedPort}/v3`, allowedHosts: [`127.0.0.1:${closedPort}`] },
        { ...entry('postmark'), provider: 'no-probe', displayName: 'No probe', baseUrl: up.url, ...local, probe: null },
      ],
    }),
  );
  lk = await startLatchkey({ LATCHKEY_CONFIG: cfg }, dir);
});
afterAll(async () => {
  await lk.close();
  await up.close();
});

const store = (provider: string, body: unknown) => lk.admin.post(`/v1/integrations/${provider}/credentials`, body);
const counts = () => ({
  integrations: (lk.store.db.prepare('SELECT count(*) AS n FROM integrations').get() as { n: number }).n,
  records: (lk.store.db.prepare('SELECT count(*) AS n FROM auth_records').get() as { n: number }).n,
});
const responses: Reply[] = [];
const record = async (p: Promise<Reply>) => {
  const r = await p;
  responses.push(r);
  return r;
};

describe('catalog', () => {
  it('lists every provider in pages and shows one', async () => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await lk.admin.get(`/v1/catalog?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      ids.push(...res.json.data.map((p: ProviderEntry) => p.provider));
      cursor = res.json.nextCursor;
    } while (cursor);
    expect(ids.length).toBe(builtIn.length + 1);
    expect(ids).toContain('no-probe');
    const one = await lk.admin.get('/v1/catalog/datadog');
    expect(one.json).toMatchObject({ provider: 'datadog', baseUrl: up.url, requiredFields: ['api_key', 'application_key'] });
    const missing = await lk.admin.get('/v1/catalog/nope');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('UNKNOWN_PROVIDER');
  });
});

describe('storing provider credentials', () => {
  it('valid credentials: 201 validated, and a proxied call carries exactly the template’s headers', async () => {
    const res = await record(store('datadog', { credentials: { api_key: GOOD.api, application_key: GOOD.app }, label: 'Production' }));
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ integrationId: 'datadog', provider: 'datadog', label: 'Production', status: 'validated' });
    expect(res.json.credentialId).toMatch(/^auth_/);
    expect(Date.parse(res.json.createdAt)).toBeGreaterThan(0);

    const via = await call(`${lk.proxyUrl}/datadog/api/v2/series?from=1`, { headers: { authorization: `Bearer ${lk.adminKey}` } });
    expect(via.status).toBe(200);
    // What the upstream got (the echo itself comes back redacted).
    const seen = up.seen.at(-1)!;
    expect(seen.url).toBe('/api/v2/series?from=1');
    expect(seen.headers['dd-api-key']).toBe(GOOD.api);
    expect(seen.headers['dd-application-key']).toBe(GOOD.app);
    expect(seen.headers.authorization).toBeUndefined();
    expect(via.json.headers['dd-api-key']).toBe('[REDACTED]');

    const auth = await record(lk.admin.get(`/v1/integrations/datadog/auth/${res.json.credentialId}`));
    expect(auth.json).toMatchObject({ authType: 'API_KEY', provider: 'datadog', label: 'Production' });
  });

  it('a second set for the same provider gets {provider}-{label}', async () => {
    const res = await record(store('datadog', { credentials: { api_key: GOOD.api, application_key: GOOD.app }, label: 'EU Staging!' }));
    expect(res.json.integrationId).toBe('datadog-eu-staging');
  });

  it('rotation: naming the existing integration adds a record the next call uses', async () => {
    const res = await record(store('datadog', { credentials: { api_key: GOOD.api, application_key: GOOD.app }, integrationId: 'datadog' }));
    expect(res.status).toBe(201);
    expect(res.json.integrationId).toBe('datadog');
    expect((await lk.admin.get('/v1/integrations/datadog/auth')).json.data).toHaveLength(2);
    const taken = await lk.admin.post('/v1/integrations', { integrationId: 'handmade', baseUrl: up.url });
    expect(taken.status).toBe(201);
    const conflict = await store('datadog', { credentials: { api_key: GOOD.api, application_key: GOOD.app }, integrationId: 'handmade' });
    expect(conflict.status).toBe(409);
  });

  it('rejected credentials: 422 and nothing stored', async () => {
    const before = counts();
    const res = await record(store('datadog', { credentials: { api_key: BAD.api, application_key: BAD.app }, label: 'bad' }));
    expect(res.status).toBe(422);
    expect(res.json.error.code).toBe('CREDENTIAL_VALIDATION_FAILED');
    expect(counts()).toEqual(before);
  });

  it('a 200 that says "denied" is a rejection too (Google Maps)', async () => {
    const before = counts();
    const bad = await record(store('google-maps', { credentials: { api_key: 'maps-wrong' } }));
    expect(bad.status).toBe(422);
    expect(counts()).toEqual(before);
    const good = await record(store('google-maps', { credentials: { api_key: GOOD.maps } }));
    expect(good.json.status).toBe('validated');
    const via = await call(`${lk.proxyUrl}/google-maps/place/json?input=caf%C3%A9&key=lk_should_go`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(via.status).toBe(200);
    expect(up.seen.at(-1)!.url).toBe(`/maps/api/place/json?input=caf%C3%A9&key=${GOOD.maps}`);
  });

  it('Basic from two fields, probe path from a field (Twilio)', async () => {
    const res = await record(store('twilio', { credentials: { account_sid: GOOD.sid, auth_token: GOOD.token } }));
    expect(res.json.status).toBe('validated');
    const via = await call(`${lk.proxyUrl}/twilio/Accounts/${GOOD.sid}/Messages.json`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(via.status).toBe(200);
    expect(up.seen.at(-1)!.headers.authorization).toBe(basic(GOOD.sid, GOOD.token));
  });

  it('missing fields: 400 listing each; an unknown field is named', async () => {
    const res = await record(store('datadog', { credentials: {} }));
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_ERROR');
    expect(res.json.error.details.map((d: { field: string }) => d.field)).toEqual(['credentials.api_key', 'credentials.application_key']);
    const typo = await record(store('datadog', { credentials: { api_key: 'a', application_key: 'b', app_key: 'c' } }));
    expect(typo.json.error.details).toEqual([{ field: 'credentials.app_key', problem: 'is not a field of datadog' }]);
    expect((await store('datadog', {})).status).toBe(400);
  });

  it('unknown provider: 404 UNKNOWN_PROVIDER', async () => {
    const res = await store('nope', { credentials: { api_key: 'x' } });
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('UNKNOWN_PROVIDER');
  });

  it('an unreachable provider, or one without a probe: 201 unverified', async () => {
    const unreachable = await record(store('sendgrid', { credentials: { api_key: 'SG.unverified-SECRET-5' } }));
    expect(unreachable.status).toBe(201);
    expect(unreachable.json.status).toBe('unverified');
    const noProbe = await record(store('no-probe', { credentials: { server_token: 'pm-unverified-SECRET-6' } }));
    expect(noProbe.json.status).toBe('unverified');
  });

  it('admin role only: an agent key is 403, no key is 401', async () => {
    const agentKey = (await lk.admin.post('/v1/api-keys', { name: 'a', role: 'agent', integrations: ['*'] })).json.key;
    const res = await adminClient(lk.adminUrl, agentKey).post('/v1/integrations/datadog/credentials', { credentials: { api_key: 'a', application_key: 'b' } });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('FORBIDDEN');
    const anonymous = await call(`${lk.adminUrl}/v1/integrations/datadog/credentials`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"credentials":{}}',
    });
    expect(anonymous.status).toBe(401);
  });

  it('a provider record’s credential fields are not PATCHed one by one', async () => {
    const { credentialId } = (await store('datadog', { credentials: { api_key: GOOD.api, application_key: GOOD.app }, label: 'patch' })).json;
    const res = await lk.admin.patch(`/v1/integrations/datadog-patch/auth/${credentialId}`, { apiKey: { value: 'x' } });
    expect(res.status).toBe(400);
  });

  it('no secret in any response, in the logs or in the database bytes', async () => {
    const secrets = [GOOD.api, GOOD.app, GOOD.maps, GOOD.token, BAD.api, BAD.app, 'SG.unverified-SECRET-5', 'pm-unverified-SECRET-6', 'maps-wrong'];
    expect(responses.length).toBeGreaterThan(8);
    const text = responses.map((r) => r.text).join('\n');
    const logs = lk.logs();
    expect(logs).toContain('provider credential stored');
    lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
    const db = readFileSync(lk.dbPath);
    for (const s of secrets) {
      expect(text.includes(s), `response holds ${s}`).toBe(false);
      expect(logs.includes(s), `logs hold ${s}`).toBe(false);
      expect(db.includes(Buffer.from(s)), `database holds ${s}`).toBe(false);
    }
  });
});
