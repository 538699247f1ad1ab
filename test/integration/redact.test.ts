import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { basic, call, viaForwardProxy, type Reply } from '../helpers/http.js';

let lk: TestLatchkey;
let up: Upstream;
let releaseSse: (() => void) | null = null;

// Characters that make every encoding differ from the raw value: "+", "/", '"', "=", "&", " ".
const TOKEN = 'tok_live_9aZ+/x"q=Long~1 2&';
const USER = 'acct-user-1';
const PASS = 'p@ss w0rd/+"long';
const HEADER_KEY = 'hk_live_ABCdef+/123';
const QUERY_KEY = 'qk/+ live=&key1';
const SECRETS = [TOKEN, PASS, `${USER}:${PASS}`, HEADER_KEY, QUERY_KEY];
/** What each integration injects: the secrets its calls' responses must not hold. */
const INJECTED: Record<string, string[]> = {
  bearer: [TOKEN],
  basic: [PASS, `${USER}:${PASS}`],
  hdrkey: [HEADER_KEY],
  qkey: [QUERY_KEY],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Where `secret` shows in `text`: raw (or all but its first and last
 * character), percent-encoded, JSON-escaped, or inside any base64/base64url
 * run, decoded at every alignment. Independent of how latchkey searches.
 */
function leaks(text: string, secret: string): string[] {
  const found: string[] = [];
  const inner = secret.slice(1, -1);
  const forms: Record<string, string> = {
    raw: inner,
    percent: encodeURIComponent(secret),
    percentLower: encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    json: JSON.stringify(secret).slice(1, -1),
  };
  for (const [name, form] of Object.entries(forms)) if (text.includes(form)) found.push(name);
  for (const run of text.match(/[A-Za-z0-9+/_-]{8,}/g) ?? []) {
    for (let shift = 0; shift < 4; shift++) {
      const decoded = Buffer.from(run.slice(shift).replace(/-/g, '+').replace(/_/g, '/'), 'base64');
      if (decoded.includes(Buffer.from(inner))) found.push(`base64 in ${run.slice(0, 20)}…`);
    }
  }
  return found;
}

const allLeaks = (text: string, secrets = SECRETS): string[] => secrets.flatMap((s) => leaks(text, s).map((l) => `${s}: ${l}`));

/** Echo: the request (line, headers, body) back in every encoding the contract lists. */
function echoBody(req: IncomingMessage, body: string): string {
  const dump = `${req.method} ${req.url}\n${req.rawHeaders.map((v, i) => (i % 2 ? `${v}\n` : `${v}: `)).join('')}\n${body}`;
  const b = Buffer.from(dump);
  return JSON.stringify({
    dump,
    headers: req.headers,
    url: req.url,
    body,
    base64: b.toString('base64'),
    base64url: b.toString('base64url'),
    shifted: Buffer.concat([Buffer.from('x'), b]).toString('base64'),
    percent: encodeURIComponent(dump),
    auth64: Buffer.from(req.headers.authorization ?? '').toString('base64'),
  });
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => void route(req, res, Buffer.concat(chunks).toString()));
}

