import { randomBytes, randomInt } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `length` uniformly random base62 characters (randomInt avoids modulo bias). */
export function base62(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62[randomInt(62)];
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
