/**
 * JSON Schemas for admin request bodies: shapes, types and simple limits.
 * Rules that depend on other fields (authType, baseUrl vs allowedHosts) live
 * in the route handlers. `description` holds the problem text for a pattern.
 */
import { HEADER_VALUE_PATTERN, HEADER_VALUE_PROBLEM, MAX_STATIC_HEADERS, TOKEN_PATTERN } from '../credentials/headers.js';
import { kindBodySchemas } from '../credentials/kinds/index.js';

export const INTEGRATION_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$';
const INTEGRATION_ID = new RegExp(INTEGRATION_ID_PATTERN);

export const isIntegrationId = (value: unknown): value is string => typeof value === 'string' && INTEGRATION_ID.test(value);

/** One entry of a key's or a widget token's scope: an integration id, or "*" for all. */
export const isScopeEntry = (value: unknown): value is string => value === '*' || isIntegrationId(value);

export const headersSchema = {
  type: 'array',
  maxItems: MAX_STATIC_HEADERS,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['key', 'value'],
    properties: {
      key: { type: 'string', minLength: 1, maxLength: 256, pattern: TOKEN_PATTERN, description: 'must be an RFC 9110 token' },
      value: {
        type: 'string',
        maxLength: 8192,
        pattern: HEADER_VALUE_PATTERN,
        description: HEADER_VALUE_PROBLEM,
      },
    },
  },
} as const;

const allowedHostsSchema = {
  type: ['array', 'null'],
  maxItems: 100,
  items: { type: 'string', minLength: 1, maxLength: 260 },
} as const;

const integrationFields = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  baseUrl: { type: 'string', minLength: 1, maxLength: 2048 },
  allowedHosts: allowedHostsSchema,
  headers: headersSchema,
  redactResponses: { type: 'boolean' },
} as const;

export const integrationIdParam = {
  type: 'string',
  pattern: INTEGRATION_ID_PATTERN,
  description: 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$',
} as const;

export const createIntegrationBody = {
  type: 'object',
  additionalProperties: false,
  required: ['baseUrl'],
  properties: { integrationId: integrationIdParam, ...integrationFields },
  examples: [
    {
      integrationId: 'github',
      name: 'GitHub',
      baseUrl: 'https://api.github.com',
      allowedHosts: ['api.github.com'],
      headers: [{ key: 'X-GitHub-Api-Version', value: '2022-11-28' }],
    },
  ],
} as const;

export const patchIntegrationBody = {
  type: 'object',
  additionalProperties: false,
  properties: { integrationId: { type: 'string' }, ...integrationFields },
  examples: [{ name: 'GitHub (prod)', headers: [] }],
} as const;

const apiKeyObject = {
  type: 'object',
  additionalProperties: false,
  properties: {
    key: { type: 'string' },
    value: { type: 'string' },
    position: { enum: ['header', 'query'] },
  },
} as const;

const credentialFields = {
  token: { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  apiKey: apiKeyObject,
  headers: headersSchema,
  // Each further kind checks its own object (credentials/kinds/*): only its shape is fixed here.
  ...kindBodySchemas(),
} as const;

export const createAuthBody = {
  type: 'object',
  additionalProperties: false,
  required: ['authType'],
  properties: { authType: { type: 'string' }, ...credentialFields },
  examples: [{ authType: 'BEARER_TOKEN', token: 'ghp_example' }],
} as const;

export const patchAuthBody = {
  type: 'object',
  additionalProperties: false,
  properties: { authType: { type: 'string' }, ...credentialFields },
  examples: [{ token: 'ghp_rotated_example' }],
} as const;

export const listQuery = {
  type: 'object',
  properties: {
    limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'must be an integer between 1 and 200' },
    cursor: { type: 'string', maxLength: 200 },
  },
} as const;

export const auditQuery = {
  type: 'object',
  properties: {
    integrationId: { type: 'string', maxLength: 200, description: 'only rows of this integration' },
    since: { type: 'string', maxLength: 64, description: 'an ISO 8601 date-time: only rows from then on' },
    ...listQuery.properties,
  },
} as const;
