/**
 * The audit-read row: a trail of `rows` proxied calls over `integrations`
 * integrations inside the retention window, written straight into the
 * database through the store's own batch insert (500 calls a batch, as the
 * audit writer stores them), then GET /v1/audit?integrationId=… timed.
 */
import { openDatabase } from '../src/store/db.js';
import { AuditRepo, auditTimeOf, type AuditTuple } from '../src/store/audit.js';
import { median } from './load.js';

const BATCH = 500;

export function buildTrail(dbPath: string, rows: number, integrations: number): void {
  const db = openDatabase(dbPath);
  const repo = new AuditRepo(db);
  // Spread over the last day, oldest first, as the writer appends them.
  const start = Date.now() - 86_400_000;
  const step = 86_400_000 / rows;
  let n = 0;
  db.transaction(() => {
    while (n < rows) {
      const batch: AuditTuple[] = [];
      for (let i = 0; i < BATCH && n < rows; i++, n++) {
        const id = `i${Math.floor(Math.random() * integrations)}`;
        batch.push([auditTimeOf(start + n * step), `req_${n}`, 'key_bench', 'proxy.call', id, 'auth_bench', 'GET', '127.0.0.1', '/v1/items', 200, 1.5]);
      }
      repo.insertCallBatch(JSON.stringify(batch), (batch[0] as AuditTuple)[0], (batch[batch.length - 1] as AuditTuple)[0]);
    }
  })();
  db.close();
}

/**
 * Median and slowest of `times` reads of one page, each for a random
 * integration, and apart from them the first read after the start (it also
 * compiles the route's query validator: README "Start time").
 */
export async function timeAuditReads(
  adminUrl: string,
  key: string,
  integrations: number,
  times: number,
): Promise<{ first: number; median: number; max: number; rows: number }> {
  const ms: number[] = [];
  let rows = 0;
  for (let i = 0; i <= times; i++) {
    const id = `i${Math.floor(Math.random() * integrations)}`;
    const t = performance.now();
    const res = await fetch(`${adminUrl}/v1/audit?integrationId=${id}&limit=50`, { headers: { authorization: `Bearer ${key}` } });
    const body = (await res.json()) as { data?: unknown[] };
    ms.push(performance.now() - t);
    if (res.status !== 200) throw new Error(`GET /v1/audit: ${res.status}`);
    rows += body.data?.length ?? 0;
  }
  const first = ms.shift() as number;
  return { first, median: median(ms), max: Math.max(...ms), rows: rows / (times + 1) };
}
