/**
 * Security hardening: each block is one way a key's authority, a credential
 * or the disk could be abused, proven closed against real servers.
 */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import Database from 'better-sqlite3';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call, viaForwardProxy } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import type { Resolver } from '../../src/proxy/connector.js';
import { REFUSALS_KEPT_PER_MINUTE } from '../../src/audit.js';
import { MAX_LIVE_GRANTS_PER_KEY } from '../../src/store/widget-grants.js';

const JWT_SECRET = 'a-security-test-jwt-secret-of-at-least-32-bytes';
const QUERY_SECRET = 'q-secret-value-4242';

/** A TCP listener that only counts who dials it: the stand-in for a metadata service. */
async function dialCounter(): Promise<{ port: number; dials: () => number; close: () => void }> {
  let dials = 0;
  const server = net.createServer((s) => {
    dials++;
    s.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, dials: () => dials, close: () => server.close() };
}

/** Names resolve only here: "*.metadata.test" to the metadata address, everything else to loopback. */
const resolver: Resolver = (hostname, options, callback) => {
  const address = hostname.endsWith('.metadata.test') ? '169.254.169.254' : '127.0.0.1';
  if (options.all) callback(null, [{ address, family: 4 }]);
  else callback(null, address, 4);
};

/** A raw upgrade request; resolves with the status line's code and the head of the answer. */
function upgradeRequest(url: string, headers: Record<string, string>): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers: { connection: 'Upgrade', ...headers } });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, head: JSON.stringify(res.headers) });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, head: JSON.stringify(res.headers) });
    });
    req.on('error', reject);
    req.end();
  });
}

const wsHeaders = (key: string): Record<string, string> => ({
  upgrade: 'websocket',
  'sec-websocket-version': '13',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'x-latchkey-key': key,
});

let lk: TestLatchkey;
let up: Upstream;
let metadata: Awaited<ReturnType<typeof dialCounter>>;
let wsServer: http.Server;
let wsPort: number;
const dir = tmpDir().path;

beforeAll(async () => {
  metadata = await dialCounter();
  up = await startUpstream((req, res) => {
    if (req.url?.startsWith('/forge')) {
      res.writeHead(200, { 'x-latchkey-error': 'FAKE', 'x-latchkey-integration': 'other', 'content-type': 'text/plain' });
      res.end('forged');
    } else if (req.url?.startsWith('/sub?')) {
      // A trailing-slash redirect that keeps the query, injected key included.
      res.writeHead(301, { location: `/sub/${req.url.slice(4)}` });
      res.end();
    } else if (req.url?.startsWith('/cut')) {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('part');
      setTimeout(() => res.socket?.destroy(), 30);
    } else if (req.headers.upgrade) {
      res.writeHead(403, { 'x-latchkey-error': 'FAKE', 'content-length': '2' });
      res.end('no');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    }
  });
  wsServer = http.createServer();
  new WebSocketServer({ server: wsServer }).on('connection', (s) => s.on('message', (m) => s.send(m)));
  wsServer.listen(0, '127.0.0.1');
  await once(wsServer, 'listening');
  wsPort = (wsServer.address() as net.AddressInfo).port;

  lk = await startLatchkey({ LATCHKEY_JWT_SECRET: JWT_SECRET }, dir, {
    resolve: resolver,
    // Whatever passes the policy is dialled on loopback: a broken policy would hit the counter, never the network.
    dialAddress: () => '127.0.0.1',
  });
  const add = async (id: string, baseUrl: string, auth: unknown = { authType: 'BEARER_TOKEN', token: `${id}-token-value` }) => {
    expect((await lk.admin.post('/v1/integrations', { integrationId: id, baseUrl })).status).toBe(201);
    expect((await lk.admin.post(`/v1/integrations/${id}/auth`, auth)).status).toBe(201);
  };
  await add('meta', `http://instance.metadata.test:${metadata.port}`);
  await add('wsok', `http://echo.local.test:${wsPort}`);
  await add('plain', up.url);
  await add('qkey', up.url, { authType: 'API_KEY', apiKey: { key: 'key', value: QUERY_SECRET, position: 'query' } });
  // Rows written before write-time checks existed: the dial-time policy still holds.
  lk.store.integrations.create({
    integrationId: 'mapped',
    name: 'mapped',
    baseUrl: `http://[::ffff:a9fe:a9fe]:${metadata.port}`,
    allowedHosts: null,
    headers: [],
  });
  expect((await lk.admin.post('/v1/integrations/mapped/auth', { authType: 'BEARER_TOKEN', token: 'mapped-token' })).status).toBe(201);
});

