import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { asLatchkeyError, errorBody, errorHeaders, LatchkeyError } from '../errors.js';
import { redactQuery, type Logger } from '../log.js';
import { requestIdFrom } from '../ids.js';
import {
  authenticate,
  authorize,
  build,
  choose,
  corsHeaders,
  inject,
  isPreflight,
  preflightHeaders,
  resolve,
  restrict,
  chooseRedactor,
  tag,
  type Call,
} from './pipeline.js';
import { forward } from './forward.js';
import type { SubjectSlot } from '../call-record.js';
import { canReplay, reapplyAfter401 } from './apply.js';
import { createWebSocketProxy, writeSocketError } from './websocket.js';
import type { Connector } from './connector.js';
import { tunnelOf } from './tunnel.js';
import { acceptTunnel, intercept, passThrough, type ConnectDeps } from './connect.js';
import type { LocalCa } from '../tls/ca.js';

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
  /** proxy.call (default) or proxy.tunnel (a passthrough tunnel, recorded when it ends). */
  action?: 'proxy.call' | 'proxy.tunnel';
  error?: string;
  /** The request-rule outcome: "rules[i]", "none" (refused), or null when the key has no rules. */
  rule: string | null;
  /** Secrets replaced in the response. */
  redactions: number;
  /** Where the records' subject (src/call-record.ts) is kept between calls: the auth plan; null: made for this call alone. Not a field of the line. */
  subjectSlot: SubjectSlot | null;
}

export interface CallMeta {
  /** The integration exists (its id may become a metric label). */
  known: boolean;
}

export interface ProxyDeps extends ConnectDeps {
  agent: Dispatcher;
  connector: Connector;
  log: Logger;
  ca: string[];
  /** Signs the leaf certificates of intercepted CONNECT tunnels. */
  localCa: LocalCa;
  /** Told about every call once it ends: its log line, audit row and metrics. */
  onCall: (record: CallRecord, meta: CallMeta) => void;
  /** Told about secrets replaced in a WebSocket's messages (after its call was recorded). */
  onMessageRedactions?: (integrationId: string, count: number) => void;
  /** Told about every tunnel opened. */
  onTunnel?: (kind: 'intercept' | 'passthrough') => void;
}

export interface ProxyListener {
  server: http.Server;
  /** Closes idle keep-alive connections, tunnelled ones included (graceful stop). */
  closeIdle: () => void;
  /** Drops every connection and tunnel (end of the grace period). */
  closeAll: () => void;
}

function newCall(req: IncomingMessage): Call {
  const tunnel = tunnelOf(req.socket);
  return {
    req,
    requestId: requestIdFrom(req.headers['x-request-id']),
    started: performance.now(),
    mode: tunnel ? 'connect' : 'path',
    integrationId: null,
    target: null,
    tunnel,
    keySecret: null,
    path: '',
    query: '',
    plan: null,
    auth: null,
    principal: null,
    clientKeys: [],
    upstream: null,
    corsOrigin: null,
    secrets: [],
    rulePath: null,
    rule: null,
    redactions: 0,
  };
}

/** Client-credential failures in forward mode are 407, as HTTP proxies answer. */
function statusFor(call: Call, e: LatchkeyError): number {
  const proxyAuth = e.code === 'PROXY_AUTH_REQUIRED' || e.code === 'INVALID_API_KEY';
  return (call.mode === 'forward' || call.mode === 'connect') && proxyAuth ? 407 : e.status;
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
    // One shape for every record (fields left undefined rather than spread in): the log line
    // and the audit row read it monomorphically; undefined fields are left out of the line.
    keyName: call.principal?.name || undefined,
    authId: call.auth?.authId ?? null,
    method: call.req.method ?? 'GET',
    host: host === null ? null : bounded(host, MAX_TEXT),
    // Query values can hold secrets (an API key in the query): only names are kept.
    path: bounded(redactQuery(call.query ? `${call.path}?${call.query}` : call.path), MAX_TEXT),
    status,
    ms: Math.round((performance.now() - call.started) * 10) / 10,
    mode: call.mode,
    rule: call.rule,
    redactions: call.redactions,
    error: error || undefined,
    subjectSlot: call.auth,
  };
}

