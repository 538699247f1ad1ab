/**
 * npm run bench: one upstream, then in the same run
 *   (a) the upstream directly,
 *   (b) a bare http-proxy-3 pass-through with a keep-alive agent,
 *   (c) latchkey with bearer injection, client auth, allowlist and logging on,
 * and, for reference, (d) a bare undici forwarder with no checks at all;
 * each under the same load; prints req/s, p50/p99 and the ratios.
 *
 * The load comes from wrk when it is on the PATH (apt-get install wrk): it is
 * written in C and leaves more of the 2 cores to the servers being measured.
 * Otherwise autocannon (a devDependency) runs in this process.
 *
 * Environment: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 32).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import autocannon from 'autocannon';
import { leafMintMs, makeBenchPki, tunnelRows } from './connect.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const here = fileURLToPath(new URL('.', import.meta.url));
const children: ChildProcess[] = [];
const workDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));

/**
 * Starts a node script writing its stdout to a file (latchkey logs every call,
 * and this process is blocked while wrk runs, so a pipe would not be drained)
 * and resolves with the first JSON line there that has `key`.
 */
async function start(args: string[], key: string, env: Record<string, string> = {}): Promise<Record<string, string | number>> {
  const out = join(workDir, `${children.length}.log`);
  const fd = openSync(out, 'w');
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  children.push(child);
  for (let waited = 0; waited < 30_000; waited += 50) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      try {
        const rec = JSON.parse(line) as Record<string, string | number>;
        if (key in rec) return rec;
      } catch {
        // not a complete JSON line yet
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${args.join(' ')} printed no ${key} in 30 s`);
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk --version exits 1 after printing its version; only ENOENT means absent.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
const USE_WRK = hasWrk();

const toMs = (v: string): number => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
};

function wrk(url: string, seconds: number, headers: Record<string, string>): Omit<Result, 'name'> {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const out = execFileSync('wrk', [...args, url], { encoding: 'utf8' });
  const pct = (p: string) => toMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(out)?.[1] ?? '');
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p50: pct('50'),
    p99: pct('99'),
    errors: errors ? errors.slice(1).map(Number).reduce((x, y) => x + y, 0) : 0,
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

async function load(name: string, url: string, headers: Record<string, string> = {}): Promise<Result> {
  // A short warm-up so JIT and connection pools are in place before measuring.
  if (USE_WRK) {
    wrk(url, 2, headers);
    return { name, ...wrk(url, SECONDS, headers) };
  }
  await autocannon({ url, connections: CONNECTIONS, duration: 2, headers });
  const r = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers });
  return { name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
}

async function main(): Promise<void> {
  const upstream = await start([join(here, 'upstream.js')], 'port');
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const pass = await start([join(here, 'passthrough.js'), upstreamUrl], 'port');
  const floor = await start([join(here, 'undici-floor.js'), upstreamUrl], 'port');

  const dir = workDir;
  const pki = makeBenchPki(dir);
  const adminKey = `lk_${randomBytes(32).toString('base64url')}`;
  const lk = await start([join(here, '..', 'src', 'cli.js'), 'serve'], 'proxy', {
    LATCHKEY_DB: join(dir, 'latchkey.db'),
    LATCHKEY_MASTER_KEY_FILE: join(dir, 'master.key'),
    LATCHKEY_PROXY_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_KEY: adminKey,
    LATCHKEY_LOG_LEVEL: 'info',
    LATCHKEY_CONFIG: pki.config,
  });
  const admin = async (path: string, body: unknown): Promise<void> => {
    const res = await fetch(`${lk.admin}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  };
  await admin('/v1/integrations', { integrationId: 'bench', baseUrl: upstreamUrl });
  await admin('/v1/integrations/bench/auth', { authType: 'BEARER_TOKEN', token: 'bench-token' });
  await admin('/v1/integrations', { integrationId: 'bench-oauth', baseUrl: upstreamUrl });
  await admin('/v1/integrations/bench-oauth/auth', {
    authType: 'OAUTH2_CLIENT_CREDENTIALS',
    oauth2: { tokenUrl: `${upstreamUrl}/oauth/token`, clientId: 'bench', clientSecret: 'bench-secret' },
  });

  const results = [
    await load('(a) upstream direct', `${upstreamUrl}/v1/items`),
    await load('(b) http-proxy-3 pass-through', `http://127.0.0.1:${pass.port}/v1/items`),
    await load('(c) latchkey bearer injection', `${lk.proxy}/bench/v1/items`, { authorization: `Bearer ${adminKey}` }),
    await load('(d) bare undici forwarder', `http://127.0.0.1:${floor.port}/v1/items`),
    await load('(t) latchkey OAuth2 token', `${lk.proxy}/bench-oauth/v1/items`, { authorization: `Bearer ${adminKey}` }),
  ];
  const [a, b, c, d, t] = results as [Result, Result, Result, Result, Result];
  console.log(`\n${CONNECTIONS} connections, ${SECONDS} s each, load from ${USE_WRK ? 'wrk' : 'autocannon'}, node ${process.version}\n`);
  console.log('path                              req/s      p50 ms   p99 ms   errors  non-2xx');
  for (const r of results) {
    console.log(
      `${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(8)} ${String(r.p50).padStart(9)} ${String(r.p99).padStart(8)} ${String(r.errors).padStart(8)} ${String(r.non2xx).padStart(8)}`,
    );
  }
  console.log(`\nratio c/b (latchkey / http-proxy-3): ${(c.rps / b.rps).toFixed(2)}`);
  console.log(`ratio c/a (latchkey / direct):       ${(c.rps / a.rps).toFixed(2)}`);
  console.log(`ratio c/d (latchkey / bare undici):  ${(c.rps / d.rps).toFixed(2)}`);
  console.log(`ratio t/c (OAuth2 token / bearer):   ${(t.rps / c.rps).toFixed(2)}`);

  // HTTPS proxy rows: load from an undici loop in this process (wrk and autocannon speak no CONNECT).
  const tls = await start([join(here, 'upstream-tls.js'), pki.key, pki.cert], 'port');
  await admin('/v1/integrations', { integrationId: 'tls', baseUrl: `https://127.0.0.1:${tls.port}` });
  await admin('/v1/integrations/tls/auth', { authType: 'BEARER_TOKEN', token: 'bench-token' });
  await admin('/v1/integrations', { integrationId: 'mint', baseUrl: 'https://mint.bench.example', allowedHosts: ['mint.bench.example', '*.mint.bench.example'] });
  await admin('/v1/integrations/mint/auth', { authType: 'BEARER_TOKEN', token: 'bench-token' });
  const caPem = await (await fetch(`${lk.admin}/ca.pem`)).text();
  const rows = await tunnelRows({ dir, seconds: SECONDS, connections: CONNECTIONS }, String(lk.proxy), adminKey, Number(tls.port), caPem);
  console.log('\npath (undici load loop)           req/s      p50 ms   p99 ms   errors');
  for (const r of rows) {
    console.log(`${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(8)} ${String(r.p50).padStart(9)} ${String(r.p99).padStart(8)} ${String(r.errors).padStart(8)}`);
  }
  const [e, f] = rows as [(typeof rows)[0], (typeof rows)[0]];
  console.log(`\nratio f/e (tunnel / plain forward proxy): ${(f.rps / e.rps).toFixed(2)}`);
  console.log(`leaf certificate mint, mean of 50:         ${(await leafMintMs(String(lk.proxy), String(lk.admin), adminKey, 50)).toFixed(2)} ms`);
  if (e.errors > 0 || f.errors > 0) process.exitCode = 1;
  for (const child of children) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  if (c.non2xx > 0 || c.errors > 0 || t.non2xx > 0 || t.errors > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  for (const child of children) child.kill('SIGKILL');
  rmSync(workDir, { recursive: true, force: true });
  process.exit(1);
});
