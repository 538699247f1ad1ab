/**
 * What a start no longer loads (the local CA and its X.509 code, the
 * WebSocket proxy, JWT, OAuth 2, the OpenAPI generator, the admin routes'
 * validators) is loaded by the first
 * call that needs it: each such first call after a start, in a real
 * `latchkey serve` process on a new database, answers as it always did.
 */
import http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverEnv, startServer, type ServerProcess } from '../helpers/child.js';
import { makePki } from '../helpers/certs.js';
import { ensureLoopbackNames } from '../helpers/hosts.js';
import { echo, startUpstream, type Upstream } from '../helpers/upstream.js';
import { adminClient, basic, call, type AdminClient, type Reply } from '../helpers/http.js';
import { newAdminKey } from '../helpers/latchkey.js';
import { tmpDir } from '../helpers/tmp.js';
import { rawConnect, rawRequest, tlsOver } from '../helpers/tunnel.js';
import { initSodium } from '../../src/crypto/seal.js';
import { Store } from '../../src/store/store.js';

const HOST = 'api.first-use.example';
const ORIGIN = 'https://widget.first-use.example';

let env: Record<string, string>;
let server: ServerProcess;
let admin: AdminClient;
let tlsUp: Upstream;
let webUp: Upstream;
/** An echo that is also an OAuth 2 token endpoint (client credentials). */
let oauthUp: Upstream;
let wsServer: http.Server;
const wsUpgrades: http.IncomingHttpHeaders[] = [];
let adminKey: string;
/** The very first request with a body this process validated: an invalid one. */
let firstInvalid: Reply;

const storedCa = async (): Promise<string | undefined> => {
  await initSodium();
  const store = Store.open({ dbPath: env.LATCHKEY_DB as string, masterKey: undefined, masterKeyFile: env.LATCHKEY_MASTER_KEY_FILE as string });
  try {
    return store.localCa.current()?.certPem;
  } finally {
    store.close();
  }
};

beforeAll(async () => {
  ensureLoopbackNames([HOST]);
  const pki = makePki([HOST]);
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { caFile: pki.caFile } }));
  adminKey = newAdminKey();
  env = serverEnv(dir, { LATCHKEY_CONFIG: cfg, LATCHKEY_ADMIN_KEY: adminKey, LATCHKEY_JWT_SECRET: 'first-use-jwt-secret-of-at-least-32-bytes' });
  tlsUp = await startUpstream(undefined, pki);
  webUp = await startUpstream();
  oauthUp = await startUpstream((req, res) => {
    if (req.url !== '/oauth/token') return echo(req, res);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: 'first-use-access-token', token_type: 'Bearer', expires_in: 3600 }));
  });
  wsServer = http.createServer();
  new WebSocketServer({ server: wsServer }).on('connection', (socket, req) => {
    wsUpgrades.push(req.headers);
    socket.on('message', (m: Buffer) => socket.send(`echo:${m.toString()}`));
  });
  await new Promise<void>((r) => wsServer.listen(0, '127.0.0.1', () => r()));
  server = await startServer(env);
  admin = adminClient(server.adminUrl, adminKey);
  firstInvalid = await admin.post('/v1/integrations', { integrationId: 'bad id!', baseUrl: webUp.url });
  const wsPort = (wsServer.address() as AddressInfo).port;
  for (const [integrationId, baseUrl] of [
    ['tls', `https://${HOST}:${tlsUp.port}`],
    ['sock', `http://127.0.0.1:${wsPort}`],
    ['web', webUp.url],
  ] as const) {
    // The upstream's echo shows what it received: redaction would hide the credential.
    expect((await admin.post('/v1/integrations', { integrationId, baseUrl, redactResponses: false })).status).toBe(201);
    expect((await admin.post(`/v1/integrations/${integrationId}/auth`, { authType: 'BEARER_TOKEN', token: `${integrationId}-token` })).status).toBe(201);
  }
  expect((await admin.post('/v1/integrations', { integrationId: 'oauth', baseUrl: oauthUp.url, redactResponses: false })).status).toBe(201);
  const oauth2 = { tokenUrl: `${oauthUp.url}/oauth/token`, clientId: 'first-use', clientSecret: 'first-use-secret' };
  expect((await admin.post('/v1/integrations/oauth/auth', { authType: 'OAUTH2_CLIENT_CREDENTIALS', oauth2 })).status).toBe(201);
});

afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
  await tlsUp?.close();
  await webUp?.close();
  await oauthUp?.close();
  wsServer?.closeAllConnections();
  wsServer?.close();
});

describe('the first use after a start', () => {
  it('of a route validator: the same coded 400 naming the field', () => {
    expect(firstInvalid.status).toBe(400);
    expect(firstInvalid.json.error.code).toBe('VALIDATION_ERROR');
    expect(JSON.stringify(firstInvalid.json.error.details)).toContain('integrationId');
  });

  it('of the local CA: made during the first start once it serves, with no call needing it; the first CONNECT uses it', async () => {
    let made: string | undefined;
    for (let i = 0; i < 200 && made === undefined; i++) {
      made = await storedCa();
      if (made === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(made).toMatch(/BEGIN CERTIFICATE/);
    const target = `${HOST}:${tlsUp.port}`;
    const tunnel = await rawConnect(server.proxyUrl, target, { 'proxy-authorization': basic('auto', adminKey) });
    expect(tunnel.status).toBe(200);
    // The client cannot know the CA yet: the chain is checked against /ca.pem below.
    const secure = await tlsOver(tunnel.socket, HOST, [], { rejectUnauthorized: false });
    const leaf = new X509Certificate(secure.getPeerCertificate().raw);
    const res = await rawRequest(secure, ['GET /who HTTP/1.1', `Host: ${target}`, 'Connection: close']);
    secure.destroy();
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body).headers.authorization).toBe('Bearer tls-token');
    const caPem = (await call(`${server.adminUrl}/ca.pem`)).text;
    expect(leaf.checkIssued(new X509Certificate(caPem))).toBe(true);
    expect(leaf.verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(caPem).toBe(made);
    expect(await storedCa()).toBe(caPem);
  });

  it('of the WebSocket proxy: the first upgrade is proxied with the credential', async () => {
    const ws = new WebSocket(`${server.proxyUrl.replace('http', 'ws')}/sock/chat`, { headers: { 'x-latchkey-key': adminKey } });
    await once(ws, 'open');
    ws.send('hello');
    const [msg] = (await once(ws, 'message')) as [Buffer];
    expect(msg.toString()).toBe('echo:hello');
    ws.close();
    expect(wsUpgrades).toHaveLength(1);
    expect(wsUpgrades[0]?.authorization).toBe('Bearer sock-token');
  });

  it('of OAuth 2: the first call of a client-credentials integration gets a token and carries it', async () => {
    const res = await call(`${server.proxyUrl}/oauth/items`, { headers: { 'x-latchkey-key': adminKey } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text).headers.authorization).toBe('Bearer first-use-access-token');
    expect(oauthUp.seen.filter((r) => r.url === '/oauth/token')).toHaveLength(1);
  });

  it('of the API description: the first GET /openapi.json is the whole document, the same at the second', async () => {
    const [first, second] = [await call(`${server.adminUrl}/openapi.json`), await call(`${server.adminUrl}/openapi.json`)];
    expect(first.status).toBe(200);
    expect(first.json.openapi).toBe('3.1.0');
    expect(Object.keys(first.json.paths)).toEqual(expect.arrayContaining(['/v1/integrations', '/v1/integrations/{integrationId}', '/readyz']));
    expect(second.text).toBe(first.text);
  });

  it('of the metrics library: /metrics has the process metrics and every call made before it was loaded', async () => {
    const res = await call(`${server.adminUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.text).toContain('latchkey_process_cpu_seconds_total');
    expect(res.text).toContain('latchkey_nodejs_eventloop_lag_seconds');
    expect(res.text).toMatch(/latchkey_admin_requests_total\{method="POST",route="\/v1\/integrations",status_class="2xx"\} \d+/);
    expect(res.text).toContain('latchkey_leaf_certificates_minted_total');
  });

  it('of widget tokens: the first one is minted and accepted from its origin', async () => {
    const minted = await admin.post('/v1/tokens', { integrations: ['web'], origins: [ORIGIN], ttlSeconds: 120 });
    expect(minted.status).toBe(201);
    const res = await call(`${server.proxyUrl}/web/hello`, { headers: { 'x-latchkey-key': minted.json.token, origin: ORIGIN } });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(webUp.seen.at(-1)?.headers.authorization).toBe('Bearer web-token');
  });
});
