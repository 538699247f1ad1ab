/**
 * The connect flow's two routes: POST /v1/integrations/{id}/oauth/authorize
 * (admin) hands out the URL a person opens; GET /oauth/callback (no
 * credential: the provider's redirect brings the person's browser here)
 * finishes it and shows a page saying what happened, never a token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { asLatchkeyError, errorBody } from '../errors.js';
import { authorizeBodySchema, finishConnect, startConnect, type AuthorizeBody } from '../credentials/tokens/connect.js';
import { auditTime } from '../store/audit.js';
import { auditChange, type AdminContext } from './context.js';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

function page(title: string, lines: string[]): string {
  const body = lines.map((l) => `<p>${escapeHtml(l)}</p>`).join('\n');
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body><h1>${escapeHtml(title)}</h1>\n${body}\n</body></html>\n`;
}

function sendPage(reply: FastifyReply, status: number, title: string, lines: string[]): FastifyReply {
  // The page holds no script and loads nothing; it must not be framed by another site either.
  return reply
    .code(status)
    .header('content-security-policy', "default-src 'none'; frame-ancestors 'none'")
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .type('text/html; charset=utf-8')
    .send(page(title, lines));
}

export function oauthRoutes(v1: FastifyInstance, ctx: AdminContext): void {
  v1.post<{ Params: { integrationId: string }; Body: AuthorizeBody }>(
    '/integrations/:integrationId/oauth/authorize',
    { schema: { body: authorizeBodySchema } },
    async (req, reply) => {
      const { integrationId } = req.params;
      const started = await startConnect(ctx.connect, integrationId, req.body, req.principal?.keyId ?? null);
      auditChange(ctx, req, 'oauth.authorize', { integrationId });
      return reply.code(201).send(started);
    },
  );
}

/** Registered at the root of the admin listener, outside /v1 and its credential check. */
export function oauthCallbackRoute(app: FastifyInstance, ctx: AdminContext): void {
  app.get<{ Querystring: Record<string, string | undefined> }>('/oauth/callback', async (req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>, reply) => {
    try {
      const done = await finishConnect(ctx.connect, req.query);
      ctx.auditLog.change({
        time: auditTime(),
        requestId: req.id,
        keyId: done.keyId,
        action: 'oauth.connect',
        integrationId: done.integrationId,
        authId: done.authId,
        method: 'GET',
        host: null,
        path: '/oauth/callback',
        status: 200,
        durationMs: null,
      });
      ctx.log.info({ requestId: req.id, integrationId: done.integrationId, authId: done.authId }, 'oauth connect completed');
      return sendPage(reply, 200, 'Connected', [
        `Latchkey is now connected to ${done.integrationId}${done.createdIntegration ? ' (a new integration)' : ''}.`,
        `Its credential is auth record ${done.authId}. The tokens are kept by latchkey and are not shown here.`,
        'You can close this window.',
      ]);
    } catch (err) {
      const e = asLatchkeyError(err);
      reply.header('x-latchkey-error', e.code);
      const wantsHtml = (req.headers.accept ?? '').includes('text/html');
      if (!wantsHtml) return reply.code(e.status).send(errorBody(e, req.id));
      return sendPage(reply, e.status, 'Not connected', [e.message, `Error code: ${e.code}. Nothing was stored.`]);
    }
  });
}
