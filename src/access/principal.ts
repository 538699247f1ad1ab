import { timingSafeEqual } from 'node:crypto';
import { LatchkeyError } from '../errors.js';
import { hashKey, type Role } from '../store/api-keys.js';
import type { Store } from '../store/store.js';

/** Who is calling: resolved once per request, checked by the admin API and the proxy alike. */
export interface Principal {
  keyId: string;
  role: Role;
  /** Integration ids this caller may use; ["*"] for all. */
  integrations: string[];
  kind: 'key' | 'token';
  /** Widget tokens only: the origins the token may be used from. */
  origins?: string[];
  expiresAt?: string | null;
}

export const BOOTSTRAP_KEY_ID = 'bootstrap';

export const looksLikeKey = (value: string): boolean => value.startsWith('lk_');
export const looksLikeJwt = (value: string): boolean => /^eyJ[\w-]*\.[\w-]+\.[\w-]*$/.test(value);

/**
 * Verifies `lk_` keys. The env bootstrap key is compared in memory; the rest
 * are looked up by hash. Answers are cached per database version, so a
 * revocation (from this process or another) applies to the very next call.
 */
export class KeyVerifier {
  private readonly bootstrapHash: Buffer | null;
  private cache = new Map<string, Principal | null>();
  private cacheVersion = -1;
  /** keyId -> last use, flushed to the database in batches. */
  readonly lastUsed = new Map<string, string>();

  constructor(private readonly store: Store, bootstrapKey: string | undefined) {
    this.bootstrapHash = bootstrapKey ? hashKey(bootstrapKey) : null;
  }

  verify(key: string): Principal {
    const hash = hashKey(key);
    if (this.bootstrapHash && timingSafeEqual(hash, this.bootstrapHash)) {
      return { keyId: BOOTSTRAP_KEY_ID, role: 'admin', integrations: ['*'], kind: 'key' };
    }
    const version = this.store.version();
    if (version !== this.cacheVersion) {
      this.cache = new Map();
      this.cacheVersion = version;
    }
    const cacheKey = hash.toString('base64');
    let found: Principal | null | undefined = this.cache.get(cacheKey);
    if (found === undefined) {
      const rec = this.store.apiKeys.findByHash(hash);
      found =
        rec && !rec.revokedAt
          ? { keyId: rec.keyId, role: rec.role, integrations: rec.integrations, kind: 'key', expiresAt: rec.expiresAt }
          : null;
      this.cache.set(cacheKey, found);
    }
    if (!found || (found.expiresAt && Date.parse(found.expiresAt) <= Date.now())) {
      throw new LatchkeyError('INVALID_API_KEY', 'the API key is invalid, expired or revoked');
    }
    this.lastUsed.set(found.keyId, new Date().toISOString());
    return found;
  }

  flushLastUsed(): void {
    if (this.lastUsed.size === 0) return;
    const batch = new Map(this.lastUsed);
    this.lastUsed.clear();
    this.store.apiKeys.touchMany(batch);
  }
}

export function mayUseIntegration(p: Principal, integrationId: string): boolean {
  return p.integrations.includes('*') || p.integrations.includes(integrationId);
}
