/**
 * Where credentials may go: base URL rules and the allowedHosts matcher. Both
 * the admin API (on write) and the proxy (on every call) use these.
 */
import { BlockList, isIP } from 'node:net';
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

/** A base URL as written by an admin: well formed, and never one that is not dialled. */
export function checkBaseUrl(value: string): ParsedBaseUrl | string {
  const base = parseBaseUrl(value);
  if (typeof base !== 'string' && isLinkLocal(base.hostname)) return 'must not be a link-local address (it is never dialled)';
  return base;
}

const HOST_ENTRY = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/;
const IPV6_ENTRY = /^\[([0-9a-f:.]+)\](:\d{1,5})?$/;

/** An allowedHosts entry: `host`, `host:port`, `*.domain`, an IPv4 address or a bracketed IPv6 one. */
export function checkHostEntry(entry: string): string | null {
  const e = entry.toLowerCase();
  const v6 = IPV6_ENTRY.exec(e);
  if (v6 && isIP(v6[1] as string) !== 6) return 'is not a valid IPv6 address';
  if (!v6 && !HOST_ENTRY.test(e)) return 'must be a host, host:port or *.domain';
  const port = /:\d{1,5}$/.test(e) ? Number(e.slice(e.lastIndexOf(':') + 1)) : null;
  if (port !== null && (port < 1 || port > 65535)) return 'port must be between 1 and 65535';
  if (isLinkLocal(splitHostPort(e).hostname)) return 'must not be a link-local address (it is never dialled)';
  return null;
}

/**
 * An entry or a request target in the one form policy checks compare: lower
 * case, and an IP literal in canonical notation (so 0xa9fea9fe, 2852039166 and
 * [::ffff:a9fe:a9fe] are all seen as the 169.254.169.254 they are).
 */
export function canonicalHostPort(hostPort: string): string {
  const { hostname, port } = splitHostPort(hostPort);
  if (hostname.startsWith('*.')) return hostPort.toLowerCase();
  const ip = canonicalIp(hostname);
  const host = ip === null ? hostname : isIP(ip) === 6 ? `[${ip}]` : ip;
  return port === null ? host : `${host}:${port}`;
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

/**
 * Why a call may not go to `target` (host[:port]) under these allowedHosts:
 * not listed, or link-local (never dialled, whatever the list says); null
 * when it may.
 */
export function hostRefusal(allowed: readonly string[], target: string, basePort: number): 'not-allowed' | 'link-local' | null {
  if (!hostAllowed(allowed, target, basePort)) return 'not-allowed';
  return isLinkLocal(splitHostPort(target).hostname) ? 'link-local' : null;
}

/** Link-local space (cloud metadata services live there), in every spelling a socket would accept. */
const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');
// IPv4-compatible (::169.254.x.y) and NAT64 (64:ff9b::169.254.x.y) spellings; IPv4-mapped ones
// (::ffff:169.254.x.y) are matched by the IPv4 rule itself.
LINK_LOCAL.addSubnet('::a9fe:0', 112, 'ipv6');
LINK_LOCAL.addSubnet('64:ff9b::a9fe:0', 112, 'ipv6');

/** Only strings that could be an IPv4 number in some notation reach the URL parser. */
const MAYBE_IPV4 = /^[0-9a-fx.]+$/i;

/**
 * The canonical form of an IP literal, or null when `host` is a name. IPv4 in
 * hex, octal, decimal or short form is read the way the WHATWG URL parser
 * (and inet_aton, which the resolver uses) reads it; IPv6 is compressed.
 */
export function canonicalIp(host: string): string | null {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  const family = isIP(h);
  if (family === 4) return h;
  if (family === 6) {
    // The URL parser compresses and writes mapped addresses in hex: one spelling per address.
    const zone = h.indexOf('%');
    const bare = zone < 0 ? h : h.slice(0, zone);
    try {
      return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
    } catch {
      return bare;
    }
  }
  if (!MAYBE_IPV4.test(h)) return null;
  try {
    const parsed = new URL(`http://${h}/`).hostname;
    return isIP(parsed) === 4 ? parsed : null;
  } catch {
    return null;
  }
}

/** Link-local addresses are never dialled, however they are written. */
/** Answers by address: BlockList.check builds a SocketAddress each time (about 1 % of a proxied call). */
const linkLocalMemo = new Map<string, boolean>();

export function isLinkLocal(address: string): boolean {
  let answer = linkLocalMemo.get(address);
  if (answer === undefined) {
    const ip = canonicalIp(address);
    answer = ip !== null && LINK_LOCAL.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
    // Bounded: hostnames come from callers in forward mode.
    if (linkLocalMemo.size >= 4096) linkLocalMemo.clear();
    linkLocalMemo.set(address, answer);
  }
  return answer;
}
