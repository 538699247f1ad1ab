import type { Db } from './db.js';
import { nowIso } from './db.js';
import { openCaKey, rewrapCaKey, sealCaKey } from '../crypto/seal.js';

/** The current local CA as stored: the certificate in the clear, the private key sealed. */
export interface StoredCa {
  caId: string;
  certPem: string;
  createdAt: string;
}

interface Row {
  ca_id: string;
  cert_pem: string;
  wrapped_key: Buffer;
  sealed: Buffer;
  created_at: string;
}

export interface NewCa {
  caId: string;
  certPem: string;
  /** PKCS#8 DER of the private key: sealed here, zeroed by the caller. */
  pkcs8: Uint8Array;
}

/**
 * The local CA's row. Only the newest row is used; a rotation writes the new
 * CA and drops the old one in one transaction.
 */
export class LocalCaRepo {
  private readonly currentStmt;
  private readonly insertStmt;
  private readonly deleteOthersStmt;
  private readonly allStmt;
  private readonly rewrapStmt;

  constructor(
    private readonly db: Db,
    private readonly masterKey: () => Buffer,
    private readonly onWrite: () => void,
  ) {
    this.currentStmt = db.prepare<[], Row>('SELECT * FROM local_ca ORDER BY seq DESC LIMIT 1');
    this.insertStmt = db.prepare(`
      INSERT INTO local_ca (ca_id, cert_pem, wrapped_key, sealed, created_at)
      VALUES (@caId, @certPem, @wrappedKey, @sealed, @now)`);
    this.deleteOthersStmt = db.prepare('DELETE FROM local_ca WHERE ca_id <> ?');
    this.allStmt = db.prepare<[], { ca_id: string; wrapped_key: Buffer }>('SELECT ca_id, wrapped_key FROM local_ca');
    this.rewrapStmt = db.prepare('UPDATE local_ca SET wrapped_key = ? WHERE ca_id = ?');
  }

  current(): StoredCa | undefined {
    const row = this.currentStmt.get();
    return row ? { caId: row.ca_id, certPem: row.cert_pem, createdAt: row.created_at } : undefined;
  }

  /** The current CA's private key (PKCS#8 DER); the caller zeroes it once imported. */
  openPrivateKey(): { caId: string; pkcs8: Buffer } | undefined {
    const row = this.currentStmt.get();
    if (!row) return undefined;
    return { caId: row.ca_id, pkcs8: openCaKey(this.masterKey(), row.ca_id, { wrappedKey: row.wrapped_key, sealed: row.sealed }) };
  }

  private insert(ca: NewCa): void {
    const { wrappedKey, sealed } = sealCaKey(this.masterKey(), ca.caId, ca.pkcs8);
    this.insertStmt.run({ caId: ca.caId, certPem: ca.certPem, wrappedKey, sealed, now: nowIso() });
  }

  /**
   * Stores `ca` only if no CA exists yet (two processes starting on a new
   * database agree on the first one written) and returns the current one.
   */
  ensure(ca: NewCa): StoredCa {
    const result = this.db
      .transaction(() => {
        const existing = this.current();
        if (existing) return existing;
        this.insert(ca);
        return this.current() as StoredCa;
      })
      .immediate();
    this.onWrite();
    return result;
  }

  /** Replaces the CA: the new one is written and every other row removed, atomically. */
  replace(ca: NewCa): StoredCa {
    const result = this.db.transaction(() => {
      this.insert(ca);
      this.deleteOthersStmt.run(ca.caId);
      return this.current() as StoredCa;
    }).immediate();
    this.onWrite();
    return result;
  }

  /** Master-key rotation: re-wrap the CA's data key (runs inside the store's rotation transaction). */
  rewrapAll(oldKey: Buffer, newKey: Buffer): number {
    const rows = this.allStmt.all();
    for (const r of rows) this.rewrapStmt.run(rewrapCaKey(oldKey, newKey, r.ca_id, r.wrapped_key), r.ca_id);
    return rows.length;
  }
}
