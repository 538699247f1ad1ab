/**
 * WebSocket upgrades on a tagged call, through http-proxy-3. The credential is
 * injected by replacing req.headers before proxy.ws(): setting headers in its
 * proxyReq event is unreliable (STACK.md). The upstream is dialled by the one
 * connector, so an upgrade obeys the same address policy as every call.
 * http-proxy-3 is imported at the first upgrade (src/lazy.ts), not at start.
 */
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';
import { errorBody } from '../errors.js';
import type { Call } from './pipeline.js';
import type { Logger } from '../log.js';
import type { Connector } from './connector.js';
import { upstreamError, type ForwardResult } from './forward.js';
import { lazyModule, once } from '../lazy.js';

const httpProxy = lazyModule('the WebSocket proxy', () => import('http-proxy-3'));

interface Pending {
  settle: (result: ForwardResult) => void;
  /** Whether a status line already went to the client. */
  answered: boolean;
  requestId: string;
  hostname: string;
}

/** The proxy's own error on a raw upgrade socket (no ServerResponse exists there). */
export function writeSocketError(socket: Duplex, status: number, code: string, body: string, extra = ''): void {
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n` +
      `x-latchkey-error: ${code}\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

type Deps = { log: Logger; ca: string[]; connector: Connector };

function setUp(createProxyServer: typeof import('http-proxy-3').createProxyServer, deps: Deps, pending: WeakMap<IncomingMessage, Pending>): ProxyServer {
  const proxy = createProxyServer({ ws: true, xfwd: false, changeOrigin: true, secure: true, ca: deps.ca.join('\n') });

  // Emitted before http-proxy-3 adds its own listeners, so ours see the answer first.
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage) => {
    const p = pending.get(req);
    if (!p) return;
    proxyReq.once('upgrade', (res: IncomingMessage) => {
      p.answered = true;
      p.settle({ status: res.statusCode ?? 101 });
    });
    proxyReq.once('response', (res: IncomingMessage) => {
      // A non-101 answer is relayed as is, less the headers only latchkey may set.
      for (const name of Object.keys(res.headers)) if (name.startsWith('x-latchkey-')) delete res.headers[name];
      p.answered = true;
      p.settle({ status: res.statusCode ?? 502 });
    });
  });
  // Without an error listener http-proxy-3 throws and would take the process down.
  proxy.on('error', (err, req, socket) => {
    deps.log.warn({ errCode: (err as { code?: string }).code }, 'websocket upstream failed');
    const s = socket as Duplex | undefined;
    const p = pending.get(req as IncomingMessage);
    if (p && !p.answered && s && !s.destroyed) {
      const e = upstreamError(err, p.hostname);
      p.answered = true;
      writeSocketError(s, e.status, e.code, JSON.stringify(errorBody(e, p.requestId)), `x-request-id: ${p.requestId}\r\n`);
      p.settle({ status: e.status, error: e.code });
      return;
    }
    p?.settle({ status: 502, error: 'UPSTREAM_UNREACHABLE' });
    if (s && 'destroy' in s) s.destroy();
  });
  return proxy;
}

export function createWebSocketProxy(deps: Deps) {
  const pending = new WeakMap<IncomingMessage, Pending>();
  const agents = { 'http:': deps.connector.nodeAgent('http:'), 'https:': deps.connector.nodeAgent('https:') };
  // Set up at the first upgrade, shared by every later one; a failed import is tried again at the next.
  const proxyServer = once(async () => setUp((await httpProxy()).createProxyServer, deps, pending));

  /** Resolves when the upstream answered the upgrade (or failed), with what the client got. */
  return async (call: Call, socket: Duplex, head: Buffer): Promise<ForwardResult> => {
    const proxy = await proxyServer();
    // The first upgrade waited for the import: its client may have gone meanwhile.
    if (socket.destroyed) return { status: 499, error: 'CLIENT_CLOSED' };
    const up = call.upstream!;
    const headers: Record<string, string | string[]> = { ...up.headers };
    // The upgrade handshake headers are hop-by-hop but must reach the upstream as sent.
    for (const name of ['connection', 'upgrade']) {
      const v = call.req.headers[name];
      if (v !== undefined) headers[name] = v;
    }
    const result = new Promise<ForwardResult>((resolve) => {
      let done = false;
      const settle = (r: ForwardResult): void => {
        if (!done) resolve(r);
        done = true;
      };
      pending.set(call.req, { settle, answered: false, requestId: call.requestId, hostname: up.hostname });
      socket.once('close', () => settle({ status: 499, error: 'CLIENT_CLOSED' }));
    });
    call.req.headers = headers;
    call.req.url = up.path;
    const agent = up.origin.startsWith('https:') ? agents['https:'] : agents['http:'];
    proxy.ws(call.req, socket, head, { target: up.origin, ignorePath: false, prependPath: false, agent });
    return result;
  };
}
