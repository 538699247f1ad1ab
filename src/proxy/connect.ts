/**
 * HTTPS proxy: a CONNECT is authenticated and given its integration here,
 * then either intercepted (TLS terminated with a leaf from the local CA, the
 * decrypted requests handed to the same request handler as every other mode)
 * or, for a configured passthrough host, tunnelled untouched.
 */
import net from 'node:net';
import tls from 'node:tls';
import { LatchkeyError } from '../errors.js';
import { hostAllowed } from '../hosts.js';
import { authenticate, authorize, choose, namedIntegration, requireSomeCredential, resolve, type Call, type PipelineDeps } from './pipeline.js';
import { attachTunnel, normalName, parseConnectTarget, type ConnectTarget, type Tunnel } from './tunnel.js';
import { upstreamError } from './forward.js';
import type { Connector } from './connector.js';
import type { Logger } from '../log.js';

export interface ConnectDeps extends PipelineDeps {
  /** Patterns as in allowedHosts; an entry without a port means 443. */
  passthroughHosts: readonly string[];
}

export type TunnelKind = 'intercept' | 'passthrough';

const HANDSHAKE_TIMEOUT_MS = 10_000;
export const CONNECT_ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

const passthroughAllowed = (deps: ConnectDeps, t: ConnectTarget): boolean =>
  deps.passthroughHosts.length > 0 && hostAllowed(deps.passthroughHosts, t.target, 443);

/**
 * Authenticates a CONNECT and decides what the tunnel is. Order matters: no
 * credential at all is a 407 before anything else; nothing is dialled and no
 * certificate minted for a target that no usable integration allows.
 */
export async function acceptTunnel(call: Call, deps: ConnectDeps): Promise<TunnelKind> {
  call.mode = 'connect';
  requireSomeCredential(call, deps);
  const target = parseConnectTarget(call.req.url);
  if (!target) throw new LatchkeyError('INVALID_TARGET', 'the CONNECT target must be host:port (IPv6 in brackets)');
  call.target = target.target;
  await authenticate(call, deps);
  call.integrationId = namedIntegration(call.req);
  try {
    choose(call, deps);
    resolve(call, deps);
    authorize(call);
  } catch (err) {
    // Passthrough is only for targets no usable integration allows.
    if (err instanceof LatchkeyError && err.code === 'HOST_NOT_ALLOWED' && passthroughAllowed(deps, target)) {
      return passthrough(call, target);
    }
    throw err;
  }
  call.tunnel = { ...target, integrationId: call.integrationId as string, secret: deps.clientAuth === 'none' ? null : call.keySecret };
  return 'intercept';
}

function passthrough(call: Call, target: ConnectTarget): TunnelKind {
  // A passthrough tunnel carries no credential: it is not tied to an integration.
  call.integrationId = null;
  call.tunnel = { ...target, integrationId: '', secret: null };
  return 'passthrough';
}

/** A context without a certificate: a ClientHello without SNI for a named host fails the handshake. */
let noCertificate: tls.SecureContext | null = null;

/**
 * Answers 200 and terminates TLS with `context`. The handshake is refused
 * unless the client's SNI is the CONNECT host (an IP target, for which
 * clients send no SNI, is the exception); only then is the decrypted stream
 * handed on (to the HTTP server running the ordinary request handler).
 */
export function intercept(
  socket: net.Socket,
  head: Buffer,
  tunnel: Tunnel,
  context: tls.SecureContext,
  onSecure: (secure: tls.TLSSocket) => void,
  log: Logger,
): void {
  socket.write(CONNECT_ESTABLISHED);
  if (head.length > 0) socket.unshift(head);
  const isAddress = net.isIP(tunnel.hostname) !== 0;
  noCertificate ??= tls.createSecureContext({});
  const secure = new tls.TLSSocket(socket, {
    isServer: true,
    ALPNProtocols: ['http/1.1'],
    secureContext: isAddress ? context : noCertificate,
    SNICallback: (servername, cb) => {
      if (normalName(servername) === tunnel.hostname) cb(null, context);
      else cb(new Error(`SNI ${servername} is not the CONNECT host ${tunnel.hostname}`));
    },
  });
  attachTunnel(secure, tunnel);
  let established = false;
  const timer = setTimeout(() => secure.destroy(), HANDSHAKE_TIMEOUT_MS);
  secure.once('secure', () => {
    established = true;
    clearTimeout(timer);
    onSecure(secure);
  });
  let failed = false;
  const refused = (err: Error & { code?: string }): void => {
    clearTimeout(timer);
    if (failed) return;
    failed = true;
    if (!established) log.info({ target: tunnel.target, errCode: err.code, reason: err.message }, 'tunnel TLS handshake refused');
    secure.destroy();
  };
  secure.on('error', refused);
  // A server-side TLSSocket outside a tls.Server reports handshake failures only as '_tlsError' (the
  // event tls.Server itself listens to); without this the half-open socket would linger until the timeout.
  secure.on('_tlsError', refused);
  secure.on('close', () => socket.destroy());
}

export interface PassthroughResult {
  bytesUp: number;
  bytesDown: number;
}

/**
 * Dials the target through the connector (the one address policy of every
 * upstream dial), answers 200 once connected and copies bytes both ways
 * untouched. Resolves when both sides have closed; throws a coded error if
 * the dial fails (nothing was answered then).
 */
export async function passThrough(
  client: net.Socket,
  head: Buffer,
  target: ConnectTarget,
  connector: Connector,
  onOpen: () => void,
): Promise<PassthroughResult> {
  const upstream = await new Promise<net.Socket>((ok, fail) => {
    let socket: net.Socket;
    try {
      socket = connector.connect(target.hostname, target.port);
    } catch (err) {
      fail(upstreamError(err, target.hostname));
      return;
    }
    const onError = (err: Error): void => fail(upstreamError(err, target.hostname));
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.removeListener('error', onError);
      ok(socket);
    });
  });
  client.write(CONNECT_ESTABLISHED);
  onOpen();
  if (head.length > 0) upstream.write(head);
  client.pipe(upstream);
  upstream.pipe(client);
  return new Promise((done) => {
    let open = 2;
    const closed = (): void => {
      if (--open === 0) done({ bytesUp: upstream.bytesWritten, bytesDown: client.bytesWritten });
    };
    // Half-closes pass through (pipe ends the other side); a side that is gone ends the tunnel, after
    // what the upstream already sent has been written to the client.
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => {
      client.end();
      closed();
    });
    client.on('close', () => {
      upstream.destroy();
      closed();
    });
  });
}
