import type { Db } from './db.js';
import { toPage, type Page } from './integrations.js';

/** One audit row. It names ids, never a secret: paths carry query names only. */
export interface AuditEntry {
  time: string;
  requestId: string | null;
  keyId: string | null;
  action: string;
  integrationId: string | null;
  authId: string | null;
  method: string | null;
  host: string | null;
  path: string | null;
  status: number | null;
  durationMs: number | null;
}

interface Row {
  id: number;
  time: string;
  request_id: string | null;
  key_id: string | null;
  action: string;
  integration_id: string | null;
  auth_id: string | null;
  method: string | null;
  host: string | null;
  path: string | null;
  status: number | null;
  duration_ms: number | null;
}

const toEntry = (r: Row): AuditEntry => ({
  time: r.time,
  requestId: r.request_id,
  keyId: r.key_id,
  action: r.action,
  integrationId: r.integration_id,
  authId: r.auth_id,
  method: r.method,
  host: r.host,
  path: r.path,
  status: r.status,
  durationMs: r.duration_ms,
});

/**
 * An ISO time with microseconds ("…T10:00:00.123456Z"), from the monotonic
 * clock: rows written in one millisecond still sort in the order they happened.
 */
let lastMs = 0;
let lastBase = '';
export function auditTime(perfNow: number = performance.now()): string {
  const t = performance.timeOrigin + perfNow;
  const ms = Math.floor(t);
  if (ms !== lastMs) {
    lastMs = ms;
    lastBase = new Date(ms).toISOString().slice(0, -1);
  }
  return `${lastBase}${String(Math.floor((t - ms) * 1000)).padStart(3, '0')}Z`;
}

/** A wall-clock time (ms since the epoch) in the same format, for comparisons. */
export const auditTimeOf = (epochMs: number): string => new Date(epochMs).toISOString().replace('Z', '000Z');

/** Position in the newest-first order: calls are written in batches, so ids alone are not time order. */
export interface AuditCursor {
  time: string;
  id: number;
}

export function encodeAuditCursor(c: AuditCursor): string {
  return Buffer.from(`a:${c.time}|${c.id}`).toString('base64url');
}

export function decodeAuditCursor(cursor: string): AuditCursor | null {
  const m = /^a:([0-9T:.Z-]{1,40})\|(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { time: m[1] as string, id: Number(m[2]) } : null;
}

export interface AuditQuery {
  integrationId?: string;
  since?: string;
  limit: number;
  /** Rows after this position (newest first); none: from the newest. */
  after: AuditCursor | null;
}

const BLOCK = 100;
const COLUMNS = 'time, request_id, key_id, action, integration_id, auth_id, method, host, path, status, duration_ms';
const insertSql = (rows: number): string =>
  `INSERT INTO audit_log (${COLUMNS}) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`;
/** An entry as the row's values, in column order: the form rows are queued and shipped in. */
export type AuditTuple = unknown[];
export const auditTuple = (e: AuditEntry): AuditTuple => [
  e.time,
  e.requestId,
  e.keyId,
  e.action,
  e.integrationId,
  e.authId,
  e.method,
  e.host,
  e.path,
  e.status,
  e.durationMs,
];

export class AuditRepo {
  private readonly insertStmt;
  private readonly insertBlockStmt;
  private readonly listStmt;
  private readonly purgeStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare(insertSql(1));
    this.insertBlockStmt = db.prepare(insertSql(BLOCK));
    this.listStmt = db.prepare<
      { integrationId: string | null; since: string | null; afterTime: string | null; afterId: number; limit: number },
      Row
    >(`
      SELECT * FROM audit_log
      WHERE (@afterTime IS NULL OR time < @afterTime OR (time = @afterTime AND id < @afterId))
        AND (@integrationId IS NULL OR integration_id = @integrationId)
        AND (@since IS NULL OR time >= @since)
      ORDER BY time DESC, id DESC
      LIMIT @limit`);
    this.purgeStmt = db.prepare('DELETE FROM audit_log WHERE time < ?');
  }

  /** One transaction; rows go in blocks of 100 per statement, which is what keeps a busy proxy's audit cheap. */
  insertMany(entries: AuditEntry[]): void {
    this.insertTuples(entries.map(auditTuple));
  }

  insertTuples(rows: AuditTuple[]): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      let i = 0;
      for (; i + BLOCK <= rows.length; i += BLOCK) this.insertBlockStmt.run(rows.slice(i, i + BLOCK).flat());
      for (; i < rows.length; i++) this.insertStmt.run(rows[i] as AuditTuple);
    })();
  }

  list(q: AuditQuery): Page<AuditEntry> {
    const rows = this.listStmt.all({
      integrationId: q.integrationId ?? null,
      since: q.since ?? null,
      afterTime: q.after?.time ?? null,
      afterId: q.after?.id ?? 0,
      limit: q.limit + 1,
    });
    return toPage(rows, q.limit, toEntry, (r) => encodeAuditCursor({ time: r.time, id: r.id }));
  }

  purgeBefore(time: string): number {
    return this.purgeStmt.run(time).changes;
  }
}
