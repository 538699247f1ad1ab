import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { call, type Reply } from '../helpers/http.js';
import { CSP, SESSION_COOKIE } from '../../src/console/server.js';

let lk: TestLatchkey;

beforeAll(async () => {
  lk = await startLatchkey();
});
afterAll(async () => lk.close());
afterEach(() => vi.useRealTimers());

interface Signed {
  cookie: string;
  csrf: string;
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

async function post(path: string, fields: Record<string, string>, headers: Record<string, string>): Promise<Reply> {
  return call(`${lk.adminUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: form(fields),
  });
}

const get = (path: string, cookie?: string) => call(`${lk.adminUrl}${path}`, { headers: cookie ? { cookie } : {} });

async function signIn(key = lk.adminKey): Promise<Signed> {
  const res = await post('/console/sign-in', { key }, { origin: lk.adminUrl });
  expect(res.status).toBe(303);
  const setCookie = String(res.headers['set-cookie']);
  const cookie = setCookie.split(';')[0] as string;
  const page = await get('/console/integrations', cookie);
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
  expect(csrf.length).toBeGreaterThan(20);
  return { cookie, csrf };
}

const integrationIds = async (): Promise<string[]> =>
  ((await lk.admin.get('/v1/integrations?limit=200')).json.data as Array<{ integrationId: string }>).map((i) => i.integrationId);

describe('console sign-in', () => {
  it('sets an HttpOnly, SameSite=Strict, expiring cookie holding a random id, not the key', async () => {
    const res = await post('/console/sign-in', { key: lk.adminKey }, { origin: lk.adminUrl });
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=(3599|3600)$`));
    expect(cookie).not.toContain(lk.adminKey);
    expect(res.headers.location).toBe('/console/integrations');
  });

  it('refuses an unknown key and an agent key', async () => {
    const wrong = await post('/console/sign-in', { key: `lk_${'x'.repeat(43)}` }, { origin: lk.adminUrl });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    const agent = await lk.admin.post('/v1/api-keys', { name: 'a', role: 'agent', integrations: ['*'] });
    const refused = await post('/console/sign-in', { key: agent.json.key }, { origin: lk.adminUrl });
    expect(refused.status).toBe(403);
    expect(refused.text).toContain('not an admin key');
  });

  it('pages without a session lead to sign-in; their JSON answers 401', async () => {
    const page = await get('/console/keys');
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/console/sign-in');
    const json = await get('/console/audit.json');
    expect(json.status).toBe(401);
    expect(json.json.error.code).toBe('AUTH_REQUIRED');
  });
});

