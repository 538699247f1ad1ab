import { existsSync, readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { TestLatchkey } from './latchkey.js';

/** Asserts that none of the values occurs, raw or base64-encoded, in the bytes. */
export function expectAbsent(haystack: Buffer | string, values: Record<string, string>, where: string): void {
  const bytes = typeof haystack === 'string' ? Buffer.from(haystack) : haystack;
  for (const [name, value] of Object.entries(values)) {
    expect(value.length, `${name} is long enough to search for`).toBeGreaterThanOrEqual(12);
    expect(bytes.includes(Buffer.from(value)), `${name} found in ${where}`).toBe(false);
    expect(bytes.includes(Buffer.from(Buffer.from(value).toString('base64').slice(0, 16))), `${name} (base64) in ${where}`).toBe(false);
  }
}

/**
 * Every place a secret must never be: the WAL, the database file, the logs,
 * the audit rows and the admin views of every record of the integrations.
 */
export async function expectNoLeak(lk: TestLatchkey, values: Record<string, string>, integrations: string[]): Promise<void> {
  const wal = `${lk.dbPath}-wal`;
  expect(existsSync(wal)).toBe(true);
  expectAbsent(readFileSync(wal), values, 'the WAL');
  lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
  expectAbsent(readFileSync(lk.dbPath), values, 'the database file');
  expectAbsent(lk.logs(), values, 'the logs');
  const audit = await lk.admin.get('/v1/audit?limit=200');
  expect(audit.status).toBe(200);
  expect(audit.json.data.length).toBeGreaterThan(0);
  expectAbsent(audit.text, values, 'the audit rows');
  for (const id of integrations) {
    const list = await lk.admin.get(`/v1/integrations/${id}/auth`);
    expect(list.json.data.length).toBeGreaterThan(0);
    expectAbsent(list.text, values, `the records of ${id}`);
  }
}
