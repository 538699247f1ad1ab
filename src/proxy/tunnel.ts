/**
 * What a CONNECT tunnel fixes for every request inside it: the target, the
 * integration and the caller's key. It travels on the decrypted socket, so
 * the same request handler serves tunnelled and plain calls.
 */
import { isIP } from 'node:net';
import { canonicalIp } from '../hosts.js';

export interface ConnectTarget {
  /** host:port as CONNECTed, lower case, IPv6 in brackets. */
  target: string;
  /** The host without brackets or a trailing dot. */
  hostname: string;
  port: number;
}

export interface Tunnel extends ConnectTarget {
  integrationId: string;
  /**
   * The CONNECT's latchkey key (null when client auth is off). It is checked
   * again on every request inside, so revoking it ends a kept-alive tunnel's
   * use at once.
   */
  secret: string | null;
}

const tunnels = new WeakMap<object, Tunnel>();

export const attachTunnel = (socket: object, tunnel: Tunnel): void => {
  tunnels.set(socket, tunnel);
};

export const tunnelOf = (socket: object | null | undefined): Tunnel | null => (socket ? (tunnels.get(socket) ?? null) : null);

const NAME = /^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*$/;

/** A host name as compared: lower case, without a trailing dot. */
export const normalName = (name: string): string => name.toLowerCase().replace(/\.$/, '');

/** `host:port` with an IPv6 host in brackets; anything else (no port, a path, userinfo) is null. */
export function parseConnectTarget(value: string | undefined): ConnectTarget | null {
  if (!value || value.length > 300) return null;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/@?#\s]+)):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  // One spelling per address (hex, octal or short IPv4, uncompressed IPv6): policy compares canonical hosts.
  const ip = canonicalIp(m[1] ?? (m[2] as string));
  if (m[1] !== undefined && (ip === null || isIP(ip) !== 6)) return null;
  if (ip !== null) return { target: isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`, hostname: ip, port };
  const host = normalName(m[2] as string);
  if (!NAME.test(host) || host.length > 253) return null;
  return { target: `${host}:${port}`, hostname: host, port };
}

/**
 * Whether a request's Host (or absolute-form authority) names the tunnel's
 * target; without a port it means 443, the scheme inside a tunnel being https.
 */
export function sameAuthority(authority: string | undefined, tunnel: ConnectTarget): boolean {
  if (!authority) return false;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(authority.trim());
  if (!m) return false;
  const raw = m[1] ?? (m[2] as string);
  const host = canonicalIp(raw) ?? normalName(raw);
  const port = m[3] === undefined ? 443 : Number(m[3]);
  return host === tunnel.hostname && port === tunnel.port;
}