describe('state-changing requests', () => {
  it('a cross-origin POST carrying the session cookie and a valid CSRF token is refused, and changes nothing', async () => {
    const s = await signIn();
    const before = await integrationIds();
    const res = await post('/console/integrations', { _csrf: s.csrf, integrationId: 'evil', baseUrl: 'https://evil.example' }, { cookie: s.cookie, origin: 'http://evil.example' });
    expect(res.status).toBe(403);
    expect(res.json.error.code).toBe('FORBIDDEN');
    // A Referer from elsewhere, or neither header, is refused as well.
    const referer = await post('/console/integrations', { _csrf: s.csrf, integrationId: 'evil', baseUrl: 'https://evil.example' }, { cookie: s.cookie, referer: 'http://evil.example/page' });
    expect(referer.status).toBe(403);
    const none = await post('/console/integrations', { _csrf: s.csrf, integrationId: 'evil', baseUrl: 'https://evil.example' }, { cookie: s.cookie });
    expect(none.status).toBe(403);
    const signOut = await post('/console/sign-out', { _csrf: s.csrf }, { cookie: s.cookie, origin: 'http://evil.example' });
    expect(signOut.status).toBe(403);
    expect(await integrationIds()).toEqual(before);
  });

  it('a same-origin POST without the CSRF token is refused; with it, it goes through the admin API', async () => {
    const s = await signIn();
    const missing = await post('/console/integrations', { integrationId: 'csrf1', baseUrl: 'https://a.example' }, { cookie: s.cookie, origin: lk.adminUrl });
    expect(missing.status).toBe(403);
    const stale = await post('/console/integrations', { _csrf: 'x'.repeat(43), integrationId: 'csrf1', baseUrl: 'https://a.example' }, { cookie: s.cookie, origin: lk.adminUrl });
    expect(stale.status).toBe(403);
    expect(await integrationIds()).not.toContain('csrf1');
    const ok = await post('/console/integrations', { _csrf: s.csrf, integrationId: 'csrf1', baseUrl: 'https://a.example' }, { cookie: s.cookie, origin: lk.adminUrl });
    expect(ok.status).toBe(303);
    expect(await integrationIds()).toContain('csrf1');
    // The admin API's own validation answers the console too (no second copy of it).
    const bad = await post('/console/integrations', { _csrf: s.csrf, integrationId: 'csrf2', baseUrl: 'ftp://a.example' }, { cookie: s.cookie, origin: lk.adminUrl });
    expect(bad.status).toBe(303);
    const shown = await get('/console/integrations', s.cookie);
    expect(shown.text).toContain('baseUrl: ');
    expect(shown.text).toContain('VALIDATION_ERROR');
  });

  it('the console header that carries sessions into the admin API is useless from the network', async () => {
    const s = await signIn();
    const sid = s.cookie.split('=')[1] as string;
    const res = await call(`${lk.adminUrl}/v1/integrations`, { headers: { 'x-latchkey-console': `guess.${sid}` } });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('INVALID_AUTH_FORMAT');
    // A session cookie is not an admin API credential either.
    const cookie = await call(`${lk.adminUrl}/v1/integrations`, { headers: { cookie: s.cookie } });
    expect(cookie.status).toBe(401);
  });
});

describe('session lifetime', () => {
  it('ends console.sessionMinutes (60) after sign-in', async () => {
    const s = await signIn();
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    vi.setSystemTime(Date.now() + 59 * 60_000);
    expect((await get('/console/keys', s.cookie)).status).toBe(200);
    vi.setSystemTime(Date.now() + 2 * 60_000);
    const after = await get('/console/keys', s.cookie);
    expect(after.status).toBe(303);
    expect(after.headers.location).toBe('/console/sign-in');
    vi.useRealTimers();
    // Gone for good, not only while the clock was ahead.
    expect((await get('/console/keys', s.cookie)).status).toBe(303);
  });

  it('ends at once when the key behind it is revoked', async () => {
    const made = await lk.admin.post('/v1/api-keys', { name: 'person', role: 'admin' });
    const s = await signIn(made.json.key);
    expect((await get('/console/keys', s.cookie)).status).toBe(200);
    expect((await lk.admin.delete(`/v1/api-keys/${made.json.keyId}`)).status).toBe(204);
    expect((await get('/console/keys', s.cookie)).headers.location).toBe('/console/sign-in');
    expect((await get('/console/audit.json', s.cookie)).status).toBe(401);
  });

  it('sign-out ends the session on the server, not only the cookie', async () => {
    const s = await signIn();
    const out = await post('/console/sign-out', { _csrf: s.csrf }, { cookie: s.cookie, origin: lk.adminUrl });
    expect(out.status).toBe(303);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await get('/console/keys', s.cookie)).status).toBe(303);
  });
});

describe('every console page', () => {
  it('is served with the strict CSP and without inline scripts or styles', async () => {
    const s = await signIn();
    for (const path of ['/console/sign-in', '/console/integrations', '/console/integrations/csrf1', '/console/catalog', '/console/catalog/github', '/console/keys', '/console/tokens', '/console/audit', '/console/metrics', '/console/api']) {
      const res = await get(path, path === '/console/sign-in' ? undefined : s.cookie);
      expect(res.status, path).toBe(200);
      expect(res.headers['content-security-policy'], path).toBe(CSP);
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.text).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
      expect(res.text).not.toMatch(/\sstyle=|<style|\son[a-z]+=/i);
    }
    expect(CSP).toContain("default-src 'self'; script-src 'self'; style-src 'self'");
    expect(CSP).toContain("frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
  });
});

