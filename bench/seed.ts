/**
 * Fills a database with N integrations (ids i0..i{N-1}), each with a bearer
 * auth record, through the store itself (sealed as latchkey seals them), in
 * one transaction. `node dist/bench/seed.js DB MASTER_KEY_FILE N UPSTREAM_URL`
 */
import { initSodium } from '../src/crypto/seal.js';
import { Store } from '../src/store/store.js';

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
