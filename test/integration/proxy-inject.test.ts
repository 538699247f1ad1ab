import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { basic, call, viaForwardProxy, type Reply } from '../helpers/http.js';
import { makePki } from '../helpers/certs.js';
import { tmpDir } from '../helpers/tmp.js';

let lk: TestLatchkey;
let up: Upstream;
let tlsUp: Upstream;
let other: Upstream;

const SECRET = { token: 'tok-real-1', user: 'real-user', pass: 'real-pass', headerKey: 'hk-real', queryKey: 'qk-real' };

/** What the upstream received, as the echo handler reports it. */
const seenBy = (r: Reply) => r.json as { method: string; url: string; headers: Record<string, string>; body: string };

beforeAll(async () => {
  const pki = makePki();
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { caFile: pki.caFile } }));
  lk = await startLatchkey({ LATCHKEY_CONFIG: cfg }, dir);
  up = await startUpstream();
  other = await startUpstream();
  tlsUp = await startUpstream(undefined, pki);

  const integration = (id: string, extra: object = {}) =>
    lk.admin.post('/v1/integrations', {
      integrationId: id,
      baseUrl: `${up.url}/base`,
      headers: [{ key: 'X-Int', value: 'int' }, { key: 'X-Shared', value: 'from-integration' }],
      // These tests read the upstream's view from its echo; redaction (redact.test.ts) would hide the credential.
      redactResponses: false,
      ...extra,
    });
  const auth = (id: string, body: object) => lk.admin.post(`/v1/integrations/${id}/auth`, body);
  const recordHeaders = [{ key: 'X-Shared', value: 'from-record' }, { key: 'X-Rec', value: 'rec' }];

  await integration('bearer');
  await auth('bearer', { authType: 'BEARER_TOKEN', token: SECRET.token, headers: recordHeaders });
  await integration('basic');
  await auth('basic', { authType: 'BASIC_AUTH', username: SECRET.user, password: SECRET.pass, headers: recordHeaders });
  await integration('hdrkey');
  await auth('hdrkey', { authType: 'API_KEY', apiKey: { key: 'X-Api-Key', value: SECRET.headerKey }, headers: recordHeaders });
  await integration('qkey');
  await auth('qkey', { authType: 'API_KEY', apiKey: { key: 'api_key', value: SECRET.queryKey, position: 'query' }, headers: recordHeaders });
  await integration('noauth');
  await auth('noauth', { authType: 'NO_AUTH', headers: recordHeaders });
  await integration('empty');
  await lk.admin.post('/v1/integrations', { integrationId: 'tls', baseUrl: tlsUp.url.replace('127.0.0.1', 'localhost'), allowedHosts: [`localhost:${tlsUp.port}`], redactResponses: false });
  await auth('tls', { authType: 'BEARER_TOKEN', token: 'tls-token' });
  // Refused at write time since the link-local check; a row stored before it is still never dialled.
  lk.store.integrations.create({ integrationId: 'metadata', name: 'metadata', baseUrl: 'http://169.254.169.254', allowedHosts: null, headers: [] });
  await auth('metadata', { authType: 'BEARER_TOKEN', token: 'never-sent' });
});
afterAll(async () => {
  await Promise.all([up.close(), other.close(), tlsUp.close()]);
  await lk.close();
});

type Mode = 'path' | 'header' | 'forward';

/** One call to integration `id` at /x/y?b=2&a=%2F in the given tagging mode, authenticated by `key`. */
function tagged(mode: Mode, id: string, headers: Record<string, string> = {}, pathAndQuery = '/x/y?b=2&a=%2F'): Promise<Reply> {
  if (mode === 'path') return call(`${lk.proxyUrl}/${id}${pathAndQuery}`, { headers: { 'x-latchkey-key': lk.adminKey, ...headers } });
  if (mode === 'header') {
    return call(`${lk.proxyUrl}${pathAndQuery}`, { headers: { 'x-latchkey-integration': id, 'x-latchkey-key': lk.adminKey, ...headers } });
  }
  return viaForwardProxy(lk.proxyUrl, `http://${up.host}/base${pathAndQuery}`, {
    headers: { 'proxy-authorization': basic(id, lk.adminKey), ...headers },
  });
}

