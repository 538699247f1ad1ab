/**
 * npm run bench: one upstream, then in the same run, under the same load:
 *   upstream direct, nginx (proxy_pass + proxy_set_header, one worker),
 *   a bare http-proxy-3 pass-through, a bare undici forwarder (copies headers,
 *   sets Authorization, no checks), and latchkey with client auth, bearer
 *   injection, allowlist, per-call log line, audit and metrics on:
 *   10 integrations at random, 100,000 at random (plans all cached first),
 *   10 with 2 workers; then 1 GiB up and 1 GiB down through one latchkey
 *   with its RSS growth, and GET /v1/audit?integrationId= over a trail of
 *   5 million calls spread over 10,000 integrations; start times until
 *   /readyz answers: `latchkey serve` on the 100,000-integration database
 *   and `npm start` on a new data directory (bench/start-time.ts).
 * Prints one table with ratios against nginx and the bare undici forwarder.
 *
 * Environment: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 32),
 * BENCH_TRAIL_ROWS (default 5,000,000; building that trail takes minutes).
 * BENCH_SHORT=1 or --short: tiny durations and sizes, so CI runs it and it
 * cannot rot (figures from a short run mean nothing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { load, loadTogether, median, touchAll, USE_WRK, type LoadResult, type Target } from './load.js';
import { ensureNginx, startNginx } from './nginx.js';
import { rss, transfer } from './transfer.js';
import { buildTrail, timeAuditReads } from './audit-trail.js';
import { benchEnv, seedIntegrations } from './seed.js';
import { leafMintMs, makeBenchPki, tunnelRows } from './connect.js';
import { redactionInProcess } from './redaction.js';
import { describeStarts, npmStartTimes, serveStartTimes } from './start-time.js';

const SHORT = process.env.BENCH_SHORT === '1' || process.argv.includes('--short');
const SECONDS = Number(process.env.BENCH_SECONDS ?? (SHORT ? 1 : 10));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const MANY = SHORT ? 1000 : 100_000;
const TRANSFER_BYTES = SHORT ? 16 * 1024 * 1024 : 1024 * 1024 * 1024;
const TRAIL_ROWS = Number(process.env.BENCH_TRAIL_ROWS ?? (SHORT ? 20_000 : 5_000_000));
const TRAIL_INTEGRATIONS = SHORT ? 1000 : 10_000;
const START_RUNS = SHORT ? 2 : 7;
/**
 * The rows the hot-path goals compare (the baselines, latchkey's own rows, and
 * 100,000 integrations against 10 of them) are measured in this many rounds,
 * interleaved, each row's figures the median of its rounds: on a shared host
 * the speed of the whole machine drifts by tens of percent within a minute,
 * and measuring the rows one after another put that drift into the ratios.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SHORT ? 1 : 3));
const here = fileURLToPath(new URL('.', import.meta.url));
const cli = join(here, '..', 'src', 'cli.js');
const children: ChildProcess[] = [];
const workDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
const adminKey = `lk_${randomBytes(32).toString('base64url')}`;

type Line = Record<string, string | number>;

/**
 * Starts a node script writing its stdout to a file (latchkey logs every call,
 * and this process is blocked while wrk runs, so a pipe would not be drained)
 * and resolves with the first JSON line there that `ready` accepts.
 */
