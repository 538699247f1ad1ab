/**
 * The web console: server-rendered pages on the admin listener under /console.
 *
 * Security decisions (docs/security.md says the same):
 * - sign-in exchanges an admin key for a session id in an HttpOnly,
 *   SameSite=Strict cookie scoped to /console; the key is never stored;
 * - every POST must come from the listener's own origin (Origin, else Referer;
 *   neither: refused) and carry the session's CSRF token;
 * - a strict CSP without inline scripts or styles; nothing loads from elsewhere;
 * - every action goes through the admin API itself (fastify inject), so the
 *   console has the API's validation, audit and views, and never sees more.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LatchkeyError } from '../errors.js';
import { auditTime } from '../store/audit.js';
import { packageRoot } from '../catalog/catalog.js';
import type { AdminContext } from '../admin/context.js';
import { ConsoleSessions, INTERNAL_HEADER, type Session } from './sessions.js';
import { document, flashBox, html, type Flash } from './html.js';
import { integrationPages } from './pages-integrations.js';
import { accessPages } from './pages-access.js';
import { observePages } from './pages-observe.js';
import { catalogPages } from './pages-catalog.js';
import { apiPages } from './pages-api.js';
import { caPages } from './pages-ca.js';

export const SESSION_COOKIE = 'latchkey_session';
export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: Session | null;
  }
}

export interface ApiAnswer {
  status: number;
  // The admin API's JSON answer, read field by field by the pages.
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** What each page module gets: the admin API (as the session's key) and the page helpers. */
export interface ConsoleKit {
  ctx: AdminContext;
  api: (req: FastifyRequest, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => Promise<ApiAnswer>;
  /** One-shot message shown on the next page. */
  flash: (req: FastifyRequest, flash: Flash) => void;
  takeFlash: (req: FastifyRequest) => Flash | null;
  /** The error text of a failed API answer, with the fields it names. */
  problem: (a: ApiAnswer) => string;
  /** The JSON body schema a route validates with (from the OpenAPI document): optional fields show when the API has them. */
  bodySchema: (method: string, path: string) => Promise<Record<string, unknown> | null>;
}

const ASSETS: Record<string, string> = {
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'favicon.svg': 'image/svg+xml',
};

function cookieOf(req: FastifyRequest): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) return rest.join('=');
  }
  return undefined;
}

const LOOPBACK = (host: string): boolean => host === '::1' || host === '::' || host === '0.0.0.0' || /^127\./.test(host) || host === 'localhost';

/** The origins a console form may come from: this listener's own address (and its loopback names), plus config. */
function allowedOrigins(app: FastifyInstance, extra: string[]): Set<string> {
  const a = app.server.address() as AddressInfo | null;
  const out = new Set(extra);
  if (!a) return out;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  out.add(`http://${host}:${a.port}`);
  if (LOOPBACK(a.address)) for (const h of ['127.0.0.1', 'localhost', '[::1]']) out.add(`http://${h}:${a.port}`);
  return out;
}

function requestOrigin(req: FastifyRequest): string | null {
  const origin = req.headers.origin;
  if (typeof origin === 'string' && origin !== 'null') return origin;
  const referer = req.headers.referer;
  if (typeof referer === 'string') {
    try {
      return new URL(referer).origin;
    } catch {
      return null;
    }
  }
  return null;
}

