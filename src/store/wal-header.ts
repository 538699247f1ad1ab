/**
 * Whether any connection committed to a WAL database since the last look, for
 * the price of one small read and no lock: the first 48 bytes of the
 * `-shm` file are SQLite's wal-index header (https://sqlite.org/walformat.html),
 * which every commit rewrites (its change counter, the WAL's last frame and
 * their checksum) before the commit returns. `PRAGMA data_version` tells the
 * same by starting a read transaction, which takes and drops the WAL's
 * shared-memory locks (fcntl calls): 2.5-3 µs against about 1 µs for this
 * read. A database that is not in WAL mode (no `-shm` to read) is reported as
 * changed at every look, so the caller always asks SQLite.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { Db } from './db.js';

const HEADER_BYTES = 48;

export class WalHeaderWatch {
  private readonly fd: number | null;
  private readonly seen = Buffer.alloc(HEADER_BYTES);
  private readonly now = Buffer.alloc(HEADER_BYTES);
  /** The header before the first look matches nothing: the first look is a change. */
  private primed = false;

  constructor(db: Db) {
    let fd: number | null = null;
    // This connection keeps the -shm file (and its header) in place for as long as it is open.
    if (!db.memory && db.pragma('journal_mode', { simple: true }) === 'wal') {
      try {
        fd = openSync(`${db.name}-shm`, 'r');
      } catch {
        fd = null;
      }
    }
    this.fd = fd;
  }

  /** true if a commit may have happened since the last call (always true without a header to read). */
  changed(): boolean {
    if (this.fd === null) return true;
    let n = 0;
    try {
      n = readSync(this.fd, this.now, 0, HEADER_BYTES, 0);
    } catch {
      return true;
    }
    if (n !== HEADER_BYTES) return true;
    if (this.primed && this.now.equals(this.seen)) return false;
    this.now.copy(this.seen);
    this.primed = true;
    return true;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
  }
}
