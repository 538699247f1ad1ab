/**
 * Response redaction: every secret injected into a call is replaced by
 * `[REDACTED]` wherever it comes back, raw or encoded. A Redactor is built
 * once per auth plan (cached with it); a StreamRedactor runs per response and
 * holds back only a tail that could be the start of a secret (shorter than
 * the longest pattern; twice that when two secrets overlap), so server-sent
 * events still flow and memory stays bounded.
 */
import { MIN_SECRET_LENGTH } from '../credentials/template.js';

export const REDACTED = '[REDACTED]';
const REDACTED_BYTES = Buffer.from(REDACTED);

/**
 * The base64 characters that depend only on the secret's own bytes when it
 * starts `offset` bytes (0, 1 or 2) into a 3-byte group: the forms a secret
 * takes inside a larger base64 blob (an echo service encoding the whole
 * request), whatever surrounds it. At most one character at each end, which
 * mixes in a neighbour's bits, stays as it was.
 */
function base64Cores(secret: Buffer): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), secret]);
    const encoded = padded.toString('base64');
    const first = Math.ceil((offset * 8) / 6);
    const last = Math.floor(((offset + secret.length) * 8) / 6);
    out.push(encoded.slice(first, last));
  }
  return out;
}

/** JSON string escaping as encoders write it: JSON.stringify's, with "\/", and ASCII-only (Python's default). */
function jsonForms(s: string): string[] {
  const plain = JSON.stringify(s).slice(1, -1);
  const ascii = plain.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return [plain, plain.replace(/\//g, '\\/'), ascii];
}

/** Percent-encoding: upper- and lower-case hex, and form encoding (space as "+"). */
function percentForms(s: string): string[] {
  const upper = encodeURIComponent(s);
  return [upper, upper.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), upper.replace(/%20/g, '+')];
}

/** Every form a secret is looked for in: raw, base64 (any alignment), base64url, percent-encoded, JSON-escaped. */
export function secretForms(secret: string): string[] {
  const raw = Buffer.from(secret);
  const b64 = base64Cores(raw);
  const forms = [secret, ...b64, ...b64.map((c) => c.replace(/\+/g, '-').replace(/\//g, '_')), ...percentForms(secret), ...jsonForms(secret)];
  return [...new Set(forms)].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

/** Bodies up to this size are checked byte by byte for a possible start before any pattern search. */
const SCAN_FIRST_BYTES_UP_TO = 512;

export class Redactor {
  /** Longest first: where two patterns start at one place, the longer one wins. */
  readonly patterns: Buffer[];
  readonly strings: string[];
  readonly maxLength: number;
  readonly minLength: number;
  /**
   * Bit b set when some pattern starts with byte b: the tail check skips every other byte.
   * 32 bytes, so V8 keeps it on the heap (a 256-byte table per plan cost an ArrayBuffer each).
   */
  private readonly firstByte = new Int32Array(8);

  constructor(secrets: readonly string[]) {
    const forms = new Set<string>();
    for (const s of secrets) if (s.length >= MIN_SECRET_LENGTH) for (const f of secretForms(s)) forms.add(f);
    this.strings = [...forms].sort((a, b) => Buffer.byteLength(b) - Buffer.byteLength(a));
    this.patterns = this.strings.map((s) => Buffer.from(s));
    this.maxLength = this.patterns[0]?.length ?? 0;
    this.minLength = this.patterns[this.patterns.length - 1]?.length ?? 0;
    for (const p of this.patterns) {
      const b = p[0] as number;
      this.firstByte[b >> 5] = (this.firstByte[b >> 5] as number) | (1 << (b & 31));
    }
  }

  /** Null when there is nothing to redact (no secret, or all of them too short). */
  static of(secrets: readonly string[]): Redactor | null {
    const r = new Redactor(secrets);
    return r.patterns.length === 0 ? null : r;
  }

  /** A header value with every secret replaced, and how many were. */
  text(value: string): { value: string; count: number } {
    if (value.length < this.minLength) return { value, count: 0 };
    let count = 0;
    let out = value;
    for (const s of this.strings) {
      if (!out.includes(s)) continue;
      const parts = out.split(s);
      count += parts.length - 1;
      out = parts.join(REDACTED);
    }
    return { value: out, count };
  }

  /** Complete matches in `data`, sorted by start, overlapping ones merged. */
  matches(data: Buffer): Array<[number, number]> {
    if (data.length < this.minLength) return [];
    // A small body (most API answers) is ruled out by its bytes alone when none of the places a
    // secret could start holds a secret's first byte: no search per pattern, which would touch
    // every pattern's buffer (a cache miss each when many plans are in use).
    if (data.length <= SCAN_FIRST_BYTES_UP_TO && !this.mayStart(data)) return [];
    let found: Array<[number, number]> | null = null;
    for (const p of this.patterns) {
      let i = data.indexOf(p);
      while (i >= 0) {
        (found ??= []).push([i, i + p.length]);
        i = data.indexOf(p, i + p.length);
      }
    }
    if (found === null) return [];
    found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const merged: Array<[number, number]> = [];
    for (const m of found) {
      const last = merged[merged.length - 1];
      if (last && m[0] < last[1]) last[1] = Math.max(last[1], m[1]);
      else merged.push([m[0], m[1]]);
    }
    return merged;
  }

  /** Whether some position that leaves room for the shortest pattern holds a pattern's first byte. */
  private mayStart(data: Buffer): boolean {
    for (let i = 0, last = data.length - this.minLength; i <= last; i++) {
      const b = data[i] as number;
      if (((this.firstByte[b >> 5] as number) & (1 << (b & 31))) !== 0) return true;
    }
    return false;
  }

  /**
   * The first position at or after `from` where the rest of `data` is a
   * proper prefix of some pattern (a secret that may continue in the next
   * chunk), or data.length when there is none.
   */
  holdPoint(data: Buffer, from: number): number {
    const len = data.length;
    for (let i = Math.max(from, len - this.maxLength + 1); i < len; i++) {
      const b = data[i] as number;
      if (((this.firstByte[b >> 5] as number) & (1 << (b & 31))) === 0) continue;
      const rest = len - i;
      for (const p of this.patterns) {
        if (p.length > rest && data.compare(p, 0, rest, i, len) === 0) return i;
      }
    }
    return len;
  }

  stream(): StreamRedactor {
    return new StreamRedactor(this);
  }

  /** A whole body at once (small responses with a known length). */
  buffer(data: Buffer): { data: Buffer; count: number } {
    const s = this.stream();
    // Nothing follows, so nothing is held back (no tail check).
    const body = s.push(data, true);
    // The common case, nothing replaced: the bytes as they came, no copy.
    return { data: body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body), count: s.count };
  }
}

/** One response's state: the held-back tail and the count. */
export class StreamRedactor {
  count = 0;
  private pending: Buffer | null = null;

  constructor(private readonly r: Redactor) {}

  /**
   * The bytes that are safe to send now; the rest is held until the next chunk
   * or the end. `final`: nothing follows, so nothing is held back.
   */
  push(chunk: Buffer, final = false): Buffer[] {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    return this.emit(data, final);
  }

  end(): Buffer[] {
    const data = this.pending;
    this.pending = null;
    return data ? this.emit(data, true) : [];
  }

  private emit(data: Buffer, final: boolean): Buffer[] {
    const r = this.r;
    const matches = r.matches(data);
    let hold = final ? data.length : r.holdPoint(data, 0);
    if (matches.length === 0 && hold === data.length) return [data];
    const out: Buffer[] = [];
    let pos = 0;
    for (const [start, end] of matches) {
      // A match reaching into the held tail may be part of a longer, overlapping secret that is
      // still arriving: it waits, whole, for the next chunk (so the tail is at most twice the longest).
      if (end > hold) {
        if (start < hold) hold = start;
        break;
      }
      if (start > pos) out.push(data.subarray(pos, start));
      out.push(REDACTED_BYTES);
      this.count++;
      pos = end;
    }
    if (hold > pos) out.push(data.subarray(pos, hold));
    // A copy: the tail must not pin the whole chunk it came from.
    if (hold < data.length) this.pending = Buffer.from(data.subarray(hold));
    return out;
  }
}