const EXPECTED: Record<string, { headers: Record<string, string>; query: string }> = {
  bearer: { headers: { authorization: `Bearer ${SECRET.token}` }, query: 'b=2&a=%2F' },
  basic: { headers: { authorization: basic(SECRET.user, SECRET.pass) }, query: 'b=2&a=%2F' },
  hdrkey: { headers: { 'x-api-key': SECRET.headerKey }, query: 'b=2&a=%2F' },
  qkey: { headers: {}, query: `b=2&a=%2F&api_key=${SECRET.queryKey}` },
  noauth: { headers: {}, query: 'b=2&a=%2F' },
};

describe.each<Mode>(['path', 'header', 'forward'])('%s mode', (mode) => {
  it.each(Object.keys(EXPECTED))('%s: the upstream gets exactly the credential and static headers', async (id) => {
    const res = await tagged(mode, id, { 'x-client': 'kept', 'x-latchkey-auth-hint': 'dropped' });
    expect(res.status).toBe(200);
    const seen = seenBy(res);
    const want = EXPECTED[id]!;
    expect(seen.url).toBe(`/base/x/y?${want.query}`);
    expect(seen.headers.host).toBe(up.host);
    expect(seen.headers['x-int']).toBe('int');
    expect(seen.headers['x-shared']).toBe('from-record');
    expect(seen.headers['x-rec']).toBe('rec');
    expect(seen.headers['x-client']).toBe('kept');
    for (const [name, value] of Object.entries(want.headers)) expect(seen.headers[name]).toBe(value);
    if (id !== 'bearer' && id !== 'basic') expect(seen.headers.authorization).toBeUndefined();
    expect(Object.keys(seen.headers).filter((h) => h.startsWith('x-latchkey') || h.startsWith('proxy-'))).toEqual([]);
    expect(JSON.stringify(seen.headers)).not.toContain(lk.adminKey);
    expect(res.headers['x-request-id']).toBeTruthy();
  });
});

describe('injection in place', () => {
  it('a client Authorization header is replaced, never duplicated', async () => {
    const res = await tagged('path', 'bearer', { authorization: 'Bearer client-own-token' });
    const raw = up.seen[up.seen.length - 1]!.rawHeaders;
    const auths = raw.filter((_, i) => i % 2 === 0).filter((h) => h.toLowerCase() === 'authorization');
    expect(auths).toHaveLength(1);
    expect(seenBy(res).headers.authorization).toBe(`Bearer ${SECRET.token}`);
  });

  it('a client API-key header of the same name (any case) is replaced', async () => {
    const res = await tagged('path', 'hdrkey', { 'X-API-KEY': 'client-value' });
    expect(seenBy(res).headers['x-api-key']).toBe(SECRET.headerKey);
    const raw = up.seen[up.seen.length - 1]!.rawHeaders.filter((_, i) => i % 2 === 0);
    expect(raw.filter((h) => h.toLowerCase() === 'x-api-key')).toHaveLength(1);
  });

  it('a client query parameter of the key name is replaced; the others keep order and encoding', async () => {
    const res = await tagged('path', 'qkey', {}, '/x?z=%2f%20&api_key=client&a=1+2&api_key=again');
    expect(seenBy(res).url).toBe(`/base/x?z=%2f%20&api_key=${SECRET.queryKey}&a=1+2`);
  });

  it('precedence: integration headers < record headers < credential', async () => {
    await lk.admin.post('/v1/integrations', {
      integrationId: 'prec',
      baseUrl: up.url,
      headers: [{ key: 'Authorization', value: 'from-integration' }, { key: 'X-Layer', value: 'integration' }],
    });
    await lk.admin.post('/v1/integrations/prec/auth', {
      authType: 'BEARER_TOKEN',
      token: 'wins',
      headers: [{ key: 'authorization', value: 'from-record' }, { key: 'x-layer', value: 'record' }],
    });
    const seen = seenBy(await tagged('path', 'prec', { 'X-Layer': 'client' }, '/'));
    expect(seen.headers.authorization).toBe('Bearer wins');
    expect(seen.headers['x-layer']).toBe('record');
  });

  it('keeps method and body', async () => {
    const res = await call(`${lk.proxyUrl}/bearer/items`, {
      method: 'POST',
      headers: { 'x-latchkey-key': lk.adminKey, 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(seenBy(res)).toMatchObject({ method: 'POST', url: '/base/items', body: '{"a":1}' });
  });

  it('X-Latchkey-Auth-Id picks a record; otherwise the most recent one is used', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'multi', baseUrl: up.url });
    const first = (await lk.admin.post('/v1/integrations/multi/auth', { authType: 'BEARER_TOKEN', token: 'first' })).json;
    await lk.admin.post('/v1/integrations/multi/auth', { authType: 'BEARER_TOKEN', token: 'second' });
    expect(seenBy(await tagged('path', 'multi', {}, '/')).headers.authorization).toBe('Bearer second');
    const picked = await tagged('path', 'multi', { 'x-latchkey-auth-id': first.authId }, '/');
    expect(seenBy(picked).headers.authorization).toBe('Bearer first');
    const unknown = await tagged('path', 'multi', { 'x-latchkey-auth-id': 'auth_nope' }, '/');
    expect(unknown.status).toBe(409);
    expect(unknown.headers['x-latchkey-error']).toBe('NO_AUTH_RECORD');
  });

  it('a PATCHed token is used by the very next call', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'rot', baseUrl: up.url });
    const { authId } = (await lk.admin.post('/v1/integrations/rot/auth', { authType: 'BEARER_TOKEN', token: 'before' })).json;
    expect(seenBy(await tagged('path', 'rot', {}, '/')).headers.authorization).toBe('Bearer before');
    await lk.admin.patch(`/v1/integrations/rot/auth/${authId}`, { token: 'after' });
    expect(seenBy(await tagged('path', 'rot', {}, '/')).headers.authorization).toBe('Bearer after');
  });
});

