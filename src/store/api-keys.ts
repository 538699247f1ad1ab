import { createHash } from 'node:crypto';
import type { Db } from './db.js';
import { nowIso } from './db.js';
import { newApiKey, newKeyId } from '../ids.js';
import { type Page, encodeCursor, toPage } from './integrations.js';

export type Role = 'admin' | 'agent';

export interface ApiKeyRecord {
  keyId: string;
  name: string;
  role: Role;
  integrations: string[];
  prefix: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

interface Row {
  rowid: number;
  key_id: string;
  name: string;
  role: Role;
  integrations: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/**
 * Keys carry 256 random bits, so a plain SHA-256 is enough to make the stored
 * hash useless to a thief; a slow password hash would only slow every call.
 */
export const hashKey = (key: string): Buffer => createHash('sha256').update(key).digest();

/** Shown in lists so a person can tell keys apart; far too short to use. */
export const keyPrefix = (key: string): string => key.slice(0, 10);

function toRecord(row: Row): ApiKeyRecord {
  return {
    keyId: row.key_id,
    name: row.name,
    role: row.role,
    integrations: JSON.parse(row.integrations) as string[],
    prefix: row.prefix,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

export interface NewApiKey {
  name: string;
  role: Role;
  integrations: string[];
  expiresAt: string | null;
}

export class ApiKeyRepo {
  private readonly insertStmt;
  private readonly byHashStmt;
  private readonly byIdStmt;
  private readonly listStmt;
  private readonly revokeStmt;
  private readonly touchStmt;
  private readonly activeAdminStmt;

  constructor(private readonly db: Db, private readonly onWrite: () => void) {
    this.insertStmt = db.prepare(`
      INSERT INTO api_keys (key_id, name, role, integrations, prefix, hash, created_at, expires_at)
      VALUES (@keyId, @name, @role, @integrations, @prefix, @hash, @now, @expiresAt)`);
    this.byHashStmt = db.prepare<[Buffer], Row>('SELECT rowid, * FROM api_keys WHERE hash = ?');
    this.byIdStmt = db.prepare<[string], Row>('SELECT rowid, * FROM api_keys WHERE key_id = ?');
    this.listStmt = db.prepare<[number, number], Row>(
      'SELECT rowid, * FROM api_keys WHERE rowid > ? AND revoked_at IS NULL ORDER BY rowid LIMIT ?',
    );
    this.revokeStmt = db.prepare('UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL');
    this.touchStmt = db.prepare('UPDATE api_keys SET last_used_at = ? WHERE key_id = ?');
    this.activeAdminStmt = db.prepare<[string], { n: number }>(`
      SELECT count(*) AS n FROM api_keys
      WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)`);
  }

  /** Returns the record and the full key; the key is never stored or shown again. */
  create(input: NewApiKey): { record: ApiKeyRecord; key: string } {
    const key = newApiKey();
    const keyId = newKeyId();
    this.insertStmt.run({
      keyId,
      name: input.name,
      role: input.role,
      integrations: JSON.stringify(input.integrations),
      prefix: keyPrefix(key),
      hash: hashKey(key),
      now: nowIso(),
      expiresAt: input.expiresAt,
    });
    this.onWrite();
    return { record: this.get(keyId) as ApiKeyRecord, key };
  }

  findByHash(hash: Buffer): ApiKeyRecord | undefined {
    const row = this.byHashStmt.get(hash);
    return row ? toRecord(row) : undefined;
  }

  get(keyId: string): ApiKeyRecord | undefined {
    const row = this.byIdStmt.get(keyId);
    return row ? toRecord(row) : undefined;
  }

  list(limit: number, afterSeq: number): Page<ApiKeyRecord> {
    return toPage(this.listStmt.all(afterSeq, limit + 1), limit, toRecord, (r) => encodeCursor(r.rowid));
  }

  revoke(keyId: string): boolean {
    const changed = this.revokeStmt.run(nowIso(), keyId).changes > 0;
    if (changed) this.onWrite();
    return changed;
  }

  /** lastUsedAt for many keys in one transaction (called from a timer, not per call). */
  touchMany(times: Map<string, string>): void {
    if (times.size === 0) return;
    this.db.transaction(() => {
      for (const [keyId, at] of times) this.touchStmt.run(at, keyId);
    })();
  }

  hasActiveAdmin(): boolean {
    return (this.activeAdminStmt.get(nowIso())?.n ?? 0) > 0;
  }
}
