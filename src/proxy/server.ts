import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { asLatchkeyError, errorBody, errorHeaders, LatchkeyError } from '../errors.js';
import { redactQuery, type Logger } from '../log.js';
import { requestIdFrom } from '../ids.js';
import {
  authenticate,
  authorize,
  build,
  corsHeaders,
  inject,
  isPreflight,
  preflightHeaders,
  resolve,
  tag,
  type Call,
  type PipelineDeps,
} from './pipeline.js';
import { forward } from './forward.js';
import { canReplay, reapplyAfter401 } from './apply.js';
import { createWebSocketProxy, writeSocketError } from './websocket.js';
import type { Connector } from './connector.js';

export interface CallRecord {
  requestId: string;
  integrationId: string | null;
  keyId: string | null;
  /** For readable log lines; not audited (the keyId is). */
  keyName?: string;
  authId: string | null;
  method: string;
  host: string | null;
  path: string;
  status: number;
  ms: number;
  mode: string;
  error?: string;
}

export interface CallMeta {
  /** The integration exists (its id may become a metric label). */
  known: boolean;
}

export interface ProxyDeps extends PipelineDeps {
  agent: Dispatcher;
  connector: Connector;
  log: Logger;
  ca: string[];
  /** Told about every call once it ends (audit, metrics). */
  onCall?: (record: CallRecord, meta: CallMeta) => void;
}

function newCall(req: IncomingMessage): Call {
  return {
    req,
    requestId: requestIdFrom(req.headers['x-request-id']),
    started: performance.now(),
    mode: 'path',
    integrationId: null,
    target: null,
    path: '',
    query: '',
    plan: null,
    auth: null,
    principal: null,
    clientKeys: [],
    upstream: null,
    corsOrigin: null,
    secrets: [],
  };
}

/** Client-credential failures in forward mode are 407, as HTTP proxies answer. */
function statusFor(call: Call, e: LatchkeyError): number {
  const proxyAuth = e.code === 'PROXY_AUTH_REQUIRED' || e.code === 'INVALID_API_KEY';
  return call.mode === 'forward' && proxyAuth ? 407 : e.status;
}

function sendError(call: Call, res: ServerResponse, err: unknown, log: Logger): number {
  const e = asLatchkeyError(err);
  if (e.code === 'INTERNAL_ERROR') {
    log.error({ requestId: call.requestId, errName: (err as Error)?.name, errCode: (err as { code?: string })?.code }, 'proxy call failed');
  }
  const status = statusFor(call, e);
  if (res.headersSent) {
    res.destroy();
    return status;
  }
  const body = JSON.stringify(errorBody(e, call.requestId));
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-latchkey-error': e.code,
    'x-request-id': call.requestId,
    ...errorHeaders(e),
  };
  if (status === 407) headers['proxy-authenticate'] = 'Basic realm="latchkey"';
  if (call.corsOrigin) Object.assign(headers, corsHeaders(call.corsOrigin));
  res.writeHead(status, headers);
  res.end(body);
  return status;
}

/** Caller-chosen text (an id, a path, a host) is kept to this many characters in logs and audit rows. */
const MAX_ID = 64;
const MAX_TEXT = 512;
const bounded = (value: string, max: number): string => (value.length <= max ? value : `${value.slice(0, max)}…`);

function record(call: Call, status: number, error?: string): CallRecord {
  const host = call.upstream?.hostname ?? call.target ?? call.plan?.base.host ?? null;
  return {
    requestId: call.requestId,
    // An id that is too long to be valid is never stored verbatim.
    integrationId: call.integrationId === null ? null : bounded(call.integrationId, MAX_ID),
    keyId: call.principal?.keyId ?? null,
    ...(call.principal?.name ? { keyName: call.principal.name } : {}),
    authId: call.auth?.authId ?? null,
    method: call.req.method ?? 'GET',
    host: host === null ? null : bounded(host, MAX_TEXT),
    // Query values can hold secrets (an API key in the query): only names are kept.
    path: bounded(redactQuery(call.query ? `${call.path}?${call.query}` : call.path), MAX_TEXT),
    status,
    ms: Math.round((performance.now() - call.started) * 10) / 10,
    mode: call.mode,
    ...(error ? { error } : {}),
  };
}

