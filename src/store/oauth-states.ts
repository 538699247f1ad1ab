/**
 * Pending connect flows: one row per `state` handed out by
 * POST /v1/integrations/{id}/oauth/authorize. Only a hash of the state is
 * stored; the PKCE verifier and the client secret are sealed. A state is
 * consumed at most once, in a transaction, so a replayed callback finds it used.
 */
import { createHash } from 'node:crypto';
import type { Db } from './db.js';
import { openRecord, sealRecord } from '../crypto/seal.js';

export interface ConnectSettings {
  authorizeUrl: string;
  tokenUrl: string;
  clientId: string;
  scope?: string;
  redirectUri: string;
  clientAuth: 'basic' | 'post' | 'none';
  /** A catalog provider whose integration is created when the flow completes. */
  provider?: string;
  /** Who started the flow: the callback's audit row names them. */
  keyId?: string;
}

export interface ConnectSecrets {
  codeVerifier: string;
  clientSecret?: string;
}

export interface PendingConnect {
  integrationId: string;
  settings: ConnectSettings;
  secrets: ConnectSecrets;
}

interface Row {
  integration_id: string;
  settings: string;
  wrapped_key: Buffer;
  sealed: Buffer;
  expires_at: number;
  used_at: number | null;
}

const hashOf = (state: string): Buffer => createHash('sha256').update(state).digest();
const aad = (hash: Buffer): string => `oauth-state/${hash.toString('hex')}`;

export class OAuthStateRepo {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly useStmt;
  private readonly purgeStmt;
  private readonly clearStmt;

  constructor(
    private readonly db: Db,
    private readonly masterKey: () => Buffer,
  ) {
    this.insertStmt = db.prepare(`
      INSERT INTO oauth_states (state_hash, integration_id, settings, wrapped_key, sealed, expires_at)
      VALUES (?, ?, ?, ?, ?, ?)`);
    this.getStmt = db.prepare<[Buffer], Row>('SELECT * FROM oauth_states WHERE state_hash = ?');
    this.useStmt = db.prepare('UPDATE oauth_states SET used_at = ? WHERE state_hash = ? AND used_at IS NULL');
    // Used and expired rows are kept a day so a late replay still reads "used", then go.
    this.purgeStmt = db.prepare('DELETE FROM oauth_states WHERE expires_at < ?');
    this.clearStmt = db.prepare('DELETE FROM oauth_states');
  }

  create(state: string, integrationId: string, settings: ConnectSettings, secrets: ConnectSecrets, expiresAt: number): void {
    const hash = hashOf(state);
    const sealed = sealRecord(this.masterKey(), integrationId, aad(hash), secrets);
    this.purgeStmt.run(Date.now() - 86_400_000);
    this.insertStmt.run(hash, integrationId, JSON.stringify(settings), sealed.wrappedKey, sealed.sealed, expiresAt);
  }

  /** The pending flow, marked used; null when the state is unknown, used or expired. */
  consume(state: string, now: number): PendingConnect | null {
    const hash = hashOf(state);
    return this.db
      .transaction((): PendingConnect | null => {
        const row = this.getStmt.get(hash);
        if (!row || row.used_at !== null || row.expires_at <= now) return null;
        if (this.useStmt.run(now, hash).changes !== 1) return null;
        const secrets = openRecord(this.masterKey(), row.integration_id, aad(hash), {
          wrappedKey: row.wrapped_key,
          sealed: row.sealed,
        }) as ConnectSecrets;
        return { integrationId: row.integration_id, settings: JSON.parse(row.settings) as ConnectSettings, secrets };
      })
      .immediate();
  }

  /** A master-key rotation cancels pending flows (they last minutes; re-wrapping them is not worth it). */
  clear(): void {
    this.clearStmt.run();
  }
}
