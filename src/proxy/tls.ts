import { readFileSync, existsSync } from 'node:fs';
import tls from 'node:tls';

/** Debian/Ubuntu, RHEL/Fedora, Alpine and macOS-Homebrew bundle locations. */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
];

const readPem = (path: string): string[] => {
  const text = readFileSync(path, 'utf8');
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
};

/**
 * The CAs upstream certificates are checked against: Node's bundled roots, the
 * system store, NODE_EXTRA_CA_CERTS and the optional config CA file. Passing
 * `ca` replaces Node's defaults, which is why every source is listed here.
 */
export function upstreamCa(caFile: string | null): string[] {
  const certs = new Set<string>(tls.rootCertificates);
  const system = SYSTEM_BUNDLES.find((p) => existsSync(p));
  if (system) for (const c of readPem(system)) certs.add(c);
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra && existsSync(extra)) for (const c of readPem(extra)) certs.add(c);
  if (caFile) for (const c of readPem(caFile)) certs.add(c);
  return [...certs];
}