export function createProxyServer(deps: ProxyDeps): http.Server {
  const ws = createWebSocketProxy(deps);

  const finish = (call: Call, status: number, error?: string): void => {
    const rec = record(call, status, error);
    deps.log.info(rec, 'proxy call');
    deps.onCall?.(rec, { known: call.plan !== null });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const call = newCall(req);
    try {
      tag(call);
      if (isPreflight(req)) {
        res.writeHead(204, { ...preflightHeaders(call, deps), 'x-request-id': call.requestId });
        res.end();
        return;
      }
      resolve(call, deps);
      await authenticate(call, deps);
      authorize(call);
      build(call);
      await inject(call);
      const extra = call.corsOrigin ? { ...corsHeaders(call.corsOrigin), 'x-request-id': call.requestId } : { 'x-request-id': call.requestId };
      const up = call.upstream!;
      const auth = call.auth!;
      const replay = canReplay(auth, up, req)
        ? async (): Promise<boolean> => {
            const secrets = await reapplyAfter401(auth, up);
            if (secrets) call.secrets = [...new Set([...call.secrets, ...secrets])];
            deps.log.debug({ requestId: call.requestId, integrationId: call.integrationId }, 'upstream refused the access token: renewed, replaying');
            return secrets !== null;
          }
        : undefined;
      const result = await forward(deps.agent, req, res, up, extra, replay);
      finish(call, result.status, result.error);
    } catch (err) {
      const status = sendError(call, res, err, deps.log);
      finish(call, status, asLatchkeyError(err).code);
    }
  };

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    const call = newCall(req);
    socket.on('error', () => socket.destroy());
    try {
      tag(call);
      // Only WebSocket upgrades are proxied: an h2c upgrade would be cut after the fact, so it is refused up front.
      if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
        throw new LatchkeyError('INVALID_TARGET', `only WebSocket upgrades (GET with Upgrade: websocket) are proxied, not ${String(req.headers.upgrade)}`);
      }
      resolve(call, deps);
      await authenticate(call, deps);
      authorize(call);
      build(call);
      await inject(call);
      const result = await ws(call, socket, head);
      finish(call, result.status, result.error);
    } catch (err) {
      const e = asLatchkeyError(err);
      const status = statusFor(call, e);
      const challenge = status === 407 ? 'proxy-authenticate: Basic realm="latchkey"\r\n' : '';
      writeSocketError(socket, status, e.code, JSON.stringify(errorBody(e, call.requestId)), `x-request-id: ${call.requestId}\r\n${challenge}`);
      finish(call, status, e.code);
    }
  };

  const server = http.createServer(
    // Uploads and streams may legitimately last long; only slow headers are cut.
    { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 },
    (req, res) => void handle(req, res),
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade(req, socket, head));
  // HTTPS_PROXY (CONNECT with TLS interception) is a later feature: say so instead of dropping the socket.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const body = 'CONNECT is not supported: use HTTP_PROXY with http:// URLs (latchkey sends them upstream over TLS)\n';
    socket.on('error', () => socket.destroy());
    socket.end(
      `HTTP/1.1 501 Not Implemented\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return;
    // Methods node's parser does not know (TRACK among them) never reach the pipeline; say why, coded.
    if (err.code === 'HPE_INVALID_METHOD') {
      const e = new LatchkeyError('METHOD_NOT_ALLOWED', 'this method is never forwarded');
      writeSocketError(socket, 405, e.code, JSON.stringify(errorBody(e, requestIdFrom(undefined))));
      return;
    }
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
  return server;
}
