import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { adminClient, call, type Reply } from '../helpers/http.js';
import { runCli } from '../helpers/child.js';

const JWT_SECRET = 'a-test-jwt-secret-that-is-at-least-32-bytes-long';
let lk: TestLatchkey;
let noJwt: TestLatchkey;
let up: Upstream;

beforeAll(async () => {
  up = await startUpstream();
  lk = await startLatchkey({ LATCHKEY_JWT_SECRET: JWT_SECRET });
  noJwt = await startLatchkey();
  for (const id of ['one', 'two']) {
    await lk.admin.post('/v1/integrations', { integrationId: id, baseUrl: up.url });
    await lk.admin.post(`/v1/integrations/${id}/auth`, { authType: 'BEARER_TOKEN', token: `${id}-upstream-token` });
  }
});
afterAll(async () => {
  await Promise.all([lk.close(), noJwt.close()]);
  await up.close();
});

const proxy = (id: string, headers: Record<string, string>, method = 'GET') =>
  call(`${lk.proxyUrl}/${id}/x`, { method, headers });
const code = (r: Reply) => r.json?.error?.code as string | undefined;

async function newKey(body: object): Promise<{ key: string; keyId: string }> {
  const res = await lk.admin.post('/v1/api-keys', body);
  expect(res.status).toBe(201);
  return res.json;
}

