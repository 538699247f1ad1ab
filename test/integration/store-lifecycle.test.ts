import { chmodSync, readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { initSodium } from '../../src/crypto/seal.js';
import { Store } from '../../src/store/store.js';
import { OpenError } from '../../src/crypto/seal.js';
import { startLatchkey, newAdminKey } from '../helpers/latchkey.js';
import { runCli, serverEnv, startServer } from '../helpers/child.js';
import { adminClient } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';

const dirs: Array<{ cleanup: () => void }> = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.cleanup();
});


function newDir(): string {
  const d = tmpDir();
  dirs.push(d);
  return d.path;
}

describe('sealed blobs are bound to their record', () => {
  it('a blob copied into another row fails to open with a clear error', async () => {
    const dir = newDir();
    const lk = await startLatchkey({}, dir);
    await lk.admin.post('/v1/integrations', { integrationId: 'a', baseUrl: 'https://a.example.com' });
    const one = (await lk.admin.post('/v1/integrations/a/auth', { authType: 'BEARER_TOKEN', token: 'first' })).json;
    const two = (await lk.admin.post('/v1/integrations/a/auth', { authType: 'BEARER_TOKEN', token: 'second' })).json;
    lk.store.db
      .prepare('UPDATE auth_records SET wrapped_key = (SELECT wrapped_key FROM auth_records WHERE auth_id = @from), sealed = (SELECT sealed FROM auth_records WHERE auth_id = @from) WHERE auth_id = @to')
      .run({ from: one.authId, to: two.authId });
    expect(lk.store.authRecords.openSecrets('a', one.authId)).toEqual({ token: 'first' });
    expect(() => lk.store.authRecords.openSecrets('a', two.authId)).toThrow(OpenError);
    expect(() => lk.store.authRecords.openSecrets('a', two.authId)).toThrow(/cannot open data key of auth_/);
    await lk.close();
  });
});

