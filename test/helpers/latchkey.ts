import { Writable } from 'node:stream';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startApp, type AppHooks, type RunningApp } from '../../src/app.js';
import { adminClient, type AdminClient } from './http.js';
import { tmpDir } from './tmp.js';

export interface TestLatchkey extends RunningApp {
  dir: string;
  dbPath: string;
  adminKey: string;
  admin: AdminClient;
  /** Everything logged so far (debug level), as text. */
  logs: () => string;
  close: () => Promise<void>;
}

export const newAdminKey = (): string => `lk_${randomBytes(32).toString('base64url')}`;

/** A real latchkey, in this process, on port 0, with a fresh database in a temp dir. */
export async function startLatchkey(env: Record<string, string> = {}, dir?: string, hooks: AppHooks = {}): Promise<TestLatchkey> {
  const tmp = dir ? { path: dir, cleanup: () => undefined } : tmpDir();
  const adminKey = env.LATCHKEY_ADMIN_KEY ?? newAdminKey();
  const fullEnv = {
    LATCHKEY_DB: join(tmp.path, 'latchkey.db'),
    LATCHKEY_MASTER_KEY_FILE: join(tmp.path, 'master.key'),
    LATCHKEY_PROXY_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_ADDR: '127.0.0.1:0',
    LATCHKEY_LOG_LEVEL: 'debug',
    LATCHKEY_ADMIN_KEY: adminKey,
    ...env,
  };
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const config = loadConfig(fullEnv);
  const app = await startApp(config, createLogger(config.logLevel, sink), hooks);
  return {
    ...app,
    dir: tmp.path,
    dbPath: fullEnv.LATCHKEY_DB,
    adminKey,
    admin: adminClient(app.adminUrl, adminKey),
    logs: () => chunks.join(''),
    close: async () => {
      await app.stop();
      tmp.cleanup();
    },
  };
}
