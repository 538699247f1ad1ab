/**
 * The local CA's signing half (imported by tls/ca.ts at the first tunnel or
 * certificate request, with @peculiar/x509): signs the leaf certificates of
 * intercepted CONNECT tunnels. Keys are ECDSA P-256 through WebCrypto: generating a CA takes a
 * few milliseconds and a leaf needs no key generation at all, since every
 * leaf shares one key pair made at start (a leaf's key protects nothing the
 * CA's signature does not already vouch for, and it never leaves memory).
 *
 * The CA's private key is stored only sealed under the master key (see
 * store/local-ca.ts) and imported as a non-extractable WebCrypto key.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { base62 } from '../ids.js';
import type { Store } from '../store/store.js';
import type { NewCa, StoredCa } from '../store/local-ca.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const HOUR = 3600_000;
const CA_VALIDITY_MS = 5 * 365 * 24 * HOUR;
/** Leaves live a day, backdated an hour for clients whose clock is a little behind. */
const LEAF_VALIDITY_MS = 24 * HOUR;
const BACKDATE_MS = HOUR;
/** A cached leaf is replaced this long before it expires, so no client ever sees an expired one. */
const RENEW_BEFORE_MS = HOUR;
const DEFAULT_CACHE_SIZE = 1000;

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const pem = (label: string, der: ArrayBuffer | Uint8Array): string => {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${(b64.match(/.{1,64}/g) ?? []).join('\n')}\n-----END ${label}-----\n`;
};

/** A positive serial number of 128 random bits. */
const serialNumber = (): string => {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f;
  return bytes.toString('hex');
};

/** Makes a new CA: the certificate and its PKCS#8 private key (to be sealed, then zeroed). */
export async function generateCa(now = Date.now()): Promise<NewCa> {
  const caId = `ca_${base62(16)}`;
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=Latchkey local CA ${caId.slice(3, 11)}, O=Latchkey`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_VALIDITY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      // A CA that can sign leaves and nothing else: no intermediate CAs below it.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { caId, certPem: cert.toString('pem') + '\n', pkcs8 };
}

interface CaState {
  caId: string;
  certPem: string;
  cert: x509.X509Certificate;
  key: CryptoKey;
  authorityKeyId: x509.AuthorityKeyIdentifierExtension;
}

interface CachedLeaf {
  context: Promise<tls.SecureContext>;
  renewAt: number;
}

export interface CaSignerOptions {
  cacheSize?: number;
  /** Told about every leaf minted, with the milliseconds it took (metrics). */
  onMint?: (ms: number) => void;
}

export class CaSigner {
  private state: Promise<CaState>;
  private stateId: string;
  private checkedVersion = -1;
  private readonly leaves = new Map<string, CachedLeaf>();
  private readonly cacheSize: number;

  private constructor(
    private readonly store: Store,
    first: StoredCa,
    private readonly leafKeys: CryptoKeyPair,
    private readonly leafKeyPem: string,
    private readonly options: CaSignerOptions,
  ) {
    this.stateId = first.caId;
    this.state = this.load();
    this.cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
  }

  /** Generates the CA on first use of a database, then loads it. */
  static async open(store: Store, options: CaSignerOptions = {}): Promise<CaSigner> {
    const stored = store.localCa.current() ?? (await CaSigner.ensure(store));
    const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
    const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
    const ca = new CaSigner(store, stored, leafKeys, pem('PRIVATE KEY', der), options);
    der.fill(0);
    await ca.state;
    return ca;
  }

  private static async ensure(store: Store): Promise<StoredCa> {
    const fresh = await generateCa();
    try {
      return store.localCa.ensure(fresh);
    } finally {
      fresh.pkcs8.fill(0);
    }
  }

  /** Replaces the database's CA with a new one; running instances switch at their next tunnel. */
  static async rotate(store: Store): Promise<StoredCa> {
    const fresh = await generateCa();
    try {
      return store.localCa.replace(fresh);
    } finally {
      fresh.pkcs8.fill(0);
    }
  }

  private async load(): Promise<CaState> {
    const opened = this.store.localCa.openPrivateKey();
    const stored = this.store.localCa.current();
    if (!opened || !stored || opened.caId !== stored.caId) throw new Error('the local CA disappeared from the database');
    try {
      const key = await webcrypto.subtle.importKey('pkcs8', opened.pkcs8, ALG, false, ['sign']);
      const cert = new x509.X509Certificate(stored.certPem);
      return {
        caId: stored.caId,
        certPem: stored.certPem,
        cert,
        key,
        authorityKeyId: await x509.AuthorityKeyIdentifierExtension.create(await cert.publicKey.export()),
      };
    } finally {
      opened.pkcs8.fill(0);
    }
  }

  /**
   * The CA in use, reloaded when another process (`latchkey ca rotate`)
   * replaced it: checked whenever the database changed, at most once a turn.
   */
  private current(): Promise<CaState> {
    const v = this.store.version();
    if (v !== this.checkedVersion) {
      this.checkedVersion = v;
      const stored = this.store.localCa.current();
      if (stored && stored.caId !== this.stateId) {
        this.stateId = stored.caId;
        this.leaves.clear();
        this.state = this.load();
      }
    }
    return this.state;
  }

  async certificatePem(): Promise<string> {
    return (await this.current()).certPem;
  }

  /**
   * The TLS context for `host` (a DNS name or an IP address): cached, and
   * minted once even when many tunnels to a new host open at the same time.
   * The caller decides whether the host may have a certificate at all.
   */
  async contextFor(host: string): Promise<tls.SecureContext> {
    const ca = await this.current();
    const key = `${ca.caId}\u0000${host}`;
    const now = Date.now();
    const hit = this.leaves.get(key);
    if (hit && hit.renewAt > now) {
      // Least recently used goes first: a hit moves to the back.
      this.leaves.delete(key);
      this.leaves.set(key, hit);
      return hit.context;
    }
    const notAfter = Math.min(now + LEAF_VALIDITY_MS, ca.cert.notAfter.getTime());
    const context = this.mint(ca, host, now, notAfter);
    this.leaves.set(key, { context, renewAt: notAfter - RENEW_BEFORE_MS });
    context.catch(() => this.leaves.delete(key));
    while (this.leaves.size > this.cacheSize) {
      const oldest = this.leaves.keys().next().value;
      if (oldest === undefined) break;
      this.leaves.delete(oldest);
    }
    return context;
  }

  private async mint(ca: CaState, host: string, now: number, notAfter: number): Promise<tls.SecureContext> {
    const started = performance.now();
    const ip = isIP(host) !== 0;
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      // A CN is at most 64 characters; the SAN is what clients check anyway.
      subject: host.length <= 64 ? `CN=${host}` : 'O=Latchkey interception',
      issuer: ca.cert.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      signingAlgorithm: ALG,
      publicKey: this.leafKeys.publicKey,
      signingKey: ca.key,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }]),
        ca.authorityKeyId,
      ],
    });
    const context = tls.createSecureContext({
      key: this.leafKeyPem,
      cert: `${leaf.toString('pem')}\n${ca.certPem}`,
    });
    this.options.onMint?.(performance.now() - started);
    return context;
  }
}
