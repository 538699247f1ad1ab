/**
 * What the OpenAPI document says about each admin route beyond its request
 * schema (which the route itself owns and validates with): a summary, the
 * success response and the error codes it can answer. Response schemas live
 * here and only in the document, never on the route: fastify would otherwise
 * serialise responses through them and silently drop fields a schema missed.
 *
 * A new route needs one entry here; test/integration/openapi.test.ts fails
 * until it has one.
 */
import type { ErrorCode } from '../errors.js';

const ts = { type: 'string', format: 'date-time' } as const;
const nullableTs = { type: ['string', 'null'], format: 'date-time' } as const;
const headerList = {
  type: 'array',
  items: {
    type: 'object',
    required: ['key', 'value'],
    properties: { key: { type: 'string' }, value: { type: 'string' } },
  },
} as const;

const page = (ref: string) => ({
  type: 'object',
  required: ['data', 'nextCursor'],
  properties: { data: { type: 'array', items: { $ref: `#/components/schemas/${ref}` } }, nextCursor: { type: ['string', 'null'] } },
});

export const COMPONENT_SCHEMAS: Record<string, Record<string, unknown>> = {
  Error: {
    type: 'object',
    required: ['error', 'requestId'],
    description: 'Every error from either listener. `code` is stable API; `details` names the offending fields.',
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', examples: ['VALIDATION_ERROR'] },
          message: { type: 'string' },
          details: {
            type: 'array',
            items: { type: 'object', required: ['field', 'problem'], properties: { field: { type: 'string' }, problem: { type: 'string' } } },
          },
        },
      },
      requestId: { type: 'string' },
    },
  },
  Integration: {
    type: 'object',
    required: ['integrationId', 'name', 'baseUrl', 'allowedHosts', 'headers', 'createdAt', 'updatedAt'],
    properties: {
      integrationId: { type: 'string' },
      name: { type: 'string' },
      baseUrl: { type: 'string', format: 'uri' },
      allowedHosts: { type: 'array', items: { type: 'string' } },
      headers: headerList,
      redactResponses: { type: 'boolean' },
      createdAt: ts,
      updatedAt: ts,
    },
  },
  AuthRecord: {
    type: 'object',
    description: 'An auth record as responses show it: never a secret field. Types with non-secret settings add them (apiKey.key and position, ...).',
    required: ['authId', 'integrationId', 'authType', 'headers', 'createdAt', 'updatedAt'],
    properties: {
      authId: { type: 'string', examples: ['auth_0123456789abcdef'] },
      integrationId: { type: 'string' },
      authType: { type: 'string' },
      headers: headerList,
      apiKey: { type: 'object', properties: { key: { type: 'string' }, position: { enum: ['header', 'query'] } } },
      provider: { type: 'string' },
      label: { type: ['string', 'null'] },
      createdAt: ts,
      updatedAt: ts,
    },
  },
  ApiKey: {
    type: 'object',
    description: 'A key as lists show it: never the key, never its hash.',
    required: ['keyId', 'name', 'role', 'integrations', 'prefix', 'createdAt', 'expiresAt', 'lastUsedAt'],
    properties: {
      keyId: { type: 'string' },
      name: { type: 'string' },
      role: { enum: ['admin', 'agent'] },
      integrations: { type: 'array', items: { type: 'string' } },
      prefix: { type: 'string' },
      createdAt: ts,
      expiresAt: nullableTs,
      lastUsedAt: nullableTs,
      rules: {
        type: ['array', 'null'],
        description: 'Request rules: a call must match one (integration, methods, path globs)',
        items: { type: 'object', properties: { integration: { type: 'string' }, methods: { type: 'array', items: { type: 'string' } }, paths: { type: 'array', items: { type: 'string' } } } },
      },
      rateLimit: { type: ['object', 'null'], properties: { requests: { type: 'integer' }, perSeconds: { type: 'integer' } } },
    },
  },
  CreatedApiKey: {
    allOf: [
      { $ref: '#/components/schemas/ApiKey' },
      { type: 'object', required: ['key'], properties: { key: { type: 'string', description: 'The key itself: shown this once, never again.' } } },
    ],
  },
  WidgetToken: {
    type: 'object',
    required: ['token', 'expiresAt'],
    properties: { token: { type: 'string', description: 'An HS256 JWT for X-Latchkey-Key.' }, expiresAt: ts },
  },
  AuditEntry: {
    type: 'object',
    required: ['time', 'action'],
    properties: {
      time: ts,
      requestId: { type: ['string', 'null'] },
      keyId: { type: ['string', 'null'] },
      action: { type: 'string', examples: ['proxy.call', 'integration.create'] },
      integrationId: { type: ['string', 'null'] },
      authId: { type: ['string', 'null'] },
      method: { type: ['string', 'null'] },
      host: { type: ['string', 'null'] },
      path: { type: ['string', 'null'], description: 'Query values are replaced by [redacted].' },
      status: { type: ['integer', 'null'] },
      durationMs: { type: ['number', 'null'] },
    },
  },
  CatalogEntry: {
    type: 'object',
    description: 'A provider of the built-in catalog (config/providers.json plus the config file).',
    required: ['provider', 'displayName', 'baseUrl', 'allowedHosts', 'requiredFields', 'optionalFields', 'inject'],
    properties: {
      provider: { type: 'string' },
      displayName: { type: 'string' },
      docs: { type: 'string' },
      baseUrl: { type: 'string' },
      allowedHosts: { type: 'array', items: { type: 'string' } },
      requiredFields: { type: 'array', items: { type: 'string' } },
      optionalFields: { type: 'array', items: { type: 'string' } },
      urlFields: { type: 'array', items: { type: 'string' } },
      inject: { type: 'object' },
      headers: { type: 'object' },
      probe: { type: ['object', 'null'] },
    },
  },
  StoredCredential: {
    type: 'object',
    required: ['credentialId', 'integrationId', 'provider', 'label', 'status', 'createdAt'],
    properties: {
      credentialId: { type: 'string', description: 'The auth record id.' },
      integrationId: { type: 'string' },
      provider: { type: 'string' },
      label: { type: ['string', 'null'] },
      status: { enum: ['validated', 'unverified'] },
      createdAt: ts,
    },
  },
  IntegrationPage: page('Integration'),
  ApiKeyPage: page('ApiKey'),
  AuditPage: page('AuditEntry'),
  CatalogPage: page('CatalogEntry'),
  AuthRecordList: { type: 'object', required: ['data'], properties: { data: { type: 'array', items: { $ref: '#/components/schemas/AuthRecord' } } } },
};

