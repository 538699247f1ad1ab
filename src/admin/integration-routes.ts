import type { FastifyInstance } from 'fastify';
import { LatchkeyError, validationError, type ErrorDetail } from '../errors.js';
import { newIntegrationId } from '../ids.js';
import { canonicalHostPort, checkAllowedHosts, checkBaseUrl, hostAllowed } from '../hosts.js';
import { staticHeaderProblems, type StaticHeader } from '../credentials/headers.js';
import type { IntegrationWrite } from '../store/integrations.js';
import { decodeCursor } from '../store/integrations.js';
import { createIntegrationBody, listQuery, patchIntegrationBody } from './schemas.js';
import { auditChange, type AdminContext } from './context.js';

interface IntegrationBody {
  integrationId?: string;
  name?: string;
  baseUrl?: string;
  allowedHosts?: string[] | null;
  headers?: StaticHeader[];
  redactResponses?: boolean;
}

/** baseUrl, allowedHosts and headers together: the base URL's host must be one it may send to. */
function checkIntegration(w: IntegrationWrite): IntegrationWrite {
  const details: ErrorDetail[] = [];
  const base = checkBaseUrl(w.baseUrl);
  if (typeof base === 'string') details.push({ field: 'baseUrl', problem: base });
  const given = w.allowedHosts?.map((h) => h.toLowerCase()) ?? null;
  if (given) details.push(...checkAllowedHosts(given));
  // Stored as policy compares them: an IP literal in one canonical spelling.
  const allowed = given && details.length === 0 ? given.map(canonicalHostPort) : given;
  details.push(...staticHeaderProblems(w.headers));
  if (details.length === 0 && typeof base !== 'string' && allowed && !hostAllowed(allowed, base.host, base.port)) {
    details.push({ field: 'allowedHosts', problem: `must include the host of baseUrl (${base.host})` });
  }
  if (details.length > 0) throw validationError(details);
  return { ...w, baseUrl: (base as { href: string }).href, allowedHosts: allowed };
}

export function parsePaging(query: { limit?: string; cursor?: string }): { limit: number; after: number } {
  const limit = query.limit === undefined ? 50 : Number(query.limit);
  const details: ErrorDetail[] = [];
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    details.push({ field: 'limit', problem: 'must be an integer between 1 and 200' });
  }
  const after = query.cursor === undefined ? 0 : decodeCursor(query.cursor);
  if (after === null) details.push({ field: 'cursor', problem: 'is not a cursor this server issued' });
  if (details.length > 0) throw validationError(details);
  return { limit, after: after as number };
}

export function integrationRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { store } = ctx;

  app.post<{ Body: IntegrationBody }>('/integrations', { schema: { body: createIntegrationBody } }, async (req, reply) => {
    const b = req.body;
    const integrationId = b.integrationId ?? newIntegrationId();
    const w = checkIntegration({
      integrationId,
      name: b.name ?? integrationId,
      baseUrl: b.baseUrl as string,
      allowedHosts: b.allowedHosts ?? null,
      headers: b.headers ?? [],
      redactResponses: b.redactResponses ?? true,
    });
    const created = store.integrations.create(w);
    auditChange(ctx, req, 'integration.create', { integrationId });
    return reply.code(201).send(created);
  });

  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/integrations',
    { schema: { querystring: listQuery } },
    async (req) => {
      const { limit, after } = parsePaging(req.query);
      return store.integrations.list(limit, after);
    },
  );

  app.get<{ Params: { integrationId: string } }>('/integrations/:integrationId', async (req) =>
    store.integrations.mustGet(req.params.integrationId),
  );

  app.patch<{ Params: { integrationId: string }; Body: IntegrationBody }>(
    '/integrations/:integrationId',
    { schema: { body: patchIntegrationBody } },
    async (req) => {
      const id = req.params.integrationId;
      const current = store.integrations.mustGet(id);
      const b = req.body;
      if (b.integrationId !== undefined && b.integrationId !== id) {
        throw validationError([{ field: 'integrationId', problem: 'cannot be changed' }]);
      }
      const w = checkIntegration({
        integrationId: id,
        name: b.name ?? current.name,
        baseUrl: b.baseUrl ?? current.baseUrl,
        allowedHosts: b.allowedHosts !== undefined ? b.allowedHosts : store.integrations.storedAllowedHosts(id),
        headers: b.headers ?? current.headers,
        redactResponses: b.redactResponses ?? current.redactResponses,
      });
      const updated = store.integrations.update(w);
      auditChange(ctx, req, 'integration.update', { integrationId: id });
      return updated;
    },
  );

  app.delete<{ Params: { integrationId: string } }>(
    '/integrations/:integrationId',
    async (req, reply) => {
      const id = req.params.integrationId;
      if (!store.integrations.delete(id)) throw new LatchkeyError('NOT_FOUND', `integration ${id} not found`);
      auditChange(ctx, req, 'integration.delete', { integrationId: id });
      return reply.code(204).send();
    },
  );
}
