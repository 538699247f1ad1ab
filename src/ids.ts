import { randomBytes, randomFillSync } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE62_CODES = Array.from(BASE62, (c) => c.charCodeAt(0));

/** Random bytes drawn 4 KiB at a time: one id per proxied call made 16 randomInt calls, a cost on the hot path. */
const pool = Buffer.alloc(4096);
let at = pool.length;

/**
 * Fills `codes` from index `from` with uniformly random base62 character
 * codes. Bytes of 248 and above are skipped (248 = 4 x 62), so `byte % 62`
 * has no modulo bias.
 */
function fillBase62(codes: number[], from: number): void {
  for (let n = from; n < codes.length; ) {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    const b = pool[at++] as number;
    if (b < 248) codes[n++] = BASE62_CODES[b % 62] as number;
  }
}

/**
 * `length` uniformly random base62 characters, made as one flat string from
 * their codes (appended one by one, a request id was 16 joined strings that
 * every later write had to flatten again).
 */
export function base62(length: number): string {
  let out = '';
  // At most 256 codes a call: fromCharCode.apply takes its arguments on the stack.
  for (let left = length; left > 0; left -= 256) {
    const codes = new Array<number>(Math.min(left, 256)).fill(0);
    fillBase62(codes, 0);
    out += String.fromCharCode.apply(null, codes);
  }
  return out;
}

/** `req_` and 16 base62 characters: the codes array is reused, one id per proxied call. */
const REQUEST_ID_CODES = [...Array.from('req_', (c) => c.charCodeAt(0)), ...new Array<number>(16).fill(0)];

export const newIntegrationId = (): string => `intg_${base62(16)}`;
export const newAuthId = (): string => `auth_${base62(16)}`;
export const newKeyId = (): string => `key_${base62(16)}`;
export function newRequestId(): string {
  fillBase62(REQUEST_ID_CODES, 4);
  return String.fromCharCode.apply(null, REQUEST_ID_CODES);
}

/** An API key: `lk_` and 32 random bytes, base64url (43 characters). */
export function newApiKey(): string {
  return `lk_${randomBytes(32).toString('base64url')}`;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/** A caller's X-Request-Id is kept when it is short and plain (it is echoed in headers and logs); otherwise one is made. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : newRequestId();
}
