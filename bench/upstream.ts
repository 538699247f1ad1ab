/**
 * Benchmark upstream on port 0; prints its port. Keep-alive throughout.
 *   any path          a tiny JSON answer
 *   POST /…/upload    reads the body and answers its size
 *   GET /…/download?bytes=N  streams N bytes, with backpressure
 *   POST /oauth/token  an OAuth 2 token answer (one token for an hour)
 */
import http from 'node:http';

const body = Buffer.from('{"ok":true}');
const chunk = Buffer.alloc(64 * 1024, 120);
// The token endpoint of the OAuth 2 row: one token for an hour, so the row measures the cached path.
const token = Buffer.from('{"access_token":"bench-access-token","token_type":"Bearer","expires_in":3600}');

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.includes('/upload')) {
    let bytes = 0;
    req.on('data', (d: Buffer) => (bytes += d.length));
    req.on('end', () => {
      const out = Buffer.from(JSON.stringify({ bytes }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': out.length });
      res.end(out);
    });
    return;
  }
  req.resume();
  if (req.method === 'POST' && url === '/oauth/token') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': token.length, 'cache-control': 'no-store' });
    res.end(token);
    return;
  }
  const m = /\/download\?bytes=(\d+)/.exec(url);
  if (m) {
    let left = Number(m[1]);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
