import type { Db } from './db.js';
import { nextTimestamp, nowIso } from './db.js';
import { LatchkeyError } from '../errors.js';
import type { StaticHeader } from '../credentials/headers.js';
import { parseBaseUrl } from '../hosts.js';

export interface Integration {
  integrationId: string;
  name: string;
  baseUrl: string;
  /** Effective list: the stored one, or the base URL's host when none was set. */
  allowedHosts: string[];
  headers: StaticHeader[];
  /** The catalog provider it was made from, if any. */
  provider: string | null;
  /** Injected secrets are replaced by [REDACTED] in responses (default true). */
  redactResponses: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface IntegrationWrite {
  integrationId: string;
  name: string;
  baseUrl: string;
  /** null: follow the base URL's host. */
  allowedHosts: string[] | null;
  headers: StaticHeader[];
  provider?: string | null;
  /** Default true. */
  redactResponses?: boolean;
}

interface Row {
  seq: number;
  integration_id: string;
  name: string | null;
  base_url: string;
  allowed_hosts: string;
  headers: string;
  provider: string | null;
  redact_responses: number;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}

/**
 * A page from rows fetched with LIMIT limit + 1: the extra row only says that
 * there is a next page, whose cursor is the last row's position.
 */
export function toPage<R, T>(rows: R[], limit: number, map: (r: R) => T, cursorOf: (r: R) => string): Page<T> {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { data: page.map(map), nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}

export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number | null {
  const m = /^s:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

function toIntegration(row: Row): Integration {
  const stored = JSON.parse(row.allowed_hosts) as string[] | null;
  const base = parseBaseUrl(row.base_url);
  return {
    integrationId: row.integration_id,
    name: row.name ?? row.integration_id,
    baseUrl: row.base_url,
    allowedHosts: stored ?? (typeof base === 'string' ? [] : [base.host]),
    headers: JSON.parse(row.headers) as StaticHeader[],
    provider: row.provider,
    redactResponses: row.redact_responses !== 0,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** One statement per operation, prepared once. */
export class IntegrationRepo {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly rawStmt;
  private readonly allStmt;
  private readonly listStmt;
  private readonly updateStmt;
  private readonly deleteStmt;

  constructor(db: Db, private readonly onWrite: () => void) {
    this.insertStmt = db.prepare(`
      INSERT INTO integrations (integration_id, name, base_url, allowed_hosts, headers, provider, redact_responses, created_at, updated_at)
      VALUES (@integrationId, @name, @baseUrl, @allowedHosts, @headers, @provider, @redactResponses, @now, @now)`);
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM integrations WHERE integration_id = ?');
    this.rawStmt = db.prepare<[string], { allowed_hosts: string }>(
      'SELECT allowed_hosts FROM integrations WHERE integration_id = ?',
    );
    this.allStmt = db.prepare<[], Row>('SELECT * FROM integrations ORDER BY seq');
    this.listStmt = db.prepare<[number, number], Row>('SELECT * FROM integrations WHERE seq > ? ORDER BY seq LIMIT ?');
    this.updateStmt = db.prepare(`
      UPDATE integrations
      SET name = @name, base_url = @baseUrl, allowed_hosts = @allowedHosts, headers = @headers,
          redact_responses = @redactResponses, updated_at = @now
      WHERE integration_id = @integrationId`);
    this.deleteStmt = db.prepare('DELETE FROM integrations WHERE integration_id = ?');
  }

  private params(w: IntegrationWrite, now: string) {
    return {
      integrationId: w.integrationId,
      name: w.name,
      baseUrl: w.baseUrl,
      allowedHosts: JSON.stringify(w.allowedHosts),
      headers: JSON.stringify(w.headers),
      provider: w.provider ?? null,
      redactResponses: w.redactResponses === false ? 0 : 1,
      now,
    };
  }

  create(w: IntegrationWrite): Integration {
    try {
      this.insertStmt.run(this.params(w, nowIso()));
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new LatchkeyError('CONFLICT', `integration ${w.integrationId} already exists`);
      }
      throw err;
    }
    this.onWrite();
    return this.mustGet(w.integrationId);
  }

  get(integrationId: string): Integration | undefined {
    const row = this.getStmt.get(integrationId);
    return row ? toIntegration(row) : undefined;
  }

  mustGet(integrationId: string): Integration {
    const found = this.get(integrationId);
    if (!found) throw new LatchkeyError('NOT_FOUND', `integration ${integrationId} not found`);
    return found;
  }

  /** The stored allowedHosts, null when it follows the base URL. */
  storedAllowedHosts(integrationId: string): string[] | null {
    const row = this.rawStmt.get(integrationId);
    return row ? (JSON.parse(row.allowed_hosts) as string[] | null) : null;
  }

  /** Every integration (the CONNECT host index is built from it once per database change). */
  all(): Integration[] {
    return this.allStmt.all().map(toIntegration);
  }

  list(limit: number, afterSeq: number): Page<Integration> {
    return toPage(this.listStmt.all(afterSeq, limit + 1), limit, toIntegration, (r) => encodeCursor(r.seq));
  }

  update(w: IntegrationWrite): Integration {
    const now = nextTimestamp(this.mustGet(w.integrationId).updatedAt);
    this.updateStmt.run(this.params(w, now));
    this.onWrite();
    return this.mustGet(w.integrationId);
  }

  delete(integrationId: string): boolean {
    const changed = this.deleteStmt.run(integrationId).changes > 0;
    if (changed) this.onWrite();
    return changed;
  }
}
