/**
 * Streaming inside an intercepted tunnel: a large download, server-sent
 * events as they are sent, and a WebSocket upgrade with the credential
 * injected into the handshake.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { agentKey, startConnectFixture, UPSTREAM_TOKEN, type ConnectFixture } from '../helpers/connect-fixture.js';
import { rawConnect, tlsOver } from '../helpers/tunnel.js';
import { basic } from '../helpers/http.js';
import { echo } from '../helpers/upstream.js';

const HOST = 'api.connect-stream.example';
const BIG = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'latchkey-');

let fx: ConnectFixture;
let key: string;
let dispatcher: ProxyAgent;
let releaseSse: () => void = () => undefined;

function handler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/big') {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
    let sent = 0;
    const pump = (): void => {
      while (sent < BIG) {
        sent += CHUNK.length;
        if (!res.write(CHUNK)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  } else if (req.url === '/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(`data: ${req.headers.authorization}\n\n`);
    // The second event is sent only once the test has received the first one.
    releaseSse = () => res.end('data: two\n\n');
  } else {
    echo(req, res);
  }
}

/** The upgrade requests the WebSocket upstream received. */
const upgrades: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  fx = await startConnectFixture([HOST], { handler, redact: true });
  const wss = new WebSocketServer({ server: fx.up.server });
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.send(JSON.stringify({ authorization: req.headers.authorization, url: req.url, sawKey: JSON.stringify(req.headers).includes('lk_') }));
    ws.on('message', (m) => ws.send(`echo:${String(m)}`));
  });
  key = await agentKey(fx.lk, ['api']);
  dispatcher = new ProxyAgent({
    uri: `http://${fx.proxyHostPort}`,
    token: basic('auto', key),
    requestTls: { ca: fx.caPem },
  });
});
afterAll(async () => {
  await dispatcher?.close();
  await fx?.close();
});

it('a 64 MiB download inside a tunnel arrives whole', async () => {
  const res = await request(`https://${fx.target}/big`, { dispatcher });
  expect(res.statusCode).toBe(200);
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  const expected = createHash('sha256');
  for (let i = 0; i < BIG / CHUNK.length; i++) expected.update(CHUNK);
  expect(bytes).toBe(BIG);
  expect(hash.digest('hex')).toBe(expected.digest('hex'));
});

it('server-sent events inside a tunnel reach the caller as they are sent', async () => {
  const res = await request(`https://${fx.target}/sse`, { dispatcher });
  expect(res.headers['content-type']).toBe('text/event-stream');
  const it = res.body[Symbol.asyncIterator]();
  const first = await it.next();
  // The upstream is still holding the stream open: this event was not buffered until the end.
  // And redacted: the credential the upstream echoed never reaches the caller.
  expect(String(first.value)).toBe('data: Bearer [REDACTED]\n\n');
  releaseSse();
  let rest = '';
  for (let next = await it.next(); !next.done; next = await it.next()) rest += String(next.value);
  expect(rest).toBe('data: two\n\n');
});

it('a WebSocket inside a tunnel: the handshake gets the credential, the latchkey key never reaches the upstream', async () => {
  const r = await rawConnect(fx.lk.proxyUrl, fx.target, { 'proxy-authorization': basic('auto', key) });
  expect(r.status).toBe(200);
  const secure = await tlsOver(r.socket, HOST, fx.caPem);
  const ws = new WebSocket(`wss://${fx.target}/socket?x=1`, { createConnection: () => secure, headers: { authorization: `Bearer ${key}` } });
  const messages: string[] = [];
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (m) => {
      messages.push(String(m));
      if (messages.length === 1) ws.send('hello');
      else {
        ws.close();
        resolve();
      }
    });
    ws.on('error', reject);
  });
  expect(upgrades[upgrades.length - 1]?.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
  // The upstream's echo of the credential is a message like any other: the client gets it replaced.
  expect(JSON.parse(messages[0] as string)).toEqual({ authorization: 'Bearer [REDACTED]', url: '/socket?x=1', sawKey: false });
  expect(messages[1]).toBe('echo:hello');
});
