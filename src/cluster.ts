/**
 * Config `workers` > 1: the proxy listener served by that many processes
 * (node:cluster; the primary hands connections to the workers in turn), all
 * sharing the database. Exactly one worker, the owner, also runs the admin
 * listener, the audit writer and the retention job. The other workers queue
 * their call audit rows as usual and every 250 ms send the batch (one JSON
 * string) to the primary, which relays it to the owner's writer thread: one
 * IPC message per worker per quarter second, whatever the call rate.
 *
 * Caches need nothing more: each worker has its own connection, and the change
 * log (src/store/changes.ts) tells every one of them what another wrote, so a
 * revocation through the admin API refuses the very next call on every worker.
 * Rate limits are counted in the primary: a worker asks it for each call of a
 * key that has a limit (one IPC round trip), so N workers still allow the
 * limit, not N times it. Proxy-only workers report what they counted (calls,
 * latency, injection failures...) to the owner about once a second and when
 * they stop, so /metrics and the console cover every worker.
 *
 * Shutdown (SIGTERM or SIGINT to the primary): every worker stops accepting and
 * finishes its in-flight calls; once every proxy-only worker has exited (its
 * last batch relayed), the owner is told, writes those rows, closes the
 * database and exits; then the primary exits 0.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config/load.js';
import type { Logger } from './log.js';
import type { WriterMessage } from './audit-writer.js';
import { ensureAdminKey, startApp, type RunningApp } from './app.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { RateLimiter, RemoteLimiter, type RateAnswer, type RateAsk } from './access/rate-limit.js';
import type { MetricsDelta } from './metrics.js';

type ToPrimary =
  | { lk: 'listening'; proxy: string; admin: string }
  | { lk: 'audit'; msg: WriterMessage }
  | { lk: 'metrics'; delta: MetricsDelta }
  | ({ lk: 'rate' } & RateAsk);
type ToWorker =
  | { lk: 'audit'; msg: WriterMessage }
  | { lk: 'metrics'; delta: MetricsDelta }
  | { lk: 'shutdown'; signal: string }
  | { lk: 'others-done' }
  | ({ lk: 'rate' } & RateAnswer);

const OWNER_ENV = 'LATCHKEY_CLUSTER_OWNER';

export const isClusterWorker = (): boolean => cluster.isWorker;

/**
 * Stops an app within the grace period, then exits: 0 when it stopped cleanly.
 * Shared by a single `serve` process and every cluster worker.
 */
export function stopAndExit(app: RunningApp, config: Config, log: Logger, signal: string): void {
  log.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
  const force = setTimeout(() => {
    log.warn('grace period over: closing remaining connections');
    app.forceClose();
  }, config.shutdownGraceMs);
  force.unref();
  app
    .stop()
    .then(() => {
      clearTimeout(force);
      log.info('stopped');
      log.flush(() => process.exit(0));
    })
    .catch((err: unknown) => {
      process.stderr.write(`latchkey: shutdown failed: ${(err as Error).message}\n`);
      process.exit(1);
    });
}

