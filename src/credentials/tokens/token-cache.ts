/**
 * Access tokens for the token kinds: kept in memory, renewed
 * `oauth.refreshMarginSeconds` before they expire, one renewal at a time.
 *
 * - In this process, concurrent calls for one record share one renewal (a Map
 *   of promises).
 * - Across processes on one database, a renewal first takes the record's
 *   lease row in an immediate transaction and re-reads the state under it: a
 *   token another process renewed meanwhile is used instead of renewing again.
 * - A renewal's result (the access token and a rotated refresh token) is
 *   sealed and committed before any call gets the token.
 * - A refused grant marks the record `reauthorization_required`; an
 *   unreachable endpoint backs off (1 s doubling to 60 s) so it is not hammered.
 */
import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { LatchkeyError } from '../../errors.js';
import type { Store } from '../../store/store.js';
import type { LiveToken } from '../../store/token-state.js';
import type { Logger } from '../../log.js';
import { GrantError, requestToken, type GrantContext } from './grants.js';
import type { TokenConfig } from '../kinds/token-kinds.js';

export interface TokenCacheOptions {
  store: Store;
  agent: Dispatcher;
  log: Logger;
  marginSeconds: number;
  timeoutMs: number;
  /** A renewal failed: `refused` marked the record reauthorization_required. */
  onFailure?: (f: { integrationId: string; authId: string; reason: 'refused' | 'unreachable'; detail: string }) => void;
}

const MAX_BACKOFF_MS = 60_000;
const POLL_MS = 50;

/**
 * A token as kept: renewed `marginMs` before it expires, or halfway through
 * its life when that is shorter than twice the margin.
 */
export function liveToken(accessToken: string, expiresInSeconds: number, marginMs: number, now = Date.now()): LiveToken {
  const lifetime = expiresInSeconds * 1000;
  const margin = Math.min(marginMs, lifetime / 2);
  return { accessToken, expiresAt: now + lifetime, renewAt: now + lifetime - margin };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class TokenCache {
  private readonly cache = new Map<string, LiveToken>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly backoff = new Map<string, { until: number; failures: number }>();
  /** Names this process in lease rows. */
  private readonly owner = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private readonly grant: GrantContext;
  private readonly leaseMs: number;

  constructor(private readonly o: TokenCacheOptions) {
    this.grant = { agent: o.agent, timeoutMs: o.timeoutMs };
    // A lease outlives the slowest token request; a process that died holding one only delays others this long.
    this.leaseMs = o.timeoutMs + 5000;
  }

  /**
   * The access token for a record. `version` is the record's updatedAt: a
   * PATCH moves it, so a token obtained with old settings is not reused.
   * `refused`: the token an upstream just answered 401 to; it is renewed.
   */
  async accessToken(integrationId: string, authId: string, version: string, refused: string | null = null): Promise<string> {
    const key = `${authId}@${version}`;
    const cached = this.cache.get(key);
    if (cached && cached.renewAt > Date.now() && cached.accessToken !== refused) return cached.accessToken;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.renew(integrationId, authId, key, refused ?? cached?.accessToken ?? null, refused !== null).finally(() =>
        this.inflight.delete(key),
      );
      this.inflight.set(key, pending);
    }
    return pending;
  }

  /** `stale`: a token known to be refused or due; `strict`: it was refused, never reuse it. */
  private async renew(integrationId: string, authId: string, key: string, stale: string | null, strict: boolean): Promise<string> {
    const refused = strict ? stale : null;
    const { store } = this.o;
    // Another process may have renewed already: no lock needed to see that.
    const shared = store.tokenState.fresh(integrationId, authId, Date.now(), refused);
    if (shared) return this.keep(key, shared);
    const b = this.backoff.get(key);
    if (b && b.until > Date.now()) {
      throw new LatchkeyError('TOKEN_REFRESH_FAILED', `the token endpoint failed; next attempt in ${Math.ceil((b.until - Date.now()) / 1000)} s`);
    }
    for (;;) {
      const now = Date.now();
      const lease = store.tokenState.takeLease(integrationId, authId, this.owner, now, this.leaseMs, refused);
      if (lease.kind === 'fresh') return this.keep(key, lease.token);
      if (lease.kind === 'reauthorization_required') {
        throw new LatchkeyError('TOKEN_REFRESH_FAILED', `auth record ${authId} needs reauthorization: the token endpoint refused its grant`);
      }
      if (lease.kind === 'taken') break;
      await sleep(Math.max(1, Math.min(POLL_MS, lease.until - now)));
    }
    try {
      const record = store.authRecords.mustGet(integrationId, authId);
      const config = record.config as TokenConfig | null;
      if (!config) throw new LatchkeyError('INTERNAL_ERROR', `auth record ${authId} has no token settings`);
      // Read under the lease: the refresh token may have been rotated by another process a moment ago.
      const secrets = store.authRecords.openSecrets(integrationId, authId);
      const issued = await requestToken(this.grant, config, secrets);
      const token = liveToken(issued.accessToken, issued.expiresIn, this.o.marginSeconds * 1000);
      const rotated = issued.refreshToken && issued.refreshToken !== secrets.refreshToken ? { ...secrets, refreshToken: issued.refreshToken } : null;
      store.tokenState.save(integrationId, authId, token, rotated);
      this.backoff.delete(key);
      this.o.log.debug({ integrationId, authId, rotated: rotated !== null, expiresIn: issued.expiresIn }, 'access token renewed');
      return this.keep(key, token);
    } catch (err) {
      store.tokenState.release(authId, this.owner);
      throw this.failure(integrationId, authId, key, err);
    }
  }

  private keep(key: string, token: LiveToken): string {
    this.cache.set(key, token);
    return token.accessToken;
  }

  private failure(integrationId: string, authId: string, key: string, err: unknown): LatchkeyError {
    if (!(err instanceof GrantError)) return err instanceof LatchkeyError ? err : new LatchkeyError('TOKEN_REFRESH_FAILED', 'token renewal failed');
    this.cache.delete(key);
    if (err.kind === 'refused') {
      this.o.store.tokenState.markReauthorizationRequired(authId);
      this.o.log.warn({ integrationId, authId, detail: err.detail }, 'token grant refused: reauthorization required');
      this.o.onFailure?.({ integrationId, authId, reason: 'refused', detail: err.detail });
      return new LatchkeyError('TOKEN_REFRESH_FAILED', `auth record ${authId} needs reauthorization: ${err.detail}`);
    }
    const failures = (this.backoff.get(key)?.failures ?? 0) + 1;
    const wait = Math.min(1000 * 2 ** (failures - 1), MAX_BACKOFF_MS);
    this.backoff.set(key, { until: Date.now() + wait, failures });
    this.o.log.warn({ integrationId, authId, detail: err.detail, retryInMs: wait }, 'token renewal failed');
    this.o.onFailure?.({ integrationId, authId, reason: 'unreachable', detail: err.detail });
    return new LatchkeyError('TOKEN_REFRESH_FAILED', `${err.detail}; next attempt in ${Math.ceil(wait / 1000)} s`);
  }
}
