import type { FastifyInstance } from 'fastify';
import { LatchkeyError, validationError, type ErrorDetail } from '../errors.js';
import { parseKeyChange, parseNewKey } from '../access/api-key-input.js';
import { mayUseIntegration, type Principal } from '../access/principal.js';
import { DEFAULT_TTL_SECONDS, MAX_TTL_SECONDS } from '../access/tokens.js';
import type { ApiKeyRecord } from '../store/api-keys.js';
import { MAX_LIVE_GRANTS_PER_KEY } from '../store/widget-grants.js';
import { auditTimeOf, decodeAuditCursor } from '../store/audit.js';
import { parsePaging } from './integration-routes.js';
import { auditChange, type AdminContext } from './context.js';
import { auditQuery, isScopeEntry, listQuery } from './schemas.js';

/** The public view of a key: never the key, never its hash. */
function keyView(r: ApiKeyRecord, unflushedLastUse: number | undefined): Record<string, unknown> {
  const lastUsedAt = unflushedLastUse ? new Date(unflushedLastUse).toISOString() : r.lastUsedAt;
  return {
    keyId: r.keyId,
    name: r.name,
    role: r.role,
    integrations: r.integrations,
    prefix: r.prefix,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    lastUsedAt,
    rules: r.rules,
    rateLimit: r.rateLimit,
  };
}

const apiKeyBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'role'],
  properties: {
    name: { type: 'string' },
    role: { type: 'string' },
    integrations: { type: 'array', items: { type: 'string' } },
    expiresAt: { type: ['string', 'null'] },
    // Checked in detail by parseRules/parseRateLimit, which name the field (rules[0].paths[1]).
    rules: { type: ['array', 'null'] },
    rateLimit: { type: ['object', 'null'] },
  },
  examples: [{ name: 'ci-agent', role: 'agent', integrations: ['github'], expiresAt: '2030-01-01T00:00:00.000Z' }],
} as const;

const apiKeyPatchBody = {
  type: 'object',
  additionalProperties: false,
  // Role and scope are what a key was issued with: not PATCHable (a new key widens them).
  properties: {
    name: apiKeyBody.properties.name,
    expiresAt: apiKeyBody.properties.expiresAt,
    rules: apiKeyBody.properties.rules,
    rateLimit: apiKeyBody.properties.rateLimit,
  },
  examples: [
    {
      rules: [{ integration: 'github', methods: ['GET'], paths: ['/repos/acme/**'] }],
      rateLimit: { requests: 60, perSeconds: 60 },
    },
  ],
} as const;

type KeyBody = {
  name?: string;
  role?: string;
  integrations?: string[];
  expiresAt?: string | null;
  rules?: unknown;
  rateLimit?: unknown;
};

const tokenBody = {
  type: 'object',
  additionalProperties: false,
  required: ['integrations', 'origins'],
  properties: {
    integrations: { type: 'array', items: { type: 'string' } },
    origins: { type: 'array', items: { type: 'string' } },
    ttlSeconds: { type: 'integer' },
  },
  examples: [{ integrations: ['github'], origins: ['https://app.example.com'], ttlSeconds: 900 }],
} as const;

/** A browser Origin: scheme://host[:port], nothing more. */
function isOrigin(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === value;
  } catch {
    return false;
  }
}

function parseTokenRequest(body: { integrations: string[]; origins: string[]; ttlSeconds?: number }, minter: Principal) {
  const details: ErrorDetail[] = [];
  if (body.integrations.length === 0 || body.integrations.length > 100 || !body.integrations.every(isScopeEntry)) {
    details.push({ field: 'integrations', problem: 'must be a non-empty list of integration ids' });
  }
  if (body.origins.length === 0 || body.origins.length > 20 || !body.origins.every(isOrigin)) {
    details.push({ field: 'origins', problem: 'must be a non-empty list of origins such as https://app.example.com' });
  }
  const ttl = body.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (ttl < 1 || ttl > MAX_TTL_SECONDS) details.push({ field: 'ttlSeconds', problem: `must be between 1 and ${MAX_TTL_SECONDS}` });
  if (details.length > 0) throw validationError(details);
  // A token never reaches further than the key that minted it.
  const outside = body.integrations.filter((i) => (i === '*' ? !minter.integrations.includes('*') : !mayUseIntegration(minter, i)));
  if (outside.length > 0) {
    throw new LatchkeyError('INTEGRATION_NOT_ALLOWED', `this key may not use: ${outside.join(', ')}`);
  }
  return { integrations: body.integrations, origins: body.origins, ttlSeconds: ttl };
}

