/**
 * Console sessions, in memory: a random id in an HttpOnly, SameSite=Strict
 * cookie; the admin key itself is never kept, by the browser or here (only its
 * SHA-256, as in the database). Every use re-checks the key: a session ends
 * when its key is revoked or expires, and at most `minutes` after sign-in.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { LatchkeyError } from '../errors.js';
import { hashKey } from '../store/api-keys.js';
import type { KeyVerifier, Principal } from '../access/principal.js';
import type { Flash } from './html.js';

export interface Session {
  id: string;
  csrf: string;
  keyHash: Buffer;
  keyId: string;
  name: string;
  expiresAt: number;
  flash: Flash | null;
}

/** Console requests into the admin API carry this header: a per-process secret and the session id. */
export const INTERNAL_HEADER = 'x-latchkey-console';
const MAX_SESSIONS = 1000;

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export class ConsoleSessions {
  private readonly internalSecret = randomBytes(32).toString('base64url');
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly keys: KeyVerifier,
    readonly minutes: number,
  ) {}

  /** Admin keys only; an agent key or a widget token is refused like on the admin API. */
  signIn(key: string): Session {
    const principal = this.keys.verify(key.trim());
    if (principal.role !== 'admin') throw new LatchkeyError('FORBIDDEN', 'the console needs an admin key');
    const now = Date.now();
    const keyExpiry = principal.expiresAt ? Date.parse(principal.expiresAt) : Infinity;
    const session: Session = {
      id: randomBytes(32).toString('base64url'),
      csrf: randomBytes(32).toString('base64url'),
      keyHash: hashKey(key.trim()),
      keyId: principal.keyId,
      name: principal.name ?? principal.keyId,
      expiresAt: Math.min(now + this.minutes * 60_000, keyExpiry),
      flash: null,
    };
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session for a cookie value, or null (unknown, expired, or its key no longer valid). */
  get(id: string | undefined): Session | null {
    if (!id) return null;
    const s = this.sessions.get(id);
    if (!s) return null;
    if (Date.now() >= s.expiresAt || !this.principalOf(s)) {
      this.sessions.delete(id);
      return null;
    }
    return s;
  }

  end(id: string): void {
    this.sessions.delete(id);
  }

  internalHeader(s: Session): string {
    return `${this.internalSecret}.${s.id}`;
  }

  /** The admin API's side: a console call is authorised by its session, re-checked now. */
  principalForInternal(value: string): Principal {
    const dot = value.indexOf('.');
    if (dot < 0 || !sameText(value.slice(0, dot), this.internalSecret)) {
      throw new LatchkeyError('INVALID_AUTH_FORMAT', `${INTERNAL_HEADER} is for the console only`);
    }
    const s = this.get(value.slice(dot + 1));
    const principal = s ? this.principalOf(s) : null;
    if (!principal) throw new LatchkeyError('INVALID_API_KEY', 'the console session has ended');
    return principal;
  }

  private principalOf(s: Session): Principal | null {
    const p = this.keys.verifyHash(s.keyHash);
    return p && p.role === 'admin' ? p : null;
  }
}
