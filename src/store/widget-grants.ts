import type { Db } from './db.js';

/**
 * Which origins hold an unexpired widget token for which integration. A CORS
 * preflight carries no credential, so this is how the proxy knows which
 * origins to answer.
 */
export class WidgetGrantRepo {
  private readonly insertStmt;
  private readonly allowedStmt;
  private readonly purgeStmt;

  constructor(private readonly db: Db) {
    this.insertStmt = db.prepare('INSERT INTO widget_grants (origin, integration_id, expires_at) VALUES (?, ?, ?)');
    this.allowedStmt = db.prepare<[string, string, string], { n: number }>(`
      SELECT count(*) AS n FROM widget_grants
      WHERE origin = ? AND integration_id IN (?, '*') AND expires_at > ?`);
    this.purgeStmt = db.prepare('DELETE FROM widget_grants WHERE expires_at <= ?');
  }

  grant(origins: string[], integrations: string[], expiresAt: string): void {
    this.db.transaction(() => {
      for (const o of origins) for (const i of integrations) this.insertStmt.run(o, i, expiresAt);
    })();
  }

  allowed(origin: string, integrationId: string): boolean {
    return (this.allowedStmt.get(origin, integrationId, new Date().toISOString())?.n ?? 0) > 0;
  }

  purgeExpired(): number {
    return this.purgeStmt.run(new Date().toISOString()).changes;
  }
}
