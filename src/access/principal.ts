import { timingSafeEqual } from 'node:crypto';
import { LatchkeyError } from '../errors.js';
import { hashKey, type Role } from '../store/api-keys.js';
import type { ApiKeyRecord } from '../store/api-keys.js';
import type { Store } from '../store/store.js';
import { ChangeWatcher } from '../store/changes.js';
import { RuleSet, type RateLimit } from './rules.js';
import { BoundedCache } from '../bounded-cache.js';

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
  /** The key's request rules, compiled (widget tokens: their minting key's); null: none. */
  rules: RuleSet | null;
  /** The key's rate limit (widget tokens share their minting key's window); null: none. */
  rateLimit: RateLimit | null;
}

/** What a stored key grants, as the proxy and the admin API check it. */
export function principalOf(rec: ApiKeyRecord): Principal {
  return {
    keyId: rec.keyId,
    name: rec.name,
    role: rec.role,
    integrations: rec.integrations,
    kind: 'key',
    expiresAt: rec.expiresAt,
    rules: rec.rules ? new RuleSet(rec.rules) : null,
    rateLimit: rec.rateLimit,
  };
}

export const BOOTSTRAP_KEY_ID = 'bootstrap';
/** Bounds the memory a flood of made-up keys can take. */
const MAX_CACHED_KEYS = 10_000;

export const looksLikeKey = (value: string): boolean => value.startsWith('lk_');
export const looksLikeJwt = (value: string): boolean => /^eyJ[\w-]*\.[\w-]+\.[\w-]*$/.test(value);

/**
 * Verifies `lk_` keys. The env bootstrap key is compared in memory; the rest
 * are looked up by hash. Answers are cached; when the database changed (this
 * process or another), the change log names the keys that were written and
 * only their entries (and every "unknown key" answer) are dropped, so a
 * revocation applies to the very next call. At most `maxKeys` answers are kept.
 */
export class KeyVerifier {
  private readonly bootstrapHash: Buffer | null;
  /** Presented key -> principal (null: unknown or revoked). */
  private readonly cache: BoundedCache<string, Principal | null>;
  /** keyId -> principal of an active key (null: unknown or revoked), for widget tokens that name their minting key. */
  private readonly byId: BoundedCache<string, Principal | null>;
  private readonly watcher: ChangeWatcher;
  /** keyId -> last use, flushed to the database in batches. */
  readonly lastUsed = new Map<string, number>();

  constructor(
    private readonly store: Store,
    bootstrapKey: string | undefined,
    maxKeys = MAX_CACHED_KEYS,
  ) {
    this.cache = new BoundedCache(maxKeys);
    this.byId = new BoundedCache(maxKeys);
    this.bootstrapHash = bootstrapKey ? hashKey(bootstrapKey) : null;
    this.watcher = new ChangeWatcher(
      store,
      (entity, keyId) => {
        if (entity !== 'key') return;
        this.byId.delete(keyId);
        // Key changes are rare (create, revoke, update): a scan of the bounded cache is fine.
        for (const [presented, p] of this.cache.entries()) if (p === null || p.keyId === keyId) this.cache.delete(presented);
      },
      () => {
        this.cache.clear();
        this.byId.clear();
      },
    );
  }

  /**
   * The current grant of an active (not revoked, not expired) key by id, or
   * null. Widget tokens take their rules and rate limit from here on every
   * call, so a PATCH of the minting key applies to its tokens at once.
   */
  activeById(keyId: string): Principal | null {
    this.watcher.poll();
    if (keyId === BOOTSTRAP_KEY_ID) {
      return this.bootstrapHash ? { keyId, name: keyId, role: 'admin', integrations: ['*'], kind: 'key', rules: null, rateLimit: null } : null;
    }
    let found = this.byId.get(keyId);
    if (found === undefined) {
      const rec = this.store.apiKeys.get(keyId);
      found = rec && !rec.revokedAt ? principalOf(rec) : null;
      this.byId.set(keyId, found);
    }
    if (found?.expiresAt && Date.parse(found.expiresAt) <= Date.now()) return null;
    return found;
  }

  /** Whether the key with this id is still valid: not revoked, not expired (widget tokens live only that long). */
  isActive(keyId: string): boolean {
    return this.activeById(keyId) !== null;
  }

  verify(key: string): Principal {
    this.watcher.poll();
    // Keyed by the presented key itself: hashing on every call cost more than the rest of the check.
    let found: Principal | null | undefined = this.cache.get(key);
    if (found === undefined) {
      found = this.lookup(key);
      // A flood of made-up keys only ever costs the least used answers.
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
      return { keyId: BOOTSTRAP_KEY_ID, name: BOOTSTRAP_KEY_ID, role: 'admin', integrations: ['*'], kind: 'key', rules: null, rateLimit: null };
    }
    const rec = this.store.apiKeys.findByHash(hash);
    return rec && !rec.revokedAt ? principalOf(rec) : null;
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