/** An error answered on a raw socket (upgrade, CONNECT), closing it. */
function socketError(call: Call, socket: Duplex, err: unknown, log: Logger): LatchkeyError {
  const e = asLatchkeyError(err);
  if (e.code === 'INTERNAL_ERROR') {
    log.error({ requestId: call.requestId, errName: (err as Error)?.name, errCode: (err as { code?: string })?.code }, 'proxy call failed');
  }
  const status = statusFor(call, e);
  const challenge = status === 407 ? 'proxy-authenticate: Basic realm="latchkey"\r\n' : '';
  const retry = Object.entries(errorHeaders(e)).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  writeSocketError(socket, status, e.code, JSON.stringify(errorBody(e, call.requestId)), `x-request-id: ${call.requestId}\r\n${challenge}${retry}`);
  return e;
}

export function createProxyServer(deps: ProxyDeps): ProxyListener {
  const ws = createWebSocketProxy(deps);

  // Its log line, audit row and metrics are made by onCall (src/call-record.ts).
  const finish = (call: Call, status: number, error?: string): void => deps.onCall(record(call, status, error), { known: call.plan !== null });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const call = newCall(req);
    try {
      tag(call, deps);
      if (isPreflight(req)) {
        res.writeHead(204, { ...preflightHeaders(call, deps), 'x-request-id': call.requestId });
        res.end();
        return;
      }
      resolve(call, deps);
      // Stages that may wait return a promise only when they do (a widget token, a rate limit held by
      // the primary, a signer or a token kind): a key and a static credential await nothing.
      const authenticating = authenticate(call, deps);
      if (authenticating) await authenticating;
      choose(call, deps);
      authorize(call);
      build(call);
      // Refused by a rule or the rate limit before any credential work (a token fetch, a signature).
      const limited = restrict(call, deps);
      if (limited) await limited;
      const injecting = inject(call);
      if (injecting) await injecting;
      chooseRedactor(call);
      const extra = call.corsOrigin ? { ...corsHeaders(call.corsOrigin), 'x-request-id': call.requestId } : { 'x-request-id': call.requestId };
      const up = call.upstream!;
      const auth = call.auth!;
      const replay = canReplay(auth, up, req)
        ? async (): Promise<boolean> => {
            const secrets = await reapplyAfter401(auth, up);
            if (secrets) {
              call.secrets = [...new Set([...call.secrets, ...secrets])];
              // The renewed token is what the replayed answer may echo.
              chooseRedactor(call);
            }
            deps.log.debug({ requestId: call.requestId, integrationId: call.integrationId }, 'upstream refused the access token: renewed, replaying');
            return secrets !== null;
          }
        : undefined;
      const result = await forward(deps.agent, req, res, up, extra, replay);
      call.redactions = result.redactions ?? 0;
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
      tag(call, deps);
      // Only WebSocket upgrades are proxied: an h2c upgrade would be cut after the fact, so it is refused up front.
      if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') {
        throw new LatchkeyError('INVALID_TARGET', `only WebSocket upgrades (GET with Upgrade: websocket) are proxied, not ${String(req.headers.upgrade)}`);
      }
      resolve(call, deps);
      await authenticate(call, deps);
      choose(call, deps);
      authorize(call);
      build(call);
      const limited = restrict(call, deps);
      if (limited) await limited;
      await inject(call);
      chooseRedactor(call);
      const result = await ws(call, socket, head);
      finish(call, result.status, result.error);
    } catch (err) {
      const e = socketError(call, socket, err, deps.log);
      finish(call, statusFor(call, e), e.code);
    }
  };

  /** Sockets of open tunnels: dropped at the end of the grace period. */
  const tunnels = new Set<Socket>();
  /** Intercepted tunnels whose TLS handshake has not completed: nothing in flight, dropped on a graceful stop. */
  const handshaking = new Set<Socket>();

  const connect = async (req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> => {
    const call = newCall(req);
    socket.on('error', () => socket.destroy());
    try {
      const kind = await acceptTunnel(call, deps);
      const tunnel = call.tunnel!;
      if (kind === 'intercept') {
        // Minted (or taken from the cache) before the 200, so a failure is still an answer.
        const context = await deps.localCa.contextFor(tunnel.hostname);
        if (socket.destroyed) return;
        tunnels.add(socket);
        handshaking.add(socket);
        socket.once('close', () => {
          tunnels.delete(socket);
          handshaking.delete(socket);
        });
        intercept(socket, head, tunnel, context, (secure) => {
          handshaking.delete(socket);
          inner.emit('connection', secure);
        }, deps.log);
        deps.onTunnel?.('intercept');
        deps.log.info(
          { requestId: call.requestId, integrationId: tunnel.integrationId, keyId: call.principal?.keyId, target: tunnel.target },
          'tunnel opened',
        );
        return;
      }
      tunnels.add(socket);
      const result = await passThrough(socket, head, tunnel, deps.connector, () => deps.onTunnel?.('passthrough'));
      tunnels.delete(socket);
      // The subject slot is the records' own, not a field of the line.
      const { subjectSlot: _slot, ...fields } = record(call, 200);
      const tunnelled = { ...fields, host: tunnel.hostname, action: 'proxy.tunnel' as const };
      deps.log.info({ ...tunnelled, bytesUp: result.bytesUp, bytesDown: result.bytesDown }, 'passthrough tunnel closed');
      deps.onCall({ ...tunnelled, subjectSlot: null }, { known: false });
    } catch (err) {
      tunnels.delete(socket);
      const e = socketError(call, socket, err, deps.log);
      finish(call, statusFor(call, e), e.code);
    }
  };

  // Uploads and streams may legitimately last long; only slow headers are cut.
  const serverOptions: http.ServerOptions = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 };
  const onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (!socket.writable) return;
    // Methods node's parser does not know (TRACK among them) never reach the pipeline; say why, coded.
    if (err.code === 'HPE_INVALID_METHOD') {
      const e = new LatchkeyError('METHOD_NOT_ALLOWED', 'this method is never forwarded');
      writeSocketError(socket, 405, e.code, JSON.stringify(errorBody(e, requestIdFrom(undefined))));
      return;
    }
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  };
  const server = http.createServer(serverOptions, (req, res) => void handle(req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade(req, socket, head));
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => void connect(req, socket as Socket, head));
  server.on('clientError', onClientError);

  /*
   * The decrypted side of intercepted tunnels: the same handlers, never listening on a port itself.
   * A server that never listened does not track its connections (closeIdleConnections does nothing),
   * so the requests in flight on each decrypted socket are counted here for a graceful stop.
   */
  const busy = new Map<Duplex, number>();
  const adjust = (socket: Duplex, by: number): void => {
    const n = busy.get(socket);
    if (n !== undefined) busy.set(socket, n + by);
  };
  const inner = http.createServer(serverOptions, (req, res) => {
    adjust(req.socket, 1);
    res.once('close', () => adjust(req.socket, -1));
    void handle(req, res);
  });
  inner.on('connection', (socket: Duplex) => {
    busy.set(socket, 0);
    socket.once('close', () => busy.delete(socket));
  });
  inner.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A WebSocket keeps the socket until either side closes it.
    adjust(socket, 1);
    void upgrade(req, socket, head);
  });
  inner.on('clientError', onClientError);

  return {
    server,
    closeIdle: () => {
      server.closeIdleConnections();
      for (const [socket, inFlight] of busy) if (inFlight === 0) socket.destroy();
      for (const socket of handshaking) socket.destroy();
    },
    closeAll: () => {
      server.closeAllConnections();
      for (const socket of busy.keys()) socket.destroy();
      for (const socket of tunnels) socket.destroy();
    },
  };
}
