import { randomBytes, randomFillSync } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random bytes drawn 4 KiB at a time: one id per proxied call made 16 randomInt calls, a cost on the hot path. */
const pool = Buffer.alloc(4096);
let at = pool.length;

/**
 * `length` uniformly random base62 characters. Bytes of 248 and above are
 * skipped (248 = 4 x 62), so `byte % 62` has no modulo bias.
 */
export function base62(length: number): string {
  let out = '';
  while (out.length < length) {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    const b = pool[at++] as number;
    if (b < 248) out += BASE62[b % 62];
  }
  return out;
}

export const newIntegrationId = (): string => `intg_${base62(16)}`;
export const newAuthId = (): string => `auth_${base62(16)}`;
export const newKeyId = (): string => `key_${base62(16)}`;
export const newRequestId = (): string => `req_${base62(16)}`;

/** An API key: `lk_` and 32 random bytes, base64url (43 characters). */
export function newApiKey(): string {
  return `lk_${randomBytes(32).toString('base64url')}`;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** A caller's X-Request-Id is kept when it is short and plain (it is echoed in headers and logs); otherwise one is made. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : newRequestId();
}
