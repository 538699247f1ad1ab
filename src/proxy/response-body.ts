/**
 * The response side of redaction: headers are checked once, the body is
 * decoded when compressed, streamed through a StreamRedactor and sent with
 * an honest framing. Every tagging mode reaches this from forward.ts.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform, pipeline, type TransformCallback, type Writable } from 'node:stream';
import zlib from 'node:zlib';
import { LatchkeyError } from '../errors.js';
import type { Redactor, StreamRedactor } from './redact.js';

/**
 * HTTP "deflate" is meant to be zlib-wrapped, but some servers send raw
 * deflate: the first two bytes tell (a zlib header is CM 8 and a multiple of 31).
 */
class Inflate extends Transform {
  private inner: Transform | null = null;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.inner) {
      const zlibHeader = chunk.length >= 2 && ((chunk[0] as number) & 0x0f) === 8 && (((chunk[0] as number) << 8) | (chunk[1] as number)) % 31 === 0;
      const opts = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
      this.inner = zlibHeader ? zlib.createInflate(opts) : zlib.createInflateRaw(opts);
      this.inner.on('data', (d: Buffer) => this.push(d));
      this.inner.on('error', (err) => this.destroy(err));
    }
    // Backpressure is the inner stream's: the next chunk waits until it took this one.
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', () => cb());
  }

  override _flush(cb: TransformCallback): void {
    if (!this.inner) return cb();
    this.inner.once('end', () => cb());
    this.inner.end();
  }
}

/** Content codings node:zlib decodes: the only ones a redacted call asks the upstream for. */
const DECODERS: Record<string, () => Transform> = {
  gzip: () => zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  'x-gzip': () => zlib.createGunzip({ finishFlush: zlib.constants.Z_SYNC_FLUSH }),
  deflate: () => new Inflate(),
  br: () => zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH }),
};

/** Bodies with a known length up to this are redacted whole and sent with their new Content-Length. */
const BUFFER_LIMIT = 64 * 1024;

/**
 * Accept-Encoding sent upstream: the client's list without codings latchkey
 * cannot decode (zstd, compress, "*"), so the body can always be searched;
 * "identity" when nothing is left.
 */
export function acceptOnlyDecodable(headers: Record<string, string | string[]>): void {
  const v = headers['accept-encoding'];
  if (v === undefined) {
    headers['accept-encoding'] = 'identity';
    return;
  }
  const list = (Array.isArray(v) ? v.join(',') : (v ?? '')).split(',');
  const kept = list
    .map((e) => e.trim())
    .filter((e) => {
      const name = (e.split(';')[0] as string).trim().toLowerCase();
      return name === 'identity' || name in DECODERS;
    });
  headers['accept-encoding'] = kept.length > 0 ? kept.join(', ') : 'identity';
}

class RedactTransform extends Transform {
  constructor(readonly sr: StreamRedactor) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.send(this.sr.push(chunk));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.send(this.sr.end());
    cb();
  }

  /** One write per upstream chunk: an event stays one piece for the client. */
  private send(parts: Buffer[]): void {
    if (parts.length === 1) this.push(parts[0]);
    else if (parts.length > 1) this.push(Buffer.concat(parts));
  }
}

/**
 * Where an upstream body goes: forward.ts writes each chunk as undici hands
 * it over and pauses the upstream while `write` says false, until `drainer`
 * drains. Plain answers write straight into the client response; redacted
 * ones are buffered or streamed through a redactor first.
 */
export interface BodySink {
  /** False: stop reading the upstream until `drainer` emits 'drain'. */
  write(chunk: Buffer): boolean;
  /** The upstream body ended. */
  end(): void;
  drainer: Writable | null;
  /** Settles once the client response has ended (rejects if it was cut); null: complete once end() returned. */
  done: Promise<void> | null;
  /** Secrets replaced so far (headers and body). */
  count(): number;
}

const NONE = (): number => 0;

