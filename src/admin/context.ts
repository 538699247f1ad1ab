import type { KindDeps } from '../credentials/kind.js';
import type { FastifyRequest } from 'fastify';
import type { Store } from '../store/store.js';
import type { Authenticator } from '../access/credentials.js';
import type { Logger } from '../log.js';
import type { Principal } from '../access/principal.js';
import type { AuditLog } from '../audit.js';
import type { Dispatcher } from 'undici';
import type { Catalog } from '../catalog/catalog.js';
import { auditTime } from '../store/audit.js';
import type { Metrics } from '../metrics.js';
import type { KeyVerifier } from '../access/principal.js';
import type { ConnectDeps } from '../credentials/tokens/connect.js';
import type { LocalCa } from '../tls/ca.js';

export interface AuditTarget {
  integrationId?: string;
  authId?: string;
  keyId?: string;
}

export interface AdminContext {
  store: Store;
  authn: Authenticator;
  log: Logger;
  bodyLimit: number;
  auditLog: AuditLog;
  catalog: Catalog;
  /** The proxy's upstream agent: catalog probes go out the same way as calls. */
  agent: Dispatcher;
  probeTimeoutMs: number;
  /** Settings credential kinds depend on (the signing body limit). */
  kindDeps: KindDeps;
  metrics: Metrics;
  keys: KeyVerifier;
  /** Console sessions end this long after sign-in (config console.sessionMinutes). */
  consoleSessionMinutes: number;
  /** Extra origins console forms may come from (config console.origins). */
  consoleOrigins: string[];
  /** The OAuth connect flow (authorize URL, callback). */
  connect: ConnectDeps;
  /** Whether the service may take traffic (database open, master key checked). */
  ready: () => boolean;
  /** The local CA of CONNECT interception (its certificate is public: GET /ca.pem). */
  localCa: LocalCa;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Agent keys may call this route too (admin keys always may). */
    allowAgent?: boolean;
  }
}

const SUCCESS: Record<string, number> = { POST: 201, PATCH: 200, PUT: 200, DELETE: 204 };

/** Records an admin change, written at once: ids and the action, never a secret. */
export function auditChange(ctx: AdminContext, req: FastifyRequest, action: string, target: AuditTarget): void {
  ctx.auditLog.change({
    time: auditTime(),
    requestId: req.id,
    keyId: req.principal?.keyId ?? null,
    action,
    integrationId: target.integrationId ?? null,
    authId: target.authId ?? target.keyId ?? null,
    method: req.method,
    host: null,
    path: req.url.split('?')[0] ?? req.url,
    status: SUCCESS[req.method] ?? 200,
    durationMs: null,
  });
}