export function consoleRoutes(root: FastifyInstance, ctx: AdminContext, sessions: ConsoleSessions, apiDocument: () => Promise<Record<string, unknown>>): void {
  const assets = new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(join(packageRoot(), 'src', 'console', 'assets', name), 'utf8')]));

  const kit: ConsoleKit = {
    ctx,
    api: async (req, method, url, body) => {
      const res = await root.inject({
        method,
        url,
        headers: {
          [INTERNAL_HEADER]: sessions.internalHeader(req.consoleSession as Session),
          'x-request-id': req.id,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      return { status: res.statusCode, json: res.body ? (JSON.parse(res.body) as unknown) : null };
    },
    flash: (req, flash) => {
      if (req.consoleSession) req.consoleSession.flash = flash;
    },
    takeFlash: (req) => {
      const f = req.consoleSession?.flash ?? null;
      if (req.consoleSession) req.consoleSession.flash = null;
      return f;
    },
    problem: (a) => {
      const e = a.json?.error as { code?: string; message?: string } | undefined;
      return e ? `${e.message ?? 'failed'} (${e.code ?? a.status})` : `failed (${a.status})`;
    },
    bodySchema: async (method, path) => {
      const paths = (await apiDocument()).paths as Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> } }>>;
      return paths[path]?.[method.toLowerCase()]?.requestBody?.content?.['application/json']?.schema ?? null;
    },
  };

  void root.register(async (app) => {
    app.decorateRequest('consoleSession', null);
    // Forms post urlencoded; parsed here only, the admin API still takes JSON only.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, new URLSearchParams(body as string));
    });

    app.addHook('onRequest', async (req, reply) => {
      reply.header('content-security-policy', CSP);
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'same-origin');
      reply.header('cross-origin-opener-policy', 'same-origin');
      reply.header('cross-origin-resource-policy', 'same-origin');
      if (req.url.startsWith('/console/assets/')) return;
      if (req.method === 'POST') {
        const origin = requestOrigin(req);
        if (!origin || !allowedOrigins(root, ctx.consoleOrigins).has(origin)) {
          throw new LatchkeyError('FORBIDDEN', 'console forms are accepted from the console itself only (Origin check)');
        }
      }
      req.consoleSession = sessions.get(cookieOf(req));
      // For the admin request log line: who was signed in.
      if (req.consoleSession) req.principal = { keyId: req.consoleSession.keyId, name: req.consoleSession.name, role: 'admin', integrations: ['*'], kind: 'key', rules: null, rateLimit: null };
      const open = req.url === '/console/sign-in' || req.url.startsWith('/console/sign-in?');
      if (!req.consoleSession && !open) {
        if (req.method === 'GET' && !(req.url.split('?')[0] ?? '').endsWith('.json')) return reply.redirect('/console/sign-in', 303);
        throw new LatchkeyError('AUTH_REQUIRED', 'sign in to the console first');
      }
    });
    // Every state-changing form carries the session's CSRF token (beside the Origin check).
    app.addHook('preHandler', async (req) => {
      // Sign-in has no session yet (the Origin check guards it); every other POST needs the token.
      if (req.method !== 'POST' || !req.consoleSession || req.url === '/console/sign-in') return;
      const token = (req.body as URLSearchParams | undefined)?.get?.('_csrf');
      if (token !== req.consoleSession.csrf) throw new LatchkeyError('FORBIDDEN', 'the form is stale or was not sent by the console (CSRF token)');
    });

    app.get<{ Params: { name: string } }>('/console/assets/:name', async (req, reply) => {
      const body = assets.get(req.params.name);
      const type = ASSETS[req.params.name];
      if (!body || !type) throw new LatchkeyError('NOT_FOUND', 'no such asset');
      return reply.type(type).send(body);
    });

    app.get('/console', async (_req, reply) => reply.redirect('/console/integrations', 303));

    app.get<{ Querystring: { ended?: string } }>('/console/sign-in', async (req, reply) => {
      if (req.consoleSession) return reply.redirect('/console/integrations', 303);
      const note = req.query.ended ? { kind: 'ok' as const, text: 'You are signed out.' } : null;
      return reply.type('text/html; charset=utf-8').send(signInPage(note));
    });

    app.post<{ Body: URLSearchParams }>('/console/sign-in', async (req, reply) => {
      const key = req.body?.get?.('key') ?? '';
      let session: Session;
      try {
        session = sessions.signIn(key);
      } catch (err) {
        const e = err instanceof LatchkeyError ? err : new LatchkeyError('INVALID_API_KEY', 'the API key is invalid, expired or revoked');
        const text = e.code === 'FORBIDDEN' ? 'That key is not an admin key.' : 'That key is unknown, expired, revoked or malformed.';
        return reply.code(e.status).type('text/html; charset=utf-8').send(signInPage({ kind: 'error', text }));
      }
      ctx.auditLog.change({
        time: auditTime(),
        requestId: req.id,
        keyId: session.keyId,
        action: 'console.sign-in',
        integrationId: null,
        authId: null,
        method: 'POST',
        host: null,
        path: '/console/sign-in',
        status: 303,
        durationMs: null,
      });
      const maxAge = Math.max(1, Math.floor((session.expiresAt - Date.now()) / 1000));
      void reply.header('set-cookie', `${SESSION_COOKIE}=${session.id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`);
      return reply.redirect('/console/integrations', 303);
    });

    app.post('/console/sign-out', async (req, reply) => {
      if (req.consoleSession) sessions.end(req.consoleSession.id);
      void reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0`);
      return reply.redirect('/console/sign-in?ended=1', 303);
    });

    integrationPages(app, kit);
    catalogPages(app, kit);
    accessPages(app, kit);
    observePages(app, kit);
    caPages(app, kit);
    apiPages(app, kit);
  });
}

function signInPage(flash: Flash | null): string {
  return document(
    'Sign in',
    html`<section class="signin"><h1>latchkey console</h1>${flashBox(flash)}
<form method="post" action="/console/sign-in" class="card">
<label for="key">Admin API key</label>
<input id="key" name="key" type="password" autocomplete="off" required spellcheck="false" placeholder="lk_…" autofocus>
<p class="hint">The key is exchanged for a session cookie (${'HttpOnly'}, SameSite=Strict); the browser never keeps the key. The first admin key of a new install is in <code>data/admin.key</code>.</p>
<button type="submit">Sign in</button></form></section>`,
  );
}

export function sendPage(reply: FastifyReply, body: string, status = 200): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}
