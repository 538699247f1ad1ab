import type { Db } from './db.js';
import { toPage, type Page } from './integrations.js';
import { batchFilter, filterMayHold } from './batch-filter.js';

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
  /** Proxied calls: the proxy's error code when the call was refused or did not complete. */
  error?: string | null;
  /** Summary rows: how many refusals this row stands for. */
  count?: number;
  /** Proxied calls: how the call came in (path, header, forward or connect). */
  mode?: string;
  /** Proxied calls of a key with request rules: "rules[i]" (the rule that allowed it) or "none" (refused). */
  rule?: string | null;
  /** Proxied calls: secrets replaced in the response. */
  redactions?: number | null;
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
let lastSecond = 0;
/** "…T10:00:00." of the second last stamped: toISOString once a second, not once a call (about 1 µs each on the hot path). */
let secondBase = '';
const ORIGIN = performance.timeOrigin;
export const auditTime = (): string => auditTimeAt(performance.now());

/** The audit time of a moment read earlier from `performance.now()`. */
export function auditTimeAt(now: number): string {
  const us = Math.floor((ORIGIN + now) * 1000);
  const second = Math.floor(us / 1e6);
  if (second !== lastSecond) {
    lastSecond = second;
    secondBase = new Date(second * 1000).toISOString().slice(0, 20);
  }
  return `${secondBase}${String(1e6 + us - second * 1e6).slice(1)}Z`;
}

/** A wall-clock time (ms since the epoch) in the same format, for comparisons. */
export const auditTimeOf = (epochMs: number): string => new Date(epochMs).toISOString().replace('Z', '000Z');

/**
 * Position in the newest-first order: a time and a tie-breaker key ("a:{id}"
 * for admin rows, "c:{batch}:{index}" for calls), both compared as strings.
 */
export interface AuditCursor {
  time: string;
  key: string;
}

export function encodeAuditCursor(c: AuditCursor): string {
  return Buffer.from(`${c.time}|${c.key}`).toString('base64url');
}

