/**
 * The cost of response redaction: the same latchkey, the same credential
 * (long enough to be redacted), one integration with redactResponses on and
 * one with it off, on a tiny JSON answer and on a 1 MiB JSON answer. Neither
 * answer holds the secret: this is the price every call pays for the search.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export interface RedactionBenchDeps {
  here: string;
  proxyUrl: string;
  adminKey: string;
  start: (args: string[], key: string) => Promise<Record<string, string | number>>;
  load: (name: string, url: string, headers?: Record<string, string>) => Promise<Row>;
  admin: (path: string, body: unknown) => Promise<void>;
  /** The latchkey process: its CPU time per call is steadier than req/s on a shared machine. */
  pid: number | undefined;
  seconds: number;
}

/** User + system CPU seconds of a process so far (Linux /proc; 0 elsewhere). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export async function redactionBench(d: RedactionBenchDeps): Promise<Row[]> {
  const up = await d.start([join(d.here, 'upstream-json.js')], 'port');
  const url = `http://127.0.0.1:${up.port}`;
  for (const [id, redactResponses] of [['redact-on', true], ['redact-off', false]] as const) {
    await d.admin('/v1/integrations', { integrationId: id, baseUrl: url, redactResponses });
    await d.admin(`/v1/integrations/${id}/auth`, { authType: 'BEARER_TOKEN', token: 'bench-token-long-enough-to-redact' });
  }
  const auth = { authorization: `Bearer ${d.adminKey}` };
  const measured: Array<Row & { cpuUs: number }> = [];
  const run = async (name: string, path: string): Promise<void> => {
    const before = cpuSeconds(d.pid);
    const row = await d.load(name, `${d.proxyUrl}${path}`, auth);
    // load() runs a 2 s warm-up first at about the same rate.
    const calls = row.rps * (d.seconds + 2);
    measured.push({ ...row, cpuUs: calls > 0 ? ((cpuSeconds(d.pid) - before) / calls) * 1e6 : NaN });
  };
  // Off and on alternate, so a neighbour's load drifts over both alike; medians are compared.
  for (let round = 0; round < 3; round++) {
    await run('(g) small, redaction off', '/redact-off/small');
    await run('(h) small, redaction on', '/redact-on/small');
  }
  for (let round = 0; round < 2; round++) {
    await run('(i) 1 MiB JSON, redaction off', '/redact-off/big');
    await run('(j) 1 MiB JSON, redaction on', '/redact-on/big');
  }
  console.log(`\nresponse redaction (same latchkey; bodies hold no secret; big body ${up.bigBytes} bytes)`);
  console.log('path                              req/s      p50 ms   p99 ms   errors  non-2xx  latchkey CPU µs/call');
  for (const r of measured) {
    console.log(
      `${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(8)} ${String(r.p50).padStart(9)} ${String(r.p99).padStart(8)} ${String(r.errors).padStart(8)} ${String(r.non2xx).padStart(8)} ${r.cpuUs.toFixed(0).padStart(12)}`,
    );
  }
  const median = (prefix: string, key: 'rps' | 'cpuUs'): number => {
    const vs = measured.filter((r) => r.name.startsWith(prefix)).map((r) => r[key]).sort((x, y) => x - y);
    const mid = Math.floor(vs.length / 2);
    return vs.length % 2 ? (vs[mid] as number) : ((vs[mid - 1] as number) + (vs[mid] as number)) / 2;
  };
  const change = (off: number, on: number): string => `${on >= off ? '+' : ''}${(((on - off) / off) * 100).toFixed(1)}%`;
  for (const [label, off, on] of [['small answers', '(g)', '(h)'], ['1 MiB answers', '(i)', '(j)']] as const) {
    console.log(
      `redaction on vs off, ${label}: req/s ${change(median(off, 'rps'), median(on, 'rps'))}, latchkey CPU per call ${change(median(off, 'cpuUs'), median(on, 'cpuUs'))}`,
    );
  }
  await redactionInProcess();
  return measured;
}

/**
 * The steadier figure on a shared machine: latchkey, upstream and client in
 * this one process, the same calls with redaction off and on, alternating
 * five times; CPU time of the process per call (client and upstream included,
 * the same for both), medians compared.
 */
export async function redactionInProcess(): Promise<{ off: number; on: number }> {
  const http = await import('node:http');
  const { Writable } = await import('node:stream');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { Pool } = await import('undici');
  const { loadConfig } = await import('../src/config/load.js');
  const { createLogger } = await import('../src/log.js');
  const { startApp } = await import('../src/app.js');
  const { benchEnv } = await import('./seed.js');
  const body = Buffer.from('{"ok":true}');
  const up = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redaction-'));
  const adminKey = `lk_${'r'.repeat(43)}`;
  const config = loadConfig(benchEnv(dir, adminKey));
  const app = await startApp(config, createLogger('info', new Writable({ write: (_c, _e, cb) => cb() })));
  const port = (up.address() as { port: number }).port;
  for (const [id, redactResponses] of [['on', true], ['off', false]] as const) {
    const post = (path: string, b: unknown) =>
      fetch(`${app.adminUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
    await post('/v1/integrations', { integrationId: id, baseUrl: `http://127.0.0.1:${port}`, redactResponses });
    await post(`/v1/integrations/${id}/auth`, { authType: 'BEARER_TOKEN', token: 'bench-token-long-enough-to-redact' });
  }
  const pool = new Pool(app.proxyUrl, { connections: 8 });
  const run = async (id: string, n: number): Promise<number> => {
    const before = process.cpuUsage();
    let batch: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) {
      batch.push(pool.request({ path: `/${id}/x`, method: 'GET', headers: { authorization: `Bearer ${adminKey}` } }).then((r) => r.body.dump()));
      if (batch.length === 16) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  };
  await run('off', 3000);
  await run('on', 3000);
  const off: number[] = [];
  const on: number[] = [];
  for (let i = 0; i < 5; i++) {
    off.push(await run('off', 8000));
    on.push(await run('on', 8000));
  }
  await pool.close();
  await app.stop();
  up.close();
  rmSync(dir, { recursive: true, force: true });
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[2] as number;
  const result = { off: median(off), on: median(on) };
  console.log(
    `in-process, small answers, CPU per call (client + latchkey + upstream): off ${result.off.toFixed(0)} µs, on ${result.on.toFixed(0)} µs (${(((result.on - result.off) / result.off) * 100).toFixed(1)}%)`,
  );
  return result;
}
