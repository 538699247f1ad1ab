import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';

let lk: TestLatchkey;
const base = '/v1/integrations/svc/auth';

beforeAll(async () => {
  lk = await startLatchkey();
  await lk.admin.post('/v1/integrations', { integrationId: 'svc', baseUrl: 'https://svc.example.com' });
});
afterAll(async () => {
  await lk.close();
});

const create = (body: unknown) => lk.admin.post(base, body);
const fields = (res: { json: { error: { details: Array<{ field: string }> } } }) => res.json.error.details.map((d) => d.field);

describe('create', () => {
  it('creates each auth type and never returns a secret', async () => {
    const bodies = [
      { authType: 'BEARER_TOKEN', token: 'tok-secret-1' },
      { authType: 'BASIC_AUTH', username: 'user-secret-1', password: 'pass-secret-1' },
      { authType: 'API_KEY', apiKey: { key: 'X-Api-Key', value: 'key-secret-1' } },
      { authType: 'API_KEY', apiKey: { key: 'api_key', value: 'key-secret-2', position: 'query' } },
      { authType: 'NO_AUTH' },
    ];
    for (const body of bodies) {
      const res = await create(body);
      expect(res.status).toBe(201);
      expect(res.json.authId).toMatch(/^auth_[0-9A-Za-z]{16}$/);
      expect(res.json).toMatchObject({ integrationId: 'svc', authType: body.authType, headers: [] });
      expect(res.text).not.toMatch(/secret/);
    }
  });

  it('answers apiKey without its value, position defaulting to header', async () => {
    const res = await create({ authType: 'API_KEY', apiKey: { key: 'X-Key', value: 'v-secret' } });
    expect(res.json.apiKey).toEqual({ key: 'X-Key', position: 'header' });
  });

  it('accepts authType in any case and answers upper case', async () => {
    const res = await create({ authType: 'bearer_token', token: 't' });
    expect(res.status).toBe(201);
    expect(res.json.authType).toBe('BEARER_TOKEN');
  });

  it('ignores and does not store credential fields of another type', async () => {
    const res = await create({
      authType: 'BEARER_TOKEN',
      token: 'only-this',
      username: 'ignored-user',
      password: 'ignored-pass',
      apiKey: { key: 'X-Ignored', value: 'ignored-value' },
    });
    expect(res.status).toBe(201);
    expect(res.json.apiKey).toBeUndefined();
    const secrets = lk.store.authRecords.openSecrets('svc', res.json.authId);
    expect(secrets).toEqual({ token: 'only-this' });
  });

  it.each([
    [{ authType: 'BEARER_TOKEN' }, 'token'],
    [{ authType: 'BASIC_AUTH', username: 'u' }, 'password'],
    [{ authType: 'BASIC_AUTH', password: 'p' }, 'username'],
    [{ authType: 'API_KEY' }, 'apiKey'],
    [{ authType: 'API_KEY', apiKey: { key: 'X-K' } }, 'apiKey.value'],
    [{ authType: 'API_KEY', apiKey: { key: 'bad key', value: 'v' } }, 'apiKey.key'],
    [{ authType: 'API_KEY', apiKey: { key: 'k', value: 'v', position: 'body' } }, 'apiKey.position'],
    [{ authType: 'OAUTH2' }, 'authType'],
    [{}, 'authType'],
    [{ authType: 'BASIC_AUTH', username: 'u'.repeat(257), password: 'p' }, 'username'],
    [{ authType: 'BASIC_AUTH', username: 'u', password: 'p'.repeat(513) }, 'password'],
    [{ authType: 'BEARER_TOKEN', token: 't'.repeat(8193) }, 'token'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'X-A', value: 'line\r\nbreak' }] }, 'headers[0].value'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'X-A', value: 'nul\u0000' }] }, 'headers[0].value'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'Host', value: 'evil.example.com' }] }, 'headers[0].key'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'Transfer-Encoding', value: 'chunked' }] }, 'headers[0].key'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'Proxy-Authorization', value: 'x' }] }, 'headers[0].key'],
    [{ authType: 'NO_AUTH', headers: [{ key: 'Bad Name', value: 'x' }] }, 'headers[0].key'],
    [{ authType: 'NO_AUTH', headers: Array.from({ length: 51 }, (_, i) => ({ key: `X-H${i}`, value: 'v' })) }, 'headers'],
  ])('rejects %j with 400 naming %s', async (body, field) => {
    const before = lk.store.authRecords.list('svc').length;
    const res = await create(body);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_ERROR');
    expect(fields(res)).toContain(field);
    expect(lk.store.authRecords.list('svc').length).toBe(before);
  });

  it('accepts the limits exactly: username 256, password 512', async () => {
    const res = await create({ authType: 'BASIC_AUTH', username: 'u'.repeat(256), password: 'p'.repeat(512) });
    expect(res.status).toBe(201);
  });

  it('names the limit in the message', async () => {
    const res = await create({ authType: 'BASIC_AUTH', username: 'u', password: 'p'.repeat(513) });
    expect(res.json.error.message).toBe('password: must be at most 512 characters');
  });

  it('404 for an unknown integration', async () => {
    const res = await lk.admin.post('/v1/integrations/nope/auth', { authType: 'NO_AUTH' });
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('NOT_FOUND');
  });
});