async function start(args: string[], ready: (l: Line) => boolean, env: Record<string, string> = {}): Promise<Line & { pid: number; ms: number }> {
  const out = join(workDir, `${children.length}.log`);
  const fd = openSync(out, 'w');
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', fd, 'inherit'] });
  closeSync(fd);
  children.push(child);
  for (let waited = 0; waited < 120_000; waited += 20) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
    for (const text of readFileSync(out, 'utf8').split('\n')) {
      try {
        const rec = JSON.parse(text) as Line;
        if (ready(rec)) return { ...rec, pid: child.pid as number, ms: performance.now() - t0 };
      } catch {
        // not a complete JSON line yet
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${args.join(' ')} did not get ready in 120 s`);
}

async function stop(pid: number): Promise<void> {
  const child = children.find((c) => c.pid === pid);
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

async function latchkey(name: string, extra: Record<string, string> = {}) {
  const dir = join(workDir, name);
  mkdirSync(dir, { recursive: true });
  const env = benchEnv(dir, adminKey, extra);
  // Started the way bin/latchkey and `npm start` start it (the node flag: README "Performance").
  return { dir, env, run: () => start(['--max-semi-space-size=64', cli, 'serve'], (l) => l.msg === 'listening', env) };
}

interface Row extends Partial<LoadResult> {
  name: string;
  note?: string;
}
const rows: Row[] = [];
const measure = async (name: string, t: Target, note?: string): Promise<LoadResult> => {
  const r = await load(t, SECONDS, CONNECTIONS, workDir);
  rows.push({ name, ...r, ...(note ? { note } : {}) });
  return r;
};

/**
 * Each target loaded once per round, in order, ROUNDS times; one row per
 * target (in the order given) with the medians of its rounds, errors summed.
 * A target with a `pid` also gets how busy that server's main thread was
 * during its measured runs (median): a Node.js server whose main thread is
 * near 100 % is bound by that thread, whatever the other core has left.
 */
/** A row's medians, and its req/s in each round (for ratios round by round). */
type Interleaved = LoadResult & { rounds: number[] };

async function interleaved(targets: Array<{ name: string; t: Target; pid?: number }>): Promise<Interleaved[]> {
  const runs: LoadResult[][] = targets.map(() => []);
  const busy: number[][] = targets.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, { t, pid }] of targets.entries()) {
      // With a pid: the main thread's CPU time and the clock when the measured run starts (after the warm-up).
      const start = { cpu: null as number | null, at: 0 };
      const mark = pid === undefined ? undefined : (): void => void Object.assign(start, { cpu: cpuMs(pid, true), at: performance.now() });
      (runs[i] as LoadResult[]).push(await load(t, SECONDS, CONNECTIONS, workDir, mark));
      const cpu = pid === undefined ? null : cpuMs(pid, true);
      if (start.cpu !== null && cpu !== null) (busy[i] as number[]).push((100 * (cpu - start.cpu)) / (performance.now() - start.at));
    }
  }
  return targets.map(({ name }, i) => {
    const rs = runs[i] as LoadResult[];
    const r: LoadResult = {
      rps: median(rs.map((x) => x.rps)),
      p50: median(rs.map((x) => x.p50)),
      p99: median(rs.map((x) => x.p99)),
      errors: rs.reduce((a, x) => a + x.errors, 0),
      non2xx: rs.reduce((a, x) => a + x.non2xx, 0),
    };
    const b = busy[i] as number[];
    rows.push({ name, ...r, ...(b.length > 0 ? { note: `main thread ${median(b).toFixed(0)} % busy` } : {}) });
    return { ...r, rounds: rs.map((x) => x.rps) };
  });
}
const bearer = { authorization: `Bearer ${adminKey}` };

/** CPU time a process has used (ms, all its threads; or its main thread's only) from /proc; null where there is none. */
function cpuMs(pid: number, mainThread = false): number | null {
  try {
    const fields = (readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1] as string).split(' ');
    // utime and stime, in clock ticks of 1/100 s (USER_HZ).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * Two servers loaded at the same time, ROUNDS times: the median ratio of their
 * req/s and of the CPU time a call costs each (all threads). Side by side they
 * share the machine's speed of the moment, which the rows measured one after
 * the other do not: on a shared host the same server's CPU time per call
 * moved from 55 to 95 µs within a minute.
 */
async function sideBySide(name: string, a: { pid: number; t: Target }, b: { pid: number; t: Target }): Promise<Row> {
  const rpsRatio: number[] = [];
  const cpuRatio: number[] = [];
  const cpuA: number[] = [];
  const cpuB: number[] = [];
  let errors = 0;
  for (let round = 0; round < ROUNDS; round++) {
    let before: Array<number | null> = [];
    const [ra, rb] = (await loadTogether([a.t, b.t], SECONDS, CONNECTIONS, workDir, () => (before = [cpuMs(a.pid), cpuMs(b.pid)]))) as [LoadResult, LoadResult];
    const after = [cpuMs(a.pid), cpuMs(b.pid)];
    errors += ra.errors + ra.non2xx + rb.errors + rb.non2xx;
    rpsRatio.push(ra.rps / rb.rps);
    if (before[0] != null && before[1] != null && after[0] != null && after[1] != null) {
      const usA = ((after[0] - before[0]) * 1000) / (ra.rps * SECONDS);
      const usB = ((after[1] - before[1]) * 1000) / (rb.rps * SECONDS);
      cpuA.push(usA);
      cpuB.push(usB);
      cpuRatio.push(usB / usA);
    }
  }
  const cpu = cpuRatio.length > 0 ? `; CPU a call ${median(cpuA).toFixed(0)} vs ${median(cpuB).toFixed(0)} µs: ${median(cpuRatio).toFixed(2)}x its efficiency` : '';
  return { name, errors, non2xx: 0, note: `${median(rpsRatio).toFixed(2)}x its req/s${cpu} (medians of ${ROUNDS} rounds)` };
}

/** The OAuth 2 token row, and the HTTPS proxy rows (an undici load loop: wrk and autocannon speak no CONNECT). */
async function extraRows(proxy: string, adminUrl: string, upstreamUrl: string, pki: { key: string; cert: string }): Promise<void> {
  const admin = async (path: string, body: unknown): Promise<void> => {
    const res = await fetch(`${adminUrl}${path}`, {
      method: 'POST',
      headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  };
  await admin('/v1/integrations', { integrationId: 'bench-oauth', baseUrl: upstreamUrl });
  await admin('/v1/integrations/bench-oauth/auth', {
    authType: 'OAUTH2_CLIENT_CREDENTIALS',
    oauth2: { tokenUrl: `${upstreamUrl}/oauth/token`, clientId: 'bench', clientSecret: 'bench-secret' },
  });
  await measure('latchkey, OAuth2 client credentials token', { origin: proxy, path: '/bench-oauth/v1/items', headers: bearer });
  // AWS Signature V4 re-signing each GET (goal: at least 0.8 x the bearer row).
  await admin('/v1/integrations', { integrationId: 'bench-aws', baseUrl: upstreamUrl });
  const aws = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret', region: 'us-east-1', service: 's3' };
  await admin('/v1/integrations/bench-aws/auth', { authType: 'AWS_SIGV4', aws });
  await measure('latchkey, AWS SigV4 signing', { origin: proxy, path: '/bench-aws/v1/items', headers: bearer });
  const tls = await start([join(here, 'upstream-tls.js'), pki.key, pki.cert], (l) => 'port' in l);
  await admin('/v1/integrations', { integrationId: 'tls', baseUrl: `https://127.0.0.1:${tls.port}` });
  await admin('/v1/integrations/tls/auth', { authType: 'BEARER_TOKEN', token: 'bench-token' });
  await admin('/v1/integrations', { integrationId: 'mint', baseUrl: 'https://mint.bench.example', allowedHosts: ['mint.bench.example', '*.mint.bench.example'] });
  await admin('/v1/integrations/mint/auth', { authType: 'BEARER_TOKEN', token: 'bench-token' });
  const caPem = await (await fetch(`${adminUrl}/ca.pem`)).text();
  for (const r of await tunnelRows({ dir: workDir, seconds: SECONDS, connections: CONNECTIONS }, proxy, adminKey, Number(tls.port), caPem)) {
    rows.push({ name: `${r.name} (undici loop)`, rps: r.rps, p50: r.p50, p99: r.p99, errors: r.errors, non2xx: 0 });
  }
  const mint = await leafMintMs(proxy, adminUrl, adminKey, SHORT ? 5 : 50);
  (rows[rows.length - 1] as Row).note = `leaf certificate mint ${mint.toFixed(2)} ms (mean)`;
}

/** The hot-path goals' row. */
const FIXED_URL = 'latchkey bearer, one fixed URL';

async function main(): Promise<void> {
  const port = (l: Line) => 'port' in l;
  const upstream = await start([join(here, 'upstream.js')], port);
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const pass = await start([join(here, 'passthrough.js'), upstreamUrl], port);
  const floor = await start([join(here, 'undici-floor.js'), upstreamUrl], port);
  const nginxBin = ensureNginx();
  const nginx = nginxBin ? await startNginx(nginxBin, workDir, Number(upstream.port)) : null;
  if (nginx) children.push(nginx.child);

  // Latchkey with 10 integrations, started first so that the goal rows can be measured interleaved.
  const pki = makeBenchPki(workDir);
  const few = await latchkey('few', { LATCHKEY_CONFIG: pki.config });
  await seedIntegrations(few.env.LATCHKEY_DB, few.env.LATCHKEY_MASTER_KEY_FILE, 10, upstreamUrl);
  let lk = await few.run();
  const goalRows = [
    { name: 'upstream direct', t: { origin: upstreamUrl, path: '/v1/items' } },
    ...(nginx ? [{ name: 'nginx proxy_pass + set Authorization', t: { origin: `http://127.0.0.1:${nginx.port}`, path: '/v1/items' } }] : []),
    { name: 'bare http-proxy-3 pass-through', t: { origin: `http://127.0.0.1:${pass.port}`, path: '/v1/items' }, pid: pass.pid },
    { name: 'bare undici forwarder', t: { origin: `http://127.0.0.1:${floor.port}`, path: '/v1/items' }, pid: floor.pid },
    // Loaded exactly as the nginx and undici rows are (one fixed URL, no wrk script): the hot-path goals' row.
    { name: FIXED_URL, t: { origin: String(lk.proxy), path: '/i0/v1/items', headers: bearer }, pid: lk.pid },
    // At random (a wrk script, which costs wrk more CPU on a small host): what the 100,000-integration row is compared to.
    { name: 'latchkey, 10 integrations at random', t: { origin: String(lk.proxy), path: '/v1/items', randomOf: 10, headers: bearer }, pid: lk.pid },
  ];
  const measured = await interleaved(goalRows);
  const at = (name: string): Interleaved | null => measured[goalRows.findIndex((g) => g.name === name)] ?? null;
  const ngx = at('nginx proxy_pass + set Authorization');
  if (!ngx) rows.push({ name: 'nginx', note: 'not installed (apt-get install nginx-light)' });
  const bare = at('bare undici forwarder') as Interleaved;
  const lk10 = at('latchkey, 10 integrations at random') as LoadResult;
  // Each round's ratio of rows measured one after the other (seconds apart), and their median: less of the machine's drift than the ratio of medians.
  const fixed = at(FIXED_URL);
  const fixedRow = rows.find((r) => r.name === FIXED_URL);
  const paired = (base: Interleaved | null, label: string): string => {
    if (!fixed || !base) return '';
    const rs = fixed.rounds.map((v, i) => v / (base.rounds[i] as number));
    return `${label} per round ${rs.map((x) => x.toFixed(2)).join('/')} (median ${median(rs).toFixed(2)})`;
  };
  if (fixedRow) fixedRow.note = [fixedRow.note, paired(bare, 'x undici'), paired(ngx, 'x nginx')].filter(Boolean).join('; ');
  const lk10Row = rows[rows.length - 1] as Row;
  lk10Row.note = [lk10Row.note, `RSS ${rss(lk.pid).now.toFixed(0)} MiB`].filter(Boolean).join('; ');
  // The hot-path goal's ratio once more, free of the machine's drift: latchkey and the forwarder loaded at the same time.
  rows.push(
    await sideBySide(
      'latchkey bearer and bare undici forwarder, loaded at once',
      { pid: lk.pid, t: { origin: String(lk.proxy), path: '/i0/v1/items', headers: bearer } },
      { pid: floor.pid, t: { origin: `http://127.0.0.1:${floor.port}`, path: '/v1/items' } },
    ),
  );
  for (const direction of ['upload', 'download'] as const) {
    const t = await transfer(direction, `${lk.proxy}/i0/bulk`, bearer, TRANSFER_BYTES, lk.pid);
    rows.push({ name: `latchkey, ${TRANSFER_BYTES / 1024 / 1024} MiB ${direction}`, note: `${t.mibPerSecond.toFixed(0)} MiB/s, RSS growth ${t.rssGrowthMiB.toFixed(1)} MiB, status ${t.status}` });
  }
  await extraRows(String(lk.proxy), String(lk.admin), upstreamUrl, pki);
  await stop(lk.pid);

  const two = await latchkey('few', { LATCHKEY_WORKERS: '2' });
  lk = await two.run();
  await measure('latchkey, 2 workers, 10 at random', { origin: String(lk.proxy), path: '/v1/items', randomOf: 10, headers: bearer });
  await stop(lk.pid);

  // Many integrations: every plan cached first, then used at random.
  const many = await latchkey('many');
  await seedIntegrations(many.env.LATCHKEY_DB, many.env.LATCHKEY_MASTER_KEY_FILE, MANY, upstreamUrl);
  lk = await many.run();
  const startMs = lk.ms;
  const target: Target = { origin: String(lk.proxy), path: '/v1/items', randomOf: MANY, headers: bearer };
  await touchAll(target, MANY, CONNECTIONS);
  // Against the same process using only 10 of them (interleaved): the cost of the large working set alone, with the large heap on both sides.
  const [lkMany, sameTen] = (await interleaved([
    { name: `latchkey, ${MANY.toLocaleString('en')} integrations at random`, t: target },
    { name: `latchkey, 10 of those ${MANY.toLocaleString('en')} at random`, t: { ...target, randomOf: 10 } },
  ])) as [Interleaved, Interleaved];
  const manyRow = rows[rows.length - 2] as Row;
  manyRow.note = `RSS ${rss(lk.pid).now.toFixed(0)} MiB, ${(lkMany.rps / lk10.rps).toFixed(2)}x of 10, ${(lkMany.rps / sameTen.rps).toFixed(2)}x of 10 in this process; serve ready in ${startMs.toFixed(0)} ms`;
  await stop(lk.pid);
  // Start time on that database, alone on the machine (goal: under 500 ms).
  const serveStarts = await serveStartTimes(many.env, START_RUNS);
  rows.push({ name: `latchkey serve to /readyz, ${MANY.toLocaleString('en')} integrations`, note: describeStarts(serveStarts) });

  // The audit trail.
  const trail = await latchkey('trail');
  buildTrail(trail.env.LATCHKEY_DB, TRAIL_ROWS, TRAIL_INTEGRATIONS);
  lk = await trail.run();
  const reads = await timeAuditReads(String(lk.admin), adminKey, TRAIL_INTEGRATIONS, SHORT ? 5 : 30);
  rows.push({
    name: `GET /v1/audit?integrationId= (${(TRAIL_ROWS / 1e6).toFixed(2)}M calls / ${TRAIL_INTEGRATIONS.toLocaleString('en')} integrations)`,
    note: `median ${reads.median.toFixed(1)} ms, max ${reads.max.toFixed(1)} ms, ${reads.rows.toFixed(0)} rows a page (first read after the start: ${reads.first.toFixed(1)} ms)`,
  });
  await stop(lk.pid);

  // What a person waits for on an installed checkout (goal: under 1 s).
  rows.push({ name: 'npm start to /readyz, new data directory', note: describeStarts(await npmStartTimes(START_RUNS, adminKey)) });

  const ratio = (r: Row, base: LoadResult | null): string => (base && r.rps ? (r.rps / base.rps).toFixed(2) : '');
  console.log(`\n${CONNECTIONS} connections, ${SECONDS} s each (the goal rows: medians of ${ROUNDS} interleaved rounds), load from ${USE_WRK ? 'wrk' : 'autocannon'}, node ${process.version}${SHORT ? ', SHORT MODE (figures mean nothing)' : ''}\n`);
  console.log(`${'path'.padEnd(52)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'x nginx'.padStart(8)} ${'x undici'.padStart(8)} ${'err'.padStart(5)}  notes`);
  for (const r of rows) {
    const n = (v: number | undefined, d = 0) => (v === undefined ? '' : v.toFixed(d));
    console.log(
      `${r.name.padEnd(52)} ${n(r.rps).padStart(8)} ${n(r.p50, 2).padStart(7)} ${n(r.p99, 2).padStart(7)} ${ratio(r, ngx).padStart(8)} ${ratio(r, bare).padStart(8)} ${(r.rps === undefined ? '' : String((r.errors ?? 0) + (r.non2xx ?? 0))).padStart(5)}  ${r.note ?? ''}`,
    );
  }
  // Response redaction on small answers, off vs on (bench/redaction.ts).
  if (!SHORT) await redactionInProcess();
  for (const child of children) child.kill('SIGTERM');
  rmSync(workDir, { recursive: true, force: true });
  const failed = rows.some((r) => (r.errors ?? 0) > 0 || (r.non2xx ?? 0) > 0 || /status (?!200)/.test(r.note ?? ''));
  if (failed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  for (const child of children) child.kill('SIGKILL');
  rmSync(workDir, { recursive: true, force: true });
  process.exit(1);
});
