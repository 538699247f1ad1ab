/**
 * Load generation: wrk when it is on the PATH (C, leaves more of the cores to
 * the servers measured), else autocannon in this process. A target is a fixed
 * URL or `count` integrations `i0…` picked at random per request.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';

/** The middle value (the upper of the two middle ones for an even count). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export interface Target {
  /** Origin, e.g. http://127.0.0.1:7480 */
  origin: string;
  /** A fixed path, or with `randomOf`, the path after /i{n}. */
  path: string;
  /** Pick /i{0..randomOf-1}{path} at random for every request. */
  randomOf?: number;
  headers?: Record<string, string>;
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
export const USE_WRK = hasWrk();

const toMs = (v: string): number => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
};

function wrkArgs(t: Target, seconds: number, connections: number, workDir: string): string[] {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(t.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (t.randomOf) {
    const script = join(workDir, `random-${t.randomOf}.lua`);
    writeFileSync(
      script,
      `math.randomseed(os.time())\nrequest = function()\n  return wrk.format(nil, "/i" .. math.random(0, ${t.randomOf - 1}) .. "${t.path}")\nend\n`,
    );
    args.push('-s', script);
  }
  return [...args, `${t.origin}${t.randomOf ? '/' : t.path}`];
}

function wrkResult(out: string): LoadResult {
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

function wrk(t: Target, seconds: number, connections: number, workDir: string): LoadResult {
  return wrkResult(execFileSync('wrk', wrkArgs(t, seconds, connections, workDir), { encoding: 'utf8' }));
}

const execFileAsync = promisify(execFile);
const wrkAsync = async (t: Target, seconds: number, connections: number, workDir: string): Promise<LoadResult> =>
  wrkResult((await execFileAsync('wrk', wrkArgs(t, seconds, connections, workDir), { encoding: 'utf8' })).stdout);

function cannonOptions(t: Target, connections: number): autocannon.Options {
  const base: autocannon.Options = { url: `${t.origin}${t.path}`, connections, headers: t.headers ?? {} };
  if (!t.randomOf) return base;
  const n = t.randomOf;
  return {
    ...base,
    url: t.origin,
    requests: [{ setupRequest: (req) => ({ ...req, path: `/i${Math.floor(Math.random() * n)}${t.path}` }) }],
  };
}

/** A short warm-up (JIT, connection pools), then the measured run (`measuring` is told when it starts). */
export async function load(t: Target, seconds: number, connections: number, workDir: string, measuring?: () => void): Promise<LoadResult> {
  const warm = Math.max(1, Math.round(seconds / 5));
  if (USE_WRK) {
    wrk(t, warm, connections, workDir);
    measuring?.();
    return wrk(t, seconds, connections, workDir);
  }
  await cannon(t, warm, connections);
  measuring?.();
  return cannon(t, seconds, connections);
}

const cannon = async (t: Target, seconds: number, connections: number): Promise<LoadResult> => {
  const r = await autocannon({ ...cannonOptions(t, connections), duration: seconds });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
};

/**
 * Several targets loaded at the same time, each by its own load generator
 * (after a warm-up, also together): servers measured side by side share the
 * machine's speed of that moment, which drifts by tens of percent within a
 * minute on a shared host, so their ratio does not drift with it.
 */
export async function loadTogether(ts: Target[], seconds: number, connections: number, workDir: string, measuring?: () => void): Promise<LoadResult[]> {
  const warm = Math.max(1, Math.round(seconds / 5));
  const one = (t: Target, s: number) => (USE_WRK ? wrkAsync(t, s, connections, workDir) : cannon(t, s, connections));
  await Promise.all(ts.map((t) => one(t, warm)));
  measuring?.();
  return Promise.all(ts.map((t) => one(t, seconds)));
}

/** Every integration i0…i{count-1} once, in order (fills the plan cache before it is measured). */
export async function touchAll(t: Target, count: number, connections: number): Promise<void> {
  let next = 0;
  await autocannon({
    url: t.origin,
    connections,
    headers: t.headers ?? {},
    amount: count,
    requests: [{ setupRequest: (req) => ({ ...req, path: `/i${next++ % count}${t.path}` }) }],
  });
}
