import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/load.js';
import { callLineTarget, type Logger } from './log.js';
import { serializeCall } from './call-record.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { KeyVerifier } from './access/principal.js';
import { TokenService } from './access/tokens.js';
import { Authenticator } from './access/credentials.js';
import { buildAdminServer, registeredRoutes, type RegisteredRoute } from './admin/server.js';
import { createProxyServer, type ProxyListener } from './proxy/server.js';
import { Connector, type ConnectorOptions } from './proxy/connector.js';
import { LocalCa } from './tls/ca.js';
import { PlanCache } from './proxy/plans.js';
import { upstreamCa } from './proxy/tls.js';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { AuditLog, type RemoteWriter } from './audit.js';
import { Metrics, type MetricsDelta } from './metrics.js';
import type { CallMeta, CallRecord } from './proxy/server.js';
import { auditTime, auditTimeAt } from './store/audit.js';
import { TokenCache } from './credentials/tokens/token-cache.js';
import type { WriterMessage } from './audit-writer.js';
import { RateLimiter, type Limiter } from './access/rate-limit.js';

export interface RunningApp {
  proxyUrl: string;
  adminUrl: string;
  store: Store;
  /** The admin listener's routes (for the OpenAPI completeness test). */
  adminRoutes: () => RegisteredRoute[];
  localCa: LocalCa;
  stop: () => Promise<void>;
  /** After the grace period: drop the connections that are still open. */
  forceClose: () => void;
  /** The owner in a cluster: a batch of call rows from another worker, for its audit writer. */
  relayAudit: (msg: WriterMessage) => void;
  /** The owner in a cluster: adds a proxy-only worker's counts to /metrics. */
  mergeMetrics: (delta: MetricsDelta) => void;
}

/**
 * What this process does when several serve the proxy listener (config
 * `workers`, src/cluster.ts). Alone, a process is the owner.
 */
export interface AppRole {
  /** Runs the admin listener, the audit writer and the retention job (exactly one process does). */
  owner: boolean;
  /** Proxy-only workers: where batches of call audit rows go. */
  remoteAudit?: RemoteWriter;
  /** The owner in a cluster: resolves once every other worker's last audit rows were handed over. */
  othersDone?: () => Promise<void>;
  /** Told the bound addresses instead of logging "listening" (the primary logs it for all). */
  onListening?: (urls: { proxy: string; admin: string }) => void;
  /** Cluster workers: rate limits are counted by the primary, for all workers at once. */
  limiter?: Limiter;
  /** Proxy-only workers: where what they counted goes (the owner serves /metrics for all). */
  remoteMetrics?: (delta: MetricsDelta) => Promise<void>;
}

/** The master key opens every credential: a key file that others on the host can read is worth a warning at every start. */
function warnIfShared(file: string, log: Logger): void {
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    log.warn({ file, mode: `0${mode.toString(8)}` }, 'the master key file is readable by group or others: chmod 600 it');
  }
}

/** Where the generated bootstrap admin key goes: beside the database. */
export const adminKeyPath = (dbPath: string): string => join(dirname(dbPath), 'admin.key');

/**
 * With no admin key anywhere, nobody could ever manage this instance: make
 * one, keep only its hash, and hand the key over in a 0600 file (never a log).
 */
export function ensureAdminKey(store: Store, config: Config, log: Logger): void {
  if (config.adminKey || store.apiKeys.hasActiveAdmin()) return;
  const { key, record } = store.apiKeys.create({ name: 'bootstrap', role: 'admin', integrations: ['*'], expiresAt: null });
  const file = adminKeyPath(config.db);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  // mode only applies to a new file: a stale one keeps its own unless set again.
  chmodSync(file, 0o600);
  log.warn({ file, keyId: record.keyId }, 'no admin key existed: a bootstrap admin key was written to the file');
}

const urlOf = (server: { address(): AddressInfo | string | null }): string => {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
};

/** What every proxied call leaves behind (its log line, counters, a latency sample and an audit row), and the drain of those still pending. */
interface CallObserver {
  onCall: (rec: CallRecord, meta: CallMeta) => void;
  drain: () => void;
}

/**
 * A call's record is only queued when it ends (with the moment it ended); the
 * records of every call that ended in one event-loop turn are made together
 * once the turn's socket events are handled (setImmediate), before the next
 * ones are read, so an audit read or a /metrics scrape that follows a call's
 * answer always finds it. Made one after the other, the few calls of a turn
 * share warm caches: interleaved with each call's own HTTP work the same code
 * cost about 9 % more CPU per call (README "Scaling", the per-call work).
 */
