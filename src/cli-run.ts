/**
 * `latchkey run [--integrations a,b|*] [--ttl 12h] -- COMMAND [ARGS...]`:
 * runs a program with its HTTP(S) calls going through latchkey, with a key of
 * its own that expires and is revoked when the program exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants } from 'node:os';
import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { parseNewKey } from './access/api-key-input.js';
import { LatchkeyError } from './errors.js';
import { createLogger } from './log.js';
import { startApp, type RunningApp } from './app.js';
import { upstreamCa } from './proxy/tls.js';
import { LocalCa } from './tls/ca.js';
import { parseTtl, runEnvironment } from './run/env.js';

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** The compiled preload beside this file (dist/src/run/preload.js). */
const preloadUrl = (): string => pathToFileURL(fileURLToPath(new URL('./run/preload.js', import.meta.url))).href;

/**
 * Whether a latchkey answers at host:port: its proxy answers a bare request
 * with its own coded error. Something else listening there is an error, not a
 * reason to send the key to it.
 */
function probe(host: string, port: number): Promise<'latchkey' | 'none'> {
  return new Promise((resolve, reject) => {
    // Generous: a refused connection answers at once, and a busy latchkey may take a while to answer.
    const req = request({ host, port, path: '/', method: 'GET', timeout: 10_000 }, (res) => {
      res.resume();
      if (res.headers['x-latchkey-error']) resolve('latchkey');
      else reject(new ConfigError(`run: something other than latchkey listens at ${host}:${port}`));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') resolve('none');
      else reject(new ConfigError(`run: cannot reach ${host}:${port} (${err.code ?? err.message})`));
    });
    req.end();
  });
}

export interface RunOptions {
  integrations?: string;
  ttl?: string;
}

export async function runCommand(config: Config, opts: RunOptions, command: string[]): Promise<number> {
  const [file, ...args] = command;
  if (!file) throw new ConfigError('run: a command is required: latchkey run [--integrations a,b] [--ttl 12h] -- COMMAND [ARGS...]');
  const ttlMs = parseTtl(opts.ttl ?? '12h');
  if (ttlMs === null) throw new ConfigError('run: --ttl must be a number and a unit: 30s, 15m, 12h or 7d');

  await initSodium();
  const { host, port } = config.proxyAddress;
  // An address with port 0 can have nobody listening: a latchkey is started here then.
  const found = port === 0 ? 'none' : await probe(host, port);
  let app: RunningApp | null = null;
  let proxyHostPort = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (found === 'none') {
    // On an ephemeral port of the configured host: a second `latchkey run` must not come to depend on this one.
    const own = { ...config, proxyAddress: { host, port: 0 } };
    const quiet = process.env.LATCHKEY_LOG_LEVEL ? config.logLevel : 'warn';
    app = await startApp(own, createLogger(quiet, process.stderr), { admin: false });
    proxyHostPort = new URL(app.proxyUrl).host;
  }

  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-run-'));
  let keyId: string | null = null;
  const cleanup = async (): Promise<void> => {
    if (keyId) store.apiKeys.revoke(keyId);
    keyId = null;
    store.close();
    rmSync(dir, { recursive: true, force: true });
    await app?.stop();
    app = null;
  };
  try {
    let input;
    try {
      input = parseNewKey({
        name: `latchkey run: ${basename(file)}`.slice(0, 200),
        role: 'agent',
        integrations: opts.integrations === undefined ? ['*'] : opts.integrations.split(',').map((s) => s.trim()),
        expiresAt: new Date(Date.now() + ttlMs).toISOString(),
      });
    } catch (err) {
      throw err instanceof LatchkeyError ? new ConfigError(`run: ${err.message}`) : err;
    }
    const { record, key } = store.apiKeys.create(input);
    keyId = record.keyId;
    // The CA the listening latchkey signs tunnels with: made here if none has been needed yet (a
    // latchkey makes its CA at first use, and every process on the database agrees on the first one).
    const caPem = await LocalCa.open(store).certificatePem();
    // System roots plus latchkey's CA: the variables below replace a client's default store, not extend it.
    const bundle = join(dir, 'ca-bundle.pem');
    writeFileSync(bundle, `${[...upstreamCa(null), caPem].join('\n')}\n`, { mode: 0o600 });
    chmodSync(dir, 0o700);
    const env = runEnvironment(process.env, { proxyUrl: `http://auto:${key}@${proxyHostPort}`, caBundleFile: bundle, preloadUrl: preloadUrl() });
    return await spawnAndWait(file, args, env);
  } finally {
    await cleanup();
  }
}

/** Runs the command with the terminal's stdio, forwards signals, and resolves with its exit status. */
function spawnAndWait(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    // Listening before the command exists: it may run (and be signalled) before spawn() returns here,
    // and a signal with no listener yet would kill latchkey run and orphan the command. The
    // listeners run on a later turn, when `child` is set.
    let child: ChildProcess | undefined;
    const forward = (signal: NodeJS.Signals): void => {
      child?.kill(signal);
    };
    for (const s of FORWARDED_SIGNALS) process.on(s, forward);
    child = spawn(file, args, { stdio: 'inherit', env });
    const done = (status: number): void => {
      for (const s of FORWARDED_SIGNALS) process.removeListener(s, forward);
      resolve(status);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`latchkey run: cannot run ${file}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`);
      done(err.code === 'ENOENT' ? 127 : 126);
    });
    child.on('exit', (code, signal) => {
      // A command killed by a signal exits as shells report it: 128 + the signal number.
      done(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}
