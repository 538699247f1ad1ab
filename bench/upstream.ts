/** Benchmark upstream: a tiny JSON answer, keep-alive, on port 0; prints its port. */
import http from 'node:http';

const body = Buffer.from('{"ok":true}');
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
