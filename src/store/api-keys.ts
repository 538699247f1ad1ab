import { createHash } from 'node:crypto';
import type { Db } from './db.js';
import { nowIso } from './db.js';
import { newApiKey, newKeyId } from '../ids.js';
import { type Page, encodeCursor, toPage } from './integrations.js';
import type { RateLimit, RequestRule } from '../access/rules.js';

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
  /** null: no request rules (the scope alone decides). */
  rules: RequestRule[] | null;
  rateLimit: RateLimit | null;
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
  rules: string | null;
  rate_limit: string | null;
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
    rules: row.rules === null ? null : (JSON.parse(row.rules) as RequestRule[]),
    rateLimit: row.rate_limit === null ? null : (JSON.parse(row.rate_limit) as RateLimit),
  };
}

export interface NewApiKey {
  name: string;
  role: Role;
  integrations: string[];
  expiresAt: string | null;
  rules?: RequestRule[] | null;
  rateLimit?: RateLimit | null;
}

/** PATCH: only the given fields change (null clears expiresAt, rules or rateLimit). */
export interface ApiKeyChange {
  name?: string;
  expiresAt?: string | null;
  rules?: RequestRule[] | null;
  rateLimit?: RateLimit | null;
}

const json = (v: unknown): string | null => (v === null || v === undefined ? null : JSON.stringify(v));

export class ApiKeyRepo {
  private readonly insertStmt;
  private readonly byHashStmt;
  private readonly byIdStmt;
  private readonly listStmt;
  private readonly revokeStmt;
  private readonly touchStmt;
  private readonly activeAdminStmt;
  private readonly updateStmt;

  constructor(private readonly db: Db, private readonly onWrite: () => void) {
    this.insertStmt = db.prepare(`
      INSERT INTO api_keys (key_id, name, role, integrations, prefix, hash, created_at, expires_at, rules, rate_limit)
      VALUES (@keyId, @name, @role, @integrations, @prefix, @hash, @now, @expiresAt, @rules, @rateLimit)`);
    this.updateStmt = db.prepare(`
      UPDATE api_keys
      SET name = @name, expires_at = @expiresAt, rules = @rules, rate_limit = @rateLimit
      WHERE key_id = @keyId AND revoked_at IS NULL`);
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
      rules: json(input.rules),
      rateLimit: json(input.rateLimit),
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

  /** The updated record, or undefined when no active key has this id. */
  update(keyId: string, change: ApiKeyChange): ApiKeyRecord | undefined {
    const current = this.get(keyId);
    if (!current || current.revokedAt) return undefined;
    const pick = <K extends keyof ApiKeyChange>(k: K, now: ApiKeyRecord[K]): ApiKeyRecord[K] =>
      (change[k] === undefined ? now : change[k]) as ApiKeyRecord[K];
    this.updateStmt.run({
      keyId,
      name: pick('name', current.name),
      expiresAt: pick('expiresAt', current.expiresAt),
      rules: json(pick('rules', current.rules)),
      rateLimit: json(pick('rateLimit', current.rateLimit)),
    });
    this.onWrite();
    return this.get(keyId);
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
    }).immediate();
  }

  hasActiveAdmin(): boolean {
    return (this.activeAdminStmt.get(nowIso())?.n ?? 0) > 0;
  }
}
