import { describe, expect, it } from 'vitest';
import { base62, newRequestId, requestIdFrom } from '../../src/ids.js';
import { keyInAuthorization } from '../../src/proxy/pipeline.js';

describe('ids', () => {
  it('request ids are req_ and 16 base62 characters, each a new flat string although one code array is reused', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = newRequestId();
      expect(id).toMatch(/^req_[0-9A-Za-z]{16}$/);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
  });

  it('base62 draws every character about equally often (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const n = 62 * 2000;
    const s = base62(n);
    expect(s).toHaveLength(n);
    for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // Each expected 2000 times; a biased draw (bytes 248-255 kept) gives 8 characters ~2130.
    for (const c of counts.values()) expect(Math.abs(c - 2000)).toBeLessThan(250);
    expect(base62(0)).toBe('');
    expect(base62(7)).toMatch(/^[0-9A-Za-z]{7}$/);
  });

  it('a caller request id is kept only when short and plain', () => {
    expect(requestIdFrom('abc-1.2:3@x/y+z=')).toBe('abc-1.2:3@x/y+z=');
    expect(requestIdFrom('has space')).toMatch(/^req_/);
    expect(requestIdFrom('x'.repeat(129))).toMatch(/^req_/);
    expect(requestIdFrom(undefined)).toMatch(/^req_/);
  });
});

describe('keyInAuthorization', () => {
  // The scheme pattern the fast path for `Bearer lk_…` stands in for.
  const scheme = (v: string) => /^[A-Za-z][\w.+-]* +(lk_\S+) *$/.exec(v)?.[1];
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('finds the key after any scheme exactly as the scheme pattern does', () => {
    const values = [
      'Bearer lk_abc',
      'Bearer lk_',
      'Bearer lk_abc ',
      'Bearer lk_abc  ',
      'Bearer lk_a b',
      'Bearer lk_a\tb',
      'Bearer lk_a\u00a0b',
      'Bearer lk_aé',
      'Bearer  lk_abc',
      'bearer lk_abc',
      'token lk_xyz',
      'Bearer sk_live_1',
      'Bearer lk_' + 'A'.repeat(43),
      'Bearer lk_~!@#$%^&*()',
    ];
    for (const v of values) {
      const basic = /^Basic /i.test(v);
      if (!basic) expect(keyInAuthorization(v), v).toBe(scheme(v));
    }
  });

  it('finds a key in Basic credentials (password first) and as a SigV4 access key id', () => {
    expect(keyInAuthorization(`Basic ${b64('user:lk_pass')}`)).toBe('lk_pass');
    expect(keyInAuthorization(`Basic ${b64('lk_user:other')}`)).toBe('lk_user');
    expect(keyInAuthorization(`Basic ${b64('user:pass')}`)).toBeUndefined();
    expect(keyInAuthorization('AWS4-HMAC-SHA256 Credential=lk_k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00')).toBe('lk_k');
    expect(keyInAuthorization('AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request')).toBeUndefined();
  });
});