/** The primary: prepares the database once (migrations, keys), forks the workers and coordinates them. */
export async function runPrimary(config: Config, log: Logger): Promise<void> {
  // Done here, once: two workers racing would each generate a different master key.
  await initSodium();
  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  try {
    if (store.masterKeySource === 'generated') {
      log.warn({ file: config.masterKeyFile }, 'no master key was given: a new one was generated into the file; back it up');
    }
    ensureAdminKey(store, config, log);
  } finally {
    store.close();
  }

  const count = config.workerCount;
  // The one window per key for every worker.
  const limiter = new RateLimiter();
  let owner: Worker | null = null;
  const others = new Set<Worker>();
  const listening = new Map<number, { proxy: string; admin: string }>();
  let started = false;
  let stopping = false;

  const fork = (isOwner: boolean): void => {
    const w = cluster.fork({ [OWNER_ENV]: isOwner ? '1' : '' });
    if (isOwner) owner = w;
    else others.add(w);
    w.on('message', (m: ToPrimary) => {
      if (m.lk === 'rate') {
        if (w.isConnected()) w.send({ lk: 'rate', id: m.id, decision: limiter.take(m.bucket, m.limit) } satisfies ToWorker);
      } else if (m.lk === 'metrics') {
        if (owner && owner.isConnected()) owner.send({ lk: 'metrics', delta: m.delta } satisfies ToWorker);
      } else if (m.lk === 'audit') {
        const target = owner;
        if (target && target.isConnected()) target.send({ lk: 'audit', msg: m.msg } satisfies ToWorker);
        else if (m.msg.type === 'rows') log.error({ rows: m.msg.count }, 'audit rows lost: the audit writer is not running');
      } else if (m.lk === 'listening') {
        listening.set(w.id, m);
        if (!started && listening.size === count) {
          started = true;
          const ownerUrls = owner ? listening.get(owner.id) : undefined;
          log.info({ proxy: m.proxy, admin: ownerUrls?.admin ?? '', workers: count }, 'listening');
        }
      }
    });
    w.on('exit', (code, signal) => {
      others.delete(w);
      listening.delete(w.id);
      if (stopping) {
        if (w === owner) {
          owner = null;
          log.info('stopped');
          log.flush(() => process.exit(code === 0 ? 0 : 1));
        } else if (others.size === 0) {
          owner?.send({ lk: 'others-done' } satisfies ToWorker);
        }
        return;
      }
      if (!started) {
        // A start that cannot work: the worker said why on stderr.
        for (const id in cluster.workers) cluster.workers[id]?.process.kill('SIGKILL');
        process.stderr.write(`latchkey: a worker exited during start (${signal ?? code})\n`);
        process.exit(1);
      }
      const wasOwner = w === owner;
      log.error({ workerId: w.id, code, signal, owner: wasOwner }, 'worker exited: starting another');
      if (wasOwner) owner = null;
      fork(wasOwner);
    });
  };
  fork(true);
  for (let i = 1; i < count; i++) fork(false);

  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: count }, 'shutting down');
    for (const id in cluster.workers) cluster.workers[id]?.send({ lk: 'shutdown', signal } satisfies ToWorker);
    if (others.size === 0) owner?.send({ lk: 'others-done' } satisfies ToWorker);
    // A worker that hangs past its own grace period is not waited on for ever.
    setTimeout(() => {
      for (const id in cluster.workers) cluster.workers[id]?.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdownGraceMs + 10_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** A worker: the app, proxy-only or owner, told by the primary when to stop. */
export async function runWorker(config: Config, baseLog: Logger): Promise<void> {
  const isOwner = process.env[OWNER_ENV] === '1';
  const log = baseLog.child({ worker: cluster.worker?.id ?? 0, pid: process.pid });
  const send = (m: ToPrimary): Promise<void> =>
    new Promise((resolve, reject) => process.send?.(m, undefined, {}, (err) => (err ? reject(err) : resolve())));

  let othersDone: () => void = () => undefined;
  const othersDonePromise = new Promise<void>((r) => (othersDone = r));
  let app: RunningApp | null = null;
  /** Audit batches and metrics deltas from other workers that reach this one before its app is up (an owner being replaced). */
  const early: Array<Extract<ToWorker, { lk: 'audit' | 'metrics' }>> = [];
  const deliver = (to: RunningApp, m: Extract<ToWorker, { lk: 'audit' | 'metrics' }>): void => {
    if (m.lk === 'audit') to.relayAudit(m.msg);
    else to.mergeMetrics(m.delta);
  };
  let stopping = false;
  const limiter = new RemoteLimiter((q) => process.send?.({ lk: 'rate', ...q } satisfies ToPrimary));
  const stop = (signal: string): void => {
    if (stopping || !app) return;
    stopping = true;
    stopAndExit(app, config, log, signal);
  };
  process.on('message', (m: ToWorker) => {
    if (m.lk === 'rate') limiter.answer(m);
    else if (m.lk === 'metrics' || m.lk === 'audit') {
      if (app) deliver(app, m);
      else early.push(m);
    } else if (m.lk === 'others-done') othersDone();
    else if (m.lk === 'shutdown') stop(m.signal);
  });
  // The primary coordinates shutdown (Ctrl-C signals the whole process group); a primary that is gone stops us.
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => {
    othersDone();
    stop('disconnect');
  });

  app = await startApp(config, log, {}, {
    owner: isOwner,
    remoteAudit: isOwner ? undefined : (msg) => send({ lk: 'audit', msg }),
    othersDone: isOwner ? () => othersDonePromise : undefined,
    limiter,
    remoteMetrics: isOwner ? undefined : (delta) => send({ lk: 'metrics', delta }),
    onListening: (urls) => {
      log.info(urls, 'worker listening');
      void send({ lk: 'listening', ...urls });
    },
  });
  for (const m of early.splice(0)) deliver(app, m);
}
