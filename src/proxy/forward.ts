/**
 * The last stage: send the built request with undici and stream the answer
 * straight into the client response, with backpressure both ways.
 */
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { LatchkeyError, type ErrorCode } from '../errors.js';
import { decodeQueryName } from './inject.js';
import { hasBody } from './apply.js';
import type { Redactor } from './redact.js';
import { redactResponse, type RedactedBody } from './response-body.js';

export interface UpstreamRequest {
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string | string[]>;
  hostname: string;
  /** Injected query parameters (name, value): never handed back in a redirect's Location. */
  injectedQuery: Array<[string, string]>;
  /** Set when an injector buffered the body (to hash it): these exact bytes are sent instead of the client stream. */
  body?: Buffer;
  /** The call's injected secrets, to be replaced in the response; null: passed through untouched. */
  redactor: Redactor | null;
}

export interface ForwardResult {
  status: number;
  /** Set when the exchange did not complete (the upstream cut the body, the client left). */
  error?: ErrorCode | 'CLIENT_CLOSED';
  /** Secrets replaced in the response (headers and body); absent: none (or not searched, WebSocket). */
  redactions?: number;
}

/** Response headers that describe the upstream connection, not the message. */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection']);

const TLS_CODES = /^(ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_SSL_|HOSTNAME_MISMATCH)/;

/** Maps undici and socket errors to the proxy's own codes; the message names the host, never a header. */
export function upstreamError(err: unknown, hostname: string): LatchkeyError {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new LatchkeyError('UPSTREAM_TIMEOUT', `upstream ${hostname} timed out (${code})`);
  }
  let why = 'connection failed';
  if (code === 'ECONNREFUSED') why = 'connection refused';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = 'DNS lookup failed';
  else if (code === 'ELINKLOCAL') why = 'is or resolves to a link-local address, which is never dialled';
  else if (TLS_CODES.test(code)) why = 'TLS handshake failed';
  else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') why = 'connection reset';
  return new LatchkeyError('UPSTREAM_UNREACHABLE', `upstream ${hostname}: ${why}${code ? ` (${code})` : ''}`);
}

/**
 * The lightest abort handle undici takes (its EventEmitter shape): an
 * AbortController per call cost about a fifth of the proxy's throughput here.
 */
class ClientGone {
  aborted = false;
  reason: Error | undefined;
  private listener: (() => void) | null = null;

  on(_event: 'abort', listener: () => void): this {
    this.listener = listener;
    return this;
  }

  once(event: 'abort', listener: () => void): this {
    return this.on(event, listener);
  }

  removeListener(): this {
    this.listener = null;
    return this;
  }

  fire(): void {
    this.aborted = true;
    this.reason = new Error('the client closed the connection');
    this.listener?.();
  }
}

/**
 * A redirect that keeps the query (trailing slash, http -> https) would hand
 * an injected query credential back to the caller: those parameters are
 * removed, whatever their name now holds, and any parameter holding an
 * injected value too. The caller's next call through latchkey gets it again.
 */
export function scrubLocation(location: string, injected: ReadonlyArray<[string, string]>): string {
  const q = location.indexOf('?');
  if (q < 0 || injected.length === 0) return location;
  const hash = location.indexOf('#', q);
  const query = location.slice(q + 1, hash < 0 ? undefined : hash);
  const names = new Set(injected.map(([n]) => n));
  const values = new Set(injected.map(([, v]) => v));
  const kept = query.split('&').filter((pair) => {
    if (pair.length === 0) return false;
    if (names.has(decodeQueryName(pair))) return false;
    const eq = pair.indexOf('=');
    if (eq < 0) return true;
    let value = pair.slice(eq + 1);
    try {
      value = decodeURIComponent(value.replace(/\+/g, ' '));
    } catch {
      // an undecodable value is compared as it stands
    }
    return !values.has(value);
  });
  const rest = hash < 0 ? '' : location.slice(hash);
  return `${location.slice(0, q)}${kept.length > 0 ? `?${kept.join('&')}` : ''}${rest}`;
}

