/**
 * AWS Signature Version 4 over the exact request latchkey sends: pure
 * functions, tested against AWS's published test-suite vectors.
 *
 * Written here rather than taken from @smithy/signature-v4 because the
 * signature must cover the bytes on the wire as they are (raw path and query,
 * the buffered body), and that library re-encodes a parsed query, needs the
 * Host header handed to it, and turns a streamed body into UNSIGNED-PAYLOAD
 * without saying so. The canonical request is about eighty lines.
 */
import { createHmac, hash } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** Payload hashes a client may declare so its body streams through unread (S3 accepts them). */
export const UNSIGNED_PAYLOADS = new Set(['UNSIGNED-PAYLOAD', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);

/**
 * Never signed: they are per-hop, added or rewritten on the way, or carry the
 * signature itself (the same list the AWS SDKs use).
 */
const UNSIGNABLE = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

export interface SigningRequest {
  method: string;
  /** The path as sent (percent-encoded), without the query. */
  path: string;
  /** The raw query string as sent, without "?". */
  query: string;
  /** Lower-case names; `host` included. */
  headers: Record<string, string | string[]>;
  payloadHash: string;
}

export interface Scope {
  date: string;
  region: string;
  service: string;
}

/** RFC 3986 unreserved characters stay; every other UTF-8 byte becomes %XX (upper-case). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Dot segments resolved and empty segments dropped, as AWS services (but not S3) canonicalise a path. */
export function normalizePath(path: string): string {
  if (path === '') return '/';
  const out: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  const trailing = path.endsWith('/') && out.length > 0 ? '/' : '';
  return `/${out.join('/')}${trailing}`;
}

/**
 * S3 signs the path exactly as sent. Every other service signs the
 * normalised path with each segment encoded once more (so an encoded "%2F"
 * becomes "%252F"): that is AWS's rule, not a double-encoding bug.
 */
export function canonicalUri(path: string, service: string): string {
  if (service === 's3') return path === '' ? '/' : path;
  return normalizePath(path)
    .split('/')
    .map((seg) => uriEncode(seg))
    .join('/');
}

/** Each name and value decoded, then encoded the AWS way, sorted by name then value. */
export function canonicalQuery(query: string): string {
  if (query === '') return '';
  const pairs: Array<[string, string]> = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncode(decode(name)), uriEncode(decode(value))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

/** Trimmed, inner runs of spaces collapsed to one (the regex only runs when there is such a run). */
const trimValue = (v: string): string => {
  const t = v.trim();
  return /\s\s|[\t\r\n]/.test(t) ? t.replace(/\s+/g, ' ') : t;
};

/** The headers signed: every header present except the unsignable ones, names sorted. */
export function canonicalHeaders(headers: Record<string, string | string[]>): { canonical: string; signed: string } {
  // Names are already lower case (the request's headers are kept that way).
  const names = Object.keys(headers)
    .filter((n) => !UNSIGNABLE.has(n))
    .sort();
  const lines = names.map((n) => {
    const v = headers[n] as string | string[];
    return `${n}:${Array.isArray(v) ? v.map(trimValue).join(',') : trimValue(v)}\n`;
  });
  return { canonical: lines.join(''), signed: names.join(';') };
}

export function canonicalRequest(req: SigningRequest, service: string): { text: string; signedHeaders: string } {
  const { canonical, signed } = canonicalHeaders(req.headers);
  const text = [req.method.toUpperCase(), canonicalUri(req.path, service), canonicalQuery(req.query), canonical, signed, req.payloadHash].join(
    '\n',
  );
  return { text, signedHeaders: signed };
}

// One-shot hash(): no Hash object per call (about a third of the cost on the hot path).
export const sha256Hex = (data: string | Buffer): string => hash('sha256', data, 'hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** `YYYYMMDDTHHMMSSZ` for a time in ms. */
export function amzDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

export function scopeString(s: Scope): string {
  return `${s.date}/${s.region}/${s.service}/aws4_request`;
}

export function stringToSign(amzDateTime: string, scope: Scope, canonical: string): string {
  return `${ALGORITHM}\n${amzDateTime}\n${scopeString(scope)}\n${sha256Hex(canonical)}`;
}

export function signingKey(secretAccessKey: string, scope: Scope): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, scope.date);
  return hmac(hmac(hmac(kDate, scope.region), scope.service), 'aws4_request');
}

/**
 * HMAC-SHA256 under one derived signing key, as RFC 2104 spells it out: the
 * key pads are computed once per key and each signature is two one-shot
 * hashes into reused buffers. Building an Hmac object per call was the
 * largest single cost of a signed call in a CPU profile. A string to sign is
 * ASCII (algorithm, date, scope names checked at write time, a hex hash);
 * anything else takes the ordinary path.
 */
export class Signer {
  private readonly inner = Buffer.alloc(64 + 512);
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(private readonly key: Buffer) {
    key.copy(this.inner);
    key.copy(this.outer);
    for (let i = 0; i < 64; i++) {
      this.inner[i] = (this.inner[i] as number) ^ 0x36;
      this.outer[i] = (this.outer[i] as number) ^ 0x5c;
    }
  }

  sign(toSign: string): string {
    if (toSign.length > this.inner.length - 64 || !/^[\x00-\x7f]*$/.test(toSign)) {
      return createHmac('sha256', this.key).update(toSign, 'utf8').digest('hex');
    }
    const n = this.inner.write(toSign, 64, 'latin1');
    hash('sha256', this.inner.subarray(0, 64 + n), 'buffer').copy(this.outer, 64);
    return hash('sha256', this.outer, 'hex');
  }
}

export function signature(key: Buffer, toSign: string): string {
  return new Signer(key).sign(toSign);
}

export function authorizationHeader(accessKeyId: string, scope: Scope, signedHeaders: string, sig: string): string {
  return `${ALGORITHM} Credential=${accessKeyId}/${scopeString(scope)}, SignedHeaders=${signedHeaders}, Signature=${sig}`;
}

/** The region and service of a client's own (dummy) SigV4 Authorization header, if it has one. */
export function clientScope(authorization: string | undefined): { region: string; service: string } | null {
  if (!authorization) return null;
  const m = /Credential=[^/,\s]*\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/.exec(authorization);
  return m ? { region: m[1] as string, service: m[2] as string } : null;
}
