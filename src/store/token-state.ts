/**
 * The shared state of token credentials: the current access token (sealed),
 * the record's status, and the renewal lease. Every latchkey process on one
 * database reads and writes it, so a token renewed by one is used by all and
 * only one process at a time calls a token endpoint for a record.
 */
import type { Db } from './db.js';
import { nowIso } from './db.js';
import { openRecord, rewrapKey, sealRecord } from '../crypto/seal.js';
import type { AuthRecordRepo } from './auth-records.js';
import type { Secrets } from '../credentials/auth-types.js';

export type TokenStatus = 'active' | 'reauthorization_required';

export interface TokenStateView {
  status: TokenStatus;
  tokenExpiresAt: string | null;
}

export interface LiveToken {
  accessToken: string;
  /** Epoch ms: when the token stops working. */
  expiresAt: number;
  /** Epoch ms: when a renewal is due. */
  renewAt: number;
}

interface Row {
  auth_id: string;
  status: TokenStatus;
  token_expires_at: string | null;
  renew_at: number | null;
  wrapped_key: Buffer | null;
  sealed: Buffer | null;
  lease_owner: string | null;
  lease_until: number | null;
}

/** What taking the lease found. */
export type LeaseOutcome =
  | { kind: 'taken' }
  | { kind: 'fresh'; token: LiveToken }
  | { kind: 'busy'; until: number }
  | { kind: 'reauthorization_required' };

/** The access token is sealed under its own associated data: it cannot pass for the record's secrets. */
const tokenAad = (authId: string): string => `${authId}/access-token`;

export class TokenStateRepo {
  private readonly getStmt;
  private readonly upsertLeaseStmt;
  private readonly saveStmt;
  private readonly reauthStmt;
  private readonly releaseStmt;
  private readonly resetStmt;
  private readonly allKeysStmt;
  private readonly rewrapStmt;

  constructor(
    private readonly db: Db,
    private readonly masterKey: () => Buffer,
    private readonly authRecords: AuthRecordRepo,
  ) {
    this.getStmt = db.prepare<[string], Row>('SELECT * FROM token_state WHERE auth_id = ?');
    this.upsertLeaseStmt = db.prepare(`
      INSERT INTO token_state (auth_id, status, lease_owner, lease_until, updated_at)
      VALUES (@authId, 'active', @owner, @until, @now)
      ON CONFLICT (auth_id) DO UPDATE SET lease_owner = @owner, lease_until = @until, updated_at = @now`);
    this.saveStmt = db.prepare(`
      INSERT INTO token_state (auth_id, status, token_expires_at, renew_at, wrapped_key, sealed, lease_owner, lease_until, updated_at)
      VALUES (@authId, 'active', @expiresAt, @renewAt, @wrappedKey, @sealed, NULL, NULL, @now)
      ON CONFLICT (auth_id) DO UPDATE SET
        status = 'active', token_expires_at = @expiresAt, renew_at = @renewAt, wrapped_key = @wrappedKey,
        sealed = @sealed, lease_owner = NULL, lease_until = NULL, updated_at = @now`);
    this.reauthStmt = db.prepare(`
      INSERT INTO token_state (auth_id, status, updated_at) VALUES (@authId, 'reauthorization_required', @now)
      ON CONFLICT (auth_id) DO UPDATE SET
        status = 'reauthorization_required', token_expires_at = NULL, renew_at = NULL, wrapped_key = NULL,
        sealed = NULL, lease_owner = NULL, lease_until = NULL, updated_at = @now`);
    this.releaseStmt = db.prepare('UPDATE token_state SET lease_owner = NULL, lease_until = NULL WHERE auth_id = ? AND lease_owner = ?');
    this.resetStmt = db.prepare('DELETE FROM token_state WHERE auth_id = ?');
    this.allKeysStmt = db.prepare<[], { auth_id: string; wrapped_key: Buffer }>(
      'SELECT auth_id, wrapped_key FROM token_state WHERE wrapped_key IS NOT NULL',
    );
    this.rewrapStmt = db.prepare('UPDATE token_state SET wrapped_key = ? WHERE auth_id = ?');
  }

