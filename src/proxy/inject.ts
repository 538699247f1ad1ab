/**
 * Building the upstream request: pure functions over headers and paths.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP } from '../credentials/headers.js';
import type { AuthPlan } from './plans.js';

/** Where the client's own latchkey credential was found, so it can be removed. */
export type ClientKeyPlace =
  | { kind: 'proxy-authorization' }
  | { kind: 'header'; name: string }
  | { kind: 'query'; name: string };

/**
 * The headers sent upstream: the client's, minus hop-by-hop ones (and any the
 * Connection header names), Proxy-Authorization, every X-Latchkey-* header,
 * Host, and the client credential; then the plan's headers replace any
 * same-named ones, so a credential is never sent twice.
 */
export function upstreamHeaders(
  incoming: IncomingHttpHeaders,
  plan: AuthPlan,
  clientKeyHeaders: readonly string[],
): Record<string, string | string[]> {
  // Most clients send none or "keep-alive" (itself hop-by-hop): no set to build then.
  const connection = incoming.connection?.toLowerCase();
  const connectionNamed =
    connection === undefined || connection === 'keep-alive'
      ? null
      : new Set(
          connection
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        );
  const out: Record<string, string | string[]> = {};
  // for-in, not Object.entries: this runs on every call.
  for (const name in incoming) {
    const value = incoming[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP.has(name) || connectionNamed?.has(name)) continue;
    // undici refuses Expect; Node already answered 100-continue to the client.
    if (name === 'host' || name === 'expect' || name.startsWith('x-latchkey-') || clientKeyHeaders.includes(name)) continue;
    out[name] = value;
  }
  for (const [name, value] of plan.headers) out[name] = value;
  return out;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** What an upstream may take for a path separator: "/", and "%2F", "%5C" or "\\" once decoded. */
const SEPARATOR = /\/|%2f|%5c|\\/gi;

/**
 * The path that goes upstream below an integration's base path: RFC 3986
 * dot-segment removal on a path rooted at "/", where encoded dots (%2e) count
 * as dots and encoded slashes or backslashes (%2f, %5c, "\\") count as
 * separators, because some upstreams decode them before resolving. So
 * "/../admin" and "/..%2f..%2fadmin" can never climb above the base path.
 * Segments that are not dot segments keep their bytes and their separators
 * (GitLab's "group%2Fproject" still reaches GitLab as sent). Request rules
 * match the result of this function, so they check what is actually sent.
 */
export function normalizeUpstreamPath(path: string): string {
  // Fast path: without a dot, plain or encoded, there is no dot segment.
  if (!path.includes('.') && !/%2e/i.test(path)) return path;
  const rooted = path.startsWith('/') ? path : `/${path}`;
  // [separator, segment] pairs, in order; the path starts with a separator.
  const pairs: Array<[string, string]> = [];
  let sep: string | null = null;
  let last = 0;
  for (const m of rooted.matchAll(SEPARATOR)) {
    if (sep !== null) pairs.push([sep, rooted.slice(last, m.index)]);
    sep = m[0];
    last = m.index + m[0].length;
  }
  pairs.push([sep ?? '/', rooted.slice(last)]);
  const out: Array<[string, string]> = [];
  pairs.forEach(([separator, seg], i) => {
    const decoded = decodeSegment(seg);
    const isLast = i === pairs.length - 1;
    if (decoded === '.' || decoded === '..') {
      if (decoded === '..') out.pop();
      if (isLast) out.push(['/', '']);
    } else {
      out.push([separator, seg]);
    }
  });
  if (out.length === 0) return '/';
  // The first separator is always a plain "/": the path stays rooted below the base.
  return out.map(([separator, seg], i) => `${i === 0 ? '/' : separator}${seg}`).join('');
}

/**
 * Sets the plan's query parameters: a same-named parameter is replaced where
 * it stands (further copies and the client key's parameter are dropped), a new
 * one is appended; every other parameter keeps its place and its encoding.
 */
export function injectQuery(query: string, set: Array<[string, string]>, remove: readonly string[]): string {
  if (set.length === 0 && remove.length === 0) return query;
  const values = new Map(set);
  const placed = new Set<string>();
  const out: string[] = [];
  for (const pair of query.split('&')) {
    if (pair.length === 0) continue;
    const name = decodeQueryName(pair);
    const value = values.get(name);
    if (value !== undefined) {
      if (!placed.has(name)) out.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
      placed.add(name);
    } else if (!remove.includes(name)) {
      out.push(pair);
    }
  }
  for (const [name, value] of set) {
    if (!placed.has(name)) out.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  }
  return out.join('&');
}

export function decodeQueryName(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = eq < 0 ? pair : pair.slice(0, eq);
  return decodeSegment(raw.replace(/\+/g, ' '));
}

export function queryValue(query: string, name: string): string | undefined {
  for (const pair of query.split('&')) {
    if (decodeQueryName(pair) !== name) continue;
    const eq = pair.indexOf('=');
    return eq < 0 ? '' : decodeSegment(pair.slice(eq + 1).replace(/\+/g, ' '));
  }
  return undefined;
}

/** Splits "path?query" without decoding either. */
export function splitPathQuery(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}
