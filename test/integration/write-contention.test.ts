/**
 * Admin writes while another connection commits all the time (what the audit
 * writer thread does under load, or a second latchkey on the same file): a
 * transaction that reads before it writes must take the write lock when it
 * begins, or a commit in between fails it with SQLITE_BUSY_SNAPSHOT, which no
 * busy timeout waits out (seen as a rare 500 on PATCH of an auth record).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { builtInCatalogPath, type ProviderEntry } from '../../src/catalog/catalog.js';

const okx = (JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[]).find((p) => p.provider === 'okx') as ProviderEntry;
const FIELDS = { api_key: 'contention-key', secret_key: 'contention-secret-0', passphrase: 'contention-pass' };

let lk: TestLatchkey;
let writer: ChildProcess;

// A second process committing small transactions back to back on the same database.
const WRITER = `
const Database = require(process.argv[1]);
const db = new Database(process.argv[2]);
db.pragma('busy_timeout = 5000');
const insert = db.prepare("INSERT INTO audit_call_batches (first_time, last_time, rows) VALUES ('2000-01-01T00:00:00.000000Z', '2000-01-01T00:00:00.000000Z', '[]')");
process.stdout.write('ready\\n');
for (;;) insert.run();
`;

beforeAll(async () => {
  lk = await startLatchkey();
  expect((await lk.admin.post('/v1/integrations', { integrationId: 'busy', baseUrl: 'http://127.0.0.1:9' })).status).toBe(201);
  writer = spawn(process.execPath, ['-e', WRITER, createRequire(import.meta.url).resolve('better-sqlite3'), lk.dbPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => writer.stdout?.once('data', () => resolve()));
});

afterAll(async () => {
  writer?.kill('SIGKILL');
  await lk?.close();
});

describe('admin writes under a busy second writer', () => {
  it('every PATCH that re-seals a record in a transaction succeeds', async () => {
    const hmac = { fields: FIELDS, template: okx.sign?.hmac };
    const made = await lk.admin.post('/v1/integrations/busy/auth', { authType: 'HMAC', hmac });
    expect(made.status, made.text).toBe(201);
    const statuses: number[] = [];
    for (let i = 1; i <= 60; i++) {
      const r = await lk.admin.patch(`/v1/integrations/busy/auth/${made.json.authId}`, {
        hmac: { fields: { ...FIELDS, secret_key: `contention-secret-${i}` } },
      });
      statuses.push(r.status);
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});
