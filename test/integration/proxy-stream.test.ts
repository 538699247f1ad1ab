import { readFileSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { serverEnv, startServer, type ServerProcess } from '../helpers/child.js';
import { adminClient, type AdminClient } from '../helpers/http.js';
import { newAdminKey } from '../helpers/latchkey.js';
import { tmpDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
const SECRET = 'stream-token';

let lk: ServerProcess;
let admin: AdminClient;
let key: string;
let up: Upstream;
let wsUp: { server: http.Server; wss: WebSocketServer; port: number; upgradeHeaders: http.IncomingHttpHeaders[] };
let uploadSeen = 0;
let sseRelease: (() => void) | null = null;
let abortedUpstream: Promise<void>;
let signalAborted: () => void;

/** Writes `total` bytes into `w`, waiting for drain: the producer never runs ahead of the consumer. */
async function pump(w: NodeJS.WritableStream, total: number): Promise<void> {
  let sent = 0;
  while (sent < total) {
    const n = Math.min(CHUNK.length, total - sent);
    sent += n;
    if (!w.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) await once(w as unknown as NodeJS.EventEmitter, 'drain');
  }
}

/** Peak and current resident memory of a process, from /proc. */
function memory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

beforeAll(async () => {
  abortedUpstream = new Promise((r) => (signalAborted = r));
  up = await startUpstream((req, res) => {
    if (req.url?.startsWith('/secrets')) {
      // 256 MiB in 64 KiB writes, the credential split across every write: "stream" | "-token".
      const period = Buffer.concat([Buffer.from(SECRET), Buffer.alloc(CHUNK.length - SECRET.length, 'y')]);
      const middle = Buffer.concat([period.subarray(6), period.subarray(0, 6)]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE });
      void (async () => {
        res.write(period.subarray(0, 6));
        for (let i = 0; i < SIZE / CHUNK.length - 1; i++) if (!res.write(middle)) await once(res, 'drain');
        res.end(period.subarray(6));
      })();
    } else if (req.url?.startsWith('/download')) {
      const size = req.url.includes('warmup') ? 32 * MiB : SIZE;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      void pump(res, size).then(() => res.end());
    } else if (req.url?.startsWith('/upload')) {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        uploadSeen = n;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ received: n, auth: req.headers.authorization }));
      });
    } else if (req.url?.startsWith('/sse')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      sseRelease = () => res.end('data: last\n\n');
    } else if (req.url?.startsWith('/endless')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(CHUNK), 5);
      res.on('close', () => {
        clearInterval(timer);
        signalAborted();
      });
    } else {
      res.end('ok');
    }
  });

  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  const upgradeHeaders: http.IncomingHttpHeaders[] = [];
  wss.on('connection', (sock, req) => {
    upgradeHeaders.push(req.headers);
    sock.on('message', (m) => sock.send(`echo:${m.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  wsUp = { server, wss, port: (server.address() as { port: number }).port, upgradeHeaders };

  const dir = tmpDir().path;
  key = newAdminKey();
  lk = await startServer(serverEnv(dir, { LATCHKEY_ADMIN_KEY: key }));
  admin = adminClient(lk.adminUrl, key);
  await admin.post('/v1/integrations', { integrationId: 'big', baseUrl: up.url });
  await admin.post('/v1/integrations/big/auth', { authType: 'BEARER_TOKEN', token: 'stream-token' });
  await admin.post('/v1/integrations', { integrationId: 'sock', baseUrl: `http://127.0.0.1:${wsUp.port}` });
  await admin.post('/v1/integrations/sock/auth', { authType: 'BEARER_TOKEN', token: 'ws-token', headers: [{ key: 'X-Ws', value: 'static' }] });
});

afterAll(async () => {
  lk.child.kill('SIGTERM');
  await lk.exited;
  wsUp.wss.close();
  wsUp.server.close();
  await up.close();
});

function proxied(path: string, method = 'GET'): http.ClientRequest {
  const u = new URL(`${lk.proxyUrl}/big${path}`);
  return http.request({ host: u.hostname, port: u.port, path: u.pathname, method, headers: { 'x-latchkey-key': key } });
}

describe('streaming', () => {
  it('server-sent events reach the client before the upstream has finished', async () => {
    const req = proxied('/sse');
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    expect(res.headers['content-type']).toBe('text/event-stream');
    const [first] = (await once(res, 'data')) as [Buffer];
    expect(first.toString()).toBe('data: first\n\n');
    // The upstream is still holding the stream open here.
    expect(sseRelease).not.toBeNull();
    sseRelease!();
    let rest = '';
    res.on('data', (c: Buffer) => (rest += c.toString()));
    await once(res, 'end');
    expect(rest).toBe('data: last\n\n');
  });

  it('a 256 MiB download passes in bounded memory', async () => {
    // One small transfer first: the first call through a fresh process grows its
    // heap, JIT and buffer pools once; the test is about growth per transfer.
    const warm = proxied('/download-warmup');
    warm.end();
    const [warmRes] = (await once(warm, 'response')) as [http.IncomingMessage];
    warmRes.resume();
    await once(warmRes, 'end');
    const before = memory(lk.child.pid!);
    const req = proxied('/download');
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    let n = 0;
    res.on('data', (c: Buffer) => (n += c.length));
    await once(res, 'end');
    expect(n).toBe(SIZE);
    const after = memory(lk.child.pid!);
    expect(after.hwm - before.rss).toBeLessThan(64 * MiB);
  });

  it('a 256 MiB body holding the credential 4096 times is redacted in bounded memory', async () => {
    const before = memory(lk.child.pid!);
    const req = proxied('/secrets');
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    // Its length changes, so it goes chunked rather than with the upstream's Content-Length.
    expect(res.headers['content-length']).toBeUndefined();
    let n = 0;
    let redacted = 0;
    let leaked = 0;
    let carry = '';
    res.on('data', (c: Buffer) => {
      n += c.length;
      const text = carry + c.toString('latin1');
      redacted += text.split('[REDACTED]').length - 1 - (carry.split('[REDACTED]').length - 1);
      leaked += text.split(SECRET).length - 1 - (carry.split(SECRET).length - 1);
      carry = text.slice(-16);
    });
    await once(res, 'end');
    const count = SIZE / CHUNK.length;
    expect(leaked).toBe(0);
    expect(redacted).toBe(count);
    expect(n).toBe(SIZE - count * (SECRET.length - '[REDACTED]'.length));
    const after = memory(lk.child.pid!);
    expect(after.hwm - before.rss).toBeLessThan(64 * MiB);
  });

  it('a 256 MiB upload passes in bounded memory', async () => {
    const before = memory(lk.child.pid!);
    const req = proxied('/upload', 'POST');
    req.setHeader('content-type', 'application/octet-stream');
    const response = once(req, 'response') as Promise<[http.IncomingMessage]>;
    await pump(req, SIZE);
    req.end();
    const [res] = await response;
    let body = '';
    res.on('data', (c: Buffer) => (body += c.toString()));
    await once(res, 'end');
    // The token comes back redacted: the response passed through the redactor.
    expect(JSON.parse(body)).toEqual({ received: SIZE, auth: 'Bearer [REDACTED]' });
    expect(uploadSeen).toBe(SIZE);
    const after = memory(lk.child.pid!);
    expect(after.hwm - before.rss).toBeLessThan(64 * MiB);
  });

  it('a client that aborts mid-download makes the upstream request end', async () => {
    const req = proxied('/endless');
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    await once(res, 'data');
    req.destroy();
    await expect(Promise.race([abortedUpstream.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still running'), 5000))])).resolves.toBe('ended');
  });
});

describe('websocket', () => {
  it('echoes through a tagged path, with the credential on the upgrade request', async () => {
    const ws = new WebSocket(`${lk.proxyUrl.replace('http', 'ws')}/sock/chat?room=1`, { headers: { 'x-latchkey-key': key } });
    await once(ws, 'open');
    ws.send('hello');
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe('echo:hello');
    ws.close();
    const seen = wsUp.upgradeHeaders[0]!;
    expect(seen.authorization).toBe('Bearer ws-token');
    expect(seen['x-ws']).toBe('static');
    expect(seen['x-latchkey-key']).toBeUndefined();
    expect(seen.host).toBe(`127.0.0.1:${wsUp.port}`);
  });

  describe('messages from the upstream carry no secret (each is searched, as a response body is)', () => {
    let leaky: { server: http.Server; wss: WebSocketServer; extensions: Array<string | undefined>; got: string[] };
    beforeAll(async () => {
      const server = http.createServer();
      const wss = new WebSocketServer({ server, perMessageDeflate: true });
      const extensions: Array<string | undefined> = [];
      const got: string[] = [];
      wss.on('connection', (sock, req) => {
        extensions.push(req.headers['sec-websocket-extensions'] as string | undefined);
        const token = String(req.headers.authorization).replace('Bearer ', '');
        sock.on('message', (m) => {
          got.push(m.toString());
          if (m.toString() === 'big') {
            sock.send(Buffer.alloc(17 * 1024 * 1024, 0x61));
            return;
          }
          sock.send(`your token is ${token}`);
          sock.send(Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(token), Buffer.from([3])]), { binary: true });
          // One message in two fragments, the token cut across them.
          sock.send(`first ${token.slice(0, 4)}`, { fin: false });
          sock.send(`${token.slice(4)} last`, { fin: true });
          sock.ping(Buffer.from(token));
          sock.close(4000, `bye ${token}`);
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      leaky = { server, wss, extensions, got };
      const port = (server.address() as { port: number }).port;
      await admin.post('/v1/integrations', { integrationId: 'leaky', baseUrl: `http://127.0.0.1:${port}` });
      await admin.post('/v1/integrations/leaky/auth', { authType: 'BEARER_TOKEN', token: 'ws-leaky-secret' });
      await admin.post('/v1/integrations', { integrationId: 'leaky-raw', baseUrl: `http://127.0.0.1:${port}`, redactResponses: false });
      await admin.post('/v1/integrations/leaky-raw/auth', { authType: 'BEARER_TOKEN', token: 'ws-raw-secret' });
    });
    afterAll(() => {
      leaky.wss.close();
      leaky.server.close();
    });

    /** Everything the client saw on one connection, until the upstream closed it. */
    async function session(integration: string, say: string): Promise<{ messages: Array<[string, boolean]>; pings: string[]; close: [number, string] }> {
      const ws = new WebSocket(`${lk.proxyUrl.replace('http', 'ws')}/${integration}/chat`, { headers: { 'x-latchkey-key': key } });
      const messages: Array<[string, boolean]> = [];
      const pings: string[] = [];
      ws.on('message', (data: Buffer, isBinary: boolean) => messages.push([isBinary ? data.toString('latin1') : data.toString(), isBinary]));
      ws.on('ping', (data: Buffer) => pings.push(data.toString()));
      await once(ws, 'open');
      ws.send(say);
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      return { messages, pings, close: [code, reason.toString()] };
    }

    it('text, binary, fragmented, ping and close reason: the token is replaced in each; what the client says arrives as said', async () => {
      const seen = await session('leaky', 'hello upstream');
      expect(leaky.got).toContain('hello upstream');
      expect(seen.messages).toEqual([
        ['your token is [REDACTED]', false],
        [`\u0000\u0001\u0002[REDACTED]\u0003`, true],
        ['first [REDACTED] last', false],
      ]);
      expect(seen.pings).toEqual(['[REDACTED]']);
      expect(seen.close).toEqual([4000, 'bye [REDACTED]']);
      expect(JSON.stringify(seen)).not.toContain('ws-leaky-secret');
      // No compression was offered upstream, so every message could be read.
      expect(leaky.extensions[leaky.extensions.length - 1]).toBeUndefined();
      // Counted like a response's: five replacements (three messages, the ping, the close reason).
      const metrics = await (await fetch(`${lk.adminUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
      expect(metrics).toMatch(/^latchkey_redactions_total\{integration="leaky"\} 5$/m);
    });

    it('a message larger than the redactor holds closes the connection with 1009', async () => {
      const seen = await session('leaky', 'big');
      expect(seen.messages).toEqual([]);
      expect(seen.close[0]).toBe(1009);
    });

    it('with redactResponses false the messages pass as sent (and compression may be negotiated)', async () => {
      const seen = await session('leaky-raw', 'hi');
      expect(seen.messages[0]).toEqual(['your token is ws-raw-secret', false]);
      expect(seen.messages[2]).toEqual(['first ws-raw-secret last', false]);
      expect(leaky.extensions[leaky.extensions.length - 1]).toContain('permessage-deflate');
    });
  });

  it('refuses an upgrade without a client credential', async () => {
    const ws = new WebSocket(`${lk.proxyUrl.replace('http', 'ws')}/sock/chat`);
    ws.on('error', () => undefined);
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    expect(res.statusCode).toBe(401);
    expect(res.headers['x-latchkey-error']).toBe('PROXY_AUTH_REQUIRED');
    ws.terminate();
  });
});
