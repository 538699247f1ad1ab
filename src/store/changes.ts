/**
 * The change log (table `changes`, filled by triggers): which integrations and
 * keys were written, by this process or any other sharing the database. Caches
 * use it to forget only what changed instead of everything whenever
 * `PRAGMA data_version` moves (the audit writer alone moves it four times a
 * second).
 */
import type { Db } from './db.js';

export type ChangedEntity = 'integration' | 'key';

export interface Change {
  seq: number;
  entity: ChangedEntity;
  id: string;
}

export class ChangeLogRepo {
  private readonly headStmt;
  private readonly sinceStmt;

  constructor(db: Db) {
    this.headStmt = db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM changes');
    this.sinceStmt = db.prepare<[number], Change>('SELECT seq, entity, id FROM changes WHERE seq > ? ORDER BY seq');
  }

  /** The newest seq (0 for an empty log). */
  head(): number {
    return this.headStmt.get()?.seq ?? 0;
  }

  since(seq: number): Change[] {
    return this.sinceStmt.all(seq);
  }
}

/** What a store offers a cache: its version (moves on any write anywhere) and the change log. */
export interface ChangeSource {
  version(): number;
  readonly changes: ChangeLogRepo;
}

/**
 * One cache's position in the change log. `poll()` is cheap when nothing was
 * written (one comparison); when the database version moved it reads the rows
 * after the last seq seen and calls `forget` for each, or `forgetAll` when the
 * log was pruned past that seq. Seqs are contiguous (AUTOINCREMENT, rolled
 * back with their transaction), so a first row that is not `seq + 1` means rows
 * were pruned.
 */
export class ChangeWatcher {
  private version = -1;
  private seq: number;

  constructor(
    private readonly source: ChangeSource,
    private readonly forget: (entity: ChangedEntity, id: string) => void,
    private readonly forgetAll: () => void,
  ) {
    // Read before anything is cached: a change committed after this is seen by the next poll.
    this.seq = source.changes.head();
  }

  poll(): void {
    const v = this.source.version();
    if (v === this.version) return;
    this.version = v;
    const rows = this.source.changes.since(this.seq);
    if (rows.length === 0) return;
    if ((rows[0] as Change).seq !== this.seq + 1) {
      this.forgetAll();
    } else {
      for (const r of rows) this.forget(r.entity, r.id);
    }
    this.seq = (rows[rows.length - 1] as Change).seq;
  }
}
