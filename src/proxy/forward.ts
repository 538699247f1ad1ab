/**
 * The last stage: send the built request with undici and stream the answer
 * straight into the client response, with backpressure both ways.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { LatchkeyError, type ErrorCode } from '../errors.js';
import { decodeQueryName } from './inject.js';
import { hasBody } from './apply.js';
import type { Redactor } from './redact.js';
import { discardSink, plainSink, redactResponse, type BodySink } from './response-body.js';

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

/** The abort reason when a client leaves: one shared object (an Error per call, with its stack, cost 6 % of the CPU). */
const CLIENT_LEFT = new Error('the client closed the connection');

/** The client left before its answer was complete: the upstream exchange in flight is aborted. */
class ClientGone {
  aborted = false;
  readonly reason = CLIENT_LEFT;
  /** Aborts the exchange in flight, once undici has started it. */
  abort: ((reason: Error) => void) | null = null;

  fire(): void {
    this.aborted = true;
    this.abort?.(this.reason);
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
export function forward(
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
  const call: ForwardCall = { agent, req, res, up, extra: extraResponseHeaders, gone };
  // Without a replay nothing is swallowed: send()'s answer is the result.
  if (!replay401) return send(call, false) as Promise<ForwardResult>;
  return forwardReplaying(call, replay401);
}

/** What each send() of one call shares. */
interface ForwardCall {
  agent: Dispatcher;
  req: IncomingMessage;
  res: ServerResponse;
  up: UpstreamRequest;
  extra: OutgoingHttpHeaders;
  gone: ClientGone;
}

async function forwardReplaying(call: ForwardCall, replay401: () => Promise<boolean>): Promise<ForwardResult> {
  const first = await send(call, true);
  if (first !== SWALLOWED_401) return first;
  // The upstream refused the token: renewed and re-applied to `up`, the call goes once more, and that answer is final.
  if (!(await replay401())) throw new LatchkeyError('TOKEN_REFRESH_FAILED', 'the upstream refused the access token');
  const second = await send(call, false);
  return second === SWALLOWED_401 ? { status: 401 } : second;
}

/** send()'s answer when it swallowed a 401 that is to be replayed. */
const SWALLOWED_401: unique symbol = Symbol('swallowed 401');

/** Response headers as they go to the client (hop-by-hop and X-Latchkey-* dropped, X-Request-Id renamed, Location scrubbed). */
function clientHeaders(headers: IncomingHttpHeaders, up: UpstreamRequest, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || RESPONSE_HOP_BY_HOP.has(name)) continue;
    // Only latchkey sets X-Latchkey-*: an upstream's copy could pass for the proxy's own verdict.
    if (name.startsWith('x-latchkey-')) continue;
    // X-Request-Id is latchkey's; the provider's own id (what its support asks for) is kept beside it.
    out[name === 'x-request-id' ? 'x-upstream-request-id' : name] = value;
  }
  if (typeof out.location === 'string') out.location = scrubLocation(out.location, up.injectedQuery);
  Object.assign(out, extra);
  return out;
}

/**
 * One upstream exchange as an undici dispatch handler: the answer's head is
 * turned into the client's, and each body chunk goes straight to its sink
 * (the client response, or a redactor in front of it), with the upstream
 * paused while the client is slower. Leaner than undici's stream() (no
 * AsyncResource, no finished() listeners, no Writable per call), which
 * mattered on the hot path.
 */
class Exchange implements Dispatcher.DispatchHandler {
  status = 0;
  private sink: BodySink | null = null;
  private waiting = false;
  private controller: Dispatcher.DispatchController | null = null;

  constructor(
    private readonly res: ServerResponse,
    private readonly up: UpstreamRequest,
    private readonly extra: OutgoingHttpHeaders,
    private readonly gone: ClientGone,
    private readonly swallow401: boolean,
    private readonly settle: (result: ForwardResult | typeof SWALLOWED_401 | Error) => void,
  ) {}

  private readonly resume = (): void => {
    this.waiting = false;
    this.controller?.resume();
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.gone.aborted) controller.abort(this.gone.reason);
    else this.gone.abort = (reason) => controller.abort(reason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // Informational answers (103 Early Hints) are not passed on; the final one follows.
    if (statusCode < 200) return;
    this.status = statusCode;
    if (statusCode === 401 && this.swallow401) {
      this.sink = discardSink();
      return;
    }
    const out = clientHeaders(headers, this.up, this.extra);
    // Throws RESPONSE_NOT_REDACTABLE before anything is sent; undici aborts the exchange with it.
    this.sink = this.up.redactor ? redactResponse(this.res, statusCode, out, this.up.redactor, this.up.method) : plainSink(this.res, statusCode, out);
    // A redacting pipeline that fails (a corrupt gzip body) has cut the client: the upstream stops too.
    this.sink.done?.catch((err: unknown) => this.controller?.abort(err as Error));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const sink = this.sink as BodySink;
    if (sink.write(chunk) || this.waiting || !sink.drainer) return;
    this.waiting = true;
    controller.pause();
    sink.drainer.once('drain', this.resume);
  }

  onResponseEnd(): void {
    const sink = this.sink as BodySink;
    sink.end();
    if (this.status === 401 && this.swallow401) return this.settle(SWALLOWED_401);
    if (!sink.done) return this.settle({ status: this.status, redactions: sink.count() });
    sink.done.then(
      () => this.settle({ status: this.status, redactions: sink.count() }),
      (err: unknown) => this.onResponseError(null, err as Error),
    );
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    const { res, gone } = this;
    const redactions = this.sink?.count() ?? 0;
    // undici destroys the exchange when the upstream fails, which may look like the client
    // leaving; only our own abort reason says the client really went away.
    if (gone.aborted && (err === gone.reason || (err as { code?: string }).code === 'UND_ERR_ABORTED')) {
      res.destroy();
      return this.settle({ status: this.status || 499, error: 'CLIENT_CLOSED', redactions });
    }
    if (res.headersSent || gone.aborted) {
      // The answer had started: the client sees a cut connection, the audit row sees why.
      res.destroy();
      return this.settle({ status: this.status || 502, error: upstreamError(err, this.up.hostname).code, redactions });
    }
    // RESPONSE_NOT_REDACTABLE, before anything was sent.
    this.settle(err instanceof LatchkeyError ? err : upstreamError(err, this.up.hostname));
  }
}

function send({ agent, req, res, up, extra, gone }: ForwardCall, swallow401: boolean): Promise<ForwardResult | typeof SWALLOWED_401> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (result: ForwardResult | typeof SWALLOWED_401 | Error): void => {
      if (settled) return;
      settled = true;
      gone.abort = null;
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const opts: Dispatcher.DispatchOptions = {
      origin: up.origin,
      path: up.path,
      method: up.method as Dispatcher.HttpMethod,
      headers: up.headers,
      body: up.body ?? (hasBody(req) ? req : null),
    };
    agent.dispatch(opts, new Exchange(res, up, extra, gone, swallow401, settle));
  });
}
