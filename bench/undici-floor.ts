/**
 * Reference (d): the least an undici-based forwarder can do (copy headers,
 * set Authorization, stream the answer), with none of latchkey's checks. It
 * shows how much of (c)'s cost is latchkey's own work. Prints its port.
 */
import http from 'node:http';
import { Agent } from 'undici';

const target = process.argv[2] as string;
const agent = new Agent({ keepAliveTimeout: 30_000 });
const server = http.createServer((req, res) => {
  const headers: Record<string, string | string[] | undefined> = { ...req.headers, authorization: 'Bearer bench-token' };
  delete headers.host;
  delete headers.connection;
  agent
    .stream({ origin: target, path: req.url ?? '/', method: 'GET', headers: headers as Record<string, string> }, ({ statusCode, headers: h }) => {
      res.writeHead(statusCode, h);
      return res;
    })
    .catch(() => res.destroy());
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