afterAll(async () => {
  metadata.close();
  wsServer.close();
  await up.close();
  await lk.close();
});

describe('1. every dial goes through one connector with one address policy', () => {
  it('a WebSocket upgrade to a name that resolves link-local is refused and nothing is dialled', async () => {
    const res = await upgradeRequest(`${lk.proxyUrl}/meta/socket`, wsHeaders(lk.adminKey));
    expect(res.status).toBe(502);
    expect(res.head).toContain('UPSTREAM_UNREACHABLE');
    expect(metadata.dials()).toBe(0);
  });
  it('an HTTP call to that name is refused the same way', async () => {
    const res = await call(`${lk.proxyUrl}/meta/latest/meta-data`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(502);
    expect(res.json.error.code).toBe('UPSTREAM_UNREACHABLE');
    expect(res.json.error.message).toContain('link-local');
    expect(metadata.dials()).toBe(0);
  });
  it('the same connector does dial an allowed address (the refusals above are not a broken hook)', async () => {
    const ws = new WebSocket(`${lk.proxyUrl.replace('http', 'ws')}/wsok/x`, { headers: { 'x-latchkey-key': lk.adminKey } });
    await once(ws, 'open');
    ws.send('ping');
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe('ping');
    ws.close();
  });
  it('a stored IPv4-mapped literal is refused before any dial, over HTTP and WebSocket', async () => {
    const res = await call(`${lk.proxyUrl}/mapped/x`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('HOST_NOT_ALLOWED');
    const ws = await upgradeRequest(`${lk.proxyUrl}/mapped/x`, wsHeaders(lk.adminKey));
    expect(ws.status).toBe(403);
    expect(metadata.dials()).toBe(0);
  });
});

describe('2. link-local in any notation is refused at write time', () => {
  it.each(['http://[::ffff:a9fe:a9fe]/', 'http://[::ffff:169.254.169.254]:8080', 'http://0xa9fea9fe/', 'http://2852039166/', 'http://0251.0376.0251.0376/', 'http://[fe80::1]/'])(
    'baseUrl %s',
    async (baseUrl) => {
      const res = await lk.admin.post('/v1/integrations', { baseUrl });
      expect(res.status).toBe(400);
      expect(res.json.error.code).toBe('VALIDATION_ERROR');
      expect(res.json.error.details[0].field).toBe('baseUrl');
    },
  );
  it.each(['0xa9fea9fe', '[::ffff:a9fe:a9fe]', '169.254.169.254:80', '2852039166'])('allowedHosts entry %s', async (entry) => {
    const res = await lk.admin.post('/v1/integrations', { baseUrl: 'https://api.example.com', allowedHosts: ['api.example.com', entry] });
    expect(res.status).toBe(400);
    expect(res.json.error.details[0].field).toBe('allowedHosts[1]');
  });
  it('on PATCH too, and the integration is left as it was', async () => {
    const res = await lk.admin.patch('/v1/integrations/plain', { baseUrl: 'http://0xa9fea9fe/' });
    expect(res.status).toBe(400);
    expect((await lk.admin.get('/v1/integrations/plain')).json.baseUrl).toBe(up.url);
  });
  it('forward-proxy targets are compared in canonical form', async () => {
    const port = up.port;
    const res = await viaForwardProxy(lk.proxyUrl, `http://0x7f000001:${port}/canon`, {
      headers: { 'proxy-authorization': `Basic ${Buffer.from(`plain:${lk.adminKey}`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
    // What the upstream got: the echo itself comes back redacted.
    expect(up.seen.at(-1)!.headers.authorization).toBe('Bearer plain-token-value');
  });
});

describe('3. a redirect never hands back an injected query credential', () => {
  it('Location loses the injected parameter, keeps the rest', async () => {
    const res = await call(`${lk.proxyUrl}/qkey/sub?x=1`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('/sub/?x=1');
    expect(JSON.stringify(res.headers)).not.toContain(QUERY_SECRET);
  });
});

describe('4, 9 and 14. widget tokens live only as long as their key', () => {
  const origin = 'https://widget.example.com';
  const agentKey = async (body: Record<string, unknown> = {}) =>
    (await lk.admin.post('/v1/api-keys', { name: 'widget-minter', role: 'agent', integrations: ['plain'], ...body })).json as { key: string; keyId: string };
  const mint = (key: string, integrations = ['plain']) =>
    call(`${lk.adminUrl}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ integrations, origins: [origin] }),
    });
  const preflight = () =>
    call(`${lk.proxyUrl}/plain/x`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });

  it('revoking the key ends its tokens and their preflight grants at once', async () => {
    const k = await agentKey();
    const token = (await mint(k.key)).json.token as string;
    const ok = await call(`${lk.proxyUrl}/plain/x`, { headers: { 'x-latchkey-key': token, origin } });
    expect(ok.status).toBe(200);
    expect((await preflight()).status).toBe(204);
    expect((await lk.admin.delete(`/v1/api-keys/${k.keyId}`)).status).toBe(204);
    const after = await call(`${lk.proxyUrl}/plain/x`, { headers: { 'x-latchkey-key': token, origin } });
    expect(after.status).toBe(401);
    expect(after.json.error.code).toBe('INVALID_TOKEN');
    expect((await preflight()).status).toBe(403);
  });
  it('a token never expires after its key', async () => {
    const expiresAt = new Date(Date.now() + 120_000).toISOString();
    const k = await agentKey({ expiresAt });
    const minted = (await mint(k.key)).json as { expiresAt: string };
    expect(Date.parse(minted.expiresAt)).toBeLessThanOrEqual(Date.parse(expiresAt));
  });
  it('a token without exp is refused', async () => {
    const k = await agentKey();
    const noExp = await new SignJWT({ scope: ['plain'], origins: [origin] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer('latchkey')
      .setAudience('latchkey-proxy')
      .setSubject(k.keyId)
      .setIssuedAt()
      .sign(new TextEncoder().encode(JWT_SECRET));
    const res = await call(`${lk.proxyUrl}/plain/x`, { headers: { 'x-latchkey-key': noExp, origin } });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('INVALID_TOKEN');
  });
  it('a token is accepted in X-Latchkey-Key only, not in Proxy-Authorization', async () => {
    const k = await agentKey();
    const token = (await mint(k.key)).json.token as string;
    const res = await call(`${lk.proxyUrl}/plain/x`, { headers: { 'proxy-authorization': `Bearer ${token}`, origin } });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('INVALID_API_KEY');
  });
  it('a wildcard token over many integrations writes one grant row; live grants per key are capped', async () => {
    for (let i = 0; i < 30; i++) await lk.admin.post('/v1/integrations', { integrationId: `many${i}`, baseUrl: up.url });
    const k = await agentKey({ integrations: ['*'] });
    const db = new Database(lk.dbPath, { readonly: true });
    const rows = () => (db.prepare('SELECT count(*) AS n FROM widget_grants WHERE key_id = ?').get(k.keyId) as { n: number }).n;
    expect((await mint(k.key, ['*'])).status).toBe(201);
    expect(rows()).toBe(1);
    for (let i = 1; i < MAX_LIVE_GRANTS_PER_KEY; i++) expect((await mint(k.key, ['*'])).status).toBe(201);
    const over = await mint(k.key, ['*']);
    expect(over.status).toBe(429);
    expect(over.json.error.code).toBe('RATE_LIMITED');
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(rows()).toBe(MAX_LIVE_GRANTS_PER_KEY);
    db.close();
  });
});

describe('8. credential values are checked like header values, at write time', () => {
  it.each([
    [{ authType: 'BEARER_TOKEN', token: 'abc\r\nX-Injected: 1' }, 'token'],
    [{ authType: 'BEARER_TOKEN', token: 'tok\u0000en' }, 'token'],
    [{ authType: 'BEARER_TOKEN', token: 'euro-€' }, 'token'],
    [{ authType: 'API_KEY', apiKey: { key: 'X-Key', value: 'v\nv' } }, 'apiKey.value'],
    [{ authType: 'API_KEY', apiKey: { key: 'k', value: 'v\u0001', position: 'query' } }, 'apiKey.value'],
    [{ authType: 'API_KEY', apiKey: { key: 'Host', value: 'v' } }, 'apiKey.key'],
    [{ authType: 'API_KEY', apiKey: { key: 'Content-Length', value: '5' } }, 'apiKey.key'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'X-Static', value: 'snowman ☃' }] }, 'headers[0].value'],
  ])('%j is 400 naming %s, nothing stored', async (body, field) => {
    const before = (await lk.admin.get('/v1/integrations/plain/auth')).json.data.length;
    const res = await lk.admin.post('/v1/integrations/plain/auth', body);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_ERROR');
    expect(res.json.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect((await lk.admin.get('/v1/integrations/plain/auth')).json.data.length).toBe(before);
  });
  it('Latin-1 and a Unicode query value are fine', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'latin', baseUrl: up.url });
    expect((await lk.admin.post('/v1/integrations/latin/auth', { authType: 'BEARER_TOKEN', token: 'café' })).status).toBe(201);
    const q = await lk.admin.post('/v1/integrations/latin/auth', { authType: 'API_KEY', apiKey: { key: 'k', value: 'clé-€', position: 'query' } });
    expect(q.status).toBe(201);
  });
  it('a PATCH with a bad value changes nothing: the next call carries the old token', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'patchme', baseUrl: up.url });
    const authId = (await lk.admin.post('/v1/integrations/patchme/auth', { authType: 'BEARER_TOKEN', token: 'old-good-token' })).json.authId;
    const res = await lk.admin.patch(`/v1/integrations/patchme/auth/${authId}`, { token: 'new\r\ntoken' });
    expect(res.status).toBe(400);
    const seen = await call(`${lk.proxyUrl}/patchme/x`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(seen.status).toBe(200);
    expect(up.seen.at(-1)!.headers.authorization).toBe('Bearer old-good-token');
  });
});

