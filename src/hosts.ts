/**
 * Where credentials may go: base URL rules and the allowedHosts matcher. Both
 * the admin API (on write) and the proxy (on every call) use these.
 */
import { isIP } from 'node:net';
import type { ErrorDetail } from './errors.js';

export interface ParsedBaseUrl {
  /** Normalised: origin plus path without a trailing slash. */
  href: string;
  protocol: 'http:' | 'https:';
  /** host[:port] as in URL.host, lower case, default port omitted. */
  host: string;
  hostname: string;
  port: number;
  pathPrefix: string;
}

export const defaultPort = (protocol: string): number => (protocol === 'https:' ? 443 : 80);

export function parseBaseUrl(value: string): ParsedBaseUrl | string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute http or https URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (url.username || url.password) return 'must not contain user information';
  if (url.search || value.includes('?')) return 'must not contain a query';
  if (url.hash || value.includes('#')) return 'must not contain a fragment';
  const pathPrefix = url.pathname.replace(/\/+$/, '');
  return {
    href: `${url.origin}${pathPrefix}`,
    protocol: url.protocol,
    host: url.host,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : defaultPort(url.protocol),
    pathPrefix,
  };
}

const HOST_ENTRY = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
const IPV6_ENTRY = /^\[([0-9a-f:.]+)\](:\d{1,5})?$/;

/** An allowedHosts entry: `host`, `host:port`, `*.domain`, an IPv4 address or a bracketed IPv6 one. */
export function checkHostEntry(entry: string): string | null {
  const e = entry.toLowerCase();
  const v6 = IPV6_ENTRY.exec(e);
  if (v6) return isIP(v6[1] as string) === 6 ? null : 'is not a valid IPv6 address';
  if (!HOST_ENTRY.test(e)) return 'must be a host, host:port or *.domain';
  const port = e.includes(':') ? Number(e.slice(e.lastIndexOf(':') + 1)) : null;
  if (port !== null && (port < 1 || port > 65535)) return 'port must be between 1 and 65535';
  return null;
}

export function checkAllowedHosts(hosts: string[]): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  hosts.forEach((h, i) => {
    const problem = checkHostEntry(h);
    if (problem) details.push({ field: `allowedHosts[${i}]`, problem });
  });
  return details;
}

function splitHostPort(hostPort: string): { hostname: string; port: number | null } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostPort.toLowerCase());
  if (!m) return { hostname: hostPort.toLowerCase(), port: null };
  return { hostname: m[1] as string, port: m[2] === undefined ? null : Number(m[2]) };
}

/**
 * Whether `target` (host[:port]) may receive this integration's credentials.
 * An entry without a port allows only the base URL's port, so a credential
 * for api.example.com:443 is never sent to a different service on port 8080
 * of the same host unless an entry says so. `*.example.com` matches
 * subdomains, never the apex.
 */
export function hostAllowed(allowed: readonly string[], target: string, basePort: number): boolean {
  const t = splitHostPort(target);
  const port = t.port ?? basePort;
  return allowed.some((entry) => {
    const e = splitHostPort(entry);
    if ((e.port ?? basePort) !== port) return false;
    if (e.hostname.startsWith('*.')) {
      const suffix = e.hostname.slice(1);
      return t.hostname.endsWith(suffix) && t.hostname.length > suffix.length;
    }
    return e.hostname === t.hostname;
  });
}

/** Link-local addresses (cloud metadata services live there) are never dialled. */
export function isLinkLocal(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  if (isIP(a) === 4) return a.startsWith('169.254.');
  if (isIP(a) === 6) {
    if (/^fe[89ab][0-9a-f]:/.test(a)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
    return mapped ? (mapped[1] as string).startsWith('169.254.') : false;
  }
  return false;
}
