/**
 * `latchkey run`: real commands (sh, curl, Python, a Node program with fetch,
 * http(s).request and axios) run unchanged, with a key of their own that is
 * refused once they exit.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledCli, runCli, serverEnv, startServer, type ServerProcess } from '../helpers/child.js';
import { makePki } from '../helpers/certs.js';
import { ensureLoopbackNames } from '../helpers/hosts.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { adminClient, basic, type AdminClient } from '../helpers/http.js';
import { newAdminKey } from '../helpers/latchkey.js';
import { tmpDir } from '../helpers/tmp.js';
import { rawConnect } from '../helpers/tunnel.js';

const HOST = 'api.connect-run.example';
const TOKEN = 'run-upstream-token-51c2';
const PYTHON = '/usr/bin/python3';

let dir: string;
let env: Record<string, string>;
let server: ServerProcess;
let up: Upstream;
let admin: AdminClient;
let url: string;

beforeAll(async () => {
  ensureLoopbackNames([HOST]);
  const pki = makePki([HOST]);
  dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { caFile: pki.caFile } }));
  const adminKey = newAdminKey();
  env = serverEnv(dir, { LATCHKEY_CONFIG: cfg, LATCHKEY_ADMIN_KEY: adminKey });
  server = await startServer(env);
  up = await startUpstream(undefined, pki);
  admin = adminClient(server.adminUrl, adminKey);
  // The test reads the upstream's view from its echo (redaction would hide the credential).
  await admin.post('/v1/integrations', { integrationId: 'api', baseUrl: `https://${HOST}:${up.port}`, redactResponses: false });
  await admin.post('/v1/integrations/api/auth', { authType: 'BEARER_TOKEN', token: TOKEN });
  url = `https://${HOST}:${up.port}/v1/run?q=1`;
});
afterAll(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
  await up?.close();
});

/** `latchkey run` against the running server (its proxy address is the configured one). */
const runEnv = (): Record<string, string> => ({ ...env, LATCHKEY_PROXY_ADDR: new URL(server.proxyUrl).host });

interface Echo {
  url: string;
  headers: Record<string, string>;
}

function expectInjected(echo: Echo, key?: string): void {
  expect(echo.headers.authorization).toBe(`Bearer ${TOKEN}`);
  expect(JSON.stringify(echo)).not.toContain('lk_');
  if (key) expect(JSON.stringify(echo)).not.toContain(key);
}

