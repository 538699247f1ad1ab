/**
 * The local CA across restarts, rotation and master-key rotation, and proof
 * that its private key never reaches the disk in the clear.
 */
import { createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, serverEnv, startServer, type ServerProcess } from '../helpers/child.js';
import { makePki } from '../helpers/certs.js';
import { ensureLoopbackNames } from '../helpers/hosts.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { adminClient, call } from '../helpers/http.js';
import { newAdminKey } from '../helpers/latchkey.js';
import { tmpDir } from '../helpers/tmp.js';
import { run } from '../helpers/exec.js';
import { initSodium } from '../../src/crypto/seal.js';
import { Store } from '../../src/store/store.js';

const HOST = 'api.connect-ca.example';
const TOKEN = 'ca-test-upstream-token';

let dir: string;
let env: Record<string, string>;
let server: ServerProcess | null = null;
let up: Upstream;
let adminKey: string;

const start = async (): Promise<ServerProcess> => {
  server = await startServer(env);
  return server;
};
const stop = async (): Promise<void> => {
  if (!server) return;
  server.child.kill('SIGTERM');
  await server.exited;
  server = null;
};
const caPem = async (): Promise<string> => (await call(`${(server as ServerProcess).adminUrl}/ca.pem`)).text;

/** curl through the running latchkey, trusting only `caFile`: its exit code and output. */
async function curlTrusting(ca: string): Promise<{ code: number; stdout: string }> {
  const file = join(dir, `trust-${Date.now()}-${Math.random()}.pem`);
  writeFileSync(file, ca);
  const proxy = new URL((server as ServerProcess).proxyUrl).host;
  return run('curl', ['-sS', '--fail', '--cacert', file, `https://${HOST}:${up.port}/who`], {
    HTTPS_PROXY: `http://auto:${adminKey}@${proxy}`,
  });
}

beforeAll(async () => {
  ensureLoopbackNames([HOST]);
  const pki = makePki([HOST]);
  dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { caFile: pki.caFile } }));
  adminKey = newAdminKey();
  env = serverEnv(dir, { LATCHKEY_CONFIG: cfg, LATCHKEY_ADMIN_KEY: adminKey });
  up = await startUpstream(undefined, pki);
  await start();
  const admin = adminClient((server as ServerProcess).adminUrl, adminKey);
  // The test reads the upstream's view from its echo (redaction would hide the credential).
  await admin.post('/v1/integrations', { integrationId: 'api', baseUrl: `https://${HOST}:${up.port}`, redactResponses: false });
  await admin.post('/v1/integrations/api/auth', { authType: 'BEARER_TOKEN', token: TOKEN });
});
afterAll(async () => {
  await stop();
  await up?.close();
});

describe('local CA', () => {
  it('is made on first start, printed by `latchkey ca print`, and survives a restart', async () => {
    const first = await caPem();
    expect(first).toContain('-----BEGIN CERTIFICATE-----');
    const printed = await runCli(['ca', 'print'], env);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(first);
    const ok = await curlTrusting(first);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).headers.authorization).toBe(`Bearer ${TOKEN}`);
    await stop();
    await start();
    expect(await caPem()).toBe(first);
    expect((await curlTrusting(first)).code).toBe(0);
  });

  it('its private key is nowhere on disk in plaintext (database, WAL, any file) nor in the logs', async () => {
    await initSodium();
    const store = Store.open({ dbPath: env.LATCHKEY_DB as string, masterKey: undefined, masterKeyFile: env.LATCHKEY_MASTER_KEY_FILE as string });
    const opened = store.localCa.openPrivateKey();
    store.close();
    expect(opened).toBeDefined();
    const der = (opened as { pkcs8: Buffer }).pkcs8;
    const d = Buffer.from(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }).d as string, 'base64url');
    expect(d.length).toBe(32);
    const needles = [der, d, Buffer.from(der.toString('base64')), Buffer.from(d.toString('base64')), Buffer.from(d.toString('base64url')), Buffer.from(d.toString('hex'))];
    const files = readdirSync(dir).filter((f) => !f.endsWith('.pem'));
    expect(files).toEqual(expect.arrayContaining(['latchkey.db']));
    for (const f of files) {
      const bytes = readFileSync(join(dir, f));
      for (const n of needles) expect(bytes.includes(n), `${f} holds the CA key`).toBe(false);
    }
    const logs = Buffer.from((server as ServerProcess).output());
    for (const n of needles) expect(logs.includes(n)).toBe(false);
  });

  it('`latchkey ca rotate`: clients trusting only the old CA fail, the new one works, without a restart', async () => {
    const old = await caPem();
    const rotated = await runCli(['ca', 'rotate'], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ rotated: expect.stringMatching(/^ca_/) });
    const fresh = await caPem();
    expect(fresh).not.toBe(old);
    const refused = await curlTrusting(old);
    expect(refused.code).toBe(60); // curl: peer certificate cannot be authenticated with known CA certificates
    const ok = await curlTrusting(fresh);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('rotate-master-key re-wraps the CA key: after a restart under the new key the same CA signs tunnels', async () => {
    const before = await caPem();
    await stop();
    const rotated = await runCli(['rotate-master-key', '--new-key-file', join(dir, 'new-master.key')], env);
    expect(rotated.code, rotated.stderr).toBe(0);
    await start();
    expect(await caPem()).toBe(before);
    const ok = await curlTrusting(before);
    expect(ok.code).toBe(0);
  });
});
