/** Benchmark upstream: a tiny JSON answer, keep-alive, on port 0; prints its port. */
import http from 'node:http';

const body = Buffer.from('{"ok":true}');
// The token endpoint of the OAuth 2 row: one token for an hour, so the row measures the cached path.
const token = Buffer.from('{"access_token":"bench-access-token","token_type":"Bearer","expires_in":3600}');
const server = http.createServer((req, res) => {
  req.resume();
  if (req.method === 'POST' && req.url === '/oauth/token') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': token.length, 'cache-control': 'no-store' });
    res.end(token);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
