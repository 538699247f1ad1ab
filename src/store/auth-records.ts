import type { Db } from './db.js';
import { nextTimestamp, nowIso } from './db.js';
import { LatchkeyError } from '../errors.js';
import { newAuthId } from '../ids.js';
import type { StaticHeader } from '../credentials/headers.js';
import type { ApiKeyPlacement, AuthType, NewCredential, Secrets } from '../credentials/auth-types.js';
import { openRecord, sealRecord, rewrapKey } from '../crypto/seal.js';
import type { InjectionTemplate } from '../credentials/template.js';

/** An auth record as stored, without its secrets: the only form an admin response is built from. */
export interface AuthRecord {
  authId: string;
  integrationId: string;
  authType: AuthType;
  headers: StaticHeader[];
  apiKey: ApiKeyPlacement | null;
  /** Set for records made from the provider catalog. */
  provider: string | null;
  label: string | null;
  /** A catalog provider's template; null: the auth type's own. */
  template: InjectionTemplate | null;
  /** The kind's non-secret settings (never a secret: those are sealed). */
  config: Record<string, unknown> | null;
  createdAt: string;
  updatedAt: string;
}

/** What a catalog credential adds to a new record. */
export interface ProviderCredential {
  provider: string;
  label: string | null;
  /** Null for signing providers: their kind works from the record's config. */
  template: InjectionTemplate | null;
}

interface Row {
  seq: number;
  auth_id: string;
  integration_id: string;
  auth_type: AuthType;
  headers: string;
  api_key_name: string | null;
  api_key_position: 'header' | 'query' | null;
  wrapped_key: Buffer;
  sealed: Buffer;
  provider: string | null;
  label: string | null;
  template: string | null;
  config: string | null;
  created_at: string;
  updated_at: string;
}

