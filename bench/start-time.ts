/**
 * Start time: from spawning a start until GET /readyz answers 200 (what a
 * health check or an orchestrator waits for), the median of several starts.
 *   - `npm start` in the repository, as a person runs it on an installed
 *     checkout (the staleness check, then `latchkey serve`), on a data
 *     directory of its own: the first start makes the database and the key;
 *   - `latchkey serve` (node dist/src/cli.js serve) on a given database.
 * Standalone: `node dist/bench/start-time.js [RUNS] [DATA_DIR]` prints the
 * `npm start` figure, and the `latchkey serve` one on DATA_DIR's database.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { median } from './load.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface StartTimes {
  median: number;
  /** Every start, in order (the first `npm start` is on a new database). */
  all: number[];
}

/** A port nobody listens on right now (bound and released: good enough for a benchmark). */
async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function readyAfter(url: string, exited: () => boolean, limitMs = 60_000): Promise<void> {
  const t0 = performance.now();
  while (performance.now() - t0 < limitMs) {
    if (exited()) throw new Error('the latchkey exited before it was ready');
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`${url} was not ready within ${limitMs} ms`);
}

/** Milliseconds from spawn to a 200 from /readyz, then a SIGTERM to the whole process group. */
async function timeOne(command: string, args: string[], env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(command, args, {
    cwd: root,
    env: { ...env, LATCHKEY_ADMIN_ADDR: `127.0.0.1:${port}` },
    // Its own process group: npm runs latchkey in a child of its own, and both must go.
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exit = once(child, 'exit');
  try {
    await readyAfter(`http://127.0.0.1:${port}/readyz`, () => child.exitCode !== null);
    return performance.now() - t0;
  } finally {
    if (child.exitCode === null) process.kill(-(child.pid as number), 'SIGTERM');
    await exit;
  }
}

/** `latchkey serve` on the database and key file of `env`, `runs` times. */
export async function serveStartTimes(env: Record<string, string>, runs: number): Promise<StartTimes> {
  const all: number[] = [];
  // Started the way bin/latchkey and `npm start` start it (the node flag: README "Performance").
  const args = ['--max-semi-space-size=64', join(root, 'dist', 'src', 'cli.js'), 'serve'];
  for (let i = 0; i < runs; i++) all.push(await timeOne(process.execPath, args, env));
  return { median: median(all), all };
}

/** `npm start` on a new data directory (kept for the later starts), `runs` times. */
export async function npmStartTimes(runs: number, adminKey: string): Promise<StartTimes> {
  // An installed checkout: built already (a no-op after `npm run bench`'s own build), so no start compiles.
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-npm-start-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    // npm wants a home for its cache and logs; no update check, nothing else sent anywhere.
    HOME: process.env.HOME ?? dir,
    npm_config_update_notifier: 'false',
    LATCHKEY_DB: join(dir, 'data', 'latchkey.db'),
    LATCHKEY_MASTER_KEY_FILE: join(dir, 'data', 'master.key'),
    LATCHKEY_PROXY_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_KEY: adminKey,
    LATCHKEY_LOG_LEVEL: 'info',
  };
  try {
    const all: number[] = [];
    for (let i = 0; i < runs; i++) all.push(await timeOne('npm', ['start'], env));
    return { median: median(all), all };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const describeStarts = (t: StartTimes): string => `median ${t.median.toFixed(0)} ms of ${t.all.length} (${t.all.map((x) => x.toFixed(0)).join(', ')})`;

if (process.argv[1]?.endsWith('start-time.js')) {
  const [runsArg, dir] = process.argv.slice(2);
  const runs = Number(runsArg ?? 5);
  const adminKey = `lk_${randomBytes(32).toString('base64url')}`;
  console.log(`npm start -> /readyz: ${describeStarts(await npmStartTimes(runs, adminKey))}`);
  if (dir) {
    // A data directory holding latchkey.db and master.key (bench/seed.ts makes one).
    const env = { PATH: process.env.PATH ?? '', LATCHKEY_DB: join(dir, 'latchkey.db'), LATCHKEY_MASTER_KEY_FILE: join(dir, 'master.key'), LATCHKEY_PROXY_ADDR: '127.0.0.1:0', LATCHKEY_ADMIN_KEY: adminKey };
    console.log(`latchkey serve (${dir}) -> /readyz: ${describeStarts(await serveStartTimes(env, runs))}`);
  }
}