describe('response headers', () => {
  it('X-Request-Id is latchkey’s; the upstream’s own one is kept as X-Upstream-Request-Id', async () => {
    const withId = await startUpstream((_req, res) => {
      res.writeHead(200, { 'x-request-id': 'upstream-req-1', 'content-type': 'text/plain' });
      res.end('ok');
    });
    await lk.admin.post('/v1/integrations', { integrationId: 'reqid', baseUrl: withId.url });
    await lk.admin.post('/v1/integrations/reqid/auth', { authType: 'NO_AUTH' });
    const res = await tagged('path', 'reqid', { 'x-request-id': 'caller-1' }, '/');
    expect(res.headers['x-request-id']).toBe('caller-1');
    expect(res.headers['x-upstream-request-id']).toBe('upstream-req-1');
    await withId.close();
  });
});

describe('redirects', () => {
  it('are passed back, never followed', async () => {
    const redirecting = await startUpstream((_req, res) => {
      res.writeHead(302, { location: `${other.url}/elsewhere` });
      res.end();
    });
    await lk.admin.post('/v1/integrations', { integrationId: 'redir', baseUrl: redirecting.url });
    await lk.admin.post('/v1/integrations/redir/auth', { authType: 'BEARER_TOKEN', token: 'redir-token' });
    const before = other.seen.length;
    const res = await tagged('path', 'redir', {}, '/start');
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe(`${other.url}/elsewhere`);
    expect(other.seen.length).toBe(before);
    await redirecting.close();
  });
});