describe('start-up failures', () => {
  it('a wrong master key: exit non-zero, one clear message, database bytes unchanged', async () => {
    const dir = newDir();
    const env = serverEnv(dir, { LATCHKEY_ADMIN_KEY: newAdminKey() });
    const first = await startServer(env);
    const admin = adminClient(first.adminUrl, env.LATCHKEY_ADMIN_KEY as string);
    await admin.post('/v1/integrations', { integrationId: 'x', baseUrl: 'https://x.example.com' });
    await admin.post('/v1/integrations/x/auth', { authType: 'BEARER_TOKEN', token: 'keep-me' });
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const before = readFileSync(env.LATCHKEY_DB as string);
    const wrong = randomBytes(32).toString('base64');
    const res = await runCli(['serve'], { ...env, LATCHKEY_MASTER_KEY: wrong });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/master key .* does not open/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(env.LATCHKEY_DB as string).equals(before)).toBe(true);

    // A missing key file is refused too, and no new key is generated for a sealed database.
    const noKey = await runCli(['serve'], { ...env, LATCHKEY_MASTER_KEY_FILE: join(dir, 'absent.key') });
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toMatch(/no master key/);
    expect(existsSync(join(dir, 'absent.key'))).toBe(false);
  });

  it('first start generates the master key and the bootstrap admin key with mode 0600', async () => {
    const dir = newDir();
    const server = await startServer(serverEnv(dir));
    const keyFile = join(dir, 'master.key');
    const adminKeyFile = join(dir, 'admin.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(adminKeyFile).mode & 0o777).toBe(0o600);
    const adminKey = readFileSync(adminKeyFile, 'utf8').trim();
    expect(server.output()).toContain(adminKeyFile);
    expect(server.output()).not.toContain(adminKey);
    expect(server.output()).not.toContain(readFileSync(keyFile, 'utf8').trim());
    const res = await adminClient(server.adminUrl, adminKey).get('/v1/integrations');
    expect(res.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('an invalid config: exit non-zero naming the key; check-config says the same', async () => {
    const dir = newDir();
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ proxy: { connectTimeoutMs: 'soon' } }));
    const env = serverEnv(dir, { LATCHKEY_CONFIG: cfg });
    for (const args of [['serve'], ['check-config']]) {
      const res = await runCli(args, env);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/proxy\.connectTimeoutMs/);
    }
    expect(existsSync(env.LATCHKEY_DB as string)).toBe(false);
    writeFileSync(cfg, '{ not json');
    expect((await runCli(['check-config'], env)).stderr).toMatch(/invalid JSON/);
    writeFileSync(cfg, JSON.stringify({ admin: { addr: '127.0.0.1:0' }, typo: true }));
    expect((await runCli(['check-config'], env)).stderr).toMatch(/typo/);
    writeFileSync(cfg, JSON.stringify({ admin: { addr: '127.0.0.1:0' } }));
    const ok = await runCli(['check-config'], env);
    expect(ok.code).toBe(0);
  });

  it('a master key file readable by others: a warning at start, naming the file, never the key', async () => {
    const dir = newDir();
    const env = serverEnv(dir);
    const first = await startServer(env);
    first.child.kill('SIGTERM');
    await first.exited;
    expect(first.output()).not.toContain('readable by group or others');
    chmodSync(env.LATCHKEY_MASTER_KEY_FILE as string, 0o644);
    const second = await startServer(env);
    second.child.kill('SIGTERM');
    await second.exited;
    const warning = second.output().split('\n').find((l) => l.includes('readable by group or others'));
    expect(warning).toContain('master.key');
    expect(warning).not.toContain(readFileSync(env.LATCHKEY_MASTER_KEY_FILE as string, 'utf8').trim());
  });

  it('an unreadable database: exit non-zero naming it, file unchanged, no key generated', async () => {
    const dir = newDir();
    const env = serverEnv(dir);
    writeFileSync(env.LATCHKEY_DB as string, 'this is not a database, it is a text file');
    const before = readFileSync(env.LATCHKEY_DB as string);
    const res = await runCli(['serve'], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/latchkey\.db: file is not a database/);
    expect(readFileSync(env.LATCHKEY_DB as string).equals(before)).toBe(true);
    expect(existsSync(env.LATCHKEY_MASTER_KEY_FILE as string)).toBe(false);
  });

  it('the bin answers --help', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(process.execPath, ['bin/latchkey.js', '--help'], { encoding: 'utf8' });
    for (const command of ['serve', 'check-config', 'keys create', 'rotate-master-key', 'backup', 'catalog']) expect(out).toContain(command);
  });

  it('an address in use: exit non-zero naming it', async () => {
    const dir = newDir();
    const first = await startServer(serverEnv(dir, { LATCHKEY_ADMIN_KEY: newAdminKey() }));
    const port = new URL(first.adminUrl).port;
    const res = await runCli(['serve'], serverEnv(newDir(), { LATCHKEY_ADMIN_ADDR: `127.0.0.1:${port}`, LATCHKEY_ADMIN_KEY: newAdminKey() }));
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/EADDRINUSE/);
    first.child.kill('SIGTERM');
    await first.exited;
  });
});

