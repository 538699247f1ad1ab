/**
 * Real, unmodified clients through HTTPS_PROXY against a real HTTPS upstream:
 * each sees latchkey's leaf certificate, each call gets the injected
 * credential, and the upstream never sees the latchkey key.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { agentKey, metric, startConnectFixture, UPSTREAM_TOKEN, type ConnectFixture } from '../helpers/connect-fixture.js';
import { run } from '../helpers/exec.js';
import { call } from '../helpers/http.js';

/** Debian's python, where the python3-requests and python3-httpx packages install (CI: .ci/run). */
const PYTHON = '/usr/bin/python3';

let fx: ConnectFixture;
let key: string;
let url: string;
let proxyEnv: Record<string, string>;

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

beforeAll(async () => {
  fx = await startConnectFixture(['api.connect-clients.example']);
  key = await agentKey(fx.lk, ['api']);
  url = `https://${fx.target}/v1/items?page=2`;
  proxyEnv = { HTTPS_PROXY: `http://auto:${key}@${fx.proxyHostPort}` };
});
afterAll(async () => fx?.close());

/** The upstream got exactly the injected credential and nothing of the latchkey key. */
function expectInjected(echo: Echo): void {
  expect(echo.url).toBe('/v1/items?page=2');
  expect(echo.headers.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
  expect(echo.headers['proxy-authorization']).toBeUndefined();
  expect(JSON.stringify(echo)).not.toContain(key);
  expect(JSON.stringify(echo)).not.toContain('lk_');
}

const lastSeen = (): string => JSON.stringify(fx.up.seen[fx.up.seen.length - 1]);

describe('real clients through HTTPS_PROXY', () => {
  it('curl (CURL_CA_BUNDLE)', async () => {
    const r = await run('curl', ['-sS', '--fail', url], { ...proxyEnv, CURL_CA_BUNDLE: fx.caFile });
    expect(r.stderr).toBe('');
    expectInjected(JSON.parse(r.stdout) as Echo);
    expect(lastSeen()).not.toContain(key);
  });

  it('curl sending the latchkey key as its own credential (`Authorization: token lk_…`): removed, replaced', async () => {
    const r = await run('curl', ['-sS', '--fail', '-H', `Authorization: token ${key}`, url], { ...proxyEnv, CURL_CA_BUNDLE: fx.caFile });
    expectInjected(JSON.parse(r.stdout) as Echo);
  });

  it('curl with a POST body', async () => {
    const r = await run('curl', ['-sS', '--fail', '-X', 'POST', '-H', 'content-type: application/json', '-d', '{"a":1}', url], {
      ...proxyEnv,
      CURL_CA_BUNDLE: fx.caFile,
    });
    const echo = JSON.parse(r.stdout) as Echo;
    expectInjected(echo);
    expect(echo.method).toBe('POST');
    expect(echo.body).toBe('{"a":1}');
  });

  it('Python requests (REQUESTS_CA_BUNDLE)', async () => {
    const script = 'import requests, sys\nr = requests.get(sys.argv[1])\nr.raise_for_status()\nprint(r.text)';
    const r = await run(PYTHON, ['-c', script, url], { ...proxyEnv, REQUESTS_CA_BUNDLE: fx.caFile });
    expect(r.code, r.stderr).toBe(0);
    expectInjected(JSON.parse(r.stdout) as Echo);
  });

  it('Python httpx (SSL_CERT_FILE)', async () => {
    const script = 'import httpx, sys\nr = httpx.get(sys.argv[1])\nr.raise_for_status()\nprint(r.text)';
    const r = await run(PYTHON, ['-c', script, url], { ...proxyEnv, SSL_CERT_FILE: fx.caFile });
    expect(r.code, r.stderr).toBe(0);
    expectInjected(JSON.parse(r.stdout) as Echo);
  });

  it("Node with undici's EnvHttpProxyAgent (a separate process, NODE_EXTRA_CA_CERTS)", async () => {
    const undici = pathToFileURL(createRequire(import.meta.url).resolve('undici')).href;
    const file = join(fx.lk.dir, 'env-proxy-client.mjs');
    writeFileSync(
      file,
      `import { EnvHttpProxyAgent, request } from ${JSON.stringify(undici)};\n` +
        'const dispatcher = new EnvHttpProxyAgent();\n' +
        'const res = await request(process.argv[2], { dispatcher });\n' +
        'process.stdout.write(await res.body.text());\n' +
        'await dispatcher.close();\n',
    );
    const r = await run(process.execPath, [file, url], { ...proxyEnv, NODE_EXTRA_CA_CERTS: fx.caFile });
    expect(r.code, r.stderr).toBe(0);
    expectInjected(JSON.parse(r.stdout) as Echo);
  });
});

describe('inside one tunnel', () => {
  it('many requests share one kept-alive tunnel, each injected, each audited and logged as mode connect', async () => {
    const tunnelsBefore = await metric(fx.lk, 'latchkey_tunnels_total', '{kind="intercept"}');
    const dispatcher = new ProxyAgent({
      uri: `http://${fx.proxyHostPort}`,
      token: `Basic ${Buffer.from(`auto:${key}`).toString('base64')}`,
      requestTls: { ca: fx.caPem },
      connections: 1,
    });
    try {
      for (let i = 0; i < 20; i++) {
        const res = await request(`https://${fx.target}/v1/items?page=2`, { dispatcher, headers: { 'x-request-id': `tunnel-call-${i}` } });
        expect(res.statusCode).toBe(200);
        expectInjected((await res.body.json()) as Echo);
      }
    } finally {
      await dispatcher.close();
    }
    expect(await metric(fx.lk, 'latchkey_tunnels_total', '{kind="intercept"}')).toBe(tunnelsBefore + 1);
    const audit = await fx.lk.admin.get('/v1/audit?integrationId=api&limit=200');
    const rows = (audit.json.data as Array<Record<string, unknown>>).filter((r) => String(r.requestId).startsWith('tunnel-call-'));
    expect(rows).toHaveLength(20);
    for (const row of rows) {
      expect(row).toMatchObject({ action: 'proxy.call', mode: 'connect', method: 'GET', host: fx.host, status: 200, path: '/v1/items?page=[redacted]' });
    }
    const line = fx.lk
      .logs()
      .split('\n')
      .find((l) => l.includes('"requestId":"tunnel-call-3"') && l.includes('"msg":"proxy call"'));
    expect(JSON.parse(line as string)).toMatchObject({ mode: 'connect', integrationId: 'api', status: 200 });
    expect(fx.lk.logs()).not.toContain(key);
    expect(fx.lk.logs()).not.toContain(UPSTREAM_TOKEN);
  });

  it('the CA certificate is served on the admin listener without a credential', async () => {
    const res = await call(`${fx.lk.adminUrl}/ca.pem`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-pem-file');
    expect(res.text).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    expect(res.text).not.toContain('PRIVATE KEY');
  });
});
