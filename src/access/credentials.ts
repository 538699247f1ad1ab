import { LatchkeyError } from '../errors.js';
import { KeyVerifier, looksLikeJwt, looksLikeKey, type Principal } from './principal.js';
import type { TokenService } from './tokens.js';

/** Resolves a presented secret (an lk_ key or a widget JWT) to a Principal. */
export class Authenticator {
  constructor(
    readonly keys: KeyVerifier,
    readonly tokens: TokenService,
  ) {}

  /** A key is checked at once (the hot path awaits nothing); a widget token's signature asynchronously. Throws or rejects with a LatchkeyError. */
  resolve(secret: string): Principal | Promise<Principal> {
    if (looksLikeKey(secret)) return this.keys.verify(secret);
    if (looksLikeJwt(secret)) return this.token(secret);
    throw new LatchkeyError('INVALID_AUTH_FORMAT', 'expected an lk_ API key or a JWT');
  }

  /**
   * A widget token never reaches further than the key that minted it: it is
   * refused once that key is revoked or expired, and it carries that key's
   * current request rules and rate limit (the same window: a token and its
   * key share one budget).
   */
  private async token(secret: string): Promise<Principal> {
    const principal = await this.tokens.verify(secret);
    const minter = this.keys.activeById(principal.keyId);
    if (!minter) throw new LatchkeyError('INVALID_TOKEN', 'the token is invalid or has expired');
    return { ...principal, rules: minter.rules, rateLimit: minter.rateLimit };
  }

  /**
   * Admin API: `Authorization: Bearer KEY` (recommended) or `X-API-Key: KEY`.
   * Admin keys pass; agent keys only where `allowAgent` (minting widget
   * tokens); widget tokens never.
   */
  async adminPrincipal(
    authorization: string | undefined,
    apiKeyHeader: string | undefined,
    allowAgent = false,
  ): Promise<Principal> {
    let secret: string;
    if (authorization !== undefined) {
      const m = /^Bearer +(\S+) *$/i.exec(authorization);
      if (!m) throw new LatchkeyError('INVALID_AUTH_FORMAT', 'the Authorization header must be "Bearer <key>"');
      secret = m[1] as string;
    } else if (apiKeyHeader !== undefined) {
      secret = apiKeyHeader.trim();
    } else {
      throw new LatchkeyError('AUTH_REQUIRED', 'an API key is required (Authorization: Bearer KEY or X-API-Key)');
    }
    const principal = await this.resolve(secret);
    if (principal.kind === 'token') throw new LatchkeyError('FORBIDDEN', 'widget tokens may only call the proxy');
    if (principal.role !== 'admin' && !allowAgent) throw new LatchkeyError('FORBIDDEN', 'this route needs an admin key');
    return principal;
  }
}
