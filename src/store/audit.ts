import type { Db } from './db.js';
import { type Page, encodeCursor } from './integrations.js';

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

export interface AuditQuery {
  integrationId?: string;
  since?: string;
  limit: number;
  /** Rows with an id below this one (newest first). */
  before: number;
}

export class AuditRepo {
  private readonly insertStmt;
  private readonly listStmt;
  private readonly purgeStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare(`
      INSERT INTO audit_log (time, request_id, key_id, action, integration_id, auth_id, method, host, path, status, duration_ms)
      VALUES (@time, @requestId, @keyId, @action, @integrationId, @authId, @method, @host, @path, @status, @durationMs)`);
    this.listStmt = db.prepare<{ integrationId: string | null; since: string | null; before: number; limit: number }, Row>(`
      SELECT * FROM audit_log
      WHERE id < @before
        AND (@integrationId IS NULL OR integration_id = @integrationId)
        AND (@since IS NULL OR time >= @since)
      ORDER BY id DESC
      LIMIT @limit`);
    this.purgeStmt = db.prepare('DELETE FROM audit_log WHERE time < ?');
  }

  insertMany(entries: AuditEntry[]): void {
    if (entries.length === 0) return;
    this.db.transaction(() => {
      for (const e of entries) this.insertStmt.run(e);
    })();
  }

  list(q: AuditQuery): Page<AuditEntry> {
    const rows = this.listStmt.all({
      integrationId: q.integrationId ?? null,
      since: q.since ?? null,
      before: q.before,
      limit: q.limit + 1,
    });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return { data: page.map(toEntry), nextCursor: rows.length > q.limit && last ? encodeCursor(last.id) : null };
  }

  purgeBefore(time: string): number {
    return this.purgeStmt.run(time).changes;
  }
}
