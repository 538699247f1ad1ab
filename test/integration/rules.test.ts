import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { basic, call, viaForwardProxy, type Reply } from '../helpers/http.js';
import { runCli } from '../helpers/child.js';

let lk: TestLatchkey;
let up: Upstream;
const ORIGIN = 'https://app.example.com';

/** A read-only policy on one organisation's repositories. */
const READ_ACME = [{ integration: 'gh', methods: ['GET'], paths: ['/repos/acme/**'] }];

beforeAll(async () => {
  up = await startUpstream();
  lk = await startLatchkey({ LATCHKEY_JWT_SECRET: 'a-test-jwt-secret-of-at-least-32-bytes!!' });
  await lk.admin.post('/v1/integrations', { integrationId: 'gh', baseUrl: `${up.url}/api` });
  await lk.admin.post('/v1/integrations/gh/auth', { authType: 'BEARER_TOKEN', token: 'gh-upstream-token' });
  await lk.admin.post('/v1/integrations', { integrationId: 'slack', baseUrl: `${up.url}/slack` });
  await lk.admin.post('/v1/integrations/slack/auth', { authType: 'BEARER_TOKEN', token: 'xoxb-slack-token' });
});
afterAll(async () => {
  await up.close();
  await lk.close();
});

async function newKey(body: object): Promise<{ key: string; keyId: string; json: Reply['json'] }> {
  const res = await lk.admin.post('/v1/api-keys', { name: 'agent', role: 'agent', integrations: ['gh', 'slack'], ...body });
  expect(res.status).toBe(201);
  return { key: res.json.key, keyId: res.json.keyId, json: res.json };
}

type Mode = 'path' | 'header' | 'forward';

/** A call to integration gh at `path` (below its base URL) in one tagging mode; the request line is sent as given. */
function tagged(mode: Mode, key: string, path: string, method = 'GET', extra: Record<string, string> = {}): Promise<Reply> {
  if (mode === 'path') return viaForwardProxy(lk.proxyUrl, `/gh${path}`, { method, headers: { 'x-latchkey-key': key, ...extra } });
  if (mode === 'header') {
    return viaForwardProxy(lk.proxyUrl, path, { method, headers: { 'x-latchkey-integration': 'gh', 'x-latchkey-key': key, ...extra } });
  }
  return viaForwardProxy(lk.proxyUrl, `http://${up.host}/api${path}`, { method, headers: { 'proxy-authorization': basic('gh', key), ...extra } });
}

/** Runs `f` and says which upstream requests it caused. */
async function sent<T>(f: () => Promise<T>): Promise<{ result: T; urls: string[] }> {
  const before = up.seen.length;
  const result = await f();
  return { result, urls: up.seen.slice(before).map((s) => `${s.method} ${s.url}`) };
}

