/**
 * What a CONNECT may not do: every refusal comes before anything is dialled
 * or any certificate minted, and inside a tunnel the request must be for the
 * tunnel's host.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentKey, metric, startConnectFixture, UPSTREAM_TOKEN, type ConnectFixture } from '../helpers/connect-fixture.js';
import { rawConnect, rawRequest, tlsOver } from '../helpers/tunnel.js';
import { basic } from '../helpers/http.js';

const API = 'api.connect-refusals.example';
const DUP = 'dup.connect-refusals.example';
const ATTACKER = 'attacker.connect-refusals.example';
const PASS = 'pass.connect-refusals.example';
const FRESH = 'fresh.connect-refusals.example';

let fx: ConnectFixture;
let key: string;
let attacker: net.Server;
let attackerConnections = 0;
let echo: net.Server;
const echoed: Buffer[] = [];

const listen = async (server: net.Server): Promise<number> => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as net.AddressInfo).port;
};

let attackerPort = 0;
let echoPort = 0;

beforeAll(async () => {
  attacker = net.createServer((s) => {
    attackerConnections++;
    s.destroy();
  });
  attackerPort = await listen(attacker);
  // The passthrough upstream speaks no TLS at all: it echoes raw bytes, so an interception would show.
  echo = net.createServer((s) => s.on('data', (d: Buffer) => {
    echoed.push(d);
    s.write(d);
  }));
  echoPort = await listen(echo);
  fx = await startConnectFixture([API, DUP, ATTACKER, PASS, FRESH], { config: { passthroughHosts: [`${PASS}:${echoPort}`] } });
  key = await agentKey(fx.lk);
  for (const id of ['dup1', 'dup2']) {
    await fx.lk.admin.post('/v1/integrations', { integrationId: id, baseUrl: `https://${DUP}:${fx.up.port}`, redactResponses: false });
    await fx.lk.admin.post(`/v1/integrations/${id}/auth`, { authType: 'BEARER_TOKEN', token: `${id}-token` });
  }
  await fx.lk.admin.post('/v1/integrations', { integrationId: 'fresh', baseUrl: `https://${FRESH}:${fx.up.port}`, redactResponses: false });
  await fx.lk.admin.post('/v1/integrations/fresh/auth', { authType: 'BEARER_TOKEN', token: 'fresh-token' });
});
afterAll(async () => {
  attacker?.close();
  echo?.close();
  await fx?.close();
});

const auth = (user = 'auto', k = key) => ({ 'proxy-authorization': basic(user, k) });
const leaves = () => metric(fx.lk, 'latchkey_leaf_certificates_minted_total');

describe('CONNECT refusals', () => {
  it('no credential: 407 with the Basic challenge, before the target is even looked at', async () => {
    for (const target of [fx.target, API]) {
      const r = await rawConnect(fx.lk.proxyUrl, target);
      expect(r.status).toBe(407);
      expect(r.headers['proxy-authenticate']).toBe('Basic realm="latchkey"');
      expect(r.headers['x-latchkey-error']).toBe('PROXY_AUTH_REQUIRED');
      r.socket.destroy();
    }
  });

  it('a bad, revoked or expired key: 407 INVALID_API_KEY', async () => {
    const revoked = await fx.lk.admin.post('/v1/api-keys', { name: 'gone', role: 'agent', integrations: ['*'] });
    await fx.lk.admin.delete(`/v1/api-keys/${revoked.json.keyId as string}`);
    for (const k of [`lk_${'0'.repeat(43)}`, revoked.json.key as string]) {
      const r = await rawConnect(fx.lk.proxyUrl, fx.target, auth('auto', k));
      expect(r.status).toBe(407);
      expect(r.headers['proxy-authenticate']).toBe('Basic realm="latchkey"');
      expect(JSON.parse(r.body).error.code).toBe('INVALID_API_KEY');
      r.socket.destroy();
    }
  });

  it('a target that is not host:port: 400 INVALID_TARGET', async () => {
    for (const target of [API, `https://${fx.target}/`, `user@${fx.target}`, `${API}:0`, '[::zz]:443']) {
      const r = await rawConnect(fx.lk.proxyUrl, target, auth());
      expect(r.status, target).toBe(400);
      expect(r.headers['x-latchkey-error']).toBe('INVALID_TARGET');
      r.socket.destroy();
    }
  });

  it('a host no integration allows: 403, no byte reaches it, no certificate is minted; the refusal is audited', async () => {
    const before = await leaves();
    for (const user of ['auto', '', 'api']) {
      const r = await rawConnect(fx.lk.proxyUrl, `${ATTACKER}:${attackerPort}`, auth(user));
      expect(r.status, user).toBe(403);
      expect(JSON.parse(r.body).error.code).toBe('HOST_NOT_ALLOWED');
      r.socket.destroy();
    }
    expect(attackerConnections).toBe(0);
    expect(await leaves()).toBe(before);
    const audit = await fx.lk.admin.get('/v1/audit?limit=50');
    const row = (audit.json.data as Array<Record<string, unknown>>).find((r) => r.method === 'CONNECT' && r.status === 403);
    expect(row).toMatchObject({ action: 'proxy.call', mode: 'connect' });
  });

  it('an unknown integration named as the user: 404; one the key may not use: 403', async () => {
    const unknown = await rawConnect(fx.lk.proxyUrl, fx.target, auth('nope'));
    expect(unknown.status).toBe(404);
    expect(unknown.headers['x-latchkey-error']).toBe('UNKNOWN_INTEGRATION');
    unknown.socket.destroy();
    const scoped = await agentKey(fx.lk, ['fresh']);
    const denied = await rawConnect(fx.lk.proxyUrl, fx.target, auth('api', scoped));
    expect(denied.status).toBe(403);
    expect(denied.headers['x-latchkey-error']).toBe('INTEGRATION_NOT_ALLOWED');
    denied.socket.destroy();
    // For that key, auto finds no usable integration for the host.
    const auto = await rawConnect(fx.lk.proxyUrl, fx.target, auth('auto', scoped));
    expect(auto.status).toBe(403);
    expect(auto.headers['x-latchkey-error']).toBe('HOST_NOT_ALLOWED');
    auto.socket.destroy();
  });

  it('a host two usable integrations allow: 409 AMBIGUOUS_INTEGRATION; naming one, or a key scoped to one, works', async () => {
    const target = `${DUP}:${fx.up.port}`;
    const r = await rawConnect(fx.lk.proxyUrl, target, auth());
    expect(r.status).toBe(409);
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'AMBIGUOUS_INTEGRATION' });
    expect(JSON.parse(r.body).error.message).toContain('dup1, dup2');
    r.socket.destroy();
    const scoped = await agentKey(fx.lk, ['dup2']);
    for (const [user, k, token] of [['dup1', key, 'dup1-token'], ['auto', scoped, 'dup2-token']] as const) {
      const ok = await rawConnect(fx.lk.proxyUrl, target, auth(user, k));
      expect(ok.status).toBe(200);
      const secure = await tlsOver(ok.socket, DUP, fx.caPem);
      const res = await rawRequest(secure, ['GET /who HTTP/1.1', `Host: ${target}`, 'Connection: close']);
      expect(JSON.parse(res.body).headers.authorization).toBe(`Bearer ${token}`);
      secure.destroy();
    }
  });
});

describe('inside an intercepted tunnel', () => {
  it('the TLS handshake is refused by latchkey when the SNI is another host, or missing', async () => {
    const refusedBefore = fx.lk.logs().split('tunnel TLS handshake refused').length;
    for (const sni of [ATTACKER, '']) {
      const r = await rawConnect(fx.lk.proxyUrl, fx.target, auth());
      expect(r.status).toBe(200);
      // The client accepts any certificate here: only latchkey's refusal can fail the handshake.
      await expect(tlsOver(r.socket, sni, fx.caPem, { rejectUnauthorized: false })).rejects.toThrow(/alert|handshake|socket/i);
      r.socket.destroy();
    }
    expect(fx.lk.logs().split('tunnel TLS handshake refused').length).toBe(refusedBefore + 2);
    // The same client with the right SNI gets through.
    const r = await rawConnect(fx.lk.proxyUrl, fx.target, auth());
    const secure = await tlsOver(r.socket, API, fx.caPem, { rejectUnauthorized: false });
    expect(secure.alpnProtocol).toBe('http/1.1');
    secure.destroy();
  });

  it('a Host other than the CONNECT target: 421 MISDIRECTED_REQUEST and nothing is sent upstream', async () => {
    const before = fx.up.seen.length;
    const r = await rawConnect(fx.lk.proxyUrl, fx.target, auth());
    const secure = await tlsOver(r.socket, API, fx.caPem);
    for (const host of [`${ATTACKER}:${fx.up.port}`, API, `${API}:1`]) {
      const res = await rawRequest(secure, ['GET /x HTTP/1.1', `Host: ${host}`]);
      expect(res.status, host).toBe(421);
      expect(res.head).toContain('x-latchkey-error: MISDIRECTED_REQUEST');
    }
    // The same tunnel still serves a request that is for its host.
    const ok = await rawRequest(secure, ['GET /x HTTP/1.1', `Host: ${fx.target}`, 'Connection: close']);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).headers.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
    expect(fx.up.seen.length).toBe(before + 1);
    secure.destroy();
  });

  it('the key is checked on every request: revoking it ends a kept-alive tunnel’s use at once', async () => {
    const made = await fx.lk.admin.post('/v1/api-keys', { name: 'short', role: 'agent', integrations: ['*'] });
    const r = await rawConnect(fx.lk.proxyUrl, fx.target, auth('auto', made.json.key as string));
    const secure = await tlsOver(r.socket, API, fx.caPem);
    const first = await rawRequest(secure, ['GET /x HTTP/1.1', `Host: ${fx.target}`]);
    expect(first.status).toBe(200);
    await fx.lk.admin.delete(`/v1/api-keys/${made.json.keyId as string}`);
    const after = await rawRequest(secure, ['GET /x HTTP/1.1', `Host: ${fx.target}`]);
    expect(after.status).toBe(407);
    expect(after.head).toContain('x-latchkey-error: INVALID_API_KEY');
    secure.destroy();
  });

  it('50 concurrent first connections to a new host mint one leaf certificate', async () => {
    const before = await leaves();
    const target = `${FRESH}:${fx.up.port}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const r = await rawConnect(fx.lk.proxyUrl, target, auth());
        const secure = await tlsOver(r.socket, FRESH, fx.caPem);
        const res = await rawRequest(secure, ['GET /c HTTP/1.1', `Host: ${target}`, 'Connection: close']);
        secure.destroy();
        return JSON.parse(res.body).headers.authorization as string;
      }),
    );
    expect(results.every((a) => a === 'Bearer fresh-token')).toBe(true);
    expect(await leaves()).toBe(before + 1);
  });
});

describe('passthrough hosts', () => {
  it('bytes pass untouched (no interception, no credential) and the tunnel is audited as proxy.tunnel', async () => {
    const before = await leaves();
    const r = await rawConnect(fx.lk.proxyUrl, `${PASS}:${echoPort}`, auth());
    expect(r.status).toBe(200);
    const payload = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, ...Buffer.from('not TLS, not HTTP')]);
    const back = await new Promise<Buffer>((resolve) => {
      let got = Buffer.alloc(0);
      r.socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.length >= payload.length) resolve(got);
      });
      r.socket.write(payload);
    });
    expect(back.equals(payload)).toBe(true);
    expect(Buffer.concat(echoed).equals(payload)).toBe(true);
    r.socket.end();
    await new Promise((res) => r.socket.once('close', res));
    expect(await leaves()).toBe(before);
    expect(await metric(fx.lk, 'latchkey_tunnels_total', '{kind="passthrough"}')).toBe(1);
    let row: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !row; i++) {
      const audit = await fx.lk.admin.get('/v1/audit?limit=20');
      row = (audit.json.data as Array<Record<string, unknown>>).find((x) => x.action === 'proxy.tunnel');
      if (!row) await new Promise((res) => setTimeout(res, 50));
    }
    expect(row).toMatchObject({ action: 'proxy.tunnel', method: 'CONNECT', host: PASS, status: 200, mode: 'connect', integrationId: null });
  });

  it('a passthrough host still needs a key', async () => {
    const r = await rawConnect(fx.lk.proxyUrl, `${PASS}:${echoPort}`);
    expect(r.status).toBe(407);
    r.socket.destroy();
  });
});