export function accessRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { store } = ctx;

  app.post<{ Body: KeyBody }>(
    '/api-keys',
    { schema: { body: apiKeyBody } },
    async (req, reply) => {
      const { record, key } = store.apiKeys.create(parseNewKey(req.body));
      auditChange(ctx, req, 'apikey.create', { keyId: record.keyId });
      // The only time the key is ever shown.
      return reply.code(201).send({ ...keyView(record, undefined), key });
    },
  );

  app.get<{ Querystring: { limit?: string; cursor?: string } }>('/api-keys', { schema: { querystring: listQuery } }, async (req) => {
    const { limit, after } = parsePaging(req.query);
    const page = store.apiKeys.list(limit, after);
    return { data: page.data.map((r) => keyView(r, ctx.keys.lastUsed.get(r.keyId))), nextCursor: page.nextCursor };
  });

  app.patch<{ Params: { keyId: string }; Body: KeyBody }>(
    '/api-keys/:keyId',
    { schema: { body: apiKeyPatchBody } },
    async (req) => {
      const change = parseKeyChange(req.body);
      const updated = store.apiKeys.update(req.params.keyId, change);
      if (!updated) throw new LatchkeyError('NOT_FOUND', `no active key ${req.params.keyId}`);
      auditChange(ctx, req, 'apikey.update', { keyId: updated.keyId });
      return keyView(updated, ctx.keys.lastUsed.get(updated.keyId));
    },
  );

  app.delete<{ Params: { keyId: string } }>('/api-keys/:keyId', async (req, reply) => {
    if (!store.apiKeys.revoke(req.params.keyId)) throw new LatchkeyError('NOT_FOUND', `no active key ${req.params.keyId}`);
    auditChange(ctx, req, 'apikey.revoke', { keyId: req.params.keyId });
    return reply.code(204).send();
  });

  app.post<{ Body: { integrations: string[]; origins: string[]; ttlSeconds?: number } }>(
    '/tokens',
    { schema: { body: tokenBody }, config: { allowAgent: true } },
    async (req, reply) => {
      if (!ctx.authn.tokens.configured) throw new LatchkeyError('JWT_NOT_CONFIGURED', 'widget tokens need LATCHKEY_JWT_SECRET');
      const minter = req.principal as Principal;
      const grant = parseTokenRequest(req.body, minter);
      // Each token writes one grant row; a key may hold only so many live ones (preflights read them).
      const live = store.widgetGrants.live(minter.keyId);
      if (live.count >= MAX_LIVE_GRANTS_PER_KEY) {
        const wait = live.soonest ? (Date.parse(live.soonest) - Date.now()) / 1000 : 60;
        throw new LatchkeyError('RATE_LIMITED', `this key holds ${live.count} unexpired widget tokens, the most it may`, undefined, {
          retryAfterSeconds: wait,
        });
      }
      const minted = await ctx.authn.tokens.mint({ ...grant, mintedBy: minter.keyId, keyExpiresAt: minter.expiresAt ?? null });
      store.widgetGrants.grant({
        tokenId: minted.tokenId,
        keyId: minter.keyId,
        origins: grant.origins,
        integrations: grant.integrations,
        expiresAt: minted.expiresAt,
      });
      auditChange(ctx, req, 'token.mint', {});
      return reply.code(201).send({ token: minted.token, expiresAt: minted.expiresAt });
    },
  );

  app.get<{ Querystring: { integrationId?: string; since?: string; limit?: string; cursor?: string } }>(
    '/audit',
    { schema: { querystring: auditQuery } },
    async (req) => {
      const { limit } = parsePaging({ limit: req.query.limit });
      const after = req.query.cursor === undefined ? null : decodeAuditCursor(req.query.cursor);
      const details: ErrorDetail[] = [];
      if (req.query.cursor !== undefined && after === null) details.push({ field: 'cursor', problem: 'is not a cursor this server issued' });
      const since = req.query.since === undefined ? undefined : Date.parse(req.query.since);
      if (since !== undefined && Number.isNaN(since)) details.push({ field: 'since', problem: 'must be an ISO 8601 date-time' });
      if (details.length > 0) throw validationError(details);
      // Rows of calls still queued belong in the answer.
      await ctx.auditLog.synced();
      return store.audit.list({
        integrationId: req.query.integrationId,
        since: since === undefined ? undefined : auditTimeOf(since),
        limit,
        after,
      });
    },
  );
}