describe('durability', () => {
  it('every write answered 201 survives a SIGKILL right after', async () => {
    const dir = newDir();
    const env = serverEnv(dir, { LATCHKEY_ADMIN_KEY: newAdminKey() });
    const server = await startServer(env);
    const admin = adminClient(server.adminUrl, env.LATCHKEY_ADMIN_KEY as string);
    await admin.post('/v1/integrations', { integrationId: 'd', baseUrl: 'https://d.example.com' });
    const N = 40;
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const res = await admin.post('/v1/integrations/d/auth', { authType: 'BEARER_TOKEN', token: `token-${i}` });
      expect(res.status).toBe(201);
      ids.push(res.json.authId);
    }
    server.child.kill('SIGKILL');
    await server.exited;

    const again = await startServer(env);
    const admin2 = adminClient(again.adminUrl, env.LATCHKEY_ADMIN_KEY as string);
    const list = await admin2.get('/v1/integrations/d/auth');
    expect(list.json.data.map((r: { authId: string }) => r.authId)).toEqual(ids);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);

    await initSodium();
    const store = Store.open({ dbPath: env.LATCHKEY_DB as string, masterKey: undefined, masterKeyFile: env.LATCHKEY_MASTER_KEY_FILE as string });
    ids.forEach((id, i) => expect(store.authRecords.openSecrets('d', id)).toEqual({ token: `token-${i}` }));
    store.close();
  });
});

describe('rotate-master-key and backup', () => {
  it('after rotation the new key opens every record and the old one is refused', async () => {
    const dir = newDir();
    const env = serverEnv(dir, { LATCHKEY_ADMIN_KEY: newAdminKey() });
    const lk = await startLatchkey(env, dir);
    await lk.admin.post('/v1/integrations', { integrationId: 'r', baseUrl: 'https://r.example.com' });
    const ids: string[] = [];
    for (const token of ['t1', 't2', 't3']) ids.push((await lk.admin.post('/v1/integrations/r/auth', { authType: 'BEARER_TOKEN', token })).json.authId);
    await lk.stop();
    const oldKey = readFileSync(env.LATCHKEY_MASTER_KEY_FILE as string, 'utf8').trim();

    const newKeyFile = join(dir, 'new.key');
    const res = await runCli(['rotate-master-key', '--new-key-file', newKeyFile], env);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ rotated: 3, generated: true });
    const newKey = readFileSync(newKeyFile, 'utf8').trim();
    expect(newKey).not.toBe(oldKey);
    // The configured key file follows, so a plain restart works.
    expect(readFileSync(env.LATCHKEY_MASTER_KEY_FILE as string, 'utf8').trim()).toBe(newKey);

    const refused = await runCli(['serve'], { ...env, LATCHKEY_MASTER_KEY: oldKey });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/does not open/);

    await initSodium();
    const store = Store.open({ dbPath: env.LATCHKEY_DB as string, masterKey: newKey, masterKeyFile: '/nonexistent' });
    expect(ids.map((id) => store.authRecords.openSecrets('r', id))).toEqual([{ token: 't1' }, { token: 't2' }, { token: 't3' }]);
    store.close();
  });

  it('backup while serving writes a copy that opens with the same key', async () => {
    const dir = newDir();
    const env = serverEnv(dir, { LATCHKEY_ADMIN_KEY: newAdminKey() });
    const server = await startServer(env);
    const admin = adminClient(server.adminUrl, env.LATCHKEY_ADMIN_KEY as string);
    await admin.post('/v1/integrations', { integrationId: 'b', baseUrl: 'https://b.example.com' });
    const { authId } = (await admin.post('/v1/integrations/b/auth', { authType: 'BASIC_AUTH', username: 'u', password: 'p' })).json;
    const copy = join(dir, 'backup.db');
    const res = await runCli(['backup', copy], env);
    expect(res.code).toBe(0);
    // Created 0600 whatever the umask: a copy of the database is as private as the database.
    expect(statSync(copy).mode & 0o777).toBe(0o600);
    // The server keeps serving during and after the backup.
    expect((await admin.get('/v1/integrations/b')).status).toBe(200);
    server.child.kill('SIGTERM');
    await server.exited;

    await initSodium();
    const store = Store.open({ dbPath: copy, masterKey: undefined, masterKeyFile: env.LATCHKEY_MASTER_KEY_FILE as string });
    expect(store.authRecords.openSecrets('b', authId)).toEqual({ username: 'u', password: 'p' });
    store.close();
    expect((await runCli(['backup', copy], env)).code).toBe(1);
  });
});