describe('API keys', () => {
  it('shows the key once, stores only a hash', async () => {
    const res = await lk.admin.post('/v1/api-keys', { name: 'ci', role: 'admin' });
    expect(res.status).toBe(201);
    expect(res.json.key).toMatch(/^lk_[A-Za-z0-9_-]{43}$/);
    expect(res.json).toMatchObject({ name: 'ci', role: 'admin', integrations: ['*'], prefix: res.json.key.slice(0, 10), lastUsedAt: null });
    expect(res.json.keyId).toMatch(/^key_/);
    const list = await lk.admin.get('/v1/api-keys');
    expect(list.json.data.find((k: { keyId: string }) => k.keyId === res.json.keyId)).toBeTruthy();
    expect(list.text).not.toContain(res.json.key);
    lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
    expect(readFileSync(lk.dbPath).includes(Buffer.from(res.json.key))).toBe(false);
    // The new key works on the admin API.
    expect((await adminClient(lk.adminUrl, res.json.key).get('/v1/integrations')).status).toBe(200);
  });

  it.each([
    [{ name: 'x', role: 'root' }, 'role'],
    [{ name: 'x', role: 'agent' }, 'integrations'],
    [{ name: '', role: 'admin' }, 'name'],
    [{ name: 'x', role: 'admin', expiresAt: '2001-01-01T00:00:00Z' }, 'expiresAt'],
    [{ name: 'x', role: 'agent', integrations: ['bad id!'] }, 'integrations'],
  ])('refuses %j naming %s', async (body, field) => {
    const res = await lk.admin.post('/v1/api-keys', body);
    expect(res.status).toBe(400);
    expect(res.json.error.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('an agent key limited to one integration is refused another (403) and every admin route (403)', async () => {
    const { key } = await newKey({ name: 'agent', role: 'agent', integrations: ['one'] });
    const ok = await proxy('one', { 'x-latchkey-key': key });
    expect(ok.status).toBe(200);
    // What the upstream got (the echo itself comes back redacted).
    expect(up.seen.at(-1)!.headers.authorization).toBe('Bearer one-upstream-token');
    const other = await proxy('two', { authorization: `Bearer ${key}` });
    expect(other.status).toBe(403);
    expect(code(other)).toBe('INTEGRATION_NOT_ALLOWED');
    const agentAdmin = adminClient(lk.adminUrl, key);
    for (const res of [
      await agentAdmin.get('/v1/integrations'),
      await agentAdmin.post('/v1/api-keys', { name: 'escalate', role: 'admin' }),
      await agentAdmin.get('/v1/audit'),
      await agentAdmin.delete('/v1/integrations/one'),
    ]) {
      expect(res.status).toBe(403);
      expect(code(res)).toBe('FORBIDDEN');
    }
  });

  it('an expired key is refused at once, on both listeners', async () => {
    const { key } = lk.store.apiKeys.create({ name: 'old', role: 'admin', integrations: ['*'], expiresAt: new Date(Date.now() - 1000).toISOString() });
    const res = await proxy('one', { 'x-latchkey-key': key });
    expect(res.status).toBe(401);
    expect(code(res)).toBe('INVALID_API_KEY');
    expect(code(await adminClient(lk.adminUrl, key).get('/v1/integrations'))).toBe('INVALID_API_KEY');
  });

  it('a revoked key is refused by the very next call', async () => {
    const { key, keyId } = await newKey({ name: 'soon-revoked', role: 'agent', integrations: ['*'] });
    expect((await proxy('one', { 'x-latchkey-key': key })).status).toBe(200);
    expect((await lk.admin.delete(`/v1/api-keys/${keyId}`)).status).toBe(204);
    const res = await proxy('one', { 'x-latchkey-key': key });
    expect(res.status).toBe(401);
    expect(code(res)).toBe('INVALID_API_KEY');
    expect((await lk.admin.delete(`/v1/api-keys/${keyId}`)).status).toBe(404);
  });

  it('the CLI makes, lists and revokes keys on the database; a revocation from that process applies at once', async () => {
    const env = {
      LATCHKEY_DB: lk.dbPath,
      LATCHKEY_MASTER_KEY_FILE: join(lk.dir, 'master.key'),
    };
    const made = await runCli(['keys', 'create', '--name', 'from-cli', '--role', 'agent', '--integrations', 'one'], env);
    expect(made.code).toBe(0);
    const created = JSON.parse(made.stdout) as { key: string; keyId: string };
    expect((await proxy('one', { 'x-latchkey-key': created.key })).status).toBe(200);
    const listed = await runCli(['keys', 'list'], env);
    expect(listed.stdout).toContain(created.keyId);
    expect(listed.stdout).not.toContain(created.key);
    const revoked = await runCli(['keys', 'revoke', created.keyId], env);
    expect(revoked.code).toBe(0);
    expect(code(await proxy('one', { 'x-latchkey-key': created.key }))).toBe('INVALID_API_KEY');
  });

  it('lastUsedAt is kept without a database write per call', async () => {
    const { key, keyId } = await newKey({ name: 'used', role: 'agent', integrations: ['one'] });
    await proxy('one', { 'x-latchkey-key': key });
    const row = lk.store.db.prepare('SELECT last_used_at FROM api_keys WHERE key_id = ?').get(keyId) as { last_used_at: string | null };
    expect(row.last_used_at).toBeNull();
    const listed = (await lk.admin.get('/v1/api-keys')).json.data.find((k: { keyId: string }) => k.keyId === keyId);
    expect(Date.parse(listed.lastUsedAt)).toBeGreaterThan(Date.now() - 10_000);
  });
});

describe('admin credential errors', () => {
  it.each([
    [{}, 401, 'AUTH_REQUIRED'],
    [{ authorization: 'Token abc' }, 401, 'INVALID_AUTH_FORMAT'],
    [{ 'x-api-key': 'sk_not_ours' }, 401, 'INVALID_AUTH_FORMAT'],
    [{ authorization: `Bearer lk_${'z'.repeat(43)}` }, 401, 'INVALID_API_KEY'],
    [{ authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl' }, 401, 'INVALID_TOKEN'],
  ])('%j -> %i %s', async (headers, status, expected) => {
    const res = await call(`${lk.adminUrl}/v1/integrations`, { headers: headers as Record<string, string> });
    expect(res.status).toBe(status);
    expect(code(res)).toBe(expected);
  });

  it('a JWT without LATCHKEY_JWT_SECRET: 501 JWT_NOT_CONFIGURED, on both listeners and on /v1/tokens', async () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const admin = await call(`${noJwt.adminUrl}/v1/integrations`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(admin.status).toBe(501);
    expect(code(admin)).toBe('JWT_NOT_CONFIGURED');
    const viaProxy = await call(`${noJwt.proxyUrl}/one/x`, { headers: { 'x-latchkey-key': jwt } });
    expect(viaProxy.status).toBe(501);
    const tokens = await noJwt.admin.post('/v1/tokens', { integrations: ['one'], origins: ['https://a.example.com'] });
    expect(tokens.status).toBe(501);
    expect(code(tokens)).toBe('JWT_NOT_CONFIGURED');
  });
});

describe('widget tokens', () => {
  const origin = 'https://app.example.com';
  let token: string;

  beforeAll(async () => {
    const res = await lk.admin.post('/v1/tokens', { integrations: ['one'], origins: [origin], ttlSeconds: 120 });
    expect(res.status).toBe(201);
    token = res.json.token;
    expect(Date.parse(res.json.expiresAt) - Date.now()).toBeGreaterThan(100_000);
  });

  it('is used from its origin: upstream gets the real credential, the answer carries CORS headers', async () => {
    const res = await proxy('one', { 'x-latchkey-key': token, origin });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(origin);
    expect(up.seen.at(-1)!.headers.authorization).toBe('Bearer one-upstream-token');
    expect(up.seen.at(-1)!.headers['x-latchkey-key']).toBeUndefined();
  });

  it('from another origin, or none: 403 ORIGIN_NOT_ALLOWED', async () => {
    const attempts: Array<Record<string, string>> = [{ 'x-latchkey-key': token, origin: 'https://evil.example.com' }, { 'x-latchkey-key': token }];
    for (const headers of attempts) {
      const res = await proxy('one', headers);
      expect(res.status).toBe(403);
      expect(code(res)).toBe('ORIGIN_NOT_ALLOWED');
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('outside its integrations: 403 INTEGRATION_NOT_ALLOWED; on an admin route: 403 FORBIDDEN', async () => {
    const res = await proxy('two', { 'x-latchkey-key': token, origin });
    expect(code(res)).toBe('INTEGRATION_NOT_ALLOWED');
    const admin = await call(`${lk.adminUrl}/v1/integrations`, { headers: { authorization: `Bearer ${token}` } });
    expect(admin.status).toBe(403);
    expect(code(admin)).toBe('FORBIDDEN');
  });

  it('a wrong signature and an expired token: 401 INVALID_TOKEN', async () => {
    const secret = new TextEncoder().encode(JWT_SECRET);
    const claims = { scope: ['one'], origins: [origin] };
    const wrongKey = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('latchkey').setAudience('latchkey-proxy')
      .setSubject('k').setExpirationTime('10m').sign(new TextEncoder().encode('x'.repeat(40)));
    const expired = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('latchkey').setAudience('latchkey-proxy')
      .setSubject('k').setIssuedAt(Math.floor(Date.now() / 1000) - 120).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret);
    const tampered = `${token.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, scope: ['*'] })).toString('base64url')}.${token.split('.')[2]}`;
    for (const bad of [wrongKey, expired, tampered]) {
      const res = await proxy('one', { 'x-latchkey-key': bad, origin });
      expect(res.status).toBe(401);
      expect(code(res)).toBe('INVALID_TOKEN');
    }
  });

  it('answers CORS preflights for granted origins only, sending nothing upstream', async () => {
    const before = up.seen.length;
    const ok = await call(`${lk.proxyUrl}/one/x`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-latchkey-key, content-type' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe(origin);
    expect(ok.headers['access-control-allow-methods']).toBe('POST');
    expect(ok.headers['access-control-allow-headers']).toBe('x-latchkey-key, content-type');
    const refused = await call(`${lk.proxyUrl}/one/x`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'POST' },
    });
    expect(refused.status).toBe(403);
    expect(code(refused)).toBe('ORIGIN_NOT_ALLOWED');
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
    const otherIntegration = await call(`${lk.proxyUrl}/two/x`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
    expect(otherIntegration.status).toBe(403);
    expect(up.seen.length).toBe(before);
  });

  it('minting: ttl at most 3600; an agent only within its own scope', async () => {
    expect((await lk.admin.post('/v1/tokens', { integrations: ['one'], origins: [origin], ttlSeconds: 3601 })).status).toBe(400);
    expect((await lk.admin.post('/v1/tokens', { integrations: ['one'], origins: ['https://a.example.com/path'] })).status).toBe(400);
    const { key } = await newKey({ name: 'minter', role: 'agent', integrations: ['one'] });
    const agent = adminClient(lk.adminUrl, key);
    expect((await agent.post('/v1/tokens', { integrations: ['one'], origins: [origin] })).status).toBe(201);
    const beyond = await agent.post('/v1/tokens', { integrations: ['two'], origins: [origin] });
    expect(beyond.status).toBe(403);
    expect(code(beyond)).toBe('INTEGRATION_NOT_ALLOWED');
    expect(code(await agent.post('/v1/tokens', { integrations: ['*'], origins: [origin] }))).toBe('INTEGRATION_NOT_ALLOWED');
  });
});

describe('audit', () => {
  it('records a create, a PATCH, a delete and a proxied call, and holds no secret', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'audited', baseUrl: up.url });
    const { authId } = (await lk.admin.post('/v1/integrations/audited/auth', { authType: 'API_KEY', apiKey: { key: 'k', value: 'AUDIT-SECRET-1', position: 'query' } })).json;
    await lk.admin.patch(`/v1/integrations/audited/auth/${authId}`, { apiKey: { value: 'AUDIT-SECRET-2' } });
    expect((await call(`${lk.proxyUrl}/audited/search?k=lk_client&q=QUERY-VALUE`, { headers: { 'x-latchkey-key': lk.adminKey } })).status).toBe(200);
    await lk.admin.delete(`/v1/integrations/audited/auth/${authId}`);

    const res = await lk.admin.get('/v1/audit?integrationId=audited');
    expect(res.status).toBe(200);
    const actions = res.json.data.map((r: { action: string }) => r.action);
    expect(actions).toEqual(['auth.delete', 'proxy.call', 'auth.update', 'auth.create', 'integration.create']);
    const callRow = res.json.data.find((r: { action: string }) => r.action === 'proxy.call');
    expect(callRow).toMatchObject({ keyId: 'bootstrap', authId, method: 'GET', host: '127.0.0.1', status: 200, path: '/search?k=[redacted]&q=[redacted]' });
    expect(typeof callRow.durationMs).toBe('number');
    expect(res.json.data.find((r: { action: string }) => r.action === 'auth.update')).toMatchObject({ method: 'PATCH', status: 200, keyId: 'bootstrap' });

    lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = readFileSync(lk.dbPath);
    for (const v of ['AUDIT-SECRET-1', 'AUDIT-SECRET-2', 'QUERY-VALUE', lk.adminKey, 'one-upstream-token']) {
      expect(bytes.includes(Buffer.from(v)), v).toBe(false);
    }
  });

  it('pages through admin rows and call batches together, newest first, each row once', async () => {
    for (let i = 0; i < 7; i++) await proxy('one', { 'x-latchkey-key': lk.adminKey });
    await lk.admin.patch('/v1/integrations/one', { name: 'One' });
    for (let i = 0; i < 5; i++) await proxy('one', { 'x-latchkey-key': lk.adminKey });
    const all = (await lk.admin.get('/v1/audit?integrationId=one&limit=200')).json.data as Array<{ time: string; action: string }>;
    expect(all.filter((r) => r.action === 'proxy.call').length).toBeGreaterThanOrEqual(12);
    expect(all.map((r) => r.action)).toContain('integration.update');
    const times = all.map((r) => r.time);
    expect([...times].sort().reverse()).toEqual(times);
    const paged: Array<{ time: string; action: string }> = [];
    let cursor: string | null = null;
    do {
      const res = await lk.admin.get(`/v1/audit?integrationId=one&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.json.data.length).toBeLessThanOrEqual(3);
      paged.push(...res.json.data);
      cursor = res.json.nextCursor;
    } while (cursor);
    expect(paged).toEqual(all);
  });

  it('filters by since and pages with limit and cursor', async () => {
    const page1 = await lk.admin.get('/v1/audit?limit=2');
    expect(page1.json.data).toHaveLength(2);
    expect(page1.json.nextCursor).toBeTruthy();
    const page2 = await lk.admin.get(`/v1/audit?limit=2&cursor=${page1.json.nextCursor}`);
    expect(page2.json.data[0].time <= page1.json.data[1].time).toBe(true);
    const future = await lk.admin.get(`/v1/audit?since=${new Date(Date.now() + 60_000).toISOString()}`);
    expect(future.json).toEqual({ data: [], nextCursor: null });
    expect((await lk.admin.get('/v1/audit?since=yesterday')).status).toBe(400);
  });
});

describe('metrics and health', () => {
  const value = (text: string, metric: string) => {
    const line = text.split('\n').find((l) => l.startsWith(metric));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  it('counters move after proxied calls', async () => {
    const series = 'latchkey_proxy_calls_total{integration="two",status_class="2xx"}';
    const before = value((await call(`${lk.adminUrl}/metrics`)).text, series);
    const refused = 'latchkey_injection_failures_total{code="INTEGRATION_NOT_ALLOWED"}';
    const refusedBefore = value((await call(`${lk.adminUrl}/metrics`)).text, refused);
    for (let i = 0; i < 3; i++) await proxy('two', { 'x-latchkey-key': lk.adminKey });
    const { key: scoped } = await newKey({ name: 'metrics', role: 'agent', integrations: ['one'] });
    expect((await proxy('two', { 'x-latchkey-key': scoped })).status).toBe(403);
    const text = (await call(`${lk.adminUrl}/metrics`)).text;
    expect(value(text, series)).toBe(before + 3);
    expect(value(text, refused)).toBe(refusedBefore + 1);
    expect(value(text, 'latchkey_upstream_latency_seconds_count{integration="two"}')).toBeGreaterThanOrEqual(3);
    expect(text).toContain('latchkey_upstream_latency_seconds_bucket');
    expect(text).toMatch(/latchkey_admin_requests_total\{method="POST",route="\/v1\/integrations",status_class="2xx"\} \d+/);
    await proxy('no-such-integration', { 'x-latchkey-key': lk.adminKey });
    expect((await call(`${lk.adminUrl}/metrics`)).text).not.toContain('no-such-integration');
  });

  it('healthz and readyz', async () => {
    expect((await call(`${lk.adminUrl}/healthz`)).json).toEqual({ status: 'ok' });
    expect((await call(`${lk.adminUrl}/readyz`)).json).toEqual({ status: 'ready' });
  });
});

describe('audit retention', () => {
  it('removes rows older than the retention period and keeps the rest', async () => {
    const { AuditLog } = await import('../../src/audit.js');
    const { auditTimeOf } = await import('../../src/store/audit.js');
    const { createLogger } = await import('../../src/log.js');
    const row = (daysAgo: number, action: string) => ({
      time: auditTimeOf(Date.now() - daysAgo * 86_400_000), requestId: null, keyId: null, action, integrationId: 'retention',
      authId: null, method: null, host: null, path: null, status: null, durationMs: null,
    });
    lk.store.audit.insertMany([row(40, 'old'), row(10, 'recent')]);
    const { auditTuple } = await import('../../src/store/audit.js');
    for (const [days, action] of [[41, 'old call'], [11, 'recent call']] as const) {
      const r = row(days, action);
      lk.store.audit.insertCallBatch(JSON.stringify([auditTuple(r)]), r.time, r.time);
    }
    const audit = new AuditLog(lk.store, lk.dbPath, 30, createLogger('silent'));
    await audit.close();
    const left = lk.store.audit.list({ integrationId: 'retention', limit: 10, after: null }).data.map((r) => r.action);
    expect(left).toEqual(['recent', 'recent call']);
  });
});

describe('audit batches', () => {
  it('queued calls reach the trail intact: non-ASCII text, quotes, a batch of ~1 MiB, in the writer thread and without it', async () => {
    const { AuditLog } = await import('../../src/audit.js');
    const { auditTime } = await import('../../src/store/audit.js');
    const { createLogger } = await import('../../src/log.js');
    // Paths of 512 characters with two- to four-byte characters (and U+2028): 450 rows are ~1 MiB.
    const paths = ['/é'.repeat(256), '/€\u2028'.repeat(170) + '/x', '/🔑'.repeat(170) + '/ok', `/"quoted"\\${'a'.repeat(500)}`];
    const entry = (integrationId: string, n: number) => ({
      time: auditTime(), requestId: `r${n}`, keyId: 'k', action: 'proxy.call', integrationId,
      authId: null, method: 'GET', host: 'h', path: paths[n % paths.length] as string, status: 200, durationMs: n,
    });
    for (const [name, killed] of [['bytes-thread', false], ['bytes-main', true]] as const) {
      const audit = new AuditLog(lk.store, lk.dbPath, 30, createLogger('silent'));
      if (killed) await audit.killWriter();
      for (let n = 0; n < 450; n++) audit.call(entry(name, n));
      await audit.synced();
      const rows = lk.store.audit.list({ integrationId: name, limit: 500, after: null }).data;
      expect(rows).toHaveLength(450);
      const byRequest = new Map(rows.map((r) => [r.requestId, r]));
      for (let n = 0; n < 450; n++) expect(byRequest.get(`r${n}`)).toMatchObject({ path: paths[n % paths.length], durationMs: n });
      await audit.close();
    }
  });
});

describe('audit writer thread', () => {
  it('if it dies, rows are written by the main thread and reads do not hang', async () => {
    const { AuditLog } = await import('../../src/audit.js');
    const { auditTime } = await import('../../src/store/audit.js');
    const { createLogger } = await import('../../src/log.js');
    const audit = new AuditLog(lk.store, lk.dbPath, 30, createLogger('silent'));
    await audit.killWriter();
    audit.call({
      time: auditTime(), requestId: 'r', keyId: 'k', action: 'proxy.call', integrationId: 'after-crash',
      authId: null, method: 'GET', host: 'h', path: '/', status: 200, durationMs: 1,
    });
    await audit.synced();
    expect(lk.store.audit.list({ integrationId: 'after-crash', limit: 5, after: null }).data).toHaveLength(1);
    await audit.close();
  });
});