describe('10, 11. answers only latchkey may give', () => {
  it('an upstream cannot forge X-Latchkey-* headers', async () => {
    const res = await call(`${lk.proxyUrl}/plain/forge`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(200);
    expect(res.text).toBe('forged');
    expect(res.headers['x-latchkey-error']).toBeUndefined();
    expect(res.headers['x-latchkey-integration']).toBeUndefined();
  });
  it('nor on a refused WebSocket upgrade', async () => {
    const res = await upgradeRequest(`${lk.proxyUrl}/plain/socket`, wsHeaders(lk.adminKey));
    expect(res.status).toBe(403);
    expect(res.head).not.toContain('FAKE');
  });
  it('TRACE is 405 METHOD_NOT_ALLOWED and nothing is sent', async () => {
    const before = up.seen.length;
    const res = await call(`${lk.proxyUrl}/plain/echo`, { method: 'TRACE', headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(405);
    expect(res.json.error.code).toBe('METHOD_NOT_ALLOWED');
    expect(res.headers['x-latchkey-error']).toBe('METHOD_NOT_ALLOWED');
    expect(up.seen.length).toBe(before);
  });
  it('TRACK is 405 too (node refuses it before the pipeline; the answer is still coded)', async () => {
    const before = up.seen.length;
    const port = new URL(lk.proxyUrl).port;
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.write(`TRACK /plain/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Latchkey-Key: ${lk.adminKey}\r\n\r\n`);
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    await once(socket, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 405/);
    expect(answer).toContain('METHOD_NOT_ALLOWED');
    expect(up.seen.length).toBe(before);
  });
});

describe('7. an encoded slash cannot climb above the base path, in header mode either', () => {
  it('X-Latchkey-Integration with ..%2f..%2f', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'based', baseUrl: `${up.url}/api/v2` });
    await lk.admin.post('/v1/integrations/based/auth', { authType: 'BEARER_TOKEN', token: 'based-token' });
    const res = await viaForwardProxy(lk.proxyUrl, '/users/..%2f..%2f..%2fadmin', {
      headers: { 'x-latchkey-key': lk.adminKey, 'x-latchkey-integration': 'based' },
    });
    expect(res.status).toBe(200);
    expect(res.json.url).toBe('/api/v2/admin');
  });
});