describe('get and list', () => {
  it('gets one record and lists them', async () => {
    const created = (await create({ authType: 'NO_AUTH', headers: [{ key: 'X-Request-Source', value: 'latchkey' }] })).json;
    const got = await lk.admin.get(`${base}/${created.authId}`);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(created);
    const list = await lk.admin.get(base);
    expect(list.status).toBe(200);
    expect(list.json.data.map((r: { authId: string }) => r.authId)).toContain(created.authId);
  });

  it('404 for an unknown auth id, or one from another integration', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'other', baseUrl: 'https://o.example.com' });
    const mine = (await create({ authType: 'NO_AUTH' })).json;
    expect((await lk.admin.get(`${base}/auth_doesnotexist00`)).status).toBe(404);
    const cross = await lk.admin.get(`/v1/integrations/other/auth/${mine.authId}`);
    expect(cross.status).toBe(404);
    expect((await lk.admin.get('/v1/integrations/nope/auth')).status).toBe(404);
  });
});

describe('patch', () => {
  it('replaces a token; the rest stays; updatedAt moves forward', async () => {
    const created = (await create({ authType: 'BEARER_TOKEN', token: 'old', headers: [{ key: 'X-A', value: '1' }] })).json;
    const res = await lk.admin.patch(`${base}/${created.authId}`, { token: 'new' });
    expect(res.status).toBe(200);
    expect(res.json.headers).toEqual([{ key: 'X-A', value: '1' }]);
    expect(res.json.updatedAt > created.updatedAt).toBe(true);
    expect(lk.store.authRecords.openSecrets('svc', created.authId)).toEqual({ token: 'new' });
  });

  it('changes username and password independently', async () => {
    const { authId } = (await create({ authType: 'BASIC_AUTH', username: 'u1', password: 'p1' })).json;
    await lk.admin.patch(`${base}/${authId}`, { password: 'p2' });
    expect(lk.store.authRecords.openSecrets('svc', authId)).toEqual({ username: 'u1', password: 'p2' });
    await lk.admin.patch(`${base}/${authId}`, { username: 'u2' });
    expect(lk.store.authRecords.openSecrets('svc', authId)).toEqual({ username: 'u2', password: 'p2' });
  });

  it('changes apiKey key, value and position each on their own', async () => {
    const { authId } = (await create({ authType: 'API_KEY', apiKey: { key: 'X-K', value: 'v1' } })).json;
    const r1 = await lk.admin.patch(`${base}/${authId}`, { apiKey: { position: 'query' } });
    expect(r1.json.apiKey).toEqual({ key: 'X-K', position: 'query' });
    const r2 = await lk.admin.patch(`${base}/${authId}`, { apiKey: { key: 'key' } });
    expect(r2.json.apiKey).toEqual({ key: 'key', position: 'query' });
    await lk.admin.patch(`${base}/${authId}`, { apiKey: { value: 'v2' } });
    expect(lk.store.authRecords.openSecrets('svc', authId)).toEqual({ apiKeyValue: 'v2' });
  });

  it('headers: a list replaces, [] clears, omitted keeps', async () => {
    const { authId } = (await create({ authType: 'NO_AUTH', headers: [{ key: 'X-A', value: '1' }] })).json;
    const replaced = await lk.admin.patch(`${base}/${authId}`, { headers: [{ key: 'X-B', value: '2' }] });
    expect(replaced.json.headers).toEqual([{ key: 'X-B', value: '2' }]);
    const kept = await lk.admin.patch(`${base}/${authId}`, {});
    expect(kept.json.headers).toEqual([{ key: 'X-B', value: '2' }]);
    const cleared = await lk.admin.patch(`${base}/${authId}`, { headers: [] });
    expect(cleared.json.headers).toEqual([]);
  });

  it('refuses a different authType, and accepts the same one in another case', async () => {
    const { authId } = (await create({ authType: 'BEARER_TOKEN', token: 't' })).json;
    const res = await lk.admin.patch(`${base}/${authId}`, { authType: 'BASIC_AUTH', username: 'u', password: 'p' });
    expect(res.status).toBe(400);
    expect(fields(res)).toContain('authType');
    expect((await lk.admin.patch(`${base}/${authId}`, { authType: 'bearer_token' })).status).toBe(200);
    expect(lk.store.authRecords.openSecrets('svc', authId)).toEqual({ token: 't' });
  });

  it('refuses a credential field of another type, changing nothing', async () => {
    const { authId, updatedAt } = (await create({ authType: 'BEARER_TOKEN', token: 't' })).json;
    const res = await lk.admin.patch(`${base}/${authId}`, { password: 'p', token: 'should-not-apply' });
    expect(res.status).toBe(400);
    expect(fields(res)).toEqual(['password']);
    expect(lk.store.authRecords.openSecrets('svc', authId)).toEqual({ token: 't' });
    expect((await lk.admin.get(`${base}/${authId}`)).json.updatedAt).toBe(updatedAt);
  });

  it('validates lengths and headers on PATCH too', async () => {
    const { authId } = (await create({ authType: 'BASIC_AUTH', username: 'u', password: 'p' })).json;
    expect((await lk.admin.patch(`${base}/${authId}`, { password: 'p'.repeat(513) })).status).toBe(400);
    expect((await lk.admin.patch(`${base}/${authId}`, { headers: [{ key: 'Content-Length', value: '1' }] })).status).toBe(400);
    expect((await lk.admin.patch(`${base}/${authId}`, { headers: [{ key: 'X-A', value: 'a\nb' }] })).status).toBe(400);
  });

  it('404 for an unknown record', async () => {
    expect((await lk.admin.patch(`${base}/auth_doesnotexist00`, { token: 'x' })).status).toBe(404);
  });
});

describe('delete', () => {
  it('deletes a record: 204, then 404', async () => {
    const { authId } = (await create({ authType: 'NO_AUTH' })).json;
    expect((await lk.admin.delete(`${base}/${authId}`)).status).toBe(204);
    expect((await lk.admin.get(`${base}/${authId}`)).status).toBe(404);
    expect((await lk.admin.delete(`${base}/${authId}`)).status).toBe(404);
  });
});