/**
 * Resolves with the upstream status once the response has been streamed.
 * Throws a LatchkeyError if nothing was sent to the client yet; after the
 * headers went out, a failure can only cut the client connection, and the
 * result says so.
 */
export async function forward(
  agent: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  up: UpstreamRequest,
  extraResponseHeaders: OutgoingHttpHeaders,
  replay401?: () => Promise<boolean>,
): Promise<ForwardResult> {
  // A client that goes away ends the upstream request too, even before its answer started.
  const gone = new ClientGone();
  res.once('close', () => {
    if (!res.writableFinished) gone.fire();
  });
  const first = await send(agent, req, res, up, extraResponseHeaders, gone, replay401 !== undefined);
  if (first !== SWALLOWED_401) return first;
  // The upstream refused the token: renewed and re-applied to `up`, the call goes once more, and that answer is final.
  if (!replay401 || !(await replay401())) throw new LatchkeyError('TOKEN_REFRESH_FAILED', 'the upstream refused the access token');
  const second = await send(agent, req, res, up, extraResponseHeaders, gone, false);
  return second === SWALLOWED_401 ? { status: 401 } : second;
}

/** send()'s answer when it swallowed a 401 that is to be replayed. */
const SWALLOWED_401: unique symbol = Symbol('swallowed 401');

/** Reads and drops a response body (a refused token's 401, which the caller never sees). */
const discard = (): Writable =>
  new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });

async function send(
  agent: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  up: UpstreamRequest,
  extraResponseHeaders: OutgoingHttpHeaders,
  gone: ClientGone,
  swallow401: boolean,
): Promise<ForwardResult | typeof SWALLOWED_401> {
  let status = 0;
  let swallowed = false;
  let body: RedactedBody | null = null;
  try {
    await agent.stream(
      {
        origin: up.origin,
        path: up.path,
        method: up.method as Dispatcher.HttpMethod,
        headers: up.headers,
        body: up.body ?? (hasBody(req) ? req : null),
        signal: gone,
      },
      ({ statusCode, headers }) => {
        status = statusCode;
        if (statusCode === 401 && swallow401) {
          swallowed = true;
          return discard();
        }
        const out: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(headers)) {
          if (value === undefined || RESPONSE_HOP_BY_HOP.has(name)) continue;
          // Only latchkey sets X-Latchkey-*: an upstream's copy could pass for the proxy's own verdict.
          if (name.startsWith('x-latchkey-')) continue;
          // X-Request-Id is latchkey's; the provider's own id (what its support asks for) is kept beside it.
          out[name === 'x-request-id' ? 'x-upstream-request-id' : name] = value;
        }
        if (typeof out.location === 'string') out.location = scrubLocation(out.location, up.injectedQuery);
        Object.assign(out, extraResponseHeaders);
        if (up.redactor) {
          const redacted = redactResponse(res, statusCode, out, up.redactor, up.method);
          // Awaited below; a cut client must not become an unhandled rejection first.
          redacted.done.catch(() => undefined);
          body = redacted;
          return redacted.writable;
        }
        res.writeHead(statusCode, out);
        return res;
      },
    );
    if (swallowed) return SWALLOWED_401;
    const redacted = body as RedactedBody | null;
    if (redacted) await redacted.done;
    return { status, redactions: redacted?.count() ?? 0 };
  } catch (err) {
    const redactions = (body as RedactedBody | null)?.count() ?? 0;
    // undici destroys the response stream when the upstream fails, which looks like the client
    // leaving; only an abort error (ours) says the client really went away.
    const code = (err as { code?: string }).code;
    if (gone.aborted && (err === gone.reason || code === 'UND_ERR_ABORTED')) {
      res.destroy();
      return { status: status || 499, error: 'CLIENT_CLOSED', redactions };
    }
    if (res.headersSent || gone.aborted) {
      // The answer had started: the client sees a cut connection, the audit row sees why.
      res.destroy();
      return { status: status || 502, error: upstreamError(err, up.hostname).code, redactions };
    }
    // RESPONSE_NOT_REDACTABLE, before anything was sent.
    if (err instanceof LatchkeyError) throw err;
    throw upstreamError(err, up.hostname);
  }
}