describe('13. the audit records what happened', () => {
  const auditFor = async (path: string) => {
    const rows = (await lk.admin.get('/v1/audit?limit=200')).json.data as Array<{ path: string; status: number; error?: string }>;
    return rows.find((r) => r.path === path);
  };
  it('an h2c upgrade is refused up front and recorded as refused', async () => {
    const res = await upgradeRequest(`${lk.proxyUrl}/plain/h2c-try`, { upgrade: 'h2c', 'x-latchkey-key': lk.adminKey, 'http2-settings': 'AAMAAABkAAQAAP__' });
    expect(res.status).toBe(400);
    expect(res.head).toContain('INVALID_TARGET');
    const row = await auditFor('/h2c-try');
    expect(row).toMatchObject({ status: 400, error: 'INVALID_TARGET' });
  });
  it('an upstream reset in the middle of a body is recorded with an error', async () => {
    await call(`${lk.proxyUrl}/plain/cut`, { headers: { 'x-latchkey-key': lk.adminKey } }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const row = await auditFor('/cut');
    expect(row).toMatchObject({ status: 200, error: 'UPSTREAM_UNREACHABLE' });
  });
  it('a WebSocket upgrade is recorded with the status the upstream gave', async () => {
    await upgradeRequest(`${lk.proxyUrl}/plain/socket-refused`, wsHeaders(lk.adminKey));
    expect(await auditFor('/socket-refused')).toMatchObject({ status: 403 });
    const ws = new WebSocket(`${lk.proxyUrl.replace('http', 'ws')}/wsok/socket-ok`, { headers: { 'x-latchkey-key': lk.adminKey } });
    await once(ws, 'open');
    ws.close();
    expect(await auditFor('/socket-ok')).toMatchObject({ status: 101 });
  });
});

describe('5. callers without a key cannot fill the disk through the audit trail', () => {
  it('huge ids are not stored verbatim and keyless refusals are sampled, the rest counted', async () => {
    const hugeId = 'x'.repeat(15_000);
    const N = 120;
    for (let i = 0; i < N; i++) {
      const res =
        i % 2 === 0
          ? await viaForwardProxy(lk.proxyUrl, `/${hugeId}/path`)
          : await viaForwardProxy(lk.proxyUrl, '/path', { headers: { 'x-latchkey-integration': hugeId } });
      expect(res.status).toBe(401);
    }
    const rows = (await lk.admin.get('/v1/audit?limit=200')).json.data as Array<{ keyId: string | null; integrationId: string | null; action: string; count?: number }>;
    const keyless = rows.filter((r) => r.keyId === null && r.action === 'proxy.call');
    // One minute boundary may fall inside the loop: at most two minutes' samples.
    expect(keyless.length).toBeGreaterThan(0);
    expect(keyless.length).toBeLessThanOrEqual(2 * REFUSALS_KEPT_PER_MINUTE);
    for (const r of rows) expect((r.integrationId ?? '').length).toBeLessThanOrEqual(65);
    // The audit table's bytes stay small: nowhere near N × 15 KB.
    const db = new Database(lk.dbPath, { readonly: true });
    const stored = db.prepare('SELECT sum(length(rows)) AS n FROM audit_call_batches').get() as { n: number };
    db.close();
    expect(stored.n).toBeLessThan(200_000);
    await lk.stop();
    // The counted rest is one summary row, written at the latest when latchkey stops.
    const after = new Database(lk.dbPath, { readonly: true });
    const batches = after.prepare('SELECT rows FROM audit_call_batches').all() as Array<{ rows: string }>;
    after.close();
    const tuples = batches.flatMap((b) => JSON.parse(b.rows) as unknown[][]);
    const counted = tuples.filter((t) => t[3] === 'proxy.refused').reduce((n, t) => n + (t[12] as number), 0);
    const kept = tuples.filter((t) => t[3] === 'proxy.call' && t[2] === null && t[9] === 401).length;
    expect(kept + counted).toBeGreaterThanOrEqual(N);
    // Restart for afterAll: lk.close() stops again harmlessly on a fresh app.
    lk = await startLatchkey({ LATCHKEY_JWT_SECRET: JWT_SECRET, LATCHKEY_ADMIN_KEY: lk.adminKey }, dir);
  });
});

describe('6. proxy.clientAuth "none" refuses what browsers send', () => {
  let open: TestLatchkey;
  beforeAll(async () => {
    const d = tmpDir().path;
    const cfg = join(d, 'config.json');
    writeFileSync(cfg, JSON.stringify({ proxy: { clientAuth: 'none' } }));
    open = await startLatchkey({ LATCHKEY_CONFIG: cfg }, d);
    await open.admin.post('/v1/integrations', { integrationId: 'open', baseUrl: up.url });
    await open.admin.post('/v1/integrations/open/auth', { authType: 'BEARER_TOKEN', token: 'open-token' });
  });
  afterAll(() => open.close());

  it('a local program without a key is served', async () => {
    const res = await call(`${open.proxyUrl}/open/x`);
    expect(res.status).toBe(200);
    expect(up.seen.at(-1)!.headers.authorization).toBe('Bearer open-token');
  });
  it.each([
    [{ origin: 'https://evil.example' }],
    [{ 'sec-fetch-site': 'cross-site' }],
    [{ host: 'rebound.evil.example:7480' }],
  ])('%j is refused with nothing sent', async (headers) => {
    const before = up.seen.length;
    const res = await viaForwardProxy(open.proxyUrl, '/open/x', { method: 'POST', headers: { 'content-type': 'text/plain', ...headers }, body: 'x' });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('ORIGIN_NOT_ALLOWED');
    expect(up.seen.length).toBe(before);
  });
  it('localhost as Host is fine', async () => {
    const res = await viaForwardProxy(open.proxyUrl, '/open/x', { headers: { host: `localhost:${new URL(open.proxyUrl).port}` } });
    expect(res.status).toBe(200);
  });
});
