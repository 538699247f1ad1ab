/**
 * Shared pieces of the token-credential tests: a latchkey config with a
 * short renewal margin, and an upstream that accepts only access tokens its
 * authorization server says are live.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startUpstream, type Upstream } from './upstream.js';

/** A config file in `dir` with the given oauth settings (the rest default). */
export function tokenConfig(dir: string, oauth: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ oauth, ...extra }));
  return file;
}

export const bearerOf = (req: IncomingMessage): string | null => {
  const v = req.headers.authorization;
  return v?.startsWith('Bearer ') ? v.slice(7) : null;
};

/**
 * Names a token without showing it: responses pass back through latchkey,
 * which redacts injected secrets, so a resource server never echoes one.
 */
export const tokenId = (token: string): string => createHash('sha256').update(token).digest('hex').slice(0, 16);

/** The raw token the upstream last saw (test-side only). */
export const lastToken = (up: Upstream): string => (up.seen.at(-1)?.headers.authorization ?? '').replace(/^Bearer /, '');

/**
 * A resource server: 200 naming the token it was called with (tokenId, so a
 * test can compare tokens) when `accept(token)` says yes, else 401. The body
 * is drained either way, its length reported.
 */
export function startResourceServer(accept: (token: string, req: IncomingMessage) => Promise<boolean> | boolean): Promise<Upstream> {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const token = bearerOf(req);
      void Promise.resolve(token ? accept(token, req) : false).then((ok) => {
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(JSON.stringify(ok ? { ok: true, token: tokenId(token as string), bytes } : { error: 'invalid_token', bytes }));
      });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