export interface RouteDoc {
  summary: string;
  tag: string;
  /** Success status and its body: a component name, 'text' (a text body), 'html', or null (no body). */
  status: number;
  body: string | null;
  /** Error codes beyond the ones every /v1 route and every body route can answer. */
  errors?: ErrorCode[];
  /** No credential needed. */
  open?: boolean;
}

export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'GET /healthz': { summary: 'Liveness', tag: 'service', status: 200, body: 'object', open: true },
  'GET /readyz': { summary: 'Readiness: database open and master key checked', tag: 'service', status: 200, body: 'object', errors: ['SERVICE_UNAVAILABLE'], open: true },
  'GET /metrics': { summary: 'Prometheus metrics (latchkey_*)', tag: 'service', status: 200, body: 'text', open: true },
  'GET /openapi.json': { summary: 'This document', tag: 'service', status: 200, body: 'object', open: true },
  'GET /console': { summary: 'The web console (HTML pages under /console; sign-in with an admin key): redirects to its first page', tag: 'service', status: 303, body: null, open: true },
  'POST /v1/integrations': { summary: 'Create an integration', tag: 'integrations', status: 201, body: 'Integration', errors: ['CONFLICT'] },
  'GET /v1/integrations': { summary: 'List integrations', tag: 'integrations', status: 200, body: 'IntegrationPage' },
  'GET /v1/integrations/{integrationId}': { summary: 'Get an integration', tag: 'integrations', status: 200, body: 'Integration', errors: ['NOT_FOUND'] },
  'PATCH /v1/integrations/{integrationId}': { summary: 'Change name, baseUrl, allowedHosts or headers', tag: 'integrations', status: 200, body: 'Integration', errors: ['NOT_FOUND'] },
  'DELETE /v1/integrations/{integrationId}': { summary: 'Delete an integration and its auth records', tag: 'integrations', status: 204, body: null, errors: ['NOT_FOUND'] },
  'POST /v1/integrations/{integrationId}/auth': { summary: 'Create an auth record (a credential)', tag: 'auth records', status: 201, body: 'AuthRecord', errors: ['NOT_FOUND'] },
  'GET /v1/integrations/{integrationId}/auth': { summary: "List an integration's auth records", tag: 'auth records', status: 200, body: 'AuthRecordList', errors: ['NOT_FOUND'] },
  'GET /v1/integrations/{integrationId}/auth/{authId}': { summary: 'Get an auth record (no secret)', tag: 'auth records', status: 200, body: 'AuthRecord', errors: ['NOT_FOUND'] },
  'PATCH /v1/integrations/{integrationId}/auth/{authId}': { summary: 'Rotate or change an auth record', tag: 'auth records', status: 200, body: 'AuthRecord', errors: ['NOT_FOUND'] },
  'DELETE /v1/integrations/{integrationId}/auth/{authId}': { summary: 'Delete an auth record', tag: 'auth records', status: 204, body: null, errors: ['NOT_FOUND'] },
  'GET /v1/catalog': { summary: 'List the provider catalog', tag: 'catalog', status: 200, body: 'CatalogPage' },
  'GET /v1/catalog/{provider}': { summary: 'Get a catalog provider', tag: 'catalog', status: 200, body: 'CatalogEntry', errors: ['UNKNOWN_PROVIDER'] },
  'POST /v1/integrations/{integrationId}/credentials': {
    summary:
      'Connect a catalog provider: {integrationId} names the provider; creates the integration and its auth record, validated by the probe (a provider offering OAuth 2 client credentials takes {clientId, clientSecret, scope?}, checked with one token request)',
    tag: 'catalog',
    status: 201,
    body: 'StoredCredential',
    errors: ['UNKNOWN_PROVIDER', 'CONFLICT', 'CREDENTIAL_VALIDATION_FAILED'],
  },
  'POST /v1/api-keys': { summary: 'Create an API key (the key is in this answer only)', tag: 'access', status: 201, body: 'CreatedApiKey' },
  'GET /v1/api-keys': { summary: 'List active API keys', tag: 'access', status: 200, body: 'ApiKeyPage' },
  'DELETE /v1/api-keys/{keyId}': { summary: 'Revoke an API key at once', tag: 'access', status: 204, body: null, errors: ['NOT_FOUND'] },
  'POST /v1/tokens': {
    summary: 'Mint a widget token (admin or agent key)',
    tag: 'access',
    status: 201,
    body: 'WidgetToken',
    errors: ['JWT_NOT_CONFIGURED', 'INTEGRATION_NOT_ALLOWED'],
  },
  'GET /v1/audit': { summary: 'Read the audit log, newest first', tag: 'audit', status: 200, body: 'AuditPage' },
  // Routes of features being built on other branches: documented here already, so they appear complete when they land.
  'PATCH /v1/api-keys/{keyId}': { summary: "Change a key's name, expiry, request rules or rate limit", tag: 'access', status: 200, body: 'ApiKey', errors: ['NOT_FOUND'] },
  'GET /ca.pem': { summary: "The local CA certificate (PEM) that signs latchkey's interception certificates", tag: 'service', status: 200, body: 'text', open: true },
  'POST /v1/integrations/{integrationId}/oauth/authorize': {
    summary: 'Start an OAuth 2 connect flow (authorization code with PKCE): answers the URL to open',
    tag: 'auth records',
    status: 201,
    body: 'object',
    errors: ['NOT_FOUND'],
  },
  'GET /oauth/callback': {
    summary: "The OAuth provider's redirect: exchanges the code and stores the record (HTML page)",
    tag: 'auth records',
    status: 200,
    body: 'html',
    // VALIDATION_ERROR: the person declined at the provider; TOKEN_REFRESH_FAILED: the code exchange failed.
    errors: ['INVALID_STATE', 'VALIDATION_ERROR', 'TOKEN_REFRESH_FAILED'],
    open: true,
  },
};

/** Every /v1 route can answer these (section "Access control" of the docs). */
export const AUTH_ERRORS: ErrorCode[] = ['AUTH_REQUIRED', 'INVALID_AUTH_FORMAT', 'INVALID_API_KEY', 'INVALID_TOKEN', 'FORBIDDEN'];
/** Every route taking a body can answer these. */
export const BODY_ERRORS: ErrorCode[] = ['VALIDATION_ERROR', 'INVALID_JSON', 'PAYLOAD_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];
/** Query strings are checked too. */
export const QUERY_ERRORS: ErrorCode[] = ['VALIDATION_ERROR'];
