/**
 * The audit trail. Proxied calls are queued and handed in batches (every
 * 250 ms, or every 500 calls) to a worker thread that stores each batch as one
 * row, so the data plane never waits on SQLite. Admin changes are written at
 * once, next to the change they describe.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Store } from './store/store.js';
import { auditTime, auditTimeOf, auditTuple, type AuditEntry, type AuditTuple } from './store/audit.js';
import type { WriterMessage, WriterReply } from './audit-writer.js';
import type { Logger } from './log.js';

const FLUSH_MS = 250;
const FLUSH_ROWS = 500;
/** The batch's bytes start this large (500 calls of the usual size fit) and grow when a batch needs more. */
const BATCH_BYTES = 128 * 1024;
const PURGE_MS = 3600_000;
/**
 * Calls refused before a valid key was shown can come from anyone (a web page
 * sending no-cors requests included): per minute, this many are kept as rows
 * and the rest are counted in one summary row, so they cannot fill the disk.
 */
export const REFUSALS_KEPT_PER_MINUTE = 20;

/** The compiled worker; from TypeScript sources (tests) it is the one `npm test` built into dist/. */
function writerFile(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? here.replace(/[/\\]src[/\\]audit\.ts$/, '/dist/src/audit-writer.js')
    : here.replace(/audit\.js$/, 'audit-writer.js');
}

/**
 * Where a proxy-only cluster worker hands its batches: the primary relays them
 * to the one worker that owns the audit writer (src/cluster.ts). Resolves once
 * the message left this process.
 */
export type RemoteWriter = (msg: WriterMessage) => Promise<void>;

export class AuditLog {
  /**
   * The queued calls as the batch's JSON, "[tuple,tuple,…", each written in
   * as soon as it is made (at the end of the event-loop turn its call ended
   * in, src/app.ts): one flat copy, where an array of tuples kept for up to
   * 250 ms had the young-generation collector copy each one twice and the
   * join copy them once more. Then how many, and which integrations.
   */
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  private batchEnd = 1;
  private rows = 0;
  private batchIds = new Set<string>();
  private queueFirst = '';
  private queueLast = '';
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly worker: Worker | null;
  /** The last batch handed to the remote writer, awaited on close. */
  private lastRemote: Promise<void> = Promise.resolve();
  private readonly waiting = new Map<number, () => void>();
  private nextSync = 0;
  /** Set when the writer thread is gone: rows are then written here, and nobody waits on it. */
  private writerGone = false;
  private refusalMinute = 0;
  private refusalsKept = 0;
  private refusalsCounted = 0;
  /** A proxy-only worker's kept refusals (time, tuple JSON), sent with its next batch to be sampled by the owner. */
  private refusals: Array<[string, string]> = [];

  constructor(
    private readonly store: Store,
    dbPath: string,
    private readonly retentionDays: number,
    private readonly log: Logger,
    private readonly remote: RemoteWriter | null = null,
  ) {
    this.timers.push(setInterval(() => this.flush(), FLUSH_MS));
    if (remote) {
      // A proxy-only worker: no writer thread and no retention job of its own.
      this.worker = null;
      for (const t of this.timers) t.unref();
      return;
    }
    this.worker = new Worker(writerFile(), { workerData: { dbPath } });
    this.worker.unref();
    this.worker.on('message', (reply: WriterReply) => {
      if (reply.type === 'synced') {
        this.waiting.get(reply.id)?.();
        this.waiting.delete(reply.id);
      } else {
        // An audit write must not take the proxy down; the log line says what was lost.
        log.error({ errCode: reply.code, rows: reply.rows }, 'audit rows could not be written');
      }
    });
    this.worker.on('error', (err) => log.error({ errName: err.name }, 'audit writer failed; writing audit rows in the main thread'));
    this.worker.on('exit', () => {
      this.writerGone = true;
      for (const resolve of this.waiting.values()) resolve();
      this.waiting.clear();
    });
    this.timers.push(setInterval(() => this.purge(), PURGE_MS));
    for (const t of this.timers) t.unref();
    this.purge();
  }

  private post(msg: WriterMessage): void {
    if (this.remote) {
      this.lastRemote = this.remote(msg).catch(() => {
        this.log.error({ rows: msg.type === 'rows' ? msg.count : 0 }, 'audit rows could not be handed to the audit writer');
      });
      return;
    }
    (this.worker as Worker).postMessage(msg);
  }

  /**
   * A batch from another cluster worker, already in stored form: straight to
   * the writer. Its keyless refusals are sampled here, with every other
   * worker's, so the limit holds for the whole cluster.
   */
  relay(msg: WriterMessage): void {
    if (msg.type !== 'rows') return;
    // Kept refusals are few (REFUSALS_KEPT_PER_MINUTE): their integration is read back from the tuple.
    for (const [time, json] of msg.refusals ?? []) this.callTuple(json, time, true, (JSON.parse(json) as AuditTuple)[4]);
    if (msg.refused) this.countRefusals(msg.refused);
    if (msg.count > 0) this.write(msg.json, msg.first, msg.last, msg.count, msg.ids);
  }

  /** A batch to the writer thread, or stored here when that thread is gone. */
  private write(json: string, first: string, last: string, count: number, ids: string[], fromWorker?: { refusals: Array<[string, string]>; refused: number }): void {
    if (this.writerGone) {
      try {
        this.store.audit.insertCallBatch(json, first, last, ids);
      } catch (err) {
        this.log.error({ errCode: (err as { code?: string }).code, rows: count }, 'audit rows could not be written');
      }
      return;
    }
    this.post({ type: 'rows', json, first, last, count, ids, ...fromWorker });
  }

