import type { FastifyInstance } from 'fastify';
import { LatchkeyError } from '../errors.js';
import { storeProviderCredential, type CredentialRequest } from '../catalog/credentials.js';
import { parsePaging } from './integration-routes.js';
import { listQuery } from './schemas.js';
import { encodeCursor, toPage } from '../store/integrations.js';
import { auditChange, type AdminContext } from './context.js';

const credentialBody = {
  type: 'object',
  additionalProperties: false,
  required: ['credentials'],
  properties: {
    credentials: { type: 'object' },
    label: { type: 'string' },
    integrationId: { type: 'string' },
  },
  examples: [{ credentials: { api_key: 'example-key' }, label: 'prod' }],
} as const;

export function catalogRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { catalog } = ctx;

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/catalog', { schema: { querystring: listQuery } }, async (req) => {
    const { limit, after } = parsePaging(req.query);
    const rows = catalog.list().slice(after, after + limit + 1);
    return toPage(rows, limit, (p) => p, () => encodeCursor(after + limit));
  });

  app.get<{ Params: { provider: string } }>('/catalog/:provider', async (req) => {
    const found = catalog.get(req.params.provider);
    if (!found) throw new LatchkeyError('UNKNOWN_PROVIDER', `no provider ${req.params.provider} in the catalog`);
    return found.entry;
  });

  // Same parameter name as the integration routes (one router node); here it names a provider.
  app.post<{ Params: { integrationId: string }; Body: CredentialRequest }>(
    '/integrations/:integrationId/credentials',
    { schema: { body: credentialBody } },
    async (req, reply) => {
      const provider = req.params.integrationId;
      const { credential, probeDetail } = await storeProviderCredential(
        {
          store: ctx.store,
          catalog,
          agent: ctx.agent,
          probeTimeoutMs: ctx.probeTimeoutMs,
          kindDeps: ctx.kindDeps,
          grant: ctx.connect.grant,
          marginSeconds: ctx.connect.marginSeconds,
        },
        provider,
        req.body,
      );
      ctx.log.info({ requestId: req.id, provider, integrationId: credential.integrationId, status: credential.status, probe: probeDetail }, 'provider credential stored');
      auditChange(ctx, req, 'credential.create', { integrationId: credential.integrationId, authId: credential.credentialId });
      return reply.code(201).send(credential);
    },
  );
}
