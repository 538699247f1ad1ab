/** Benchmark HTTPS upstream (tunnel rows): the same tiny answer over TLS; key and cert files as arguments. */
import https from 'node:https';
import { readFileSync } from 'node:fs';

const [keyFile, certFile] = process.argv.slice(2) as [string, string];
const body = Buffer.from('{"ok":true}');
const server = https.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, (req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