async function route(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname.replace(/^\/base/, '');
  const auth = req.headers.authorization ?? '';
  if (path === '/echo') {
    const out = echoBody(req, body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  } else if (path === '/bytes') {
    // The secret arrives one byte per write, each after a pause.
    const out = Buffer.from(`{"auth":${JSON.stringify(auth)},"raw":"${auth}"}`);
    res.writeHead(200, { 'content-type': 'application/json' });
    for (const byte of out) {
      res.write(Buffer.from([byte]));
      await sleep(1);
    }
    res.end();
  } else if (['/gzip', '/deflate', '/deflate-raw', '/br', '/zstd'].includes(path)) {
    const plain = Buffer.from(echoBody(req, body));
    const packers: Record<string, (b: Buffer) => Buffer> = {
      gzip: zlib.gzipSync,
      deflate: zlib.deflateSync,
      'deflate-raw': zlib.deflateRawSync,
      br: zlib.brotliCompressSync,
      zstd: (b) => b,
    };
    const packed = packers[path.slice(1)]!(plain);
    const enc = path === '/deflate-raw' ? 'deflate' : path.slice(1);
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': enc, 'content-length': packed.length });
    res.end(packed);
  } else if (path === '/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(`data: ${auth}\n\n`);
    releaseSse = () => res.end('data: last\n\n');
  } else if (path === '/headers') {
    res.writeHead(200, {
      'x-echo-auth': auth,
      'set-cookie': [`a=${encodeURIComponent(auth)}`, 'b=plain'],
      'content-type': 'text/plain',
    });
    res.end('ok');
  } else {
    res.writeHead(404);
    res.end();
  }
}

beforeAll(async () => {
  up = await startUpstream(handler);
  lk = await startLatchkey();
  const integration = (id: string, extra: object = {}) =>
    lk.admin.post('/v1/integrations', { integrationId: id, baseUrl: `${up.url}/base`, ...extra });
  await integration('bearer');
  await lk.admin.post('/v1/integrations/bearer/auth', { authType: 'BEARER_TOKEN', token: TOKEN });
  await integration('basic');
  await lk.admin.post('/v1/integrations/basic/auth', { authType: 'BASIC_AUTH', username: USER, password: PASS });
  await integration('hdrkey');
  await lk.admin.post('/v1/integrations/hdrkey/auth', { authType: 'API_KEY', apiKey: { key: 'X-Api-Key', value: HEADER_KEY } });
  await integration('qkey');
  await lk.admin.post('/v1/integrations/qkey/auth', { authType: 'API_KEY', apiKey: { key: 'api_key', value: QUERY_KEY, position: 'query' } });
  await integration('raw', { redactResponses: false });
  await lk.admin.post('/v1/integrations/raw/auth', { authType: 'BEARER_TOKEN', token: TOKEN });
});
afterAll(async () => {
  await up.close();
  await lk.close();
});

type Mode = 'path' | 'header' | 'forward';
function tagged(mode: Mode, id: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const method = body === undefined ? 'GET' : 'POST';
  if (mode === 'path') return call(`${lk.proxyUrl}/${id}${path}`, { method, body, headers: { 'x-latchkey-key': lk.adminKey, ...headers } });
  if (mode === 'header') {
    return call(`${lk.proxyUrl}${path}`, { method, body, headers: { 'x-latchkey-integration': id, 'x-latchkey-key': lk.adminKey, ...headers } });
  }
  return viaForwardProxy(lk.proxyUrl, `http://${up.host}/base${path}`, { method, body, headers: { 'proxy-authorization': basic(id, lk.adminKey), ...headers } });
}

describe('an echoing upstream returns no injected secret', () => {
  describe.each<Mode>(['path', 'header', 'forward'])('%s mode', (mode) => {
    it.each(['bearer', 'basic', 'hdrkey', 'qkey'])('%s: not raw, base64, base64url, percent-encoded or JSON-escaped', async (id) => {
      // The secret in the caller's own body comes back too (an upstream that repeats the request).
      const secrets = INJECTED[id]!;
      const res = await tagged(mode, id, '/echo?x=1', { 'content-type': 'text/plain' }, `body mentions ${secrets[0]!}`);
      expect(res.status).toBe(200);
      expect(allLeaks(res.text, secrets)).toEqual([]);
      expect(res.text).toContain('[REDACTED]');
      // Small body of known length: redacted whole, and its Content-Length is the new length.
      expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
      // The upstream did get the real credential.
      const seen = up.seen.at(-1)!;
      expect(JSON.stringify(seen.headers) + seen.url).toMatch(/Bearer |Basic |hk_live|api_key=/);
    });
  });

  it('the secret split over 1-byte writes', async () => {
    for (const id of ['bearer', 'basic']) {
      const res = await tagged('path', id, '/bytes');
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBeUndefined();
      expect(allLeaks(res.text, INJECTED[id])).toEqual([]);
      expect(res.text.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(2);
    }
  });

  it.each(['gzip', 'deflate', 'deflate-raw', 'br'])('%s bodies are decoded, redacted and sent decoded', async (enc) => {
    const res = await tagged('path', 'bearer', `/${enc}`, { 'accept-encoding': 'gzip, deflate, br, zstd;q=0.9, *' });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(res.headers['content-length']).toBeUndefined();
    const parsed = JSON.parse(res.text);
    expect(parsed.headers.authorization).toBe('Bearer [REDACTED]');
    expect(allLeaks(res.text)).toEqual([]);
    // Only codings latchkey can decode are asked for.
    expect(up.seen.at(-1)!.headers['accept-encoding']).toBe('gzip, deflate, br');
  });

  it('an encoding that cannot be decoded is refused, not passed on', async () => {
    const res = await tagged('path', 'bearer', '/zstd');
    expect(res.status).toBe(502);
    expect(res.json.error.code).toBe('RESPONSE_NOT_REDACTABLE');
    expect(allLeaks(res.text)).toEqual([]);
  });

  it('server-sent events still arrive while the upstream holds the stream open, redacted', async () => {
    const u = new URL(`${lk.proxyUrl}/bearer/sse`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, headers: { 'x-latchkey-key': lk.adminKey } });
    req.end();
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    expect(res.headers['content-type']).toBe('text/event-stream');
    let got = '';
    let gotEvent: () => void = () => undefined;
    const firstEvent = new Promise<void>((r) => (gotEvent = r));
    res.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\n\n')) gotEvent();
    });
    await firstEvent;
    expect(got).toBe('data: Bearer [REDACTED]\n\n');
    // Still open upstream: the event was forwarded before the stream ended.
    expect(releaseSse).not.toBeNull();
    releaseSse!();
    await once(res, 'end');
    expect(got).toBe('data: Bearer [REDACTED]\n\ndata: last\n\n');
  });

  it('response headers are redacted', async () => {
    const res = await tagged('path', 'bearer', '/headers');
    expect(res.status).toBe(200);
    expect(res.headers['x-echo-auth']).toBe('Bearer [REDACTED]');
    expect(res.headers['set-cookie']).toEqual([`a=${encodeURIComponent('Bearer ')}[REDACTED]`, 'b=plain']);
    expect(allLeaks(JSON.stringify(res.headers))).toEqual([]);
  });

  it('redactResponses: false passes the echo unchanged', async () => {
    expect((await lk.admin.get('/v1/integrations/raw')).json.redactResponses).toBe(false);
    expect((await lk.admin.get('/v1/integrations/bearer')).json.redactResponses).toBe(true);
    const res = await tagged('path', 'raw', '/echo', { 'accept-encoding': 'zstd' });
    expect(JSON.parse(res.text).headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(res.text).not.toContain('[REDACTED]');
    // The leak detector finds every form here, so its silence elsewhere means something.
    expect(leaks(res.text, TOKEN)).toEqual(expect.arrayContaining(['json', 'percent']));
    expect(leaks(res.text, TOKEN).filter((l) => l.startsWith('base64')).length).toBeGreaterThanOrEqual(3);
    expect(up.seen.at(-1)!.headers['accept-encoding']).toBe('zstd');
    // And PATCH turns it back on for the next call.
    expect((await lk.admin.patch('/v1/integrations/raw', { redactResponses: true })).json.redactResponses).toBe(true);
    expect(allLeaks((await tagged('path', 'raw', '/echo')).text)).toEqual([]);
    await lk.admin.patch('/v1/integrations/raw', { redactResponses: false });
  });
});

