import type { FastifyRequest } from 'fastify';
import type { Store } from '../store/store.js';
import type { Authenticator } from '../access/credentials.js';
import type { Logger } from '../log.js';
import type { Principal } from '../access/principal.js';

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
  /** Records an admin change (never a secret: only ids and the action). */
  audit: (req: FastifyRequest, action: string, target: AuditTarget) => void;
  /** Whether the service may take traffic (database open, master key checked). */
  ready: () => boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}