describe('SDK drop-in: the latchkey key where the credential goes', () => {
  it('Authorization: Bearer lk_… to /{integrationId}/…', async () => {
    const res = await call(`${lk.proxyUrl}/bearer/v1/chat`, { headers: { authorization: `Bearer ${lk.adminKey}` } });
    expect(res.status).toBe(200);
    expect(seenBy(res).headers.authorization).toBe(`Bearer ${SECRET.token}`);
  });
  it('under any Authorization scheme: `token lk_…` as GitHub’s SDKs send it', async () => {
    const res = await call(`${lk.proxyUrl}/bearer/v1/user`, { headers: { authorization: `token ${lk.adminKey}` } });
    expect(res.status).toBe(200);
    expect(seenBy(res).headers.authorization).toBe(`Bearer ${SECRET.token}`);
    expect(JSON.stringify(res.json)).not.toContain('lk_');
  });
  it('the API-key header', async () => {
    const res = await call(`${lk.proxyUrl}/hdrkey/v1`, { headers: { 'x-api-key': lk.adminKey } });
    expect(seenBy(res).headers['x-api-key']).toBe(SECRET.headerKey);
  });
  it('the API-key query parameter', async () => {
    const res = await call(`${lk.proxyUrl}/qkey/v1?api_key=${lk.adminKey}&q=1`);
    expect(res.status).toBe(200);
    expect(seenBy(res).url).toBe(`/base/v1?api_key=${SECRET.queryKey}&q=1`);
  });
  it('a latchkey key in a second place is removed too, never forwarded', async () => {
    const res = await call(`${lk.proxyUrl}/hdrkey/v1?x=1`, {
      headers: { 'x-latchkey-key': lk.adminKey, authorization: `Bearer ${lk.adminKey}` },
    });
    expect(res.status).toBe(200);
    expect(res.json.headers.authorization).toBeUndefined();
    expect(JSON.stringify(res.json)).not.toContain('lk_');
  });
  it('a non-lk_ value in that place is not a credential', async () => {
    const res = await call(`${lk.proxyUrl}/bearer/v1`, { headers: { authorization: 'Bearer sk-something' } });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('PROXY_AUTH_REQUIRED');
  });
});

