import { X509Certificate } from 'node:crypto';
import type { Config } from './config/load.js';
import { ConfigError } from './config/load.js';
import { initSodium } from './crypto/seal.js';
import { Store } from './store/store.js';
import { LocalCa } from './tls/ca.js';

/**
 * `latchkey ca print` writes the local CA certificate (PEM) to stdout, making
 * the CA first if this database has none; `latchkey ca rotate` replaces it.
 * Running latchkeys on the same database switch at their next tunnel.
 */
export async function caCommand(config: Config, args: string[]): Promise<void> {
  const [sub] = args;
  if (sub !== 'print' && sub !== 'rotate') throw new ConfigError('ca: expected print or rotate');
  await initSodium();
  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  try {
    if (sub === 'print') {
      const ca = LocalCa.open(store);
      process.stdout.write(await ca.certificatePem());
      return;
    }
    const rotated = await LocalCa.rotate(store);
    const cert = new X509Certificate(rotated.certPem);
    process.stdout.write(
      `${JSON.stringify({
        rotated: rotated.caId,
        subject: cert.subject,
        fingerprint256: cert.fingerprint256,
        notAfter: new Date(cert.validTo).toISOString(),
        note: 'clients must trust the new certificate (latchkey ca print); running latchkeys use it from their next tunnel',
      })}\n`,
    );
  } finally {
    store.close();
  }
}
