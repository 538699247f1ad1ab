/**
 * The local CA that signs the leaf certificates of intercepted CONNECT
 * tunnels; tls/ca-signer.ts does the X.509 work.
 *
 * Opened at its first use (the first intercepted tunnel, GET /ca.pem,
 * `latchkey ca print`), not at start: the X.509 library is a tenth of a
 * start, and most starts never intercept a tunnel. A new database gets its
 * CA at that first use; processes racing on one agree on the first CA
 * written (store/local-ca.ts `ensure`), and concurrent first tunnels of one
 * process wait for the same opening.
 */
import type { SecureContext } from 'node:tls';
import type { Store } from '../store/store.js';
import type { StoredCa } from '../store/local-ca.js';
import { lazyModule, once } from '../lazy.js';
import type { CaSigner, CaSignerOptions } from './ca-signer.js';

const signerModule = lazyModule('the local CA', () => import('./ca-signer.js'));

export type LocalCaOptions = CaSignerOptions;

export class LocalCa {
  /** The signer, opened (and the CA made, on a new database) at the first certificate asked for. */
  private readonly opened = once((): Promise<CaSigner> => signerModule().then((m) => m.CaSigner.open(this.store, this.options)));

  private constructor(
    private readonly store: Store,
    private readonly options: LocalCaOptions,
  ) {}

  /** Reads and generates nothing yet: that happens at the first certificate asked for. */
  static open(store: Store, options: LocalCaOptions = {}): LocalCa {
    return new LocalCa(store, options);
  }

  async certificatePem(): Promise<string> {
    return (await this.opened()).certificatePem();
  }

  /** The TLS context for `host`; see CaSigner.contextFor. */
  async contextFor(host: string): Promise<SecureContext> {
    return (await this.opened()).contextFor(host);
  }

  /** Replaces the database's CA with a new one; running instances switch at their next tunnel. */
  static async rotate(store: Store): Promise<StoredCa> {
    return (await signerModule()).CaSigner.rotate(store);
  }
}