function observeCalls(metrics: Metrics, auditLog: AuditLog, log: Logger): CallObserver {
  const lines = callLineTarget(log);
  let pending: Array<{ rec: CallRecord; known: boolean; at: number }> = [];
  const drain = (): void => {
    const ended = pending;
    pending = [];
    for (const { rec, known, at } of ended) {
      try {
        // Only existing integrations become label values: callers cannot grow the series.
        const integration = known ? (rec.integrationId as string) : 'unknown';
        metrics.countCall(integration, rec.status, rec.error ? null : rec.ms / 1000);
        if (rec.error) metrics.injectionFailures.inc({ code: rec.error });
        if (rec.redactions > 0) metrics.redactions.inc({ integration }, rec.redactions);
        // Stamped when the call ended: the queue, and so every stored batch, is then in time order.
        const time = auditTimeAt(at);
        const { line, tuple } = serializeCall(rec, time, lines?.chindings ?? null);
        if (line !== null) lines?.write(line);
        // No valid key: anyone could be sending these, so they are sampled, not all stored.
        auditLog.callTuple(tuple, time, rec.keyId === null, rec.integrationId);
      } catch (err) {
        // A fault here must not cost the other calls of the turn their records, nor the process.
        log.error({ requestId: rec.requestId, errName: (err as Error)?.name }, 'a call record could not be made');
      }
    }
  };
  return {
    onCall: (rec, { known }) => {
      if (pending.length === 0) setImmediate(drain);
      pending.push({ rec, known, at: performance.now() });
    },
    drain,
  };
}

async function listen(server: Server, host: string, port: number): Promise<void> {
  server.listen(port, host);
  await once(server, 'listening');
}

/** Seams for tests only: a resolver stand-in and a dial map that keeps every dial on loopback. */
export type AppHooks = Pick<ConnectorOptions, 'resolve' | 'dialAddress'>;

export interface StartOptions extends AppHooks {
  /** false: the proxy listener only (`latchkey run` starting a latchkey of its own). */
  admin?: boolean;
}

