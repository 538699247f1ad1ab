import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initSodium } from '../../src/crypto/seal.js';
import { Store } from '../../src/store/store.js';
import { auditTimeOf, decodeAuditCursor, type AuditTuple } from '../../src/store/audit.js';
import { tmpDir } from '../helpers/tmp.js';

const dir = tmpDir();
let store: Store;
beforeAll(async () => {
  await initSodium();
  store = Store.open({ dbPath: join(dir.path, 'l.db'), masterKey: undefined, masterKeyFile: join(dir.path, 'm.key') });
});
afterAll(() => {
  store.close();
  dir.cleanup();
});

const t0 = Date.now() - 60_000;
const row = (ms: number, integrationId: string, n: number): AuditTuple =>
  [auditTimeOf(ms), `r${n}`, 'key_x', 'proxy.call', integrationId, null, 'GET', 'h', `/${n}`, 200, 1] as AuditTuple;

/** 40 batches of 10 calls over integrations a..j; "rare" only in batches 5 and 30. */
function fill(): void {
  let n = 0;
  for (let b = 0; b < 40; b++) {
    const rows: AuditTuple[] = [];
    for (let i = 0; i < 10; i++) {
      const ms = t0 + b * 100 + i;
      rows.push(row(ms, (b === 5 || b === 30) && i === 3 ? 'rare' : String.fromCharCode(97 + i), n++));
    }
    store.audit.insertCallBatch(JSON.stringify(rows), rows[0]![0], rows[rows.length - 1]![0]);
  }
}

describe('audit reads filtered by integration', () => {
  it('answer from the batches that hold the integration, newest first, paged', () => {
    fill();
    const page1 = store.audit.list({ integrationId: 'rare', limit: 1, after: null });
    expect(page1.data.map((e) => e.path)).toEqual(['/303']);
    const page2 = store.audit.list({ integrationId: 'rare', limit: 1, after: decodeAuditCursor(page1.nextCursor as string) });
    expect(page2.data.map((e) => e.path)).toEqual(['/53']);
    expect(page2.nextCursor).toBeNull();
    const a = store.audit.list({ integrationId: 'a', limit: 100, after: null }).data;
    expect(a).toHaveLength(40);
    expect(a.every((e) => e.integrationId === 'a')).toBe(true);
    expect(store.audit.list({ integrationId: 'nobody', limit: 10, after: null }).data).toEqual([]);
  });

  it('reads the side index, one row per integration and batch', () => {
    const n = (sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;
    expect(n("SELECT count(*) AS n FROM audit_batch_integrations WHERE integration_id = 'rare'")).toBe(2);
    // a..j appear in every batch but 'd' (index 3) is 'rare' in two of them.
    expect(n('SELECT count(*) AS n FROM audit_batch_integrations')).toBe(40 * 10);
    const plan = store.db
      .prepare("EXPLAIN QUERY PLAN SELECT batch_id FROM audit_batch_integrations WHERE integration_id = 'a' ORDER BY last_time DESC")
      .all() as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/SEARCH audit_batch_integrations USING PRIMARY KEY \(integration_id=\?\)/);
  });

  it('retention removes the index rows with their batches', () => {
    store.audit.purgeBefore(auditTimeOf(t0 + 20 * 100));
    const n = (sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;
    expect(n('SELECT count(*) AS n FROM audit_call_batches')).toBe(20);
    expect(n("SELECT count(*) AS n FROM audit_batch_integrations WHERE integration_id = 'rare'")).toBe(1);
    expect(store.audit.list({ integrationId: 'rare', limit: 10, after: null }).data.map((e) => e.path)).toEqual(['/303']);
  });
});
