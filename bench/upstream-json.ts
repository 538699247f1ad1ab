/** Redaction benchmark upstream: /small (the tiny answer of upstream.ts) and /big (1 MiB of JSON), on port 0. */
import http from 'node:http';

const small = Buffer.from('{"ok":true}');
// About 1 MiB of ordinary JSON (an API listing).
const items = Array.from({ length: 14_100 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b'], note: 'no secret in here' }));
const big = Buffer.from(JSON.stringify({ items }));
const server = http.createServer((req, res) => {
  req.resume();
  const body = req.url?.startsWith('/big') ? big : small;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port, bigBytes: big.length })}\n`);
});
