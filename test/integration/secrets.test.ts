import { readFileSync, existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';

/** Distinctive values, so a hit in a byte search can only be a leak. */
const SECRETS = {
  token: 'tok_LEAKCHECK_7f3a9c2e51d04b8a',
  username: 'user_LEAKCHECK_c91e4d',
  password: 'pw_LEAKCHECK_0a8b7c6d5e',
  apiKey: 'apikey_LEAKCHECK_55aa33bb',
  queryKey: 'qkey_LEAKCHECK_99ff00ee',
  newToken: 'tok_LEAKCHECK_rotated_1234',
};

let lk: TestLatchkey;
const responses: string[] = [];

beforeAll(async () => {
  lk = await startLatchkey({ LATCHKEY_LOG_LEVEL: 'trace' });
  const record = async (p: Promise<{ text: string }>) => {
    const r = await p;
    responses.push(r.text);
    return r as Awaited<typeof p> & { json: { authId: string } };
  };
  await record(lk.admin.post('/v1/integrations', { integrationId: 'leak', baseUrl: 'https://leak.example.com' }));
  const bearer = await record(lk.admin.post('/v1/integrations/leak/auth', { authType: 'BEARER_TOKEN', token: SECRETS.token }));
  await record(lk.admin.post('/v1/integrations/leak/auth', { authType: 'BASIC_AUTH', username: SECRETS.username, password: SECRETS.password }));
  await record(lk.admin.post('/v1/integrations/leak/auth', { authType: 'API_KEY', apiKey: { key: 'X-Key', value: SECRETS.apiKey } }));
  await record(lk.admin.post('/v1/integrations/leak/auth', { authType: 'API_KEY', apiKey: { key: 'k', value: SECRETS.queryKey, position: 'query' } }));
  await record(lk.admin.patch(`/v1/integrations/leak/auth/${bearer.json.authId}`, { token: SECRETS.newToken }));
  // An error that quotes a field must not quote its value.
  await record(lk.admin.post('/v1/integrations/leak/auth', { authType: 'BASIC_AUTH', username: SECRETS.username, password: `${SECRETS.password}${'x'.repeat(600)}` }));
  await record(lk.admin.patch(`/v1/integrations/leak/auth/${bearer.json.authId}`, { password: SECRETS.password }));
  await record(lk.admin.get('/v1/integrations/leak/auth'));
  await record(lk.admin.get(`/v1/integrations/leak/auth/${bearer.json.authId}`));
});
afterAll(async () => {
  await lk.close();
});

function expectNoSecret(haystack: Buffer | string, where: string): void {
  const bytes = typeof haystack === 'string' ? Buffer.from(haystack) : haystack;
  for (const [name, value] of Object.entries(SECRETS)) {
    expect(bytes.includes(Buffer.from(value)), `${name} found in ${where}`).toBe(false);
    // Basic credentials also travel base64-encoded.
    expect(bytes.includes(Buffer.from(Buffer.from(value).toString('base64').slice(0, 16))), `${name} (base64) in ${where}`).toBe(false);
  }
}

describe('no plaintext secret anywhere', () => {
  it('the records exist and open (so the search below is not vacuous)', () => {
    const list = lk.store.authRecords.list('leak');
    expect(list.length).toBe(4);
    const opened = list.map((r) => JSON.stringify(lk.store.authRecords.openSecrets('leak', r.authId))).join();
    expect(opened).toContain(SECRETS.newToken);
    expect(opened).toContain(SECRETS.password);
  });

  it('not in the database file nor its WAL', () => {
    const wal = `${lk.dbPath}-wal`;
    expect(existsSync(wal)).toBe(true);
    const walBytes = readFileSync(wal);
    expect(walBytes.length).toBeGreaterThan(0);
    expectNoSecret(walBytes, 'the WAL');
    lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
    expectNoSecret(readFileSync(lk.dbPath), 'the database file');
  });

  it('not in any admin response', () => {
    expect(responses.length).toBe(10);
    for (const body of responses) expectNoSecret(body, 'an admin response');
  });

  it('not in the logs at trace level', () => {
    const logs = lk.logs();
    expect(logs).toContain('admin request');
    expectNoSecret(logs, 'the logs');
  });
});
