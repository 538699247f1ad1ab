import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { call } from '../helpers/http.js';

let lk: TestLatchkey;
beforeAll(async () => {
  lk = await startLatchkey();
});
afterAll(async () => {
  await lk.close();
});

describe('integrations', () => {
  it('creates with a given id and answers 201 with the record', async () => {
    const res = await lk.admin.post('/v1/integrations', {
      integrationId: 'github',
      name: 'GitHub',
      baseUrl: 'https://api.github.com/',
      headers: [{ key: 'X-GitHub-Api-Version', value: '2022-11-28' }],
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      integrationId: 'github',
      name: 'GitHub',
      baseUrl: 'https://api.github.com',
      allowedHosts: ['api.github.com'],
      headers: [{ key: 'X-GitHub-Api-Version', value: '2022-11-28' }],
    });
    expect(res.json.createdAt).toBe(res.json.updatedAt);
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('generates an intg_ id when none is given', async () => {
    const res = await lk.admin.post('/v1/integrations', { baseUrl: 'https://api.example.com/v1' });
    expect(res.status).toBe(201);
    expect(res.json.integrationId).toMatch(/^intg_[0-9A-Za-z]{16}$/);
  });

  it('refuses a taken id with 409 CONFLICT', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'dup', baseUrl: 'https://a.example.com' });
    const res = await lk.admin.post('/v1/integrations', { integrationId: 'dup', baseUrl: 'https://b.example.com' });
    expect(res.status).toBe(409);
    expect(res.json.error.code).toBe('CONFLICT');
    expect((await lk.admin.get('/v1/integrations/dup')).json.baseUrl).toBe('https://a.example.com');
  });

  it.each([
    [{ integrationId: '-bad', baseUrl: 'https://x.example.com' }, 'integrationId'],
    [{ integrationId: 'a'.repeat(65), baseUrl: 'https://x.example.com' }, 'integrationId'],
    [{ baseUrl: 'ftp://x.example.com' }, 'baseUrl'],
    [{ baseUrl: 'https://user:pw@x.example.com' }, 'baseUrl'],
    [{ baseUrl: 'https://x.example.com/?q=1' }, 'baseUrl'],
    [{ baseUrl: 'https://x.example.com/#f' }, 'baseUrl'],
    [{ baseUrl: 'not a url' }, 'baseUrl'],
    [{}, 'baseUrl'],
    [{ baseUrl: 'https://x.example.com', allowedHosts: ['other.example.com'] }, 'allowedHosts'],
    [{ baseUrl: 'https://x.example.com', allowedHosts: ['x.example.com', 'bad host'] }, 'allowedHosts[1]'],
    [{ baseUrl: 'https://x.example.com', headers: [{ key: 'Host', value: 'evil' }] }, 'headers[0].key'],
    [{ baseUrl: 'https://x.example.com', headers: [{ key: 'X-A', value: 'a\r\nX-B: b' }] }, 'headers[0].value'],
    [{ baseUrl: 'https://x.example.com', surprise: 1 }, 'surprise'],
  ])('rejects %j with 400 VALIDATION_ERROR naming %s', async (body, field) => {
    const res = await lk.admin.post('/v1/integrations', body);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_ERROR');
    expect(res.json.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(res.json.requestId).toBe(res.headers['x-request-id']);
  });

  it('accepts a wildcard subdomain and an explicit port in allowedHosts', async () => {
    const res = await lk.admin.post('/v1/integrations', {
      baseUrl: 'https://api.wild.example.com:8443',
      allowedHosts: ['*.wild.example.com:8443', 'uploads.wild.example.com'],
    });
    expect(res.status).toBe(201);
    expect(res.json.allowedHosts).toEqual(['*.wild.example.com:8443', 'uploads.wild.example.com']);
  });

  it('pages through the list with limit and cursor', async () => {
    for (let i = 0; i < 5; i++) await lk.admin.post('/v1/integrations', { integrationId: `page-${i}`, baseUrl: 'https://p.example.com' });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await lk.admin.get(`/v1/integrations?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.json.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.json.data.map((i: { integrationId: string }) => i.integrationId));
      cursor = res.json.nextCursor;
    } while (cursor);
    expect(seen.filter((s) => s.startsWith('page-'))).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects a bad limit or cursor', async () => {
    expect((await lk.admin.get('/v1/integrations?limit=0')).json.error.code).toBe('VALIDATION_ERROR');
    expect((await lk.admin.get('/v1/integrations?limit=201')).status).toBe(400);
    expect((await lk.admin.get('/v1/integrations?cursor=garbage')).status).toBe(400);
  });

  it('patches only the given fields and moves updatedAt forward', async () => {
    const created = (await lk.admin.post('/v1/integrations', { integrationId: 'patchme', name: 'P', baseUrl: 'https://p1.example.com' })).json;
    const res = await lk.admin.patch('/v1/integrations/patchme', { baseUrl: 'https://p2.example.com/api' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ name: 'P', baseUrl: 'https://p2.example.com/api', allowedHosts: ['p2.example.com'] });
    expect(res.json.updatedAt > created.updatedAt).toBe(true);
    expect(res.json.createdAt).toBe(created.createdAt);
    const renamed = await lk.admin.patch('/v1/integrations/patchme', { integrationId: 'other' });
    expect(renamed.status).toBe(400);
  });

  it('deletes an integration and its auth records', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'gone', baseUrl: 'https://g.example.com' });
    const auth = await lk.admin.post('/v1/integrations/gone/auth', { authType: 'BEARER_TOKEN', token: 't' });
    expect(auth.status).toBe(201);
    expect((await lk.admin.delete('/v1/integrations/gone')).status).toBe(204);
    expect((await lk.admin.get('/v1/integrations/gone')).status).toBe(404);
    expect((await lk.admin.get(`/v1/integrations/gone/auth/${auth.json.authId}`)).status).toBe(404);
    const rows = lk.store.db.prepare('SELECT count(*) AS n FROM auth_records WHERE integration_id = ?').get('gone') as { n: number };
    expect(rows.n).toBe(0);
  });

  it('answers 404 NOT_FOUND for unknown ids on every verb', async () => {
    for (const res of [
      await lk.admin.get('/v1/integrations/nope'),
      await lk.admin.patch('/v1/integrations/nope', { name: 'x' }),
      await lk.admin.delete('/v1/integrations/nope'),
    ]) {
      expect(res.status).toBe(404);
      expect(res.json.error.code).toBe('NOT_FOUND');
    }
  });
});

describe('request handling', () => {
  it('requires a JSON content type: 415', async () => {
    const res = await call(`${lk.adminUrl}/v1/integrations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${lk.adminKey}`, 'content-type': 'text/plain' },
      body: '{"baseUrl":"https://x.example.com"}',
    });
    expect(res.status).toBe(415);
    expect(res.json.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const noType = await call(`${lk.adminUrl}/v1/integrations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${lk.adminKey}` },
    });
    expect(noType.status).toBe(415);
  });

  it('refuses a body over 64 KiB: 413', async () => {
    const res = await lk.admin.post('/v1/integrations', { baseUrl: 'https://x.example.com', name: 'n'.repeat(70_000) });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('refuses invalid JSON: 400 INVALID_JSON', async () => {
    const res = await call(`${lk.adminUrl}/v1/integrations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${lk.adminKey}`, 'content-type': 'application/json' },
      body: '{"baseUrl": ',
    });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('INVALID_JSON');
  });

  it('keeps a caller X-Request-Id and makes one otherwise', async () => {
    const mine = await lk.admin.get('/v1/integrations', { 'x-request-id': 'trace-123' });
    expect(mine.headers['x-request-id']).toBe('trace-123');
    const err = await lk.admin.get('/v1/integrations/nope', { 'x-request-id': 'trace-456' });
    expect(err.json.requestId).toBe('trace-456');
    const made = await lk.admin.get('/v1/integrations');
    expect(made.headers['x-request-id']).toMatch(/^req_/);
  });

  it('serves /healthz and /readyz without a credential', async () => {
    expect((await call(`${lk.adminUrl}/healthz`)).status).toBe(200);
    expect((await call(`${lk.adminUrl}/readyz`)).status).toBe(200);
  });
});

describe('admin credential', () => {
  const path = '/v1/integrations';
  it('missing: 401 AUTH_REQUIRED', async () => {
    const res = await call(`${lk.adminUrl}${path}`);
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('AUTH_REQUIRED');
  });
  it('malformed: 401 INVALID_AUTH_FORMAT', async () => {
    for (const authorization of ['Basic abc', 'Bearer', `Bearer not-a-key`]) {
      const res = await call(`${lk.adminUrl}${path}`, { headers: { authorization } });
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe('INVALID_AUTH_FORMAT');
    }
  });
  it('wrong: 401 INVALID_API_KEY, by Bearer or X-API-Key', async () => {
    const wrong = `lk_${'x'.repeat(43)}`;
    const variants: Array<Record<string, string>> = [{ authorization: `Bearer ${wrong}` }, { 'x-api-key': wrong }];
    for (const headers of variants) {
      const res = await call(`${lk.adminUrl}${path}`, { headers });
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe('INVALID_API_KEY');
    }
  });
  it('the bootstrap key works through X-API-Key too', async () => {
    const res = await call(`${lk.adminUrl}${path}`, { headers: { 'x-api-key': lk.adminKey } });
    expect(res.status).toBe(200);
  });
});
