import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, newAdminKey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, echo, type Upstream } from '../helpers/upstream.js';
import { serverEnv, startServer } from '../helpers/child.js';
import { adminClient, call } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { Store } from '../../src/store/store.js';

let up: Upstream;
beforeAll(async () => {
  up = await startUpstream((req, res) => {
    if (req.url?.startsWith('/slow')) setTimeout(() => echo(req, res), 600);
    else echo(req, res);
  });
});
afterAll(async () => {
  await up.close();
});

describe('writes from another process', () => {
  let lk: TestLatchkey;
  afterAll(async () => {
    await lk.close();
  });

  it('a token changed through another connection to the database is used by the very next call', async () => {
    lk = await startLatchkey();
    await lk.admin.post('/v1/integrations', { integrationId: 'x', baseUrl: up.url });
    const { authId } = (await lk.admin.post('/v1/integrations/x/auth', { authType: 'BEARER_TOKEN', token: 'one' })).json;
    const get = () => call(`${lk.proxyUrl}/x/`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect((await get()).json.headers.authorization).toBe('Bearer one');

    // A second process would hold its own connection: so does this Store.
    const other = Store.open({ dbPath: lk.dbPath, masterKey: undefined, masterKeyFile: join(lk.dir, 'master.key') });
    other.authRecords.update('x', authId, [], null, { token: 'two' });
    other.close();
    expect((await get()).json.headers.authorization).toBe('Bearer two');
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM lets an in-flight call finish, then exits 0', async () => {
    const dir = tmpDir();
    const key = newAdminKey();
    const server = await startServer(serverEnv(dir.path, { LATCHKEY_ADMIN_KEY: key }));
    const admin = adminClient(server.adminUrl, key);
    await admin.post('/v1/integrations', { integrationId: 's', baseUrl: up.url });
    await admin.post('/v1/integrations/s/auth', { authType: 'BEARER_TOKEN', token: 't' });
    const inflight = call(`${server.proxyUrl}/s/slow`, { headers: { 'x-latchkey-key': key } });
    await new Promise((r) => setTimeout(r, 150));
    server.child.kill('SIGTERM');
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.json.headers.authorization).toBe('Bearer t');
    expect(await server.exited).toBe(0);
    expect(server.output()).toContain('"msg":"stopped"');
    // The call's audit row was written before the process left.
    const env = serverEnv(dir.path);
    const store = Store.open({ dbPath: env.LATCHKEY_DB as string, masterKey: undefined, masterKeyFile: env.LATCHKEY_MASTER_KEY_FILE as string });
    const rows = store.audit.list({ limit: 10, after: null }).data.filter((r) => r.action === 'proxy.call');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ integrationId: 's', status: 200, path: '/slow' });
    store.close();
    dir.cleanup();
  });
});

describe('a log reader that stops reading', () => {
  it.each(['json', 'pretty'])('does not stop the proxy (logFormat %s): lines are buffered (then dropped), calls go on', async (format) => {
    const dir = tmpDir();
    const key = newAdminKey();
    const server = await startServer(serverEnv(dir.path, { LATCHKEY_ADMIN_KEY: key, LATCHKEY_LOG_FORMAT: format }));
    const admin = adminClient(server.adminUrl, key);
    await admin.post('/v1/integrations', { integrationId: 'chatty', baseUrl: up.url });
    await admin.post('/v1/integrations/chatty/auth', { authType: 'BEARER_TOKEN', token: 't' });
    server.stopReading();
    // 2,000 log lines are far more than a pipe holds (64 KiB).
    let ok = 0;
    for (let batch = 0; batch < 50; batch++) {
      const results = await Promise.all(
        Array.from({ length: 40 }, () => call(`${server.proxyUrl}/chatty/x`, { headers: { 'x-latchkey-key': key } })),
      );
      ok += results.filter((r) => r.status === 200).length;
    }
    expect(ok).toBe(2000);
    server.child.kill('SIGKILL');
    await server.exited;
    dir.cleanup();
  });
});

describe('proxy.clientAuth', () => {
  it('"none" on a loopback listener: calls need no key, and an lk_ value is still never forwarded', async () => {
    const dir = tmpDir();
    const { writeFileSync } = await import('node:fs');
    const cfg = join(dir.path, 'config.json');
    writeFileSync(cfg, JSON.stringify({ proxy: { clientAuth: 'none' } }));
    const lk = await startLatchkey({ LATCHKEY_CONFIG: cfg }, dir.path);
    // The echo is read as the upstream's view: redaction (tested on its own) would hide the token.
    await lk.admin.post('/v1/integrations', { integrationId: 'open', baseUrl: up.url, redactResponses: false });
    await lk.admin.post('/v1/integrations/open/auth', { authType: 'BEARER_TOKEN', token: 'open-token' });
    const anonymous = await call(`${lk.proxyUrl}/open/x`);
    expect(anonymous.status).toBe(200);
    expect(anonymous.json.headers.authorization).toBe('Bearer open-token');
    const withKey = await call(`${lk.proxyUrl}/open/x`, { headers: { 'x-latchkey-key': 'lk_anything' } });
    expect(withKey.json.headers['x-latchkey-key']).toBeUndefined();
    await lk.close();
  });

  it('"none" on a non-loopback address is refused at start', async () => {
    const dir = tmpDir();
    const { writeFileSync } = await import('node:fs');
    const { runCli } = await import('../helpers/child.js');
    const cfg = join(dir.path, 'config.json');
    writeFileSync(cfg, JSON.stringify({ proxy: { clientAuth: 'none', addr: '0.0.0.0:0' } }));
    const res = await runCli(['check-config'], { LATCHKEY_CONFIG: cfg });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/proxy\.clientAuth/);
    dir.cleanup();
  });
});
