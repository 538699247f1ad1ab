import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { initSodium } from '../../src/crypto/seal.js';
import { openDatabase } from '../../src/store/db.js';
import { Store } from '../../src/store/store.js';
import { WalHeaderWatch } from '../../src/store/wal-header.js';
import { tmpDir } from '../helpers/tmp.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

let cleanups: Array<() => void> = [];
beforeAll(async () => {
  await initSodium();
});
afterEach(() => {
  for (const c of cleanups.reverse()) c();
  cleanups = [];
});

function twoConnections(): { path: string; here: ReturnType<typeof openDatabase>; other: ReturnType<typeof openDatabase> } {
  const dir = tmpDir();
  const path = join(dir.path, 'latchkey.db');
  const here = openDatabase(path);
  const other = openDatabase(path);
  cleanups.push(() => {
    here.close();
    other.close();
    dir.cleanup();
  });
  return { path, here, other };
}

describe('the WAL header: has anyone committed since the last look?', () => {
  it('says yes after every commit of another connection, and no when nothing was committed', () => {
    const { here, other } = twoConnections();
    other.exec('CREATE TABLE t (x)');
    const watch = new WalHeaderWatch(here);
    cleanups.push(() => watch.close());
    expect(watch.changed()).toBe(true);
    expect(watch.changed()).toBe(false);
    const insert = other.prepare('INSERT INTO t VALUES (?)');
    for (let i = 0; i < 300; i++) {
      insert.run(i);
      expect(watch.changed()).toBe(true);
      expect(watch.changed()).toBe(false);
    }
    // A read, or a rolled-back transaction, is no commit.
    other.prepare('SELECT count(*) FROM t').get();
    const rolledBack = other.transaction(() => {
      insert.run(-1);
      throw new Error('roll back');
    });
    expect(() => rolledBack()).toThrow('roll back');
    expect(watch.changed()).toBe(false);
  });

  it('sees the commits after a checkpoint restarted the WAL', () => {
    const { here, other } = twoConnections();
    other.exec('CREATE TABLE t (x)');
    const watch = new WalHeaderWatch(here);
    cleanups.push(() => watch.close());
    watch.changed();
    for (let round = 0; round < 20; round++) {
      other.pragma('wal_checkpoint(TRUNCATE)');
      watch.changed();
      other.prepare('INSERT INTO t VALUES (?)').run(round);
      expect(watch.changed()).toBe(true);
    }
  });

  it('without WAL (no header to read) every look is a change', () => {
    const dir = tmpDir();
    const db = new Database(join(dir.path, 'rollback.db'));
    db.pragma('journal_mode = DELETE');
    const watch = new WalHeaderWatch(db);
    const memory = new WalHeaderWatch(new Database(':memory:'));
    expect([watch.changed(), watch.changed(), memory.changed(), memory.changed()]).toEqual([true, true, true, true]);
    watch.close();
    db.close();
    dir.cleanup();
  });

  it('Store.version(): moves at the next turn after another process commits, and only then', async () => {
    const dir = tmpDir();
    const opts = { dbPath: join(dir.path, 'latchkey.db'), masterKey: undefined, masterKeyFile: join(dir.path, 'master.key') };
    const here = Store.open(opts);
    const other = new Database(opts.dbPath);
    cleanups.push(() => {
      here.close();
      other.close();
      dir.cleanup();
    });
    const v0 = here.version();
    await nextTurn();
    expect(here.version()).toBe(v0);
    for (let i = 0; i < 50; i++) {
      const before = here.version();
      await nextTurn();
      other.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run(`k${i}`, Buffer.from('x'));
      expect(here.version()).not.toBe(before);
      await nextTurn();
    }
  });
});