describe('latchkey run', () => {
  it('sh -c: the child has the variables, its exit code comes back, its key is refused after it exits', async () => {
    const script = [
      'echo "HTTPS_PROXY=$HTTPS_PROXY"',
      'for v in HTTP_PROXY http_proxy https_proxy NO_PROXY no_proxy SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO AWS_CA_BUNDLE NODE_EXTRA_CA_CERTS NODE_USE_ENV_PROXY NODE_OPTIONS; do eval "echo $v=\\$$v"; done',
      'grep -c "BEGIN CERTIFICATE" "$SSL_CERT_FILE"',
      'exit 7',
    ].join('; ');
    const r = await runCli(['run', '--integrations', 'api', '--ttl', '10m', '--', 'sh', '-c', script], runEnv());
    expect(r.code, r.stderr).toBe(7);
    const vars = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const proxy = new URL(vars.HTTPS_PROXY as string);
    expect(proxy.username).toBe('auto');
    expect(proxy.host).toBe(new URL(server.proxyUrl).host);
    const key = decodeURIComponent(proxy.password);
    expect(key).toMatch(/^lk_/);
    for (const v of ['HTTP_PROXY', 'http_proxy', 'https_proxy']) expect(vars[v]).toBe(vars.HTTPS_PROXY);
    expect(vars.NO_PROXY?.split(',')).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', '::1']));
    expect(vars.no_proxy).toBe(vars.NO_PROXY);
    for (const v of ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'AWS_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS']) {
      expect(vars[v]).toBe(vars.SSL_CERT_FILE);
    }
    expect(vars.NODE_USE_ENV_PROXY).toBe('1');
    expect(vars.NODE_OPTIONS).toMatch(/^--import file:\/\/.+\/run\/preload\.js$/);
    // System roots plus latchkey's CA.
    const certs = Number(r.stdout.trim().split('\n').find((l) => /^\d+$/.test(l)));
    expect(certs).toBeGreaterThan(10);
    // The key was never printed by latchkey itself.
    expect(r.stderr).not.toContain('lk_');
    const after = await rawConnect(server.proxyUrl, `${HOST}:${up.port}`, { 'proxy-authorization': basic('auto', key) });
    expect(after.status).toBe(407);
    expect(JSON.parse(after.body).error.code).toBe('INVALID_API_KEY');
    after.socket.destroy();
  });

  it('curl, Python requests and Python httpx run unchanged', async () => {
    const curl = await runCli(['run', '--', 'curl', '-sS', '--fail', url], runEnv());
    expect(curl.code, curl.stderr).toBe(0);
    expectInjected(JSON.parse(curl.stdout) as Echo);
    for (const lib of ['requests', 'httpx']) {
      const script = `import ${lib}, sys\nr = ${lib}.get(sys.argv[1])\nr.raise_for_status()\nprint(r.text)`;
      const r = await runCli(['run', '--', PYTHON, '-c', script, url], runEnv());
      expect(r.code, `${lib}: ${r.stderr}`).toBe(0);
      expectInjected(JSON.parse(r.stdout) as Echo);
    }
  });

  it('a Node program runs unchanged: fetch, https.request, http.request and axios', async () => {
    const axios = pathToFileURL(createRequire(import.meta.url).resolve('axios')).href;
    const program = join(dir, 'program.mjs');
    writeFileSync(
      program,
      [
        "import https from 'node:https';",
        "import http from 'node:http';",
        `import axios from ${JSON.stringify(axios)};`,
        'const url = process.argv[2];',
        'const read = (mod, u) => new Promise((resolve, reject) => {',
        "  mod.get(u, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(JSON.parse(b))); }).on('error', reject);",
        '});',
        'const out = {',
        '  fetch: await (await fetch(url)).json(),',
        '  https: await read(https, url),',
        // A plain http:// URL of the https integration: forward proxy, sent upstream over TLS.
        "  http: await read(http, url.replace('https://', 'http://')),",
        '  axios: (await axios.get(url)).data,',
        '};',
        'process.stdout.write(JSON.stringify(out));',
      ].join('\n'),
    );
    const r = await runCli(['run', '--', process.execPath, program, url], runEnv());
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, Echo>;
    for (const client of ['fetch', 'https', 'http', 'axios']) {
      expect(out[client], client).toBeDefined();
      expectInjected(out[client] as Echo);
      expect((out[client] as Echo).url).toBe('/v1/run?q=1');
    }
  });

  it('with no latchkey listening, it starts one in-process for the command', async () => {
    const r = await runCli(['run', '--', 'sh', '-c', `curl -sS --fail ${url}; exit 3`], { ...env, LATCHKEY_PROXY_ADDR: '127.0.0.1:0' });
    expect(r.code, r.stderr).toBe(3);
    expectInjected(JSON.parse(r.stdout) as Echo);
  });

  it('a signal to latchkey run reaches the command; its exit code comes back and its key is revoked', async () => {
    const child = spawn(
      process.execPath,
      [compiledCli(), 'run', '--', 'sh', '-c', 'trap "exit 42" TERM; echo "$HTTPS_PROXY"; while true; do sleep 0.1; done'],
      { env: { PATH: process.env.PATH ?? '', ...runEnv() } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    const printed = await Promise.race([
      new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))),
      closed.then((c) => Promise.reject(new Error(`latchkey run exited with ${c} before the command started: ${stderr}`))),
    ]);
    const key = decodeURIComponent(new URL(printed).password);
    child.kill('SIGTERM');
    const code = await closed;
    expect(code).toBe(42);
    const after = await rawConnect(server.proxyUrl, `${HOST}:${up.port}`, { 'proxy-authorization': basic('auto', key) });
    expect(after.status).toBe(407);
    after.socket.destroy();
  });

  it('refuses a bad ttl or an unknown option, and runs nothing', async () => {
    const r = await runCli(['run', '--ttl', 'forever', '--', 'sh', '-c', 'echo ran'], runEnv());
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('ran');
    expect(r.stderr).toContain('--ttl');
  });
});