export async function startApp(config: Config, log: Logger, options: StartOptions = {}, role: AppRole = { owner: true }): Promise<RunningApp> {
  // The admin listener runs in one process only: not for `latchkey run`'s own latchkey, not in proxy-only workers.
  const serveAdmin = options.admin !== false && role.owner;
  await initSodium();
  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  if (store.masterKeySource === 'generated') {
    log.warn({ file: config.masterKeyFile }, 'no master key was given: a new one was generated into the file; back it up');
  }
  if (store.masterKeySource === 'file') warnIfShared(config.masterKeyFile, log);
  let admin: FastifyInstance | undefined;
  let proxy: ProxyListener | undefined;
  let auditLog: AuditLog | undefined;
  try {
    if (role.owner) ensureAdminKey(store, config, log);
    const keys = new KeyVerifier(store, config.adminKey, config.cache.keys);
    const authn = new Authenticator(keys, new TokenService(config.jwtSecret));
    const metrics = new Metrics();
    const localCa = LocalCa.open(store, { onMint: (ms) => metrics.leafMinted(ms) });
    auditLog = new AuditLog(store, config.db, config.audit.retentionDays, log, role.remoteAudit ?? null);
    let ready = false;
    const ca = upstreamCa(config.proxy.caFile);
    const connector = new Connector({ connectTimeoutMs: config.proxy.connectTimeoutMs, ca, resolve: options.resolve, dialAddress: options.dialAddress });
    const agent = connector.undiciAgent({
      headersTimeoutMs: config.proxy.headersTimeoutMs,
      bodyTimeoutMs: config.proxy.bodyTimeoutMs,
    });
    let adminBound = '';
    const tokens = new TokenCache({
      store,
      agent,
      log,
      marginSeconds: config.oauth.refreshMarginSeconds,
      timeoutMs: config.oauth.tokenTimeoutMs,
      onFailure: ({ integrationId, authId, reason }) => {
        metrics.tokenRefreshFailures.inc({ integration: integrationId, reason });
        if (reason !== 'refused') return;
        // The record now needs a person: that is an event worth an audit row, once per refusal.
        auditLog?.change({
          time: auditTime(),
          requestId: null,
          keyId: null,
          action: 'auth.reauthorization_required',
          integrationId,
          authId,
          method: null,
          host: null,
          path: null,
          status: 502,
          durationMs: null,
        });
      },
    });
    const kindDeps = { maxBodyBytes: config.proxy.signing.maxBodyBytes, tokens };
    admin = buildAdminServer({
      store,
      authn,
      keys,
      log,
      metrics,
      auditLog,
      catalog: config.providerCatalog,
      agent,
      probeTimeoutMs: config.catalog.probeTimeoutMs,
      kindDeps,
      connect: {
        store,
        catalog: config.providerCatalog,
        grant: { agent, timeoutMs: config.oauth.tokenTimeoutMs },
        redirectUri: () => config.oauth.redirectUri ?? `${adminBound}/oauth/callback`,
        marginSeconds: config.oauth.refreshMarginSeconds,
      },
      bodyLimit: 64 * 1024,
      consoleSessionMinutes: config.console.sessionMinutes,
      consoleOrigins: config.console.origins,
      ready: () => ready,
      localCa,
    });
    const calls = observeCalls(metrics, auditLog, log);
    proxy = createProxyServer({
      plans: new PlanCache(store, kindDeps, config.cache.plans),
      authn,
      clientAuth: config.proxy.clientAuth,
      // A preflight is answered only for tokens whose minting key is still valid.
      originGranted: (origin, integrationId) => store.widgetGrants.grantingKeys(origin, integrationId).some((keyId) => keys.isActive(keyId)),
      limiter: role.limiter ?? new RateLimiter(),
      agent,
      connector,
      log,
      ca,
      localCa,
      passthroughHosts: config.proxy.passthroughHosts,
      onCall: calls.onCall,
      onTunnel: (kind) => metrics.tunnelOpened(kind),
      onMessageRedactions: (integration, n) => metrics.redactions.inc({ integration }, n),
    });
    // Both at once (the admin listener's fastify boot is most of it); settled before any error is
    // thrown, so the clean-up below never races a bind still under way. The proxy's error comes first.
    const bound = await Promise.allSettled([
      listen(proxy.server, config.proxyAddress.host, config.proxyAddress.port),
      serveAdmin ? admin.listen({ host: config.adminAddress.host, port: config.adminAddress.port }) : undefined,
    ]);
    for (const b of bound) if (b.status === 'rejected') throw b.reason;
    const proxyUrl = urlOf(proxy.server);
    const adminUrl = serveAdmin ? urlOf(admin.server) : '';
    adminBound = adminUrl;
    ready = true;
    // The metrics library and its process metrics: loaded now that both listeners serve (src/metrics.ts).
    if (serveAdmin) {
      setImmediate(() => {
        metrics.prepare().catch((err: unknown) => log.warn({ errCode: (err as { code?: string }).code }, 'metrics could not be prepared yet: /metrics will try again'));
      });
    }
    // A new database gets its local CA during its first start, once the listeners serve (so the start
    // is not slower for it); a tunnel or /ca.pem that comes first makes it then, and both agree (ensure).
    const caMade =
      role.owner && !store.localCa.current()
        ? localCa.certificatePem().then(
            () => undefined,
            (err: unknown) => log.warn({ errCode: (err as { code?: string }).code }, 'the local CA could not be made yet: it will be at its first use'),
          )
        : null;
    const flush = setInterval(() => keys.flushLastUsed(), 5000);
    flush.unref();
    const remoteMetrics = role.remoteMetrics;
    const reportMetrics = async (): Promise<void> => {
      const delta = await metrics.takeDelta();
      if (delta && remoteMetrics) await remoteMetrics(delta);
    };
    const report = remoteMetrics ? setInterval(() => void reportMetrics().catch(() => undefined), 1000) : null;
    report?.unref();
    if (role.onListening) role.onListening({ proxy: proxyUrl, admin: adminUrl });
    else log.info({ proxy: proxyUrl, admin: adminUrl }, 'listening');

    const adminApp: FastifyInstance = admin;
    const proxyListener: ProxyListener = proxy;
    const proxyServer: Server = proxy.server;
    const audit: AuditLog = auditLog;
    return {
      proxyUrl,
      adminUrl,
      store,
      adminRoutes: () => [...(registeredRoutes.get(adminApp) ?? [])],
      localCa,
      stop: async () => {
        clearInterval(flush);
        ready = false;
        // Stop accepting on both listeners; in-flight calls run to completion.
        const proxyClosed = new Promise<void>((r) => proxyServer.close(() => r()));
        // Keep-alive connections go as soon as their in-flight call is answered.
        const reaper = setInterval(() => proxyListener.closeIdle(), 50);
        await Promise.all([proxyClosed, adminApp.close()]);
        clearInterval(reaper);
        // The records of the last calls, if their turn's drain has not run yet (counted before the report below).
        calls.drain();
        // Every call has ended: what this worker counted since its last report goes to the owner.
        if (report) {
          clearInterval(report);
          await reportMetrics().catch(() => undefined);
        }
        await agent.close();
        // The owner writes the other workers' rows too: it closes the writer after their last batch.
        await role.othersDone?.();
        await audit.close();
        keys.flushLastUsed();
        // A CA still being made is written (one transaction) before the database closes.
        await caMade;
        store.close();
      },
      relayAudit: (msg) => audit.relay(msg),
      mergeMetrics: (delta) => metrics.mergeDelta(delta),
      forceClose: () => {
        proxyListener.closeAll();
        adminApp.server.closeAllConnections();
      },
    };
  } catch (err) {
    await auditLog?.close();
    proxy?.server.close();
    await admin?.close();
    store.close();
    throw err;
  }
}
