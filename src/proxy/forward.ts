/**
 * The last stage: send the built request with undici and stream the answer
 * straight into the client response, with backpressure both ways.
 */
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { Agent, type Dispatcher } from 'undici';
import { LatchkeyError } from '../errors.js';
import { isLinkLocal } from '../hosts.js';

export interface UpstreamRequest {
  origin: string;
  path: string;
  method: string;
  headers: Record<string, string | string[]>;
  hostname: string;
}

export interface ForwardOptions {
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  ca: string[];
}

/** Cloud metadata services live on link-local addresses: a name that resolves there is never dialled. */
const safeLookup: LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, options, (err, address, family) => {
    if (err) return callback(err, address as string, family);
    const refuse = (): void => {
      const e = Object.assign(new Error(`${hostname} resolves to a link-local address`), { code: 'ELINKLOCAL' });
      callback(e, '', 0);
    };
    if (Array.isArray(address)) {
      const ok = address.filter((a) => !isLinkLocal(a.address));
      if (ok.length === 0) return refuse();
      return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, ok);
    }
    if (isLinkLocal(address)) return refuse();
    callback(null, address, family);
  });
};

export function createUpstreamAgent(o: ForwardOptions): Agent {
  return new Agent({
    connect: { timeout: o.connectTimeoutMs, ca: o.ca, lookup: safeLookup },
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
    keepAliveTimeout: 30_000,
  });
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
  else if (code === 'ELINKLOCAL') why = 'resolves to a link-local address';
  else if (TLS_CODES.test(code)) why = 'TLS handshake failed';
  else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') why = 'connection reset';
  return new LatchkeyError('UPSTREAM_UNREACHABLE', `upstream ${hostname}: ${why}${code ? ` (${code})` : ''}`);
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
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
 * Resolves with the upstream status once the response has been streamed.
 * Throws a LatchkeyError if nothing was sent to the client yet; after the
 * headers went out, a failure can only cut the client connection.
 */
export async function forward(
  agent: Dispatcher,
  req: IncomingMessage,
  res: ServerResponse,
  up: UpstreamRequest,
  extraResponseHeaders: OutgoingHttpHeaders,
): Promise<number> {
  // A client that goes away ends the upstream request too, even before its answer started.
  const gone = new ClientGone();
  res.once('close', () => {
    if (!res.writableFinished) gone.fire();
  });
  let status = 0;
  try {
    await agent.stream(
      {
        origin: up.origin,
        path: up.path,
        method: up.method as Dispatcher.HttpMethod,
        headers: up.headers,
        body: hasBody(req) ? req : null,
        signal: gone,
      },
      ({ statusCode, headers }) => {
        status = statusCode;
        const out: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(headers)) {
          if (value === undefined || RESPONSE_HOP_BY_HOP.has(name)) continue;
          // X-Request-Id is latchkey's; the provider's own id (what its support asks for) is kept beside it.
          out[name === 'x-request-id' ? 'x-upstream-request-id' : name] = value;
        }
        Object.assign(out, extraResponseHeaders);
        res.writeHead(statusCode, out);
        return res;
      },
    );
    return status;
  } catch (err) {
    if (res.headersSent || gone.aborted) {
      res.destroy();
      return status || 499;
    }
    throw upstreamError(err, up.hostname);
  }
}
