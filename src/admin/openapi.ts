/**
 * GET /openapi.json: an OpenAPI 3.1 document built by @fastify/swagger from
 * the very schemas the routes validate requests with, completed with each
 * route's responses and error codes from api-docs.ts.
 *
 * Built at the first ask, not at start: @fastify/swagger (with its YAML
 * library) was a tenth of a start. It must see every route as it is
 * registered, so the document comes from a second admin app built the same
 * way with the plugin in it, made ready, read and closed; it never listens.
 * The first GET /openapi.json (or console page that reads it) takes that
 * once (some tens of milliseconds); later ones are served from memory.
 */
import type { FastifyInstance } from 'fastify';
import type { default as SwaggerPlugin } from '@fastify/swagger';
import { ERROR_STATUS, type ErrorCode } from '../errors.js';
import { lazyModule, once } from '../lazy.js';
import { AUTH_ERRORS, BODY_ERRORS, COMPONENT_SCHEMAS, QUERY_ERRORS, ROUTE_DOCS, type RouteDoc } from './api-docs.js';

export type Swagger = typeof SwaggerPlugin;
const swaggerModule = lazyModule('the API description', () => import('@fastify/swagger'));

export type Json = Record<string, unknown>;
interface Operation extends Json {
  requestBody?: unknown;
  parameters?: Array<{ in: string }>;
  responses?: Json;
}

const VERSION = '0.1.0';

/** "/v1/integrations/:integrationId" -> "/v1/integrations/{integrationId}" */
export const openApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Console pages are the UI, not the API: only GET /console itself is listed. */
export const isDocumentedRoute = (method: string, url: string): boolean =>
  method !== 'HEAD' && (!url.startsWith('/console') || url === '/console');

/** Only on the app that describes the API (see above). */
export function registerOpenApi(app: FastifyInstance, swagger: Swagger): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Latchkey admin API',
        version: VERSION,
        description:
          'Admin listener of latchkey, the credential-injecting proxy. Every /v1 route needs an admin key ' +
          '(`Authorization: Bearer lk_...` or `X-API-Key`). Secrets are write-only: no response ever holds one.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An lk_ API key with the admin role' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
    },
    // Only the route's own schema: the console's form routes stay out of the API description.
    transform: ({ schema, url, route }) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const hide = !methods.some((m) => isDocumentedRoute(m, url));
      return { schema: { ...(schema ?? {}), ...(hide ? { hide: true } : {}) } as never, url };
    },
  });
}

/** The completed document of the app `build` makes with the plugin registered: built once, at the first call. */
export function apiDocument(build: (swagger: Swagger) => FastifyInstance): () => Promise<Json> {
  return once(async () => {
    const app = build((await swaggerModule()).default);
    try {
      await app.ready();
      return complete(structuredClone(app.swagger() as unknown as Json));
    } finally {
      await app.close();
    }
  });
}

export function openApiRoute(app: FastifyInstance, document: () => Promise<Json>): void {
  app.get('/openapi.json', document);
}

function errorResponses(codes: ErrorCode[]): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Json = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `Error codes: ${list.join(', ')}`,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return out;
}

function successResponse(doc: RouteDoc): Json {
  const description = doc.status === 204 ? 'Done; no body' : doc.status === 303 ? 'See Other: the page to go to is in Location' : 'Success';
  if (doc.body === null) return { description };
  if (doc.body === 'text') return { description, content: { 'text/plain': { schema: { type: 'string' } } } };
  if (doc.body === 'html') return { description, content: { 'text/html': { schema: { type: 'string' } } } };
  const schema = doc.body === 'object' ? { type: 'object' } : { $ref: `#/components/schemas/${doc.body}` };
  return { description, content: { 'application/json': { schema } } };
}

/** Adds what the route schemas cannot say: summaries, success bodies, error codes, security. */
function complete(doc: Json): Json {
  const components = (doc.components ?? {}) as Json;
  components.schemas = { ...((components.schemas as Json | undefined) ?? {}), ...COMPONENT_SCHEMAS };
  doc.components = components;
  doc.tags = [...new Set(Object.values(ROUTE_DOCS).map((d) => d.tag))].map((name) => ({ name }));
  const paths = (doc.paths ?? {}) as Record<string, Record<string, Operation>>;
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const routeDoc = ROUTE_DOCS[`${method.toUpperCase()} ${path}`];
      const codes: ErrorCode[] = [...(routeDoc?.errors ?? [])];
      if (path.startsWith('/v1/')) codes.push(...AUTH_ERRORS);
      if (op.requestBody) codes.push(...BODY_ERRORS);
      if (op.parameters?.some((p) => p.in === 'query')) codes.push(...QUERY_ERRORS);
      codes.push('INTERNAL_ERROR');
      op.summary = routeDoc?.summary ?? `${method.toUpperCase()} ${path}`;
      op.operationId = `${method}${path.replace(/[{}]/g, '').replace(/[/-](\w)/g, (_m, c: string) => c.toUpperCase())}`;
      if (routeDoc) op.tags = [routeDoc.tag];
      op.security = routeDoc?.open ? [] : [{ bearer: [] }, { apiKey: [] }];
      const success = routeDoc ? { [String(routeDoc.status)]: successResponse(routeDoc) } : { '200': { description: 'Success' } };
      op.responses = { ...success, ...errorResponses(codes) };
    }
  }
  return doc;
}
