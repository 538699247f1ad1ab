import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { batchFilter } from './batch-filter.js';

export type Db = Database.Database;

/** Rows the change log keeps (see migration 5). */
export const CHANGE_LOG_KEEP = 10_000;

/**
 * Migrations by `PRAGMA user_version`: entry i takes the schema from version i
 * to i+1. SQL, or a function for a step SQL alone cannot do; all pending ones
 * run in one transaction.
 */
const MIGRATIONS: Array<string | ((db: Db) => void)> = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
  ) STRICT;

  CREATE TABLE integrations (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id TEXT NOT NULL UNIQUE,
    name           TEXT,
    base_url       TEXT NOT NULL,
    allowed_hosts  TEXT NOT NULL,
    headers        TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
  ) STRICT;

  CREATE TABLE auth_records (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    auth_id          TEXT NOT NULL UNIQUE,
    integration_id   TEXT NOT NULL REFERENCES integrations (integration_id) ON DELETE CASCADE,
    auth_type        TEXT NOT NULL,
    headers          TEXT NOT NULL,
    api_key_name     TEXT,
    api_key_position TEXT,
    wrapped_key      BLOB NOT NULL,
    sealed           BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
  ) STRICT;
  CREATE INDEX auth_records_by_integration ON auth_records (integration_id, seq);

  CREATE TABLE api_keys (
    key_id       TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    integrations TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
  ) STRICT;
  `,
  `
  CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    time           TEXT NOT NULL,
    request_id     TEXT,
    key_id         TEXT,
    action         TEXT NOT NULL,
    integration_id TEXT,
    auth_id        TEXT,
    method         TEXT,
    host           TEXT,
    path           TEXT,
    status         INTEGER,
    duration_ms    REAL
  ) STRICT;
  CREATE INDEX audit_log_by_time ON audit_log (time);
  CREATE INDEX audit_log_by_integration ON audit_log (integration_id, time);

  CREATE TABLE widget_grants (
    origin         TEXT NOT NULL,
    integration_id TEXT NOT NULL,
    expires_at     TEXT NOT NULL
  ) STRICT;
  CREATE INDEX widget_grants_by_origin ON widget_grants (origin, integration_id, expires_at);
  `,
  `
  ALTER TABLE integrations ADD COLUMN provider TEXT;
  ALTER TABLE auth_records ADD COLUMN provider TEXT;
  ALTER TABLE auth_records ADD COLUMN label TEXT;
  -- A catalog provider's injection template (names and placeholders, no secret).
  ALTER TABLE auth_records ADD COLUMN template TEXT;
  `,
  `
  -- Proxied calls, a batch per row: a JSON array of call tuples in time order.
  CREATE TABLE audit_call_batches (
    id         INTEGER PRIMARY KEY,
    first_time TEXT NOT NULL,
    last_time  TEXT NOT NULL,
    rows       TEXT NOT NULL
  ) STRICT;
  CREATE INDEX audit_call_batches_by_time ON audit_call_batches (last_time);
  `,
  `
  -- One grant per widget token (its origins and integrations as JSON lists),
  -- bound to the key that minted it: a revoked or expired key ends its grants.
  DROP TABLE widget_grants;
  CREATE TABLE widget_grants (
    token_id     TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    origins      TEXT NOT NULL,
    integrations TEXT NOT NULL,
    expires_at   TEXT NOT NULL
  ) STRICT;
  CREATE INDEX widget_grants_by_key ON widget_grants (key_id, expires_at);
  CREATE INDEX widget_grants_by_expiry ON widget_grants (expires_at);
  `,
  `
  -- A credential kind's non-secret settings as JSON (AWS region and service, an HMAC template, an OAuth token URL).
  ALTER TABLE auth_records ADD COLUMN config TEXT;
  `,
  `
  -- The live state of a token credential, shared by every process on this database:
  -- the current access token (sealed like a secret), whether the grant still works,
  -- and the renewal lease that lets one process at a time call the token endpoint.
  CREATE TABLE token_state (
    auth_id          TEXT PRIMARY KEY REFERENCES auth_records (auth_id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    token_expires_at TEXT,
    renew_at         INTEGER,
    wrapped_key      BLOB,
    sealed           BLOB,
    lease_owner      TEXT,
    lease_until      INTEGER,
    updated_at       TEXT NOT NULL
  ) STRICT;

  -- Pending connect flows (authorization code + PKCE): single-use, short-lived. The integration
  -- may not exist yet (a catalog provider's is created when the flow completes).
  CREATE TABLE oauth_states (
    state_hash     BLOB PRIMARY KEY,
    integration_id TEXT NOT NULL,
    settings       TEXT NOT NULL,
    wrapped_key    BLOB NOT NULL,
    sealed         BLOB NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
  ) STRICT;
  `,
  `
  -- The local CA that signs interception leaf certificates. Its private key is
  -- sealed like an auth record's secrets; the newest row is the current CA.
  CREATE TABLE local_ca (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    ca_id       TEXT NOT NULL UNIQUE,
    cert_pem    TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  TEXT NOT NULL
  ) STRICT;
  `,
  `
  -- What changed, for the in-memory caches of every process sharing this file: a cache
  -- that sees PRAGMA data_version move reads the rows after the last seq it saw and
  -- forgets only those entries. Audit tables and lastUsedAt updates write nothing here.
  CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    entity TEXT NOT NULL,
    id     TEXT NOT NULL
  ) STRICT;
  -- Self-pruning: the newest ${CHANGE_LOG_KEEP} rows stay; a cache further behind forgets everything.
  CREATE TRIGGER changes_prune AFTER INSERT ON changes
  BEGIN
    DELETE FROM changes WHERE seq <= NEW.seq - ${CHANGE_LOG_KEEP};
  END;
  CREATE TRIGGER integrations_changed_ins AFTER INSERT ON integrations
  BEGIN INSERT INTO changes (entity, id) VALUES ('integration', NEW.integration_id); END;
  CREATE TRIGGER integrations_changed_upd AFTER UPDATE ON integrations
  BEGIN
    INSERT INTO changes (entity, id) VALUES ('integration', OLD.integration_id);
    INSERT INTO changes (entity, id) SELECT 'integration', NEW.integration_id WHERE NEW.integration_id <> OLD.integration_id;
  END;
  CREATE TRIGGER integrations_changed_del AFTER DELETE ON integrations
  BEGIN INSERT INTO changes (entity, id) VALUES ('integration', OLD.integration_id); END;
  -- An auth record belongs to its integration's plan.
  CREATE TRIGGER auth_records_changed_ins AFTER INSERT ON auth_records
  BEGIN INSERT INTO changes (entity, id) VALUES ('integration', NEW.integration_id); END;
  CREATE TRIGGER auth_records_changed_upd AFTER UPDATE ON auth_records
  BEGIN
    INSERT INTO changes (entity, id) VALUES ('integration', OLD.integration_id);
    INSERT INTO changes (entity, id) SELECT 'integration', NEW.integration_id WHERE NEW.integration_id <> OLD.integration_id;
  END;
  CREATE TRIGGER auth_records_changed_del AFTER DELETE ON auth_records
  BEGIN INSERT INTO changes (entity, id) VALUES ('integration', OLD.integration_id); END;
  CREATE TRIGGER api_keys_changed_ins AFTER INSERT ON api_keys
  BEGIN INSERT INTO changes (entity, id) VALUES ('key', NEW.key_id); END;
  -- Every update but the lastUsedAt bookkeeping (the only statement that sets last_used_at),
  -- whatever columns later migrations add.
  CREATE TRIGGER api_keys_changed_upd AFTER UPDATE ON api_keys WHEN NEW.last_used_at IS OLD.last_used_at
  BEGIN INSERT INTO changes (entity, id) VALUES ('key', OLD.key_id); END;
  CREATE TRIGGER api_keys_changed_del AFTER DELETE ON api_keys
  BEGIN INSERT INTO changes (entity, id) VALUES ('key', OLD.key_id); END;
  `,
  `
  -- Which integrations each call batch holds, so a read filtered by integration
  -- expands only the batches that contain it (written with the batch, one row
  -- per distinct integration).
  CREATE TABLE audit_batch_integrations (
    integration_id TEXT NOT NULL,
    last_time      TEXT NOT NULL,
    batch_id       INTEGER NOT NULL,
    PRIMARY KEY (integration_id, last_time, batch_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX audit_batch_integrations_by_time ON audit_batch_integrations (last_time);
  INSERT OR IGNORE INTO audit_batch_integrations (integration_id, last_time, batch_id)
    SELECT DISTINCT json_extract(j.value, '$[4]'), b.last_time, b.id
    FROM audit_call_batches b, json_each(b.rows) j
    WHERE json_extract(j.value, '$[4]') IS NOT NULL;
  `,
  `
  -- Least privilege for agents: request rules and a rate limit per key (JSON, NULL: none).
  ALTER TABLE api_keys ADD COLUMN rules TEXT;
  ALTER TABLE api_keys ADD COLUMN rate_limit TEXT;
  -- Injected secrets are replaced in responses unless an integration opts out.
  ALTER TABLE integrations ADD COLUMN redact_responses INTEGER NOT NULL DEFAULT 1;
  `,
  (db: Db): void => {
    // Which integrations each batch holds, as one appended row per batch (src/store/batch-filter.ts)
    // instead of one index row per integration and batch written at random places.
    db.exec(`
      CREATE TABLE audit_batch_filters (
        last_time  TEXT NOT NULL,
        batch_id   INTEGER NOT NULL,
        first_time TEXT NOT NULL,
        filter     BLOB NOT NULL,
        PRIMARY KEY (last_time, batch_id)
      ) STRICT, WITHOUT ROWID;
      DROP TABLE audit_batch_integrations;`);
    const insert = db.prepare('INSERT INTO audit_batch_filters (last_time, batch_id, first_time, filter) VALUES (?, ?, ?, ?)');
    const batches = db.prepare<[], { id: number; first_time: string; last_time: string; rows: string }>('SELECT id, first_time, last_time, rows FROM audit_call_batches');
    const filters: Array<[string, number, string, Buffer]> = [];
    for (const b of batches.iterate()) {
      filters.push([b.last_time, b.id, b.first_time, batchFilter((JSON.parse(b.rows) as Array<Array<string | null>>).map((t) => t[4] ?? null))]);
    }
    for (const f of filters) insert.run(...f);
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class DatabaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseError';
  }
}

/**
 * Opens (creating if needed) the database, sets WAL and foreign keys, and runs
 * pending migrations in one transaction. An existing database at the current
 * version is not written to.
 */
export function openDatabase(path: string, options: { readonly?: boolean } = {}): Db {
  if (!options.readonly && path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (options.readonly && !existsSync(path)) throw new DatabaseError(`database ${path}: does not exist`);
  let db: Db;
  const isNew = path !== ':memory:' && !existsSync(path);
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
    // Sealed blobs are not secrets, but nothing about this file is anyone else's business.
    if (isNew) chmodSync(path, 0o600);
    if (!options.readonly) db.pragma('journal_mode = WAL');
    // WAL alone leaves this connection at FULL; NORMAL is durable against a process kill.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new DatabaseError(`database ${path}: schema version ${version} is newer than this latchkey (${SCHEMA_VERSION})`);
    }
    if (version < SCHEMA_VERSION && !options.readonly) migrate(db, version);
  } catch (err) {
    if (err instanceof DatabaseError) throw err;
    throw new DatabaseError(`database ${path}: ${(err as Error).message}`);
  }
  return db;
}

function migrate(db: Db, seen: number): void {
  db.transaction(() => {
    // Read again under the write lock: another process opening the same file may have just migrated it.
    const from = Math.max(seen, db.pragma('user_version', { simple: true }) as number);
    for (let v = from; v < SCHEMA_VERSION; v++) {
      const step = MIGRATIONS[v] as string | ((db: Db) => void);
      if (typeof step === 'string') db.exec(step);
      else step(db);
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * A consistent online copy (SQLite's backup API), safe while serving. The
 * file is created 0600 before SQLite writes to it: a copy of the database is
 * nobody else's business either, whatever the umask.
 */
export async function backupTo(db: Db, file: string): Promise<void> {
  closeSync(openSync(file, 'wx', 0o600));
  chmodSync(file, 0o600);
  await db.backup(file);
}

export const nowIso = (): string => new Date().toISOString();

/** Now, or one millisecond after `before` when the clock has not moved past it. */
export function nextTimestamp(before: string): string {
  const now = nowIso();
  return now > before ? now : new Date(Date.parse(before) + 1).toISOString();
}
