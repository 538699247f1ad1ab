import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { makePki } from '../helpers/certs.js';
import { call } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';

let lk: TestLatchkey;
let healthy: Upstream;
let badCert: Upstream;
let silent: net.Server;
let silentPort: number;
let closedPort: number;
let dies: Upstream;

beforeAll(async () => {
  const pki = makePki();
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { caFile: pki.caFile, headersTimeoutMs: 300, connectTimeoutMs: 2000 } }));
  lk = await startLatchkey({ LATCHKEY_CONFIG: cfg }, dir);
  healthy = await startUpstream();
  badCert = await startUpstream(undefined, pki.selfSigned);
  // Accepts connections and never answers.
  silent = net.createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  silentPort = (silent.address() as net.AddressInfo).port;
  // A port that was just free: connecting is refused.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));

  const add = async (id: string, baseUrl: string) => {
    await lk.admin.post('/v1/integrations', { integrationId: id, baseUrl });
    await lk.admin.post(`/v1/integrations/${id}/auth`, { authType: 'BEARER_TOKEN', token: `${id}-token` });
  };
  await add('healthy', healthy.url);
  await add('refused', `http://127.0.0.1:${closedPort}`);
  await add('silent', `http://127.0.0.1:${silentPort}`);
  await add('badcert', `https://localhost:${badCert.port}`);
  await add('nodns', 'https://does-not-exist.invalid');
  dies = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000000' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  await add('dies', dies.url);
});
afterAll(async () => {
  silent.close();
  await Promise.all([healthy.close(), badCert.close(), dies.close()]);
  await lk.close();
});

const go = (id: string) => call(`${lk.proxyUrl}/${id}/x`, { headers: { 'x-latchkey-key': lk.adminKey } });

describe('upstream failures get the proxy’s own error', () => {
  it.each([
    ['refused', 502, 'UPSTREAM_UNREACHABLE', /connection refused/],
    ['silent', 504, 'UPSTREAM_TIMEOUT', /timed out/],
    ['badcert', 502, 'UPSTREAM_UNREACHABLE', /TLS/],
    ['nodns', 502, 'UPSTREAM_UNREACHABLE', /DNS/],
  ])('%s: %i %s', async (id, status, code, message) => {
    const res = await go(id);
    expect(res.status).toBe(status);
    expect(res.json.error.code).toBe(code);
    expect(res.json.error.message).toMatch(message);
    expect(res.headers['x-latchkey-error']).toBe(code);
    expect(res.text).not.toContain(`${id}-token`);
    // And the proxy keeps serving.
    expect((await go('healthy')).status).toBe(200);
  });
});

describe('an upstream that dies after its headers', () => {
  it('cuts the client connection (no silent truncation) and the proxy keeps serving', async () => {
    await expect(go('dies')).rejects.toThrow();
    expect((await go('healthy')).status).toBe(200);
  });
});
