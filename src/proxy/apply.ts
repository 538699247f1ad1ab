/**
 * The send-time half of the injection engine: runs a dynamic kind's injector
 * over the fully built upstream request, buffering the body first only when
 * the injector needs it. The proxy (every mode) and the catalog probe both
 * go through here.
 */
import type { IncomingMessage } from 'node:http';
import { LatchkeyError } from '../errors.js';
import type { Injector, OutgoingRequest } from '../credentials/kind.js';
import type { AuthPlan } from './plans.js';
import type { UpstreamRequest } from './forward.js';

/** Where a body comes from: a client stream, or bytes already in hand (a probe). */
export type BodySource = IncomingMessage | Buffer | null;

function tooLarge(max: number): LatchkeyError {
  return new LatchkeyError('PAYLOAD_TOO_LARGE', `the request body is over ${max} bytes, the most a signed call may buffer`);
}

/** Reads a client body into memory, at most `max` bytes: above it, 413 before anything is sent. */
export async function readBounded(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > max) {
    // Nothing more is read: the connection cannot be reused for another request.
    req.resume();
    throw tooLarge(max);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      req.resume();
      throw tooLarge(max);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** The Host header undici sends for an origin (`scheme://host[:port]`, as build makes it): a default port is left out. */
export function hostOf(origin: string): string {
  const https = origin.startsWith('https://');
  const host = origin.slice(https ? 8 : 7).toLowerCase();
  const defaultPort = https ? ':443' : ':80';
  return host.endsWith(defaultPort) ? host.slice(0, -defaultPort.length) : host;
}

/**
 * The request an injector edits: a view over `up` (path and headers are
 * written back by the caller), with the body read through `body`, and every
 * secret the injector adds collected in `added`.
 */
function outgoing(up: UpstreamRequest, clientHeaders: OutgoingRequest['clientHeaders'], body: () => Buffer | null, now: number, added: string[]): OutgoingRequest {
  return {
    method: up.method,
    origin: up.origin,
    host: hostOf(up.origin),
    path: up.path,
    headers: up.headers,
    clientHeaders,
    get body() {
      return body();
    },
    now,
    addSecret: (value) => {
      if (value) added.push(value);
    },
  };
}

/**
 * Applies the plan's injector to `up` in place and returns the secret values
 * the call carries (the plan's, plus any the injector added). A static plan
 * (rendered into the plan, no injector) answers at once, without a promise:
 * the proxy's hot path then awaits nothing.
 */
export function applyInjector(auth: AuthPlan, up: UpstreamRequest, source: BodySource, now?: number): string[] | Promise<string[]> {
  const injector = auth.injector;
  if (!injector) return auth.secrets as string[];
  return applyDynamic(auth, injector, up, source, now ?? Date.now());
}

async function applyDynamic(auth: AuthPlan, injector: Injector, up: UpstreamRequest, source: BodySource, now: number): Promise<string[]> {
  const added: string[] = [];
  let body: Buffer | null = null;
  const out = outgoing(up, source && !Buffer.isBuffer(source) ? source.headers : {}, () => body, now, added);
  const need = injector.needsBody;
  if (need && (need.when?.(out) ?? true)) {
    if (Buffer.isBuffer(source)) body = source;
    else if (source && hasBody(source)) body = await readBounded(source, need.maxBytes);
    if (body && body.length > need.maxBytes) throw tooLarge(need.maxBytes);
    // The bytes that were hashed are the bytes sent: forward uses this buffer, not the stream.
    if (body) up.body = body;
    else body = Buffer.alloc(0);
  }
  await injector.apply(out);
  up.path = out.path;
  up.headers = out.headers;
  return added.length > 0 ? [...auth.secrets, ...added] : (auth.secrets as string[]);
}

/**
 * After an upstream 401 to a call whose body can be sent again: the injector
 * (a token kind) renews its credential and re-applies it to `up`. Returns the
 * call's secret values with the new one, or null when the kind has no renewal.
 */
export async function reapplyAfter401(auth: AuthPlan, up: UpstreamRequest, now = Date.now()): Promise<string[] | null> {
  const injector = auth.injector;
  if (!injector?.onUnauthorized) return null;
  const added: string[] = [];
  // The client's original headers are not kept for a replay: a token kind does not read them.
  const out = outgoing(up, {}, () => up.body ?? null, now, added);
  if (!(await injector.onUnauthorized(out))) return null;
  up.path = out.path;
  up.headers = out.headers;
  return [...auth.secrets, ...added];
}

/** Whether a 401 to this call may be replayed: the kind renews, and the body was buffered or there is none. */
export function canReplay(auth: AuthPlan, up: UpstreamRequest, req: IncomingMessage): boolean {
  return auth.injector?.onUnauthorized !== undefined && (up.body !== undefined || !hasBody(req));
}
