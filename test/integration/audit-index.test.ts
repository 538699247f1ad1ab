import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initSodium } from '../../src/crypto/seal.js';
import { Store } from '../../src/store/store.js';
import { auditTimeOf, decodeAuditCursor, type AuditTuple } from '../../src/store/audit.js';
import { batchFilter, filterMayHold } from '../../src/store/batch-filter.js';
import { SCHEMA_VERSION } from '../../src/store/db.js';
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

  it('keeps one appended filter row per batch, read newest first through its primary key', () => {
    const n = (sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;
    expect(n('SELECT count(*) AS n FROM audit_batch_filters')).toBe(40);
    expect(n('SELECT count(*) AS n FROM audit_batch_filters f JOIN audit_call_batches b ON b.id = f.batch_id AND b.last_time = f.last_time')).toBe(40);
    const plan = store.db
      .prepare(
        "EXPLAIN QUERY PLAN SELECT batch_id FROM audit_batch_filters WHERE (last_time, batch_id) < ('9', 99) ORDER BY last_time DESC, batch_id DESC LIMIT 5",
      )
      .all() as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/SEARCH audit_batch_filters USING PRIMARY KEY \(\(last_time,batch_id\)<\(\?,\?\)\)/);
  });

  it('filters never miss an integration a batch holds, and rarely claim one it does not', () => {
    const ids = Array.from({ length: 500 }, (_, i) => `int_${i}`);
    const filter = batchFilter(ids);
    expect(filter.length).toBe(1024);
    expect(ids.every((id) => filterMayHold(filter, id))).toBe(true);
    const strangers = Array.from({ length: 20_000 }, (_, i) => `other_${i}`).filter((id) => filterMayHold(filter, id)).length;
    expect(strangers / 20_000).toBeLessThan(0.005);
    // Small batches get small filters; an empty one holds nothing.
    expect(batchFilter(['a']).length).toBe(8);
    expect(filterMayHold(batchFilter([null]), 'a')).toBe(false);
  });

  it('pages through more filters than one query reads', () => {
    const many = Store.open({ dbPath: join(dir.path, 'many.db'), masterKey: undefined, masterKeyFile: join(dir.path, 'm.key') });
    try {
      // 1,200 batches (over two pages of filters), "needle" in the oldest and the newest only.
      for (let b = 0; b < 1200; b++) {
        const ms = t0 + b;
        const rows = [row(ms, b === 0 || b === 1199 ? 'needle' : `x${b}`, b)];
        many.audit.insertCallBatch(JSON.stringify(rows), rows[0]![0], rows[0]![0]);
      }
      expect(many.audit.list({ integrationId: 'needle', limit: 10, after: null }).data.map((e) => e.path)).toEqual(['/1199', '/0']);
      expect(many.audit.list({ integrationId: 'x600', limit: 10, after: null }).data.map((e) => e.path)).toEqual(['/600']);
    } finally {
      many.close();
    }
  });

  it('retention removes the filter rows with their batches', () => {
    store.audit.purgeBefore(auditTimeOf(t0 + 20 * 100));
    const n = (sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;
    expect(n('SELECT count(*) AS n FROM audit_call_batches')).toBe(20);
    expect(n('SELECT count(*) AS n FROM audit_batch_filters')).toBe(20);
    expect(store.audit.list({ integrationId: 'rare', limit: 10, after: null }).data.map((e) => e.path)).toEqual(['/303']);
  });

  it('a database from before the filters gets them for the batches it holds', () => {
    const path = join(dir.path, 'old.db');
    const old = Store.open({ dbPath: path, masterKey: undefined, masterKeyFile: join(dir.path, 'm.key') });
    const rows = [row(t0, 'kept', 1), row(t0 + 1, 'other', 2)];
    old.audit.insertCallBatch(JSON.stringify(rows), rows[0]![0], rows[1]![0]);
    // Back to the previous schema: the per-integration index and no filters.
    old.db.exec(`
      DROP TABLE audit_batch_filters;
      CREATE TABLE audit_batch_integrations (
        integration_id TEXT NOT NULL, last_time TEXT NOT NULL, batch_id INTEGER NOT NULL,
        PRIMARY KEY (integration_id, last_time, batch_id)) STRICT, WITHOUT ROWID;
      CREATE INDEX audit_batch_integrations_by_time ON audit_batch_integrations (last_time);`);
    old.db.pragma(`user_version = ${SCHEMA_VERSION - 1}`);
    old.close();
    const migrated = Store.open({ dbPath: path, masterKey: undefined, masterKeyFile: join(dir.path, 'm.key') });
    try {
      expect(migrated.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(migrated.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'audit_batch_integrations'").get()).toEqual({ n: 0 });
      expect(migrated.audit.list({ integrationId: 'kept', limit: 10, after: null }).data.map((e) => e.path)).toEqual(['/1']);
      expect(migrated.audit.list({ integrationId: 'nobody', limit: 10, after: null }).data).toEqual([]);
    } finally {
      migrated.close();
    }
  });
});