describe('redaction is counted and warned about', () => {
  it('the audit row and latchkey_redactions_total count redactions', async () => {
    const res = await tagged('path', 'hdrkey', '/headers', { 'x-request-id': 'redaction-count-1' });
    expect(res.status).toBe(200);
    const plain = await tagged('path', 'hdrkey', '/echo', { 'x-request-id': 'redaction-count-2' });
    expect(plain.status).toBe(200);
    const rows = (await lk.admin.get('/v1/audit?integrationId=hdrkey&limit=200')).json.data;
    const byId = (id: string) => rows.find((r: { requestId: string }) => r.requestId === id);
    expect(byId('redaction-count-1').redactions).toBe(0);
    // The echo repeats the header in the dump, the headers object, base64, base64url, shifted and percent forms.
    expect(byId('redaction-count-2').redactions).toBeGreaterThanOrEqual(6);
    const metrics = (await lk.admin.get('/metrics')).text;
    const line = metrics.split('\n').find((l) => l.startsWith('latchkey_redactions_total{integration="hdrkey"}'));
    expect(Number(line?.split(' ')[1])).toBeGreaterThanOrEqual(6);
  });

  it('a secret under 8 characters is stored with a warning and is not redacted', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'short', baseUrl: `${up.url}/base` });
    const created = await lk.admin.post('/v1/integrations/short/auth', { authType: 'BEARER_TOKEN', token: 'abc1234' });
    expect(created.status).toBe(201);
    expect(created.json.warnings).toEqual(['token is shorter than 8 characters: it is not redacted from responses']);
    expect(JSON.stringify(created.json)).not.toContain('abc1234');
    const res = await tagged('path', 'short', '/echo');
    expect(JSON.parse(res.text).headers.authorization).toBe('Bearer abc1234');
    const long = await lk.admin.post('/v1/integrations/short/auth', { authType: 'BEARER_TOKEN', token: 'long-enough-token' });
    expect(long.json.warnings).toBeUndefined();
  });
});