  view(authId: string): TokenStateView {
    const row = this.getStmt.get(authId);
    return { status: row?.status ?? 'active', tokenExpiresAt: row?.token_expires_at ?? null };
  }

  private open(integrationId: string, row: Row): LiveToken | null {
    if (!row.wrapped_key || !row.sealed || !row.token_expires_at || row.renew_at === null) return null;
    const { accessToken } = openRecord(this.masterKey(), integrationId, tokenAad(row.auth_id), {
      wrappedKey: row.wrapped_key,
      sealed: row.sealed,
    }) as { accessToken: string };
    return { accessToken, expiresAt: Date.parse(row.token_expires_at), renewAt: row.renew_at };
  }

  /** The stored token when it is not due for renewal (and is not the one an upstream just refused). */
  fresh(integrationId: string, authId: string, now: number, refused: string | null): LiveToken | null {
    const row = this.getStmt.get(authId);
    if (!row || row.status !== 'active') return null;
    const token = this.open(integrationId, row);
    return token && token.renewAt > now && token.accessToken !== refused ? token : null;
  }

  /**
   * Takes the renewal lease in an immediate transaction (the write lock is
   * held from the first read), and re-reads the state under it: a process
   * that renewed while this one waited is found here, and its token is used.
   */
  takeLease(integrationId: string, authId: string, owner: string, now: number, leaseMs: number, refused: string | null): LeaseOutcome {
    return this.db
      .transaction((): LeaseOutcome => {
        const row = this.getStmt.get(authId);
        if (row?.status === 'reauthorization_required') return { kind: 'reauthorization_required' };
        const token = row ? this.open(integrationId, row) : null;
        if (token && token.renewAt > now && token.accessToken !== refused) return { kind: 'fresh', token };
        if (row?.lease_owner && row.lease_owner !== owner && (row.lease_until ?? 0) > now) {
          return { kind: 'busy', until: row.lease_until ?? now };
        }
        this.upsertLeaseStmt.run({ authId, owner, until: now + leaseMs, now: nowIso() });
        return { kind: 'taken' };
      })
      .immediate();
  }

  /**
   * Commits a renewal: the rotated secrets (a new refresh token) and the new
   * access token in one transaction, before the token is handed to any call,
   * so a crash right after can never leave a used-up refresh token behind.
   */
  save(integrationId: string, authId: string, token: LiveToken, rotated: Secrets | null): void {
    const sealed = sealRecord(this.masterKey(), integrationId, tokenAad(authId), { accessToken: token.accessToken });
    this.db
      .transaction(() => {
        if (rotated) this.authRecords.reseal(integrationId, authId, rotated);
        this.saveStmt.run({
          authId,
          expiresAt: new Date(token.expiresAt).toISOString(),
          renewAt: token.renewAt,
          wrappedKey: sealed.wrappedKey,
          sealed: sealed.sealed,
          now: nowIso(),
        });
      })
      .immediate();
  }

  markReauthorizationRequired(authId: string): void {
    this.reauthStmt.run({ authId, now: nowIso() });
  }

  release(authId: string, owner: string): void {
    this.releaseStmt.run(authId, owner);
  }

  /** New secrets (a PATCH, a new connect): the old token and status go. */
  reset(authId: string): void {
    this.resetStmt.run(authId);
  }

  /** Re-wraps every stored access token's data key; the caller runs this inside a transaction. */
  rewrapAll(oldKey: Buffer, newKey: Buffer): number {
    const rows = this.allKeysStmt.all();
    for (const r of rows) this.rewrapStmt.run(rewrapKey(oldKey, newKey, tokenAad(r.auth_id), r.wrapped_key), r.auth_id);
    return rows.length;
  }
}