describe('request rules', () => {
  it('are validated, naming the field, and nothing is stored', async () => {
    const before = (await lk.admin.get('/v1/api-keys?limit=200')).json.data.length;
    const bad = await lk.admin.post('/v1/api-keys', {
      name: 'x',
      role: 'agent',
      integrations: ['gh'],
      rules: [{ integration: 'gh', paths: ['/ok/**', 'relative'] }],
      rateLimit: { requests: 0, perSeconds: 60 },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('VALIDATION_ERROR');
    expect(bad.json.error.details.map((d: { field: string }) => d.field)).toEqual(['rules[0].paths[1]', 'rateLimit.requests']);
    expect((await lk.admin.get('/v1/api-keys?limit=200')).json.data.length).toBe(before);
  });

  it('are shown in key responses', async () => {
    const { keyId, json } = await newKey({ rules: READ_ACME, rateLimit: { requests: 100, perSeconds: 60 } });
    expect(json.rules).toEqual(READ_ACME);
    expect(json.rateLimit).toEqual({ requests: 100, perSeconds: 60 });
    const listed = (await lk.admin.get('/v1/api-keys?limit=200')).json.data.find((k: { keyId: string }) => k.keyId === keyId);
    expect(listed.rules).toEqual(READ_ACME);
    const plain = await newKey({});
    expect(plain.json.rules).toBeNull();
    expect(plain.json.rateLimit).toBeNull();
  });

  describe.each<Mode>(['path', 'header', 'forward'])('%s mode', (mode) => {
    let key: string;
    beforeAll(async () => {
      ({ key } = await newKey({ rules: READ_ACME }));
    });

    it('an allowed call goes out', async () => {
      const { result, urls } = await sent(() => tagged(mode, key, '/repos/acme/widgets/issues?state=open'));
      expect(result.status).toBe(200);
      expect(urls).toEqual(['GET /api/repos/acme/widgets/issues?state=open']);
    });

    it.each([
      ['GET', '/repos/other/widgets'],
      ['DELETE', '/repos/acme/widgets'],
      ['POST', '/repos/acme/widgets/issues'],
      ['GET', '/user'],
    ])('%s %s is refused with 403 REQUEST_NOT_ALLOWED and nothing is sent', async (method, path) => {
      const { result, urls } = await sent(() => tagged(mode, key, path, method));
      expect(result.status).toBe(403);
      expect(result.json.error.code).toBe('REQUEST_NOT_ALLOWED');
      expect(result.headers['x-latchkey-error']).toBe('REQUEST_NOT_ALLOWED');
      expect(urls).toEqual([]);
    });

    it.each([
      '/repos/acme/../../admin',
      '/repos/acme/%2e%2e/%2E%2E/admin',
      '/repos/acme/..%2f..%2fadmin',
      '/repos/acme%2f..%2f..%2fadmin',
      '/repos/acme/..%5c..%5cadmin',
      '/repos/acme/.%2e/.%2e/admin',
      '//repos/acme/widgets',
      '/repos//acme/widgets',
    ])('traversal %s cannot reach a refused path', async (path) => {
      const { result, urls } = await sent(() => tagged(mode, key, path));
      expect(result.status).toBe(403);
      expect(result.json.error.code).toBe('REQUEST_NOT_ALLOWED');
      expect(urls).toEqual([]);
    });

    it('a path that resolves inside the allowed tree is sent resolved', async () => {
      const { result, urls } = await sent(() => tagged(mode, key, '/repos/acme/x/../widgets/%2e/issues'));
      expect(result.status).toBe(200);
      expect(urls).toEqual(['GET /api/repos/acme/widgets/issues']);
    });
  });

  it('a forward-mode call outside the base URL path matches no path rule', async () => {
    const { key } = await newKey({ rules: READ_ACME });
    const { result, urls } = await sent(() =>
      viaForwardProxy(lk.proxyUrl, `http://${up.host}/repos/acme/x`, { headers: { 'proxy-authorization': basic('gh', key) } }),
    );
    expect(result.status).toBe(403);
    expect(urls).toEqual([]);
  });

  it('method case tricks never get a refused method through', async () => {
    const { key } = await newKey({ rules: READ_ACME });
    for (const method of ['delete', 'Delete', 'dElEtE', 'DELETE']) {
      const { result, urls } = await sent(
        () =>
          new Promise<string>((resolve) => {
            const sock = net.connect(Number(new URL(lk.proxyUrl).port), '127.0.0.1', () =>
              sock.write(`${method} /gh/repos/acme/x HTTP/1.1\r\nHost: x\r\nX-Latchkey-Key: ${key}\r\nConnection: close\r\n\r\n`),
            );
            let data = '';
            sock.on('data', (d: Buffer) => (data += d.toString()));
            sock.on('close', () => resolve(data.split('\r\n')[0] as string));
          }),
      );
      // A non-canonical spelling is refused before the pipeline (400 or 405); the canonical one meets the rule (403).
      expect(result).toMatch(method === 'DELETE' ? /^HTTP\/1\.1 403 / : /^HTTP\/1\.1 (400|405) /);
      expect(urls).toEqual([]);
    }
  });

  it('PATCHed rules apply to the next call, and null removes them', async () => {
    const { key, keyId } = await newKey({ rules: READ_ACME });
    expect((await tagged('path', key, '/repos/acme/x')).status).toBe(200);
    const patched = await lk.admin.patch(`/v1/api-keys/${keyId}`, { rules: [{ integration: 'gh', paths: ['/users/*'] }], name: 'renamed' });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ name: 'renamed', rules: [{ integration: 'gh', paths: ['/users/*'] }] });
    expect((await tagged('path', key, '/repos/acme/x')).status).toBe(403);
    expect((await tagged('path', key, '/users/me', 'POST')).status).toBe(200);
    expect((await lk.admin.patch(`/v1/api-keys/${keyId}`, { rules: null })).json.rules).toBeNull();
    expect((await tagged('path', key, '/anything/at/all', 'DELETE')).status).toBe(200);
  });

  it('PATCH refuses role and scope changes and unknown keys', async () => {
    const { keyId } = await newKey({});
    const scope = await lk.admin.patch(`/v1/api-keys/${keyId}`, { integrations: ['*'] });
    expect(scope.status).toBe(400);
    expect(scope.json.error.details.map((d: { field: string }) => d.field)).toEqual(['integrations']);
    const res = await lk.admin.patch(`/v1/api-keys/${keyId}`, { rules: [{ integration: 'gh', methods: [] }] });
    expect(res.status).toBe(400);
    expect(res.json.error.details.map((d: { field: string }) => d.field)).toEqual(['rules[0].methods']);
    expect((await lk.admin.patch('/v1/api-keys/key_nope', { name: 'x' })).status).toBe(404);
  });

  it('the audit row carries the rule outcome', async () => {
    const { key, keyId } = await newKey({ rules: [{ integration: 'slack' }, ...READ_ACME] });
    await tagged('path', key, '/repos/acme/x');
    await tagged('path', key, '/repos/other/x');
    const rows = (await lk.admin.get('/v1/audit?integrationId=gh&limit=200')).json.data.filter(
      (r: { keyId: string; action: string }) => r.keyId === keyId && r.action === 'proxy.call',
    );
    expect(rows.map((r: { status: number; rule: string }) => [r.status, r.rule])).toEqual([
      [403, 'none'],
      [200, 'rules[1]'],
    ]);
  });

  it('latchkey keys update changes rules and rate limit for the running proxy', async () => {
    const { key, keyId } = await newKey({});
    expect((await tagged('path', key, '/repos/other/x')).status).toBe(200);
    const env = { LATCHKEY_DB: lk.dbPath, LATCHKEY_MASTER_KEY_FILE: join(lk.dir, 'master.key') };
    const res = await runCli(['keys', 'update', keyId, '--rules', JSON.stringify(READ_ACME), '--rate-limit', '50/60'], env);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ keyId, rules: READ_ACME, rateLimit: { requests: 50, perSeconds: 60 } });
    expect((await tagged('path', key, '/repos/other/x')).status).toBe(403);
    const bad = await runCli(['keys', 'update', keyId, '--rules', '[{"integration":"gh","paths":["x"]}]'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('rules[0].paths[0]');
  });
});