  /** A row of the call trail: queued. */
  call(entry: AuditEntry): void {
    this.callTuple(JSON.stringify(auditTuple(entry)), entry.time, false, entry.integrationId);
  }

  /**
   * A proxied call's tuple as JSON (src/call-record.ts) and its time: queued.
   * One refused before any valid key was shown (`refusal`) is sampled, the
   * rest counted (REFUSALS_KEPT_PER_MINUTE).
   */
  callTuple(json: string, time: string, refusal: boolean, integrationId: string | null): void {
    if (refusal) {
      if (!this.keepRefusal()) return;
      // A proxy-only worker's candidates are sampled again by the owner, with every worker's.
      if (this.remote) {
        this.refusals.push([time, json]);
        return;
      }
    }
    // The batch's bounds (relayed refusals arrive up to a flush late, so not always in order).
    if (this.rows === 0 || time < this.queueFirst) this.queueFirst = time;
    if (this.rows === 0 || time > this.queueLast) this.queueLast = time;
    // At most 3 bytes per UTF-16 unit, a separator and the closing bracket.
    const room = 3 * json.length + 2;
    if (this.batchEnd + room > this.batch.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.batch.length, this.batchEnd + room));
      this.batch.copy(grown, 0, 0, this.batchEnd);
      this.batch = grown;
    }
    if (this.rows > 0) this.batch[this.batchEnd++] = 0x2c;
    this.batchEnd += this.batch.write(json, this.batchEnd);
    if (integrationId !== null) this.batchIds.add(integrationId);
    if (++this.rows >= FLUSH_ROWS) this.flush();
  }

  /** Refusals another worker counted without keeping them: in this minute's summary row. */
  private countRefusals(n: number): void {
    this.refusalWindow();
    this.refusalsCounted += n;
  }

  private keepRefusal(): boolean {
    this.refusalWindow();
    if (this.refusalsKept < REFUSALS_KEPT_PER_MINUTE) {
      this.refusalsKept++;
      return true;
    }
    this.refusalsCounted++;
    return false;
  }

  /** Closes the refusal minute when a new one has begun. */
  private refusalWindow(): void {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.refusalMinute) this.closeRefusalMinute(minute);
  }

  /** One summary row for the refusals of the minute that ended (none if all were kept). */
  private closeRefusalMinute(minute: number): void {
    // A proxy-only worker sends its count with its next batch instead (the owner writes the row).
    if (this.refusalsCounted > 0 && !this.remote) {
      this.call({
        time: auditTime(),
        requestId: null,
        keyId: null,
        action: 'proxy.refused',
        integrationId: null,
        authId: null,
        method: null,
        host: null,
        path: null,
        status: null,
        durationMs: null,
        error: null,
        count: this.refusalsCounted,
      });
    }
    this.refusalMinute = minute;
    this.refusalsKept = 0;
    if (!this.remote) this.refusalsCounted = 0;
  }

  /** An admin change: written now. */
  change(entry: AuditEntry): void {
    this.store.audit.insertMany([entry]);
  }

  flush(): void {
    this.refusalWindow();
    // A proxy-only worker's refusals go to the owner with its rows, even when it has no rows.
    const fromWorker = this.remote && (this.refusals.length > 0 || this.refusalsCounted > 0) ? { refusals: this.refusals, refused: this.refusalsCounted } : undefined;
    if (this.rows === 0 && !fromWorker) return;
    if (fromWorker) {
      this.refusals = [];
      this.refusalsCounted = 0;
    }
    this.batch[0] = 0x5b;
    this.batch[this.batchEnd] = 0x5d;
    const json = this.batch.toString('utf8', 0, this.batchEnd + 1);
    const { rows } = this;
    const ids = [...this.batchIds];
    // A batch that grew for long tuples does not keep its size.
    if (this.batch.length > BATCH_BYTES) this.batch = Buffer.allocUnsafe(BATCH_BYTES);
    this.batchEnd = 1;
    this.rows = 0;
    this.batchIds = new Set();
    this.write(json, this.queueFirst, this.queueLast, rows, ids, fromWorker);
  }

  /** Resolves once every call recorded so far is in the database (for reads of the trail). */
  synced(): Promise<void> {
    this.flush();
    if (this.remote) return this.lastRemote;
    if (this.writerGone) return Promise.resolve();
    const id = this.nextSync++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.post({ type: 'sync', id });
    });
  }

  purge(): void {
    const cutoff = auditTimeOf(Date.now() - this.retentionDays * 86_400_000);
    const removed = this.store.audit.purgeBefore(cutoff);
    this.store.widgetGrants.purgeExpired();
    if (removed > 0) this.log.info({ removed, cutoff }, 'audit rows past retention removed');
  }

  /** Writes what is queued and stops the writer. */
  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.closeRefusalMinute(0);
    const worker = this.worker;
    if (!worker) {
      await this.synced();
      return;
    }
    // Hold the process open until the last rows are written.
    worker.ref();
    await this.synced();
    if (this.writerGone) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.post({ type: 'close' });
    await exited;
  }

  /** Ends the writer thread at once, as a crash would (the tests use it to prove the fallback). */
  async killWriter(): Promise<void> {
    await this.worker?.terminate();
  }
}