function toRecord(row: Row): AuthRecord {
  return {
    authId: row.auth_id,
    integrationId: row.integration_id,
    authType: row.auth_type,
    headers: JSON.parse(row.headers) as StaticHeader[],
    apiKey: row.api_key_name && row.api_key_position ? { key: row.api_key_name, position: row.api_key_position } : null,
    provider: row.provider,
    label: row.label,
    template: row.template ? (JSON.parse(row.template) as InjectionTemplate) : null,
    config: row.config ? (JSON.parse(row.config) as Record<string, unknown>) : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class AuthRecordRepo {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly latestStmt;
  private readonly updateStmt;
  private readonly deleteStmt;
  private readonly allKeysStmt;
  private readonly rewrapStmt;
  private readonly resealStmt;

  constructor(
    db: Db,
    private readonly masterKey: () => Buffer,
    private readonly onWrite: () => void,
  ) {
    this.insertStmt = db.prepare(`
      INSERT INTO auth_records
        (auth_id, integration_id, auth_type, headers, api_key_name, api_key_position, wrapped_key, sealed,
         provider, label, template, config, created_at, updated_at)
      VALUES
        (@authId, @integrationId, @authType, @headers, @apiKeyName, @apiKeyPosition, @wrappedKey, @sealed,
         @provider, @label, @template, @config, @now, @now)`);
    this.getStmt = db.prepare<[string, string], Row>(
      'SELECT * FROM auth_records WHERE integration_id = ? AND auth_id = ?',
    );
    this.listStmt = db.prepare<[string], Row>('SELECT * FROM auth_records WHERE integration_id = ? ORDER BY seq');
    this.latestStmt = db.prepare<[string], Row>(
      'SELECT * FROM auth_records WHERE integration_id = ? ORDER BY seq DESC LIMIT 1',
    );
    this.updateStmt = db.prepare(`
      UPDATE auth_records
      SET headers = @headers, api_key_name = @apiKeyName, api_key_position = @apiKeyPosition,
          wrapped_key = @wrappedKey, sealed = @sealed, config = @config, updated_at = @now
      WHERE auth_id = @authId`);
    this.resealStmt = db.prepare('UPDATE auth_records SET wrapped_key = ?, sealed = ? WHERE auth_id = ?');
    this.deleteStmt = db.prepare('DELETE FROM auth_records WHERE integration_id = ? AND auth_id = ?');
    this.allKeysStmt = db.prepare<[], { auth_id: string; wrapped_key: Buffer }>(
      'SELECT auth_id, wrapped_key FROM auth_records',
    );
    this.rewrapStmt = db.prepare('UPDATE auth_records SET wrapped_key = ? WHERE auth_id = ?');
  }

  create(
    integrationId: string,
    authType: AuthType,
    headers: StaticHeader[],
    credential: NewCredential,
    fromCatalog: ProviderCredential | null = null,
  ): AuthRecord {
    const authId = newAuthId();
    const sealed = sealRecord(this.masterKey(), integrationId, authId, credential.secrets);
    this.insertStmt.run({
      authId,
      integrationId,
      authType,
      headers: JSON.stringify(headers),
      apiKeyName: credential.apiKey?.key ?? null,
      apiKeyPosition: credential.apiKey?.position ?? null,
      wrappedKey: sealed.wrappedKey,
      sealed: sealed.sealed,
      provider: fromCatalog?.provider ?? null,
      label: fromCatalog?.label ?? null,
      template: fromCatalog?.template ? JSON.stringify(fromCatalog.template) : null,
      config: credential.config ? JSON.stringify(credential.config) : null,
      now: nowIso(),
    });
    this.onWrite();
    return this.mustGet(integrationId, authId);
  }

  private row(integrationId: string, authId: string): Row {
    const row = this.getStmt.get(integrationId, authId);
    if (!row) throw new LatchkeyError('NOT_FOUND', `auth record ${authId} not found in integration ${integrationId}`);
    return row;
  }

  mustGet(integrationId: string, authId: string): AuthRecord {
    return toRecord(this.row(integrationId, authId));
  }

  get(integrationId: string, authId: string): AuthRecord | undefined {
    const row = this.getStmt.get(integrationId, authId);
    return row ? toRecord(row) : undefined;
  }

  list(integrationId: string): AuthRecord[] {
    return this.listStmt.all(integrationId).map(toRecord);
  }

  /** The record a call uses when it names none: the most recently created. */
  latest(integrationId: string): AuthRecord | undefined {
    const row = this.latestStmt.get(integrationId);
    return row ? toRecord(row) : undefined;
  }

  /** Opens the record's secrets; they should live no longer than the caller needs them. */
  openSecrets(integrationId: string, authId: string): Secrets & Record<string, string> {
    const row = this.row(integrationId, authId);
    return openRecord(this.masterKey(), integrationId, authId, { wrappedKey: row.wrapped_key, sealed: row.sealed }) as Secrets &
      Record<string, string>;
  }

  /** Writes new headers, placement and config; re-seals (with a fresh data key) only when `secrets` is given. */
  update(
    integrationId: string,
    authId: string,
    headers: StaticHeader[],
    apiKey: ApiKeyPlacement | null,
    secrets: Secrets | null,
    config: Record<string, unknown> | null = null,
  ): AuthRecord {
    const row = this.row(integrationId, authId);
    const sealed = secrets
      ? sealRecord(this.masterKey(), integrationId, authId, secrets)
      : { wrappedKey: row.wrapped_key, sealed: row.sealed };
    this.updateStmt.run({
      authId,
      headers: JSON.stringify(headers),
      apiKeyName: apiKey?.key ?? null,
      apiKeyPosition: apiKey?.position ?? null,
      wrappedKey: sealed.wrappedKey,
      sealed: sealed.sealed,
      config: config ? JSON.stringify(config) : row.config,
      now: nextTimestamp(row.updated_at),
    });
    this.onWrite();
    return this.mustGet(integrationId, authId);
  }

  /**
   * Replaces the sealed secrets only (a rotated refresh token): no change a
   * person made, so `updatedAt` stays. The caller holds the renewal lease.
   */
  reseal(integrationId: string, authId: string, secrets: Secrets): void {
    const sealed = sealRecord(this.masterKey(), integrationId, authId, secrets);
    this.resealStmt.run(sealed.wrappedKey, sealed.sealed, authId);
    this.onWrite();
  }

  delete(integrationId: string, authId: string): boolean {
    const changed = this.deleteStmt.run(integrationId, authId).changes > 0;
    if (changed) this.onWrite();
    return changed;
  }

  /** Re-wraps every data key; the caller runs this inside a transaction. */
  rewrapAll(oldKey: Buffer, newKey: Buffer): number {
    const rows = this.allKeysStmt.all();
    for (const r of rows) this.rewrapStmt.run(rewrapKey(oldKey, newKey, r.auth_id, r.wrapped_key), r.auth_id);
    return rows.length;
  }
}
