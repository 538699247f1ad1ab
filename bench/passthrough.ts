/** Baseline (b): a bare http-proxy-3 pass-through with a keep-alive agent; prints its port. */
import http from 'node:http';
import { createProxyServer } from 'http-proxy-3';

const target = process.argv[2] as string;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = createProxyServer({ target, agent, changeOrigin: true });
proxy.on('error', (_err, _req, res) => {
  const r = res as http.ServerResponse;
  if (!r.headersSent) r.writeHead(502);
  r.end();
});
const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
