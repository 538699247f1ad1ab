import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, echo, type Upstream } from '../helpers/upstream.js';
import { serverEnv, startServer, type ServerProcess } from '../helpers/child.js';
import { adminClient, type AdminClient } from '../helpers/http.js';
import { newAdminKey } from '../helpers/latchkey.js';
import { tmpDir } from '../helpers/tmp.js';
import { Store } from '../../src/store/store.js';
import { initSodium } from '../../src/crypto/seal.js';

/** One call on a connection of its own, so the cluster hands each to the next worker in turn. */
function freshCall(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { ...headers, connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** requestId -> worker id, from the per-call log lines the workers printed so far. */
function workersByRequest(output: string): Map<string, number> {
  const seen = new Map<string, number>();
  for (const line of output.split('\n')) {
    try {
      const rec = JSON.parse(line) as { msg?: string; requestId?: string; worker?: number };
      if (rec.msg === 'proxy call' && rec.requestId && rec.worker !== undefined) seen.set(rec.requestId, rec.worker);
    } catch {
      // not a JSON line
    }
  }
  return seen;
}

/** Log lines are written in blocks every 250 ms: wait until every call's line is there. */
async function workersOf(server: ServerProcess, ids: string[]): Promise<Set<number>> {
  for (let i = 0; i < 100; i++) {
    const seen = workersByRequest(server.output());
    if (ids.every((id) => seen.has(id))) return new Set(ids.map((id) => seen.get(id) as number));
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('per-call log lines missing');
}

let up: Upstream;
let server: ServerProcess;
let admin: AdminClient;
const dir = tmpDir();
const adminKey = newAdminKey();
let agentKey: string;
let agentKeyId: string;

beforeAll(async () => {
  await initSodium();
  up = await startUpstream((req, res) => {
    if (req.url?.startsWith('/slow')) setTimeout(() => echo(req, res), 500);
    else echo(req, res);
  });
  server = await startServer(serverEnv(dir.path, { LATCHKEY_ADMIN_KEY: adminKey, LATCHKEY_WORKERS: '2' }));
  admin = adminClient(server.adminUrl, adminKey);
  await admin.post('/v1/integrations', { integrationId: 'w', baseUrl: up.url });
  await admin.post('/v1/integrations/w/auth', { authType: 'BEARER_TOKEN', token: 'tok' });
  const created = (await admin.post('/v1/api-keys', { name: 'agent', role: 'agent', integrations: ['w'] })).json;
  agentKey = created.key;
  agentKeyId = created.keyId;
});
afterAll(async () => {
  if (server.child.exitCode === null) server.child.kill('SIGKILL');
  await up.close();
  dir.cleanup();
});

let calls = 0;
const callMany = async (n: number, tag: string) => {
  const ids: string[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${tag}-${i}`;
    ids.push(id);
    statuses.push((await freshCall(`${server.proxyUrl}/w/x`, { 'x-latchkey-key': agentKey, 'x-request-id': id })).status);
    calls++;
  }
  return { ids, statuses };
};

describe('workers: 2', () => {
  it('serves the proxy listener from two processes, the admin listener from one', async () => {
    expect(server.output()).toMatch(/"workers":2,"msg":"listening"/);
    const { ids, statuses } = await callMany(8, 'before');
    expect(statuses).toEqual(Array(8).fill(200));
    expect(await workersOf(server, ids)).toEqual(new Set([1, 2]));
  });

  it('a key revoked through the admin API is refused by the very next call on every worker', async () => {
    expect((await admin.delete(`/v1/api-keys/${agentKeyId}`)).status).toBe(204);
    const { ids, statuses } = await callMany(8, 'after');
    expect(statuses).toEqual(Array(8).fill(401));
    expect(await workersOf(server, ids)).toEqual(new Set([1, 2]));
  });

  it('a rate limit holds across workers: the primary counts every worker\'s calls in one window', async () => {
    const created = (await admin.post('/v1/api-keys', { name: 'limited', role: 'agent', integrations: ['w'], rateLimit: { requests: 4, perSeconds: 3600 } })).json;
    const ids: string[] = [];
    const statuses: number[] = [];
    const codes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = `limited-${i}`;
      ids.push(id);
      const res = await freshCall(`${server.proxyUrl}/w/x`, { 'x-latchkey-key': created.key as string, 'x-request-id': id });
      calls++;
      statuses.push(res.status);
      if (res.status === 429) codes.push(JSON.parse(res.body).error.code as string);
    }
    // Two workers each counting alone would have allowed 8.
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429, 429, 429, 429]);
    expect(new Set(codes)).toEqual(new Set(['RATE_LIMITED']));
    expect(await workersOf(server, ids)).toEqual(new Set([1, 2]));
  });

  it('/metrics on the owner counts the calls every worker served', async () => {
    const count = (text: string, cls: string): number =>
      Number(new RegExp(`^latchkey_proxy_calls_total\\{integration="w",status_class="${cls}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    // So far: 8 + 4 answered 200, 8 refused 401 (revoked key) and 6 refused 429, alternating between the workers.
    let text = '';
    for (let i = 0; i < 100 && (count(text, '2xx') < 12 || count(text, '4xx') < 14); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      text = await (await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
    }
    expect(count(text, '2xx')).toBe(12);
    expect(count(text, '4xx')).toBe(14);
    expect(text).toMatch(/^latchkey_upstream_latency_seconds_count\{integration="w"\} 12$/m);
  });

  it('SIGTERM: in-flight calls on every worker finish, every call is in the audit trail, exit 0', async () => {
    const key = (await admin.post('/v1/api-keys', { name: 'again', role: 'agent', integrations: ['w'] })).json.key as string;
    const ids = ['slow-0', 'slow-1', 'slow-2', 'slow-3'];
    const inflight = ids.map((id) => freshCall(`${server.proxyUrl}/w/slow`, { 'x-latchkey-key': key, 'x-request-id': id }));
    await new Promise((r) => setTimeout(r, 200));
    server.child.kill('SIGTERM');
    const done = await Promise.all(inflight);
    calls += ids.length;
    expect(done.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(JSON.parse(done[0]?.body ?? '{}').headers.authorization).toBe('Bearer tok');
    expect(await server.exited).toBe(0);
    expect(await workersOf(server, ids)).toEqual(new Set([1, 2]));

    const env = serverEnv(dir.path);
    const store = Store.open({ dbPath: env.LATCHKEY_DB as string, masterKey: undefined, masterKeyFile: env.LATCHKEY_MASTER_KEY_FILE as string });
    const rows = store.audit.list({ limit: 1000, after: null }).data.filter((r) => r.action === 'proxy.call');
    store.close();
    expect(rows).toHaveLength(calls);
    expect(rows.filter((r) => r.path === '/slow' && r.status === 200)).toHaveLength(4);
  });
});

describe('config workers', () => {
  it('accepts a number or "auto", and names the key for anything else', async () => {
    const { runCli } = await import('../helpers/child.js');
    for (const ok of ['auto']) {
      const r = await runCli(['check-config'], { ...serverEnv(dir.path), LATCHKEY_WORKERS: ok });
      expect(r.code, r.stderr).toBe(0);
    }
    for (const bad of ['0', 'many']) {
      const r = await runCli(['check-config'], { ...serverEnv(dir.path), LATCHKEY_WORKERS: bad });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^latchkey: invalid config: workers/);
    }
  });
});

describe('workers writing one log file', () => {
  it('two workers with stdout a regular file write large blocks, every line stays whole; keyless refusals are sampled for the whole cluster', async () => {
    const { spawn } = await import('node:child_process');
    const { openSync, closeSync, readFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { compiledCli } = await import('../helpers/child.js');
    const own = tmpDir();
    const logFile = join(own.path, 'latchkey.log');
    const fd = openSync(logFile, 'w');
    const key = newAdminKey();
    const child = spawn(process.execPath, [compiledCli(), 'serve'], {
      env: { PATH: process.env.PATH ?? '', ...serverEnv(own.path, { LATCHKEY_ADMIN_KEY: key, LATCHKEY_WORKERS: '2' }) },
      stdio: ['ignore', fd, 'inherit'],
    });
    closeSync(fd);
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    let listening: { proxy: string; admin: string } | undefined;
    for (let i = 0; i < 300 && !listening; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const line = readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('"workers":2,"msg":"listening"'));
      if (line) listening = JSON.parse(line) as { proxy: string; admin: string };
    }
    expect(listening).toBeDefined();
    const a = adminClient((listening as { admin: string }).admin, key);
    await a.post('/v1/integrations', { integrationId: 'f', baseUrl: up.url });
    await a.post('/v1/integrations/f/auth', { authType: 'BEARER_TOKEN', token: 'file-token' });
    // 1,200 calls on fresh connections (the primary hands them to the workers in turn), 40 at a time:
    // lines of both workers are written while the other's block is being written.
    for (let batch = 0; batch < 30; batch++) {
      const got = await Promise.all(
        Array.from({ length: 40 }, (_, i) => freshCall(`${(listening as { proxy: string }).proxy}/f/x`, { 'x-latchkey-key': key, 'x-request-id': `file-${batch}-${i}` })),
      );
      expect(got.every((r) => r.status === 200)).toBe(true);
    }
    // 30 calls without a key, over both workers: the audit keeps 20 a minute for the whole cluster.
    const minuteBefore = Math.floor(Date.now() / 60_000);
    for (let i = 0; i < 30; i++) expect((await freshCall(`${(listening as { proxy: string }).proxy}/f/x`, {})).status).toBe(401);
    const sameMinute = Math.floor(Date.now() / 60_000) === minuteBefore;
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const store = Store.open({ dbPath: join(own.path, 'latchkey.db'), masterKey: undefined, masterKeyFile: join(own.path, 'master.key') });
    const rows = store.audit.list({ limit: 1000, after: null }).data;
    store.close();
    const kept = rows.filter((r) => r.action === 'proxy.call' && r.keyId === null).length;
    const counted = rows.filter((r) => r.action === 'proxy.refused').reduce((n, r) => n + ((r as { count?: number }).count ?? 0), 0);
    expect(kept + counted).toBe(30);
    // Each worker alone would have kept all 30 (15 each, under its own 20).
    if (sameMinute) expect([kept, counted]).toEqual([20, 10]);
    else expect(kept).toBeLessThanOrEqual(40);
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.length > 0);
    const calls = lines.map((l) => JSON.parse(l) as { msg?: string; requestId?: string; worker?: number }).filter((r) => r.msg === 'proxy call');
    expect(new Set(calls.filter((r) => r.requestId?.startsWith('file-')).map((r) => r.requestId)).size).toBe(1200);
    expect(new Set(calls.map((r) => r.worker))).toEqual(new Set([1, 2]));
    own.cleanup();
  });
});
