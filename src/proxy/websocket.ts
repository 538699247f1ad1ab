/**
 * WebSocket upgrades on a tagged call, through http-proxy-3. The credential is
 * injected by replacing req.headers before proxy.ws(): setting headers in its
 * proxyReq event is unreliable (STACK.md). The upstream is dialled by the one
 * connector, so an upgrade obeys the same address policy as every call.
 * When the integration redacts responses, the upstream's messages are parsed
 * (ws's own frame reader and writer) and each one goes to the client with the
 * call's secrets replaced, as a response body would; the client's messages
 * pass untouched. http-proxy-3 and ws are imported at the first upgrade
 * (src/lazy.ts), not at start.
 */
import http, { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import type { ProxyServer } from 'http-proxy-3';
import { errorBody } from '../errors.js';
import type { Call } from './pipeline.js';
import type { Logger } from '../log.js';
import type { Connector } from './connector.js';
import { upstreamError, type ForwardResult } from './forward.js';
import type { Redactor } from './redact.js';
import { redactHeaders } from './response-body.js';
import { lazyModule, once } from '../lazy.js';

const httpProxy = lazyModule('the WebSocket proxy', () => import('http-proxy-3'));
const wsLibrary = lazyModule('the WebSocket message reader', () => import('ws'));

/**
 * A message from the upstream is held whole to be searched: one larger than
 * this closes the connection (1009, Message Too Big), like a body over the
 * proxy's limits.
 */
export const MAX_REDACTED_MESSAGE_BYTES = 16 * 1024 * 1024;

/** ws's frame reader and writer (exported by ws as Receiver and Sender; @types/ws leaves them out). */
interface FrameReader {
  write(chunk: Buffer): boolean;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'conclude', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error & { code?: string }) => void): this;
}
interface FrameWriter {
  send(data: Buffer, options: { binary: boolean; fin: boolean; mask: boolean; compress: boolean }): void;
  ping(data: Buffer, mask: boolean): void;
  pong(data: Buffer, mask: boolean): void;
  close(code: number | undefined, data: Buffer, mask: boolean, cb?: () => void): void;
}
interface Frames {
  Receiver: new (options: { isServer: boolean; maxPayload: number; skipUTF8Validation: boolean; binaryType: 'nodebuffer' }) => FrameReader;
  Sender: new (socket: Duplex) => FrameWriter;
}

/**
 * Puts a redacting reader between the upstream and the client, in place of
 * http-proxy-3's pipe: each message (fragments joined), ping and close
 * reason is written to the client again with the secrets replaced. The
 * upgrade offered no extension (src/proxy/pipeline.ts), so frames are not
 * compressed; one that is (or any protocol error) ends both connections.
 */
function redactMessages(upstream: Duplex, client: Duplex, r: Redactor, frames: Frames, counted: (n: number) => void): void {
  upstream.unpipe(client);
  const reader = new frames.Receiver({ isServer: false, maxPayload: MAX_REDACTED_MESSAGE_BYTES, skipUTF8Validation: true, binaryType: 'nodebuffer' });
  const writer = new frames.Sender(client);
  const clean = (data: Buffer): Buffer => {
    if (data.length < r.minLength) return data;
    const x = r.buffer(data);
    if (x.count > 0) counted(x.count);
    return x.data;
  };
  reader.on('message', (data, isBinary) => writer.send(clean(data), { binary: isBinary, fin: true, mask: false, compress: false }));
  reader.on('ping', (data) => writer.ping(clean(data), false));
  reader.on('pong', (data) => writer.pong(clean(data), false));
  // 1005: the close frame had no code, and none may be sent.
  reader.on('conclude', (code, reason) => writer.close(code === 1005 ? undefined : code, clean(reason).subarray(0, 123), false));
  reader.on('error', (err) => {
    upstream.destroy();
    writer.close(err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 1009 : 1002, Buffer.alloc(0), false);
  });
  // Once the upstream is gone nothing the client sends has anywhere to go: its side is ended and
  // read to its end (unread, a half-closed socket would stay open and hold up a graceful stop).
  upstream.once('close', () => {
    client.end();
    client.resume();
  });
  upstream.on('data', (chunk: Buffer) => {
    reader.write(chunk);
    // The client reads slower than the upstream sends: the upstream waits.
    if ((client as Writable).writableNeedDrain) {
      upstream.pause();
      client.once('drain', () => upstream.resume());
    }
  });
  upstream.resume();
}

interface Pending {
  settle: (result: ForwardResult) => void;
  /** Whether a status line already went to the client. */
  answered: boolean;
  requestId: string;
  hostname: string;
  /** The call's secrets, searched in the answer's headers and messages; null: passed through. */
  redactor: Redactor | null;
  integrationId: string;
}

/** The proxy's own error on a raw upgrade socket (no ServerResponse exists there). */
export function writeSocketError(socket: Duplex, status: number, code: string, body: string, extra = ''): void {
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n` +
      `x-latchkey-error: ${code}\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

type Deps = {
  log: Logger;
  ca: string[];
  connector: Connector;
  /** Secrets replaced in a WebSocket's messages, by integration (the call's row is written at the upgrade, before any message). */
  onMessageRedactions?: (integrationId: string, count: number) => void;
};

function setUp(
  createProxyServer: typeof import('http-proxy-3').createProxyServer,
  frames: Frames,
  deps: Deps,
  pending: WeakMap<IncomingMessage, Pending>,
): ProxyServer {
  const proxy = createProxyServer({ ws: true, xfwd: false, changeOrigin: true, secure: true, ca: deps.ca.join('\n') });
  /** Upstream sockets whose messages are redacted, with the client socket they go to. */
  const relays = new WeakMap<Duplex, { client: Duplex; redactor: Redactor; integrationId: string }>();

  // Emitted before http-proxy-3 adds its own listeners, so ours see the answer first.
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, req: IncomingMessage, client: Duplex) => {
    const p = pending.get(req);
    if (!p) return;
    proxyReq.once('upgrade', (res: IncomingMessage, upstream: Duplex) => {
      // The 101's headers are written to the client after this listener: cleaned here first.
      for (const name of Object.keys(res.headers)) if (name.startsWith('x-latchkey-')) delete res.headers[name];
      if (p.redactor) {
        redactHeaders(res.headers as OutgoingHttpHeaders, p.redactor);
        relays.set(upstream, { client, redactor: p.redactor, integrationId: p.integrationId });
      }
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
  // Right after http-proxy-3 piped the upstream into the client, in the same tick: no byte went through yet.
  proxy.on('open', (upstream: Duplex) => {
    const relay = relays.get(upstream);
    if (relay) redactMessages(upstream, relay.client, relay.redactor, frames, (n) => deps.onMessageRedactions?.(relay.integrationId, n));
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
  const proxyServer = once(async () => {
    const [{ createProxyServer }, ws] = await Promise.all([httpProxy(), wsLibrary()]);
    return setUp(createProxyServer, ws as unknown as Frames, deps, pending);
  });

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
      pending.set(call.req, {
        settle,
        answered: false,
        requestId: call.requestId,
        hostname: up.hostname,
        redactor: up.redactor,
        integrationId: call.integrationId as string,
      });
      socket.once('close', () => settle({ status: 499, error: 'CLIENT_CLOSED' }));
    });
    call.req.headers = headers;
    call.req.url = up.path;
    const agent = up.origin.startsWith('https:') ? agents['https:'] : agents['http:'];
    proxy.ws(call.req, socket, head, { target: up.origin, ignorePath: false, prependPath: false, agent });
    return result;
  };
}
