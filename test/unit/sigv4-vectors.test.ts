import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  authorizationHeader,
  canonicalRequest,
  clientScope,
  sha256Hex,
  signature,
  signingKey,
  stringToSign,
  type SigningRequest,
} from '../../src/credentials/sigv4.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'aws-sig-v4-test-suite');
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SCOPE = { date: '20150830', region: 'us-east-1', service: 'service' };
const cases = [...new Set(readdirSync(DIR).filter((f) => f.endsWith('.req')).map((f) => f.slice(0, -4)))].sort();

/** The suite's .req format: request line, "Name:value" lines (a name may repeat), blank line, body. */
function parseReq(text: string): SigningRequest & { amzDate: string } {
  const [head, ...rest] = text.split('\n\n');
  const lines = (head as string).split('\n');
  const first = lines[0] as string;
  const method = first.slice(0, first.indexOf(' '));
  const target = first.slice(method.length + 1, first.lastIndexOf(' HTTP/'));
  const q = target.indexOf('?');
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1);
    const had = headers[name];
    headers[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  const body = rest.join('\n\n');
  return {
    method,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    headers,
    payloadHash: sha256Hex(body),
    amzDate: headers['x-amz-date'] as string,
  };
}

const read = (name: string, ext: string): string => readFileSync(join(DIR, `${name}.${ext}`), 'utf8');

describe('SigV4 against the AWS test suite', () => {
  it('has the vectors the issue names', () => {
    for (const name of ['get-vanilla', 'get-vanilla-query-order-key-case', 'get-utf8', 'post-x-www-form-urlencoded', 'post-sts-header-before']) {
      expect(cases).toContain(name);
    }
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  for (const name of cases) {
    it(name, () => {
      const req = parseReq(read(name, 'req'));
      const { text, signedHeaders } = canonicalRequest(req, 'service');
      expect(text).toBe(read(name, 'creq'));
      const sts = stringToSign(req.amzDate, SCOPE, text);
      expect(sts).toBe(read(name, 'sts'));
      const sig = signature(signingKey(SECRET, SCOPE), sts);
      expect(authorizationHeader('AKIDEXAMPLE', SCOPE, signedHeaders, sig)).toBe(read(name, 'authz'));
    });
  }

  it('reads region and service from a client Authorization scope', () => {
    expect(clientScope(read('get-vanilla', 'authz'))).toEqual({ region: 'us-east-1', service: 'service' });
    expect(clientScope('Bearer x')).toBeNull();
  });
});

describe('Signer', () => {
  it('equals node:crypto HMAC-SHA256 on the fast path and the fallback', async () => {
    const { createHmac } = await import('node:crypto');
    const { Signer } = await import('../../src/credentials/sigv4.js');
    const key = signingKey(SECRET, SCOPE);
    for (const msg of ['', 'AWS4-HMAC-SHA256\n20150830T123600Z', 'é non-ASCII', 'x'.repeat(2000)]) {
      expect(new Signer(key).sign(msg)).toBe(createHmac('sha256', key).update(msg, 'utf8').digest('hex'));
    }
  });
});
