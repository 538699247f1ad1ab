import { timingSafeEqual } from 'node:crypto';
import { LatchkeyError } from '../errors.js';
import { hashKey, type Role } from '../store/api-keys.js';
import type { Store } from '../store/store.js';

/** Who is calling: resolved once per request, checked by the admin API and the proxy alike. */
export interface Principal {
  keyId: string;
  /** The key's name, for readable logs. */
  name?: string;
  role: Role;
  /** Integration ids this caller may use; ["*"] for all. */
  integrations: string[];
  kind: 'key' | 'token';
  /** Widget tokens only: the origins the token may be used from. */
  origins?: string[];
  expiresAt?: string | null;
}

export const BOOTSTRAP_KEY_ID = 'bootstrap';
/** Bounds the memory a flood of made-up keys can take. */
const MAX_CACHED_KEYS = 10_000;

export const looksLikeKey = (value: string): boolean => value.startsWith('lk_');
export const looksLikeJwt = (value: string): boolean => /^eyJ[\w-]*\.[\w-]+\.[\w-]*$/.test(value);

/**
 * Verifies `lk_` keys. The env bootstrap key is compared in memory; the rest
 * are looked up by hash. Answers are cached per database version, so a
 * revocation (from this process or another) applies to the very next call.
 */
export class KeyVerifier {
  private readonly bootstrapHash: Buffer | null;
  /** Presented key -> principal (null: unknown or revoked); dropped when the database changes. */
  private cache = new Map<string, Principal | null>();
  private cacheVersion = -1;
  /** keyId -> expiry of an active key (null: unknown or revoked), for widget tokens. */
  private byId = new Map<string, { expiresAt: string | null } | null>();
  /** keyId -> last use, flushed to the database in batches. */
  readonly lastUsed = new Map<string, number>();

  constructor(private readonly store: Store, bootstrapKey: string | undefined) {
    this.bootstrapHash = bootstrapKey ? hashKey(bootstrapKey) : null;
  }

  /** Drops every cached answer when the database changed (here or in another process). */
  private fresh(): void {
    const version = this.store.version();
    if (version !== this.cacheVersion || this.cache.size > MAX_CACHED_KEYS || this.byId.size > MAX_CACHED_KEYS) {
      this.cache = new Map();
      this.byId = new Map();
      this.cacheVersion = version;
    }
  }

  /** Whether the key with this id is still valid: not revoked, not expired (widget tokens live only that long). */
  isActive(keyId: string): boolean {
    this.fresh();
    if (keyId === BOOTSTRAP_KEY_ID) return this.bootstrapHash !== null;
    let found = this.byId.get(keyId);
    if (found === undefined) {
      const rec = this.store.apiKeys.get(keyId);
      found = rec && !rec.revokedAt ? { expiresAt: rec.expiresAt } : null;
      this.byId.set(keyId, found);
    }
    return found !== null && (!found.expiresAt || Date.parse(found.expiresAt) > Date.now());
  }

  verify(key: string): Principal {
    this.fresh();
    // Keyed by the presented key itself: hashing on every call cost more than the rest of the check.
    let found: Principal | null | undefined = this.cache.get(key);
    if (found === undefined) {
      found = this.lookup(key);
      this.cache.set(key, found);
    }
    if (!found || (found.expiresAt && Date.parse(found.expiresAt) <= Date.now())) {
      throw new LatchkeyError('INVALID_API_KEY', 'the API key is invalid, expired or revoked');
    }
    if (found.keyId !== BOOTSTRAP_KEY_ID) this.lastUsed.set(found.keyId, Date.now());
    return found;
  }

  /**
   * A key known by its hash only (a console session keeps no key): valid,
   * unrevoked and unexpired right now, read from the database, not the cache.
   */
  verifyHash(hash: Buffer): Principal | null {
    const found = this.lookupHash(hash);
    if (!found || (found.expiresAt && Date.parse(found.expiresAt) <= Date.now())) return null;
    return found;
  }

  private lookup(key: string): Principal | null {
    return this.lookupHash(hashKey(key));
  }

  private lookupHash(hash: Buffer): Principal | null {
    if (this.bootstrapHash && timingSafeEqual(hash, this.bootstrapHash)) {
      return { keyId: BOOTSTRAP_KEY_ID, name: BOOTSTRAP_KEY_ID, role: 'admin', integrations: ['*'], kind: 'key' };
    }
    const rec = this.store.apiKeys.findByHash(hash);
    return rec && !rec.revokedAt
      ? { keyId: rec.keyId, name: rec.name, role: rec.role, integrations: rec.integrations, kind: 'key', expiresAt: rec.expiresAt }
      : null;
  }

  flushLastUsed(): void {
    if (this.lastUsed.size === 0) return;
    const batch = new Map([...this.lastUsed].map(([keyId, ms]) => [keyId, new Date(ms).toISOString()]));
    this.lastUsed.clear();
    this.store.apiKeys.touchMany(batch);
  }
}

export function mayUseIntegration(p: Principal, integrationId: string): boolean {
  return p.integrations.includes('*') || p.integrations.includes(integrationId);
}
