import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { LatchkeyError, errorBody, errorHeaders } from '../errors.js';
import { requestIdFrom } from '../ids.js';
import { fromFastifyError } from './errors.js';
import { integrationRoutes } from './integration-routes.js';
import { authRoutes } from './auth-routes.js';
import { accessRoutes } from './access-routes.js';
import { catalogRoutes } from './catalog-routes.js';
import { oauthCallbackRoute, oauthRoutes } from './oauth-routes.js';
import { statusClass } from '../metrics.js';
import { apiDocument, openApiRoute, registerOpenApi, type Json, type Swagger } from './openapi.js';
import type { AdminContext } from './context.js';
import { consoleRoutes } from '../console/server.js';
import { ConsoleSessions, INTERNAL_HEADER } from '../console/sessions.js';
import { lazySerializerFactory, lazyValidatorFactory } from './compilers.js';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export interface RegisteredRoute {
  method: string;
  url: string;
}

/** Every route the admin listener serves, as fastify registered them (onRoute): the OpenAPI test compares. */
export const registeredRoutes = new WeakMap<FastifyInstance, RegisteredRoute[]>();

/**
 * The admin app. With `swagger`: the app that only describes the API
 * (src/admin/openapi.ts), the same routes with @fastify/swagger registered first.
 */
export function buildAdminServer(ctx: AdminContext, swagger?: Swagger): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: ctx.bodyLimit,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    return503OnClosing: true,
    ajv: { customOptions: { allErrors: true, removeAdditional: false, coerceTypes: false, useDefaults: false, verbose: true } },
    schemaController: { compilersFactory: { buildValidator: lazyValidatorFactory, buildSerializer: lazySerializerFactory } },
  });
  app.decorateRequest('principal', null);
  const routes: RegisteredRoute[] = [];
  registeredRoutes.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method, url: r.url });
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.header('cache-control', 'no-store');
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = fromFastifyError(err);
    // Only the name and code of an unexpected error: its message could quote input.
    if (e.code === 'INTERNAL_ERROR') ctx.log.error({ requestId: req.id, errName: err.name, errCode: err.code }, 'admin request failed');
    void reply.code(e.status).headers(errorHeaders(e)).send(errorBody(e, req.id));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new LatchkeyError('NOT_FOUND', `no route for ${req.method} ${req.url.split('?')[0]}`);
    void reply.code(404).send(errorBody(e, req.id));
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.adminRequests.inc({ method: req.method, route, status_class: statusClass(reply.statusCode) });
    ctx.log.info(
      {
        requestId: req.id,
        keyId: req.principal?.keyId,
        method: req.method,
        path: route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'admin request',
    );
  });

  if (swagger) registerOpenApi(app, swagger);
  const document = apiDocument((plugin) => buildAdminServer(ctx, plugin));
  // Inside plugins, so the routes are registered after @fastify/swagger's onRoute hook.
  void app.register(async (root) => serviceRoutes(root, ctx, document));
  const sessions = new ConsoleSessions(ctx.keys, ctx.consoleSessionMinutes);
  consoleRoutes(app, ctx, sessions, document);
  void app.register(
    async (v1) => {
      v1.addHook('onRequest', async (req) => {
        const auth = req.headers.authorization;
        const apiKey = req.headers['x-api-key'];
        const allowAgent = req.routeOptions.config.allowAgent === true;
        // The console calls the API in-process as its signed-in key (re-checked here); no one else knows the header's secret.
        const internal = req.headers[INTERNAL_HEADER];
        req.principal =
          typeof internal === 'string'
            ? sessions.principalForInternal(internal)
            : await ctx.authn.adminPrincipal(auth, typeof apiKey === 'string' ? apiKey : undefined, allowAgent);
      });
      // Every write takes JSON only; checked after auth so an anonymous caller learns nothing.
      v1.addHook('preValidation', async (req) => {
        if (!BODY_METHODS.has(req.method)) return;
        const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (type !== 'application/json') throw new LatchkeyError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
      });
      integrationRoutes(v1, ctx);
      authRoutes(v1, ctx);
      accessRoutes(v1, ctx);
      catalogRoutes(v1, ctx);
      oauthRoutes(v1, ctx);
    },
    { prefix: '/v1' },
  );
  // The connect flow's callback: no credential (the provider's redirect brings the person's browser here).
  void app.register(async (root) => oauthCallbackRoute(root, ctx));
  return app;
}

/** Health, metrics and the API description: no credential needed. */
function serviceRoutes(app: FastifyInstance, ctx: AdminContext, document: () => Promise<Json>): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (req, reply) => {
    if (!ctx.ready()) {
      return reply.code(503).send(errorBody(new LatchkeyError('SERVICE_UNAVAILABLE', 'not ready'), req.id));
    }
    return { status: 'ready' };
  });
  // The CA's certificate is public by nature: clients fetch it to trust intercepted tunnels.
  app.get('/ca.pem', async (_req, reply) => reply.type('application/x-pem-file').send(await ctx.localCa.certificatePem()));
  // Counts and latencies only, no secret and no credential needed: keep the admin listener private.
  app.get('/metrics', async (_req, reply) => {
    const { text, contentType } = await ctx.metrics.exposition();
    return reply.type(contentType).send(text);
  });
  openApiRoute(app, document);
}
