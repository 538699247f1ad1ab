import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The benchmark in its short mode, so it cannot rot: every row is produced and
 * every call through latchkey succeeded. Speed is not asserted (npm run bench measures).
 */
describe('npm run bench -- --short', () => {
  it('prints the whole table', async () => {
    const script = fileURLToPath(new URL('../../dist/bench/run.js', import.meta.url));
    const child = spawn(process.execPath, [script, '--short'], { env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, out).toBe(0);
    for (const row of [
      'upstream direct',
      'nginx',
      'bare undici forwarder',
      'latchkey bearer, one fixed URL',
      'latchkey, 10 integrations at random',
      'latchkey, 16 MiB upload',
      'latchkey, 16 MiB download',
      'latchkey, 2 workers, 10 at random',
      'latchkey, 1,000 integrations at random',
      'latchkey, 10 of those 1,000 at random',
      'GET /v1/audit?integrationId=',
      'latchkey, OAuth2 client credentials token',
      'leaf certificate mint',
    ]) {
      expect(out).toContain(row);
    }
    expect(out).toMatch(/x nginx\s+x undici/);
    expect(out).toMatch(/latchkey bearer and bare undici forwarder, loaded at once\s+[\d.]+x its req\/s; CPU a call \d+ vs \d+ µs: [\d.]+x its efficiency/);
    expect(out).toMatch(/RSS growth [\d.]+ MiB, status 200/);
    // How busy each Node.js server's main thread was during its goal rows (what bounds them on a small host).
    for (const row of ['bare undici forwarder', 'latchkey bearer, one fixed URL']) {
      expect(out).toMatch(new RegExp(`${row}\\s.*main thread \\d+ % busy`));
    }
    expect(out).toMatch(/latchkey, 10 integrations at random\s.*main thread \d+ % busy; RSS \d+ MiB/);
    expect(out).toMatch(/median [\d.]+ ms/);
    expect(out).toMatch(/rows a page \(first read after the start: [\d.]+ ms\)/);
    expect(out).toMatch(/latchkey serve to \/readyz, 1,000 integrations\s+median \d+ ms of 2/);
    expect(out).toMatch(/npm start to \/readyz, new data directory\s+median \d+ ms of 2/);
  }, 240_000);
});
