import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { decodeCursor } from './store/integrations.js';
import { readFileSync } from 'node:fs';
import { parseKeyChange, parseNewKey } from './access/api-key-input.js';
import { LatchkeyError } from './errors.js';

type KeyOptions = {
  name?: string;
  role?: string;
  integrations?: string;
  'expires-at'?: string;
  rules?: string;
  'rate-limit'?: string;
};

/** --rules: JSON text, @FILE holding it, or "none" (remove the rules). */
function rulesOption(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  if (value === 'none') return null;
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ConfigError('--rules: must be JSON (a list of {integration, methods?, paths?}), @FILE or none');
  }
}

/** --rate-limit: "60/60" (60 calls per 60 seconds) or "none". */
function rateLimitOption(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  if (value === 'none') return null;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m) throw new ConfigError('--rate-limit: must be REQUESTS/SECONDS (e.g. 60/60) or none');
  return { requests: Number(m[1]), perSeconds: Number(m[2]) };
}

/**
 * `latchkey keys ...` works on the database directly, so the first admin key
 * can be made without the HTTP API (and with no server running).
 */
export async function keysCommand(
  config: Config,
  args: string[],
  opts: KeyOptions,
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
        rules: rulesOption(opts.rules),
        rateLimit: rateLimitOption(opts['rate-limit']),
      });
      const { record, key } = store.apiKeys.create(input);
      out({ ...record, key });
    } else if (sub === 'update') {
      if (!arg) throw new ConfigError('keys update: KEY_ID is required');
      const change = parseKeyChange({
        name: opts.name,
        expiresAt: opts['expires-at'] === 'none' ? null : opts['expires-at'],
        rules: rulesOption(opts.rules),
        rateLimit: rateLimitOption(opts['rate-limit']),
      });
      const updated = store.apiKeys.update(arg, change);
      if (!updated) throw new ConfigError(`keys update: no active key ${arg}`);
      out(updated);
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
      throw new ConfigError('keys: expected create, list, update or revoke');
    }
  } catch (err) {
    if (err instanceof LatchkeyError) throw new ConfigError(err.message);
    throw err;
  } finally {
    store.close();
  }
}
