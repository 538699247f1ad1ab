/**
 * The audit trail. Proxied calls are queued and written in one transaction
 * every second (or every 500 rows), so the data plane never waits on SQLite;
 * admin changes are written at once, next to the change they describe.
 */
import type { Store } from './store/store.js';
import { auditTimeOf, type AuditEntry } from './store/audit.js';
import type { Logger } from './log.js';

const FLUSH_MS = 1000;
const FLUSH_ROWS = 500;
const PURGE_MS = 3600_000;

export class AuditLog {
  private queue: AuditEntry[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly store: Store,
    private readonly retentionDays: number,
    private readonly log: Logger,
  ) {
    this.timers.push(setInterval(() => this.flush(), FLUSH_MS), setInterval(() => this.purge(), PURGE_MS));
    for (const t of this.timers) t.unref();
    this.purge();
  }

  /** A proxied call: queued. */
  call(entry: AuditEntry): void {
    this.queue.push(entry);
    if (this.queue.length >= FLUSH_ROWS) this.flush();
  }

  /** An admin change: written now. */
  change(entry: AuditEntry): void {
    this.store.audit.insertMany([entry]);
  }

  flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.store.audit.insertMany(batch);
    } catch (err) {
      // An audit write must not take the proxy down; the log line says what was lost.
      this.log.error({ errCode: (err as { code?: string }).code, rows: batch.length }, 'audit rows could not be written');
    }
  }

  purge(): void {
    const cutoff = auditTimeOf(Date.now() - this.retentionDays * 86_400_000);
    const removed = this.store.audit.purgeBefore(cutoff);
    this.store.widgetGrants.purgeExpired();
    if (removed > 0) this.log.info({ removed, cutoff }, 'audit rows past retention removed');
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.flush();
  }
}