describe('no stored secret on any console page', () => {
  it('records of every type, rotated through the console, never show their secrets', async () => {
    const SECRETS = ['tok_CONSOLELEAK_1a2b3c', 'user_CONSOLELEAK_4d5e', 'pw_CONSOLELEAK_6f7a8b', 'key_CONSOLELEAK_9c0d1e', 'qkey_CONSOLELEAK_2f3a', 'tok_CONSOLELEAK_rotated_77'];
    const [token, username, password, apiKey, queryKey, rotated] = SECRETS as [string, string, string, string, string, string];
    await lk.admin.post('/v1/integrations', { integrationId: 'leaky', baseUrl: 'https://leaky.example.com' });
    const bearer = await lk.admin.post('/v1/integrations/leaky/auth', { authType: 'BEARER_TOKEN', token });
    await lk.admin.post('/v1/integrations/leaky/auth', { authType: 'BASIC_AUTH', username, password });
    await lk.admin.post('/v1/integrations/leaky/auth', { authType: 'API_KEY', apiKey: { key: 'X-Key', value: apiKey } });
    await lk.admin.post('/v1/integrations/leaky/auth', { authType: 'API_KEY', apiKey: { key: 'k', value: queryKey, position: 'query' } });
    const s = await signIn();
    // Rotate the bearer token from the console; an empty secret field elsewhere leaves it as it was.
    const rotate = await post(`/console/integrations/leaky/auth/${bearer.json.authId}`, { _csrf: s.csrf, token: rotated, headers: '' }, { cookie: s.cookie, origin: lk.adminUrl });
    expect(rotate.status).toBe(303);
    const seen: string[] = [];
    for (const path of ['/console/integrations', '/console/integrations/leaky', '/console/audit', '/console/audit.json', '/console/metrics', '/console/keys', '/console/catalog']) {
      const res = await get(path, s.cookie);
      expect(res.status, path).toBe(200);
      seen.push(res.text);
    }
    const all = seen.join('\n');
    expect(all).toContain('Rotate or edit');
    expect(all).toContain('auth.update');
    for (const secret of SECRETS) expect(all).not.toContain(secret);
    // The rotation did happen: the record was updated.
    const recs = (await lk.admin.get('/v1/integrations/leaky/auth')).json.data as Array<{ authId: string; createdAt: string; updatedAt: string }>;
    const b = recs.find((r) => r.authId === bearer.json.authId);
    expect(b && b.updatedAt > b.createdAt).toBe(true);
  });
});

describe('which origins may send console forms', () => {
  it('the listener’s own address and its loopback names, plus console.origins; nothing else', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpDir } = await import('../helpers/tmp.js');
    const dir = tmpDir();
    const cfg = join(dir.path, 'config.json');
    writeFileSync(cfg, JSON.stringify({ console: { sessionMinutes: 5, origins: ['https://console.example.com'] } }));
    const other = await startLatchkey({ LATCHKEY_CONFIG: cfg }, dir.path);
    const port = new URL(other.adminUrl).port;
    const signInFrom = (origin: string) =>
      call(`${other.adminUrl}/console/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
        body: form({ key: other.adminKey }),
      });
    for (const ok of [other.adminUrl, `http://localhost:${port}`, `http://[::1]:${port}`, 'https://console.example.com']) {
      const res = await signInFrom(ok);
      expect(res.status, ok).toBe(303);
      // console.sessionMinutes sets the cookie's life.
      expect(String(res.headers['set-cookie'])).toMatch(/Max-Age=(299|300);?/);
    }
    for (const bad of [`http://localhost:${Number(port) + 1}`, 'https://console.example.com:444', 'http://evil.example', 'null']) {
      expect((await signInFrom(bad)).status, bad).toBe(403);
    }
    await other.close();
    dir.cleanup();
  });
});
