import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a child latchkey with its database and key file in `dir`, both listeners on port 0. */
export function serverEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    LATCHKEY_DB: join(dir, 'latchkey.db'),
    LATCHKEY_MASTER_KEY_FILE: join(dir, 'master.key'),
    LATCHKEY_PROXY_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_ADDR: '127.0.0.1:0',
    LATCHKEY_LOG_LEVEL: 'info',
    ...extra,
  };
}

/** The compiled CLI: `npm test` builds before vitest runs, and a child process runs real JavaScript. */
export const compiledCli = (): string => fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [compiledCli(), ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`latchkey ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  proxyUrl: string;
  adminUrl: string;
  output: () => string;
  exited: Promise<number | null>;
  /** Stop reading the child's stdout, as a stuck log collector would. */
  stopReading: () => void;
}

/** `latchkey serve` as a child process; resolves once it logs "listening". */
export function startServer(env: Record<string, string>, timeoutMs = 30_000): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [compiledCli(), 'serve'], { env: { PATH: process.env.PATH ?? '', ...env } });
    let out = '';
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    // 'close', not 'exit': by then everything the child printed has been read.
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${out}`));
    }, timeoutMs);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out}`));
    });
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      out += `${line}\n`;
      // logFormat pretty: "12:00:00.000 INFO  listening  proxy=http://…  admin=http://…"
      const pretty = / listening {2}proxy=(\S+) {2}admin=(\S+)/.exec(line);
      if (pretty) {
        clearTimeout(timer);
        resolve({ child, proxyUrl: pretty[1] ?? '', adminUrl: pretty[2] ?? '', output: () => out, exited, stopReading: () => lines.pause() });
        return;
      }
      try {
        const rec = JSON.parse(line) as { msg?: string; proxy?: string; admin?: string };
        if (rec.msg === 'listening') {
          clearTimeout(timer);
          resolve({
            child,
            proxyUrl: rec.proxy ?? '',
            adminUrl: rec.admin ?? '',
            output: () => out,
            exited,
            stopReading: () => lines.pause(),
          });
        }
      } catch {
        // not a log line
      }
    });
  });
}