describe('the upstream host is always the integration’s', () => {
  it.each([
    ['//evil.example/x', '/base//evil.example/x'],
    ['/../../x', '/base/x'],
    ['/%2e%2e/%2e%2e/x', '/base/x'],
    // An encoded slash separates segments (an upstream may decode it before resolving dots).
    ['/a%2f..%2f..%2fx', '/base/x'],
    ['/..%2f..%2fx', '/base/x'],
    ['/..%5c..%5cx', '/base/x'],
    ['/@evil.example/x', '/base/@evil.example/x'],
  ])('/bearer%s reaches %s on the base host', async (rest, expected) => {
    const before = up.seen.length;
    // A raw request line: a URL-parsing client would resolve the dots before sending.
    const res = await viaForwardProxy(lk.proxyUrl, `/bearer${rest}`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(200);
    expect(up.seen.length).toBe(before + 1);
    expect(seenBy(res).url).toBe(expected);
    expect(seenBy(res).headers.host).toBe(up.host);
  });
});

describe('forward proxy', () => {
  it('a target outside allowedHosts: 403 HOST_NOT_ALLOWED and nothing is sent anywhere', async () => {
    const before = { up: up.seen.length, other: other.seen.length };
    const res = await viaForwardProxy(lk.proxyUrl, `http://${other.host}/steal`, {
      headers: { 'proxy-authorization': basic('bearer', lk.adminKey) },
    });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('HOST_NOT_ALLOWED');
    expect(res.headers['x-latchkey-error']).toBe('HOST_NOT_ALLOWED');
    expect({ up: up.seen.length, other: other.seen.length }).toEqual(before);
  });

  it('an http:// target of an https integration goes out over TLS', async () => {
    const res = await viaForwardProxy(lk.proxyUrl, `http://localhost:${tlsUp.port}/secure?x=1`, {
      headers: { 'proxy-authorization': basic('tls', lk.adminKey) },
    });
    expect(res.status).toBe(200);
    expect(seenBy(res).url).toBe('/secure?x=1');
    expect(seenBy(res).headers.authorization).toBe('Bearer tls-token');
    expect(tlsUp.seen).toHaveLength(1);
  });

  it('the integration may come from X-Latchkey-Integration, with the key in Proxy-Authorization: Bearer', async () => {
    const res = await viaForwardProxy(lk.proxyUrl, `http://${up.host}/base/h`, {
      headers: { 'x-latchkey-integration': 'bearer', 'proxy-authorization': `Bearer ${lk.adminKey}` },
    });
    expect(res.status).toBe(200);
    expect(seenBy(res).headers.authorization).toBe(`Bearer ${SECRET.token}`);
  });

  it('no credential: 407 with Proxy-Authenticate; a wrong one: 407 INVALID_API_KEY', async () => {
    const none = await viaForwardProxy(lk.proxyUrl, `http://${up.host}/x`, { headers: { 'x-latchkey-integration': 'bearer' } });
    expect(none.status).toBe(407);
    expect(none.headers['proxy-authenticate']).toBe('Basic realm="latchkey"');
    expect(none.json.error.code).toBe('PROXY_AUTH_REQUIRED');
    const wrong = await viaForwardProxy(lk.proxyUrl, `http://${up.host}/x`, {
      headers: { 'proxy-authorization': basic('bearer', `lk_${'0'.repeat(43)}`) },
    });
    expect(wrong.status).toBe(407);
    expect(wrong.json.error.code).toBe('INVALID_API_KEY');
  });

  it('a request with no credential at all is challenged before anything else (no integration named, bad target)', async () => {
    const before = up.seen.length;
    for (const target of [`http://${up.host}/x`, 'http://user@evil.example/x']) {
      const res = await viaForwardProxy(lk.proxyUrl, target);
      expect(res.status).toBe(407);
      expect(res.headers['proxy-authenticate']).toBe('Basic realm="latchkey"');
      expect(res.json.error.code).toBe('PROXY_AUTH_REQUIRED');
    }
    // With a credential and no integration named, the target host decides: here several integrations allow it.
    for (const proxyAuth of [`Bearer ${lk.adminKey}`, basic('auto', lk.adminKey), basic('', lk.adminKey)]) {
      const auto = await viaForwardProxy(lk.proxyUrl, `http://${up.host}/x`, { headers: { 'proxy-authorization': proxyAuth } });
      expect(auto.status).toBe(409);
      expect(auto.json.error.code).toBe('AMBIGUOUS_INTEGRATION');
    }
    expect(up.seen.length).toBe(before);
  });

  it('user name auto: the one integration that allows the target host is used', async () => {
    const res = await viaForwardProxy(lk.proxyUrl, `http://localhost:${tlsUp.port}/auto`, {
      headers: { 'proxy-authorization': basic('auto', lk.adminKey) },
    });
    expect(res.status).toBe(200);
    expect(seenBy(res).headers.authorization).toBe('Bearer tls-token');
    expect(seenBy(res).url).toBe('/auto');
  });
});

describe('the proxy’s own errors', () => {
  it('no credential: 401 PROXY_AUTH_REQUIRED; a wrong one: 401 INVALID_API_KEY', async () => {
    const before = up.seen.length;
    const none = await call(`${lk.proxyUrl}/bearer/x`);
    expect(none.status).toBe(401);
    expect(none.headers['x-latchkey-error']).toBe('PROXY_AUTH_REQUIRED');
    const wrong = await call(`${lk.proxyUrl}/bearer/x`, { headers: { 'x-latchkey-key': `lk_${'0'.repeat(43)}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error.code).toBe('INVALID_API_KEY');
    expect(up.seen.length).toBe(before);
  });

  it('unknown integration: 404 UNKNOWN_INTEGRATION; none named: 400 MISSING_INTEGRATION', async () => {
    const unknown = await tagged('path', 'nope');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('UNKNOWN_INTEGRATION');
    const missing = await call(`${lk.proxyUrl}/`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(missing.status).toBe(400);
    expect(missing.json.error.code).toBe('MISSING_INTEGRATION');
  });

  it('an integration without an auth record: 409 and nothing is sent', async () => {
    const before = up.seen.length;
    const res = await tagged('path', 'empty');
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe('NO_AUTH_RECORD');
    expect(up.seen.length).toBe(before);
  });

  it('a link-local base URL is never dialled', async () => {
    const res = await tagged('path', 'metadata');
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('HOST_NOT_ALLOWED');
  });

  it('logs one line per call with no secret and no query value', () => {
    const lines = lk.logs().split('\n').filter((l) => l.includes('"proxy call"'));
    expect(lines.length).toBeGreaterThan(20);
    const qkeyLine = lines.map((l) => JSON.parse(l)).find((l) => l.integrationId === 'qkey' && l.path.includes('api_key'));
    expect(qkeyLine).toMatchObject({ method: 'GET', status: 200, path: expect.stringContaining('api_key=[redacted]') });
    expect(qkeyLine.keyId).toBeTruthy();
    expect(typeof qkeyLine.ms).toBe('number');
    const all = lk.logs();
    for (const v of [...Object.values(SECRET), lk.adminKey, Buffer.from(`${SECRET.user}:${SECRET.pass}`).toString('base64')]) {
      expect(all).not.toContain(v);
    }
  });
});
