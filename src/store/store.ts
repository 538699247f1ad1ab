import { existsSync, renameSync, writeFileSync } from 'node:fs';
import type { Db } from './db.js';
import { DatabaseError, backupTo, openDatabase } from './db.js';
import { IntegrationRepo } from './integrations.js';
import { AuthRecordRepo } from './auth-records.js';
import { ApiKeyRepo } from './api-keys.js';
import { AuditRepo } from './audit.js';
import { WidgetGrantRepo } from './widget-grants.js';
import { TokenStateRepo } from './token-state.js';
import { OAuthStateRepo } from './oauth-states.js';
import { LocalCaRepo } from './local-ca.js';
import { ChangeLogRepo } from './changes.js';
import { WalHeaderWatch } from './wal-header.js';
import { checkMasterKey, makeCheckValue } from '../crypto/seal.js';
import { MasterKeyError, resolveMasterKey, type MasterKeySource } from '../crypto/master-key.js';
import { LatchkeyError } from '../errors.js';

const CHECK_KEY = 'master_check';

export interface StoreOptions {
  dbPath: string;
  masterKey: string | undefined;
  masterKeyFile: string;
}

/**
 * The database and the master key, opened together: a Store exists only once
 * the key has been proven to open this database's check value.
 */
export class Store {
  readonly integrations: IntegrationRepo;
  readonly authRecords: AuthRecordRepo;
  readonly apiKeys: ApiKeyRepo;
  readonly audit: AuditRepo;
  readonly widgetGrants: WidgetGrantRepo;
  readonly tokenState: TokenStateRepo;
  readonly oauthStates: OAuthStateRepo;
  readonly localCa: LocalCaRepo;
  readonly changes: ChangeLogRepo;
  private localWrites = 0;
  private readonly dataVersionStmt;
  private readonly getCheckStmt;
  private readonly setCheckStmt;
  private checkedAtVersion = -1;
  private dataVersion: number | null = null;
  private lastDataVersion = 0;
  private readonly walHeader: WalHeaderWatch;

  private constructor(
    readonly db: Db,
    private masterKey: Buffer,
    readonly masterKeySource: MasterKeySource,
  ) {
    this.dataVersionStmt = db.prepare<[], { data_version: number }>('PRAGMA data_version');
    this.walHeader = new WalHeaderWatch(db);
    this.getCheckStmt = db.prepare<[string], { value: Buffer }>('SELECT value FROM meta WHERE key = ?');
    this.setCheckStmt = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    const bump = (): void => {
      this.localWrites++;
    };
    this.integrations = new IntegrationRepo(db, bump);
    this.authRecords = new AuthRecordRepo(db, () => this.currentMasterKey(), bump);
    this.apiKeys = new ApiKeyRepo(db, bump);
    this.audit = new AuditRepo(db);
    this.widgetGrants = new WidgetGrantRepo(db);
    this.tokenState = new TokenStateRepo(db, () => this.currentMasterKey(), this.authRecords);
    this.oauthStates = new OAuthStateRepo(db, () => this.currentMasterKey());
    this.localCa = new LocalCaRepo(db, () => this.currentMasterKey(), bump);
    this.changes = new ChangeLogRepo(db);
  }

  /** Throws MasterKeyError (wrong or missing key) or DatabaseError; the database file is not changed then. */
  static open(options: StoreOptions): Store {
    const db = openDatabase(options.dbPath);
    try {
      const check = db.prepare<[string], { value: Buffer }>('SELECT value FROM meta WHERE key = ?').get(CHECK_KEY);
      const hasRecords = db.prepare('SELECT 1 FROM auth_records LIMIT 1').get() !== undefined;
      const resolved = resolveMasterKey(options.masterKey, options.masterKeyFile, check !== undefined || hasRecords);
      if (check && !checkMasterKey(resolved.key, check.value)) {
        throw new MasterKeyError(
          `the master key (from ${resolved.source === 'env' ? 'LATCHKEY_MASTER_KEY' : options.masterKeyFile}) does not open ${options.dbPath}`,
        );
      }
      const store = new Store(db, resolved.key, resolved.source);
      if (!check) store.setCheckStmt.run(CHECK_KEY, makeCheckValue(resolved.key));
      return store;
    } catch (err) {
      db.close();
      // A damaged file shows up at its first read: say which file it is.
      const code = (err as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_')) throw new DatabaseError(`database ${options.dbPath}: ${(err as Error).message} (${code})`);
      throw err;
    }
  }

  /**
   * Changes whenever this process or another one wrote to the database, so a
   * cache keyed on it is never stale by more than the call that reads it.
   */
  version(): number {
    // Asked once per event-loop turn: a call that arrives after another
    // process's write was answered is always read in a later turn. SQLite is
    // asked only when the WAL header moved; it is read first, so a commit
    // after the read moves it again for the next turn.
    if (this.dataVersion === null) {
      if (this.walHeader.changed()) this.lastDataVersion = this.dataVersionStmt.get()?.data_version ?? 0;
      this.dataVersion = this.lastDataVersion;
      setImmediate(() => {
        this.dataVersion = null;
      });
    }
    return this.localWrites + this.dataVersion;
  }

  /**
   * The master key for sealing. If another process rotated the master key,
   * sealing under the old one would make new records unreadable; re-checking
   * the check value whenever the database changed refuses that.
   */
  private currentMasterKey(): Buffer {
    const v = this.version();
    if (v !== this.checkedAtVersion) {
      const check = this.getCheckStmt.get(CHECK_KEY);
      if (!check || !checkMasterKey(this.masterKey, check.value)) {
        throw new LatchkeyError('SERVICE_UNAVAILABLE', 'the master key was rotated by another process; restart latchkey');
      }
      this.checkedAtVersion = v;
    }
    return this.masterKey;
  }

  /** Re-wraps every data key (auth records and the local CA) and the check value in one transaction. */
  rotateMasterKey(newKey: Buffer): number {
    const oldKey = this.masterKey;
    const count = this.db.transaction(() => {
      const n = this.authRecords.rewrapAll(oldKey, newKey);
      this.tokenState.rewrapAll(oldKey, newKey);
      this.oauthStates.clear();
      this.localCa.rewrapAll(oldKey, newKey);
      this.setCheckStmt.run(CHECK_KEY, makeCheckValue(newKey));
      return n;
    }).immediate();
    this.masterKey = newKey;
    this.localWrites++;
    return count;
  }

  /** A consistent online copy (SQLite's backup API), safe while serving. */
  async backup(file: string): Promise<void> {
    if (existsSync(file)) throw new Error(`${file} already exists`);
    await backupTo(this.db, file);
  }

  close(): void {
    if (this.db.open) this.db.close();
    this.walHeader.close();
  }
}

/** Replaces a key file atomically, mode 0600. */
export function replaceKeyFile(path: string, key: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${key.toString('base64')}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