/** An answer passed through untouched: the head now, the body chunk by chunk. */
export function plainSink(res: ServerResponse, status: number, out: OutgoingHttpHeaders): BodySink {
  res.writeHead(status, out);
  return { write: (chunk) => res.write(chunk), end: () => void res.end(), drainer: res, done: null, count: NONE };
}

/** A body nobody sees (a refused token's 401 that is replayed). */
export const discardSink = (): BodySink => ({ write: () => true, end: () => undefined, drainer: null, done: null, count: NONE });

/** Replaces the call's secrets in header values, in place; returns how many were replaced. */
export function redactHeaders(out: OutgoingHttpHeaders, r: Redactor): number {
  let count = 0;
  // for-in and a length check first: this runs on every redacted call (Object.entries cost ~0.6 µs here).
  for (const name in out) {
    const value = out[name];
    if (typeof value === 'string') {
      if (value.length < r.minLength) continue;
      const x = r.text(value);
      if (x.count > 0) out[name] = x.value;
      count += x.count;
    } else if (Array.isArray(value)) {
      out[name] = value.map((v) => {
        const x = r.text(v);
        count += x.count;
        return x.value;
      });
    }
  }
  return count;
}

const NO_CODINGS: string[] = [];

/**
 * Writes the response head (headers redacted) and returns where the body
 * goes. Throws RESPONSE_NOT_REDACTABLE, before anything is sent, for a
 * Content-Encoding that cannot be decoded: an unsearched body could carry a
 * secret, so it is not passed on.
 */
export function redactResponse(
  res: ServerResponse,
  status: number,
  out: OutgoingHttpHeaders,
  r: Redactor,
  method: string,
): BodySink {
  const headerCount = redactHeaders(out, r);
  const noBody = method === 'HEAD' || status === 204 || status === 304;
  if (noBody) {
    const sink = plainSink(res, status, out);
    sink.count = () => headerCount;
    return sink;
  }
  const encoding = out['content-encoding'];
  const codings =
    encoding === undefined
      ? NO_CODINGS
      : String(encoding)
          .split(',')
          .map((c) => c.trim().toLowerCase())
          .filter((c) => c !== '' && c !== 'identity');
  const unknown = codings.find((c) => !(c in DECODERS));
  if (unknown !== undefined) {
    throw new LatchkeyError('RESPONSE_NOT_REDACTABLE', `the upstream answered with Content-Encoding ${unknown}, which latchkey cannot decode to redact`);
  }
  const length = Number(out['content-length'] ?? NaN);

  if (codings.length === 0 && length <= BUFFER_LIMIT) {
    // Small and of known length: redacted whole, so Content-Length stays exact.
    let first: Buffer | null = null;
    let more: Buffer[] | null = null;
    let bodyCount = 0;
    return {
      write(chunk) {
        if (first === null) first = chunk;
        else (more ??= [first]).push(chunk);
        return true;
      },
      end() {
        const redacted = r.buffer(more ? Buffer.concat(more) : (first ?? Buffer.alloc(0)));
        bodyCount = redacted.count;
        out['content-length'] = redacted.data.length;
        res.writeHead(status, out);
        res.end(redacted.data);
      },
      drainer: null,
      done: null,
      count: () => headerCount + bodyCount,
    };
  }

  const sr = r.stream();
  const count = (): number => headerCount + sr.count;

  // Streamed: the length may change, so it goes chunked; a decoded body loses its Content-Encoding.
  delete out['content-length'];
  if (codings.length > 0) delete out['content-encoding'];
  res.writeHead(status, out);
  // Decoders in reverse order of application ("gzip, br" was gzipped first).
  const stages: Transform[] = [...codings].reverse().map((c) => (DECODERS[c] as () => Transform)());
  stages.push(new RedactTransform(sr));
  const done = new Promise<void>((resolve, reject) => {
    pipeline([...stages, res], (err) => (err ? reject(err) : resolve()));
  });
  const head = stages[0] as Transform;
  return { write: (chunk) => head.write(chunk), end: () => void head.end(), drainer: head, done, count };
}