export function decodeAuditCursor(cursor: string): AuditCursor | null {
  const m = /^([0-9T:.Z-]{1,40})\|(a:\d{15}|c:\d{15}:\d{15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { time: m[1] as string, key: m[2] as string } : null;
}

export interface AuditQuery {
  integrationId?: string;
  since?: string;
  limit: number;
  /** Rows after this position (newest first); none: from the newest. */
  after: AuditCursor | null;
}

/** An entry as its values in column order: the form call rows are queued, shipped and stored in. */
export type AuditTuple = [
  string,
  string | null,
  string | null,
  string,
  string | null,
  string | null,
  string | null,
  string | null,
  string | null,
  number | null,
  number | null,
  // Call rows only (JSON in a batch, no column): error code, the count of a summary row, the mode,
  // the rule outcome, the redaction count; trailing empty ones are left out.
  (string | null)?,
  (number | null)?,
  (string | null)?,
  (string | null)?,
  (number | null)?,
];

export const auditTuple = (e: AuditEntry): AuditTuple => {
  const t = columnTuple(e) as Array<string | number | null>;
  // One array per call row (this runs for every proxied call): the extras are pushed up to the last one set.
  const extra = [e.error || null, e.count ?? null, e.mode ?? null, e.rule ?? null, e.redactions || null] as const;
  let n = extra.length;
  while (n > 0 && extra[n - 1] === null) n--;
  for (let i = 0; i < n; i++) t.push(extra[i] as string | number | null);
  return t as AuditTuple;
};

const columnTuple = (e: AuditEntry): AuditTuple => [
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

const fromTuple = (t: AuditTuple): AuditEntry => {
  const e: AuditEntry = {
    time: t[0],
    requestId: t[1],
    keyId: t[2],
    action: t[3],
    integrationId: t[4],
    authId: t[5],
    method: t[6],
    host: t[7],
    path: t[8],
    status: t[9],
    durationMs: t[10],
  };
  if (t[11]) e.error = t[11];
  if (t[12] !== undefined && t[12] !== null) e.count = t[12];
  if (t[13]) e.mode = t[13];
  if (t[14]) e.rule = t[14];
  if (e.action === 'proxy.call') e.redactions = t[15] ?? 0;
  return e;
};

interface Ranked {
  time: string;
  key: string;
  entry: AuditEntry;
}

const pad = (n: number): string => String(n).padStart(15, '0');
const newestFirst = (a: Ranked, b: Ranked): number => (a.time === b.time ? (a.key < b.key ? 1 : -1) : a.time < b.time ? 1 : -1);

/** Filters read per query to the database when a read is filtered by integration. */
const FILTER_PAGE = 512;

const COLUMNS = 'time, request_id, key_id, action, integration_id, auth_id, method, host, path, status, duration_ms';

/**
 * The audit trail lives in two tables: admin changes one row each
 * (audit_log), proxied calls in batches (audit_call_batches: one row holds a
 * JSON array of call tuples in time order). Storing a batch costs one insert
 * for hundreds of calls, which is what keeps the audit off the proxy's
 * budget; reads expand the batches and merge both newest first.
 */
export class AuditRepo {
  private readonly insertStmt;
  private readonly insertBatchStmt;
  private readonly adminStmt;
  private readonly batchesStmt;
  private readonly filtersStmt;
  private readonly batchRowsStmt;
  private readonly insertFilterStmt;
  private readonly purgeStmt;
  private readonly purgeBatchesStmt;
  private readonly purgeFiltersStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare(`INSERT INTO audit_log (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.insertBatchStmt = db.prepare('INSERT INTO audit_call_batches (first_time, last_time, rows) VALUES (?, ?, ?)');
    this.adminStmt = db.prepare<
      { integrationId: string | null; since: string | null; afterTime: string | null; afterId: number; limit: number },
      Row
    >(`
      SELECT * FROM audit_log
      WHERE (@afterTime IS NULL OR time < @afterTime OR (time = @afterTime AND id < @afterId))
        AND (@integrationId IS NULL OR integration_id = @integrationId)
        AND (@since IS NULL OR time >= @since)
      ORDER BY time DESC, id DESC
      LIMIT @limit`);
    this.batchesStmt = db.prepare<{ upTo: string | null; since: string | null }, { id: number; last_time: string; rows: string }>(`
      SELECT id, last_time, rows FROM audit_call_batches
      WHERE (@upTo IS NULL OR first_time <= @upTo)
        AND (@since IS NULL OR last_time >= @since)
      ORDER BY last_time DESC, id DESC`);
    this.purgeStmt = db.prepare('DELETE FROM audit_log WHERE time < ?');
    // The batches' filters, newest first, a page at a time (keyset: each page starts below the last one read).
    this.filtersStmt = db.prepare<
      { upTo: string | null; since: string | null; belowTime: string; belowId: number },
      { batch_id: number; last_time: string; filter: Buffer }
    >(`
      SELECT batch_id, last_time, filter FROM audit_batch_filters
      WHERE (last_time, batch_id) < (@belowTime, @belowId)
        AND (@since IS NULL OR last_time >= @since)
        AND (@upTo IS NULL OR first_time <= @upTo)
      ORDER BY last_time DESC, batch_id DESC
      LIMIT ${FILTER_PAGE}`);
    this.batchRowsStmt = db.prepare<[number], string>('SELECT rows FROM audit_call_batches WHERE id = ?').pluck();
    this.insertFilterStmt = db.prepare('INSERT INTO audit_batch_filters (last_time, batch_id, first_time, filter) VALUES (?, ?, ?, ?)');
    this.purgeBatchesStmt = db.prepare('DELETE FROM audit_call_batches WHERE last_time < ?');
    this.purgeFiltersStmt = db.prepare('DELETE FROM audit_batch_filters WHERE last_time < ?');
  }

  /** Admin changes, one row each. */
  insertMany(entries: AuditEntry[]): void {
    this.db.transaction(() => {
      for (const e of entries) this.insertStmt.run(columnTuple(e));
    }).immediate();
  }

  /**
   * One batch of calls: `json` is the JSON array of their tuples, oldest
   * first; `ids` its integrations as the proxy gathered them (left out, they
   * are read from the rows).
   */
  insertCallBatch(json: string, firstTime: string, lastTime: string, ids?: Iterable<string | null>): void {
    // Runs in the audit writer thread: the filter of the batch's integrations is made here, off the proxy's thread.
    const filter = batchFilter(ids ?? (JSON.parse(json) as AuditTuple[]).map((t) => t[4]));
    this.db.transaction(() => {
      const id = this.insertBatchStmt.run(firstTime, lastTime, json).lastInsertRowid;
      this.insertFilterStmt.run(lastTime, id, firstTime, filter);
    }).immediate();
  }

  list(q: AuditQuery): Page<AuditEntry> {
    const want = q.limit + 1;
    const after = q.after;
    const isAfter = (r: Ranked): boolean => !after || r.time < after.time || (r.time === after.time && r.key < after.key);
    const keep = (e: AuditEntry): boolean =>
      (q.integrationId === undefined || e.integrationId === q.integrationId) && (q.since === undefined || e.time >= q.since);

    // An admin row's key "a:…" sorts below any call's "c:…" at the same time.
    const afterId = after === null ? 0 : after.key.startsWith('c:') ? Number.MAX_SAFE_INTEGER : Number(after.key.slice(2));
    const found: Ranked[] = this.adminStmt
      .all({ integrationId: q.integrationId ?? null, since: q.since ?? null, afterTime: after?.time ?? null, afterId, limit: want })
      .map((r) => ({ time: r.time, key: `a:${pad(r.id)}`, entry: toEntry(r) }));

    const upTo = after?.time ?? null;
    const since = q.since ?? null;
    const batches =
      q.integrationId === undefined ? this.batchesStmt.iterate({ upTo, since }) : this.batchesHolding(q.integrationId, upTo, since);
    for (const batch of batches) {
      // Batches come newest first: once `want` rows are in hand and this batch ends before the
      // oldest of them, no later batch can hold a row that belongs on this page.
      if (found.length >= want) {
        found.sort(newestFirst);
        if (batch.last_time < (found[want - 1] as Ranked).time) break;
      }
      (JSON.parse(batch.rows) as AuditTuple[]).forEach((t, i) => {
        // Most rows of a batch are other integrations' when filtering: skip them before building entries.
        if (q.integrationId !== undefined && t[4] !== q.integrationId) return;
        const r = { time: t[0], key: `c:${pad(batch.id)}:${pad(i)}`, entry: fromTuple(t) };
        if (keep(r.entry) && isAfter(r)) found.push(r);
      });
    }
    found.sort(newestFirst);
    return toPage(found.slice(0, want), q.limit, (r) => r.entry, (r) => encodeAuditCursor({ time: r.time, key: r.key }));
  }

  /**
   * The batches that hold an integration, newest first: the filters say which
   * may (src/store/batch-filter.ts), a string test on the batch rules out the
   * rare one that does not before it is parsed.
   */
  private *batchesHolding(integrationId: string, upTo: string | null, since: string | null): Generator<{ id: number; last_time: string; rows: string }> {
    const quoted = JSON.stringify(integrationId);
    // Above any stored time ("9" sorts after every digit of a year) and any batch id.
    let below = { belowTime: '9', belowId: Number.MAX_SAFE_INTEGER };
    for (;;) {
      const page = this.filtersStmt.all({ upTo, since, ...below });
      for (const f of page) {
        if (!filterMayHold(f.filter, integrationId)) continue;
        const rows = this.batchRowsStmt.get(f.batch_id);
        if (rows !== undefined && rows.includes(quoted)) yield { id: f.batch_id, last_time: f.last_time, rows };
      }
      if (page.length < FILTER_PAGE) return;
      const last = page[page.length - 1] as { batch_id: number; last_time: string };
      below = { belowTime: last.last_time, belowId: last.batch_id };
    }
  }

  purgeBefore(time: string): number {
    this.purgeFiltersStmt.run(time);
    return this.purgeStmt.run(time).changes + this.purgeBatchesStmt.run(time).changes;
  }
}
