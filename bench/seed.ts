/**
 * Fills a database with N integrations (ids i0..i{N-1}), each with a bearer
 * auth record, through the store itself (sealed as latchkey seals them), in
 * one transaction. `node dist/bench/seed.js DB MASTER_KEY_FILE N UPSTREAM_URL`
 */
import { join } from 'node:path';
import { initSodium } from '../src/crypto/seal.js';
import { Store } from '../src/store/store.js';

/** The environment of a bench latchkey: database and key file in `dir`, both listeners on port 0. */
export function benchEnv(
  dir: string,
  adminKey: string,
  extra: Record<string, string> = {},
): Record<string, string> & { LATCHKEY_DB: string; LATCHKEY_MASTER_KEY_FILE: string } {
  return {
    LATCHKEY_DB: join(dir, 'latchkey.db'),
    LATCHKEY_MASTER_KEY_FILE: join(dir, 'master.key'),
    LATCHKEY_PROXY_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_ADDR: '127.0.0.1:0',
    LATCHKEY_ADMIN_KEY: adminKey,
    LATCHKEY_LOG_LEVEL: 'info',
    ...extra,
  };
}

export async function seedIntegrations(dbPath: string, masterKeyFile: string, count: number, baseUrl: string): Promise<void> {
  await initSodium();
  const store = Store.open({ dbPath, masterKey: undefined, masterKeyFile });
  try {
    store.db.transaction(() => {
      for (let i = 0; i < count; i++) {
        const integrationId = `i${i}`;
        store.integrations.create({ integrationId, name: integrationId, baseUrl, allowedHosts: null, headers: [] });
        // A realistic token length (40 characters, like a GitHub or OpenAI key): a token under
        // 8 characters is not redacted, and every row must pay the same response redaction.
        const token = `tok_${String(i).padStart(8, '0')}_${'s'.repeat(27)}`;
        store.authRecords.create(integrationId, 'BEARER_TOKEN', [], { secrets: { token }, apiKey: null });
      }
    })();
  } finally {
    store.close();
  }
}

if (process.argv[1]?.endsWith('seed.js')) {
  const [dbPath, keyFile, n, url] = process.argv.slice(2) as [string, string, string, string];
  await seedIntegrations(dbPath, keyFile, Number(n), url);
}
