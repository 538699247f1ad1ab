import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The raw header list, to see duplicates. */
  rawHeaders: string[];
  body: string;
}

export interface Upstream {
  url: string;
  port: number;
  host: string;
  seen: SeenRequest[];
  server: http.Server;
  close: () => Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Echoes what it received as JSON. */
export const echo: Handler = (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
};

/** A real HTTP (or, with tls, HTTPS) server on 127.0.0.1, port 0, recording every request. */
export async function startUpstream(handler: Handler = echo, tls?: { key: string; cert: string }): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const record: Handler = (req, res) => {
    const entry: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: '' };
    seen.push(entry);
    handler(req, res);
  };
  const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, record) : http.createServer(record);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    host: `127.0.0.1:${port}`,
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
