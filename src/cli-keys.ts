import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { decodeCursor } from './store/integrations.js';
import { parseNewKey } from './access/api-key-input.js';
import { LatchkeyError } from './errors.js';

/**
 * `latchkey keys ...` works on the database directly, so the first admin key
 * can be made without the HTTP API (and with no server running).
 */
export async function keysCommand(
  config: Config,
  args: string[],
  opts: { name?: string; role?: string; integrations?: string; 'expires-at'?: string },
): Promise<void> {
  await initSodium();
  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  const out = (v: unknown): boolean => process.stdout.write(`${JSON.stringify(v)}\n`);
  try {
    const [sub, arg] = args;
    if (sub === 'create') {
      const input = parseNewKey({
        name: opts.name,
        role: opts.role,
        integrations: opts.integrations === undefined ? undefined : opts.integrations.split(',').map((s) => s.trim()),
        expiresAt: opts['expires-at'],
      });
      const { record, key } = store.apiKeys.create(input);
      out({ ...record, key });
    } else if (sub === 'list') {
      let after = 0;
      for (;;) {
        const page = store.apiKeys.list(200, after);
        page.data.forEach(out);
        if (!page.nextCursor) break;
        after = decodeCursor(page.nextCursor) ?? Number.MAX_SAFE_INTEGER;
      }
    } else if (sub === 'revoke') {
      if (!arg) throw new ConfigError('keys revoke: KEY_ID is required');
      if (!store.apiKeys.revoke(arg)) throw new ConfigError(`keys revoke: no active key ${arg}`);
      out({ revoked: arg });
    } else {
      throw new ConfigError('keys: expected create, list or revoke');
    }
  } catch (err) {
    if (err instanceof LatchkeyError) throw new ConfigError(err.message);
    throw err;
  } finally {
    store.close();
  }
}
