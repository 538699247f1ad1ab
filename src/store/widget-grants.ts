import type { Db } from './db.js';

/** Live widget tokens one key may hold at once (each keeps a grant row until it expires). */
export const MAX_LIVE_GRANTS_PER_KEY = 100;

export interface WidgetGrant {
  tokenId: string;
  keyId: string;
  origins: string[];
  integrations: string[];
  expiresAt: string;
}

/**
 * Which origins hold an unexpired widget token for which integration. A CORS
 * preflight carries no credential, so this is how the proxy knows which
 * origins to answer. One row per token, whatever its scope, and at most
 * MAX_LIVE_GRANTS_PER_KEY live rows per minting key.
 */
export class WidgetGrantRepo {
  private readonly insertStmt;
  private readonly keysForStmt;
  private readonly liveStmt;
  private readonly purgeStmt;

  constructor(db: Db) {
    this.insertStmt = db.prepare(
      'INSERT INTO widget_grants (token_id, key_id, origins, integrations, expires_at) VALUES (@tokenId, @keyId, @origins, @integrations, @expiresAt)',
    );
    this.keysForStmt = db.prepare<[string, string, string], { key_id: string }>(`
      SELECT DISTINCT key_id FROM widget_grants
      WHERE expires_at > ?
        AND EXISTS (SELECT 1 FROM json_each(origins) WHERE value = ?)
        AND EXISTS (SELECT 1 FROM json_each(integrations) WHERE value IN (?, '*'))`);
    this.liveStmt = db.prepare<[string, string], { n: number; soonest: string | null }>(
      'SELECT count(*) AS n, min(expires_at) AS soonest FROM widget_grants WHERE key_id = ? AND expires_at > ?',
    );
    this.purgeStmt = db.prepare('DELETE FROM widget_grants WHERE expires_at <= ?');
  }

  grant(g: WidgetGrant): void {
    this.insertStmt.run({ ...g, origins: JSON.stringify(g.origins), integrations: JSON.stringify(g.integrations) });
  }

  /** The keys whose live tokens grant this origin this integration (the caller checks the keys are still valid). */
  grantingKeys(origin: string, integrationId: string): string[] {
    return this.keysForStmt.all(new Date().toISOString(), origin, integrationId).map((r) => r.key_id);
  }

  /** How many unexpired grants a key holds, and when the first of them expires. */
  live(keyId: string): { count: number; soonest: string | null } {
    const row = this.liveStmt.get(keyId, new Date().toISOString());
    return { count: row?.n ?? 0, soonest: row?.soonest ?? null };
  }

  purgeExpired(): number {
    return this.purgeStmt.run(new Date().toISOString()).changes;
  }
}
