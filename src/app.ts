import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/load.js';
import type { Logger } from './log.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { KeyVerifier } from './access/principal.js';
import { TokenService } from './access/tokens.js';
import { Authenticator } from './access/credentials.js';
import { buildAdminServer } from './admin/server.js';

export interface RunningApp {
  proxyUrl: string;
  adminUrl: string;
  store: Store;
  stop: () => Promise<void>;
  /** After the grace period: drop the connections that are still open. */
  forceClose: () => void;
}

/** Where the generated bootstrap admin key goes: beside the database. */
export const adminKeyPath = (dbPath: string): string => join(dirname(dbPath), 'admin.key');

/**
 * With no admin key anywhere, nobody could ever manage this instance: make
 * one, keep only its hash, and hand the key over in a 0600 file (never a log).
 */
function ensureAdminKey(store: Store, config: Config, log: Logger): void {
  if (config.adminKey || store.apiKeys.hasActiveAdmin()) return;
  const { key, record } = store.apiKeys.create({ name: 'bootstrap', role: 'admin', integrations: ['*'], expiresAt: null });
  const file = adminKeyPath(config.db);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  log.warn({ file, keyId: record.keyId }, 'no admin key existed: a bootstrap admin key was written to the file');
}

const urlOf = (server: { address(): AddressInfo | string | null }): string => {
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
};

export async function startApp(config: Config, log: Logger): Promise<RunningApp> {
  await initSodium();
  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  if (store.masterKeySource === 'generated') {
    log.warn({ file: config.masterKeyFile }, 'no master key was given: a new one was generated into the file; back it up');
  }
  let admin: FastifyInstance | undefined;
  try {
    ensureAdminKey(store, config, log);
    const keys = new KeyVerifier(store, config.adminKey);
    const authn = new Authenticator(keys, new TokenService(config.jwtSecret));
    let ready = false;
    admin = buildAdminServer({
      store,
      authn,
      log,
      bodyLimit: 64 * 1024,
      audit: () => undefined,
      ready: () => ready,
    });
    await admin.listen({ host: config.adminAddress.host, port: config.adminAddress.port });
    const adminUrl = urlOf(admin.server);
    ready = true;
    const flush = setInterval(() => keys.flushLastUsed(), 5000);
    flush.unref();
    log.info({ admin: adminUrl, proxy: null }, 'listening');

    const app: FastifyInstance = admin;
    return {
      proxyUrl: '',
      adminUrl,
      store,
      stop: async () => {
        clearInterval(flush);
        await app.close();
        keys.flushLastUsed();
        store.close();
      },
      forceClose: () => {
        app.server.closeAllConnections();
      },
    };
  } catch (err) {
    await admin?.close();
    store.close();
    throw err;
  }
}