describe('widget tokens from a ruled key', () => {
  it('cannot exceed the key, and follow its PATCHed rules', async () => {
    const { key, keyId } = await newKey({ rules: READ_ACME });
    const minted = await call(`${lk.adminUrl}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ integrations: ['gh'], origins: [ORIGIN] }),
    });
    expect(minted.status).toBe(201);
    const token = minted.json.token as string;
    const widget = (path: string, method = 'GET') =>
      sent(() => call(`${lk.proxyUrl}/gh${path}`, { method, headers: { 'x-latchkey-key': token, origin: ORIGIN } }));
    expect((await widget('/repos/acme/x')).result.status).toBe(200);
    const refused = await widget('/repos/other/x');
    expect(refused.result.status).toBe(403);
    expect(refused.result.json.error.code).toBe('REQUEST_NOT_ALLOWED');
    expect(refused.urls).toEqual([]);
    expect((await widget('/repos/acme/x', 'DELETE')).result.status).toBe(403);
    await lk.admin.patch(`/v1/api-keys/${keyId}`, { rules: [{ integration: 'gh', paths: ['/users/**'] }] });
    expect((await widget('/repos/acme/x')).result.status).toBe(403);
    expect((await widget('/users/me')).result.status).toBe(200);
  });

  it('share the key’s rate limit', async () => {
    const { key } = await newKey({ rateLimit: { requests: 2, perSeconds: 600 } });
    const minted = await call(`${lk.adminUrl}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ integrations: ['gh'], origins: [ORIGIN] }),
    });
    expect((await tagged('path', key, '/x')).status).toBe(200);
    const viaToken = await call(`${lk.proxyUrl}/gh/x`, { headers: { 'x-latchkey-key': minted.json.token, origin: ORIGIN } });
    expect(viaToken.status).toBe(200);
    const third = await call(`${lk.proxyUrl}/gh/x`, { headers: { 'x-latchkey-key': minted.json.token, origin: ORIGIN } });
    expect(third.status).toBe(429);
    expect((await tagged('path', key, '/x')).status).toBe(429);
  });
});

describe('rate limits', () => {
  it('the N+1th call in the window is 429 RATE_LIMITED with a sane Retry-After; nothing is sent; other keys are unaffected', async () => {
    const limited = await newKey({ rateLimit: { requests: 3, perSeconds: 600 } });
    const other = await newKey({ rateLimit: { requests: 3, perSeconds: 600 } });
    for (let i = 0; i < 3; i++) expect((await tagged('path', limited.key, '/x')).status).toBe(200);
    for (const mode of ['path', 'header', 'forward'] as const) {
      const { result, urls } = await sent(() => tagged(mode, limited.key, '/x'));
      expect(result.status).toBe(429);
      expect(result.json.error.code).toBe('RATE_LIMITED');
      expect(result.headers['x-latchkey-error']).toBe('RATE_LIMITED');
      const retryAfter = Number(result.headers['retry-after']);
      expect(Number.isInteger(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(600);
      expect(urls).toEqual([]);
    }
    expect((await tagged('path', other.key, '/x')).status).toBe(200);
    expect((await tagged('path', lk.adminKey, '/x')).status).toBe(200);
  });

  it('the window recovers', async () => {
    const { key } = await newKey({ rateLimit: { requests: 1, perSeconds: 2 } });
    expect((await tagged('path', key, '/x')).status).toBe(200);
    const refused = await tagged('path', key, '/x');
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);
    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    expect((await tagged('path', key, '/x')).status).toBe(200);
  });

  it('a refused rule does not use the budget', async () => {
    const { key } = await newKey({ rules: READ_ACME, rateLimit: { requests: 1, perSeconds: 600 } });
    expect((await tagged('path', key, '/nope')).status).toBe(403);
    expect((await tagged('path', key, '/repos/acme/x')).status).toBe(200);
    expect((await tagged('path', key, '/repos/acme/x')).status).toBe(429);
  });
});
