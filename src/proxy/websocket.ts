/**
 * WebSocket upgrades on a tagged call, through http-proxy-3. The credential is
 * injected by replacing req.headers before proxy.ws(): setting headers in its
 * proxyReq event is unreliable (STACK.md).
 */
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Call } from './pipeline.js';
import type { Logger } from '../log.js';

export function createWebSocketProxy(deps: { log: Logger; ca: string[] }) {
  const proxy = createProxyServer({ ws: true, xfwd: false, changeOrigin: true, secure: true, ca: deps.ca.join('\n') });
  // Without an error listener http-proxy-3 throws and would take the process down.
  proxy.on('error', (err, _req, socket) => {
    deps.log.warn({ errCode: (err as { code?: string }).code }, 'websocket upstream failed');
    const s = socket as Duplex | undefined;
    if (s && 'destroy' in s) s.destroy();
  });

  return (call: Call, socket: Duplex, head: Buffer): void => {
    const up = call.upstream!;
    const headers: Record<string, string | string[]> = { ...up.headers };
    // The upgrade handshake headers are hop-by-hop but must reach the upstream as sent.
    for (const name of ['connection', 'upgrade']) {
      const v = call.req.headers[name];
      if (v !== undefined) headers[name] = v;
    }
    call.req.headers = headers;
    call.req.url = up.path;
    proxy.ws(call.req, socket, head, { target: up.origin, ignorePath: false, prependPath: false });
  };
}
