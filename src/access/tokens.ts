/**
 * Widget tokens: short-lived HS256 JWTs for browser code, scoped to
 * integrations and origins. Signed and checked with jose, imported at the
 * first token minted or checked (src/lazy.ts), not at start.
 */
import { LatchkeyError } from '../errors.js';
import { lazyModule } from '../lazy.js';
import type { Principal } from './principal.js';
import { base62 } from '../ids.js';

const jose = lazyModule('widget tokens', () => import('jose'));

const ISSUER = 'latchkey';
const AUDIENCE = 'latchkey-proxy';
export const MAX_TTL_SECONDS = 3600;
export const DEFAULT_TTL_SECONDS = 900;

export interface WidgetGrant {
  integrations: string[];
  origins: string[];
  ttlSeconds: number;
  /** The key that minted it: the token is valid only while that key is. */
  mintedBy: string;
  /** That key's own expiry: a token never outlives it. */
  keyExpiresAt: string | null;
}

export class TokenService {
  private readonly secret: Uint8Array | null;

  constructor(secret: string | undefined) {
    this.secret = secret ? new TextEncoder().encode(secret) : null;
  }

  get configured(): boolean {
    return this.secret !== null;
  }

  private requireSecret(): Uint8Array {
    if (!this.secret) throw new LatchkeyError('JWT_NOT_CONFIGURED', 'widget tokens need LATCHKEY_JWT_SECRET');
    return this.secret;
  }

  async mint(grant: WidgetGrant): Promise<{ token: string; expiresAt: string; tokenId: string }> {
    const secret = this.requireSecret();
    let exp = Math.floor(Date.now() / 1000) + grant.ttlSeconds;
    if (grant.keyExpiresAt) exp = Math.min(exp, Math.floor(Date.parse(grant.keyExpiresAt) / 1000));
    const tokenId = `wt_${base62(16)}`;
    const { SignJWT } = await jose();
    const token = await new SignJWT({ scope: grant.integrations, origins: grant.origins })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(grant.mintedBy)
      .setIssuedAt()
      .setJti(tokenId)
      .setExpirationTime(exp)
      .sign(secret);
    return { token, expiresAt: new Date(exp * 1000).toISOString(), tokenId };
  }

  async verify(token: string): Promise<Principal> {
    const secret = this.requireSecret();
    const { jwtVerify, errors: joseErrors } = await jose();
    try {
      // A token without exp would never end: refused, like one without a minting key.
      const { payload } = await jwtVerify(token, secret, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        audience: AUDIENCE,
        requiredClaims: ['exp', 'sub'],
      });
      const scope = payload.scope;
      const origins = payload.origins;
      if (!isStringList(scope) || !isStringList(origins) || typeof payload.sub !== 'string') {
        throw new LatchkeyError('INVALID_TOKEN', 'the token is invalid or has expired');
      }
      // Rules and rate limit are the minting key's current ones, filled in by the Authenticator.
      return { keyId: payload.sub, role: 'agent', integrations: scope, origins, kind: 'token', rules: null, rateLimit: null };
    } catch (err) {
      if (err instanceof LatchkeyError) throw err;
      if (err instanceof joseErrors.JOSEError) throw new LatchkeyError('INVALID_TOKEN', 'the token is invalid or has expired');
      throw err;
    }
  }
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
