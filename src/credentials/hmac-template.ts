/**
 * The HMAC signing template: which secret signs, over which message, and
 * where the signature, the timestamp and the key id go. Checked once when a
 * record is stored (or the catalog loads); a problem names its field.
 */
import type { ErrorDetail } from '../errors.js';
import { TOKEN_PATTERN, HEADER_VALUE_PATTERN, isForbiddenStaticHeader } from './headers.js';
import { placeholders } from './template.js';
import { lazyValidator } from '../json-schema.js';

export type HmacPart =
  | { type: 'timestamp' | 'method' | 'path' | 'pathWithQuery' | 'query' | 'body' }
  | { type: 'literal'; value: string }
  | { type: 'header'; name: string }
  | { type: 'bodyParam'; name: string }
  | { type: 'hash'; algorithm: 'sha256' | 'sha512'; encoding?: 'raw' | 'hex' | 'base64'; parts: HmacPart[] };

/** Exactly one of header or query. */
export interface Placement {
  header?: string;
  query?: string;
}

export interface HmacTemplate {
  algorithm: 'sha256' | 'sha512';
  /** The field holding the signing secret. */
  secretField: string;
  secretEncoding: 'utf8' | 'base64' | 'hex';
  timestampFormat: 'unix_s' | 'unix_ms' | 'iso_ms';
  message: HmacPart[];
  output: 'hex' | 'base64';
  signature: Placement;
  timestamp?: Placement;
  keyId?: Placement & { field: string };
  /** Further headers set from fields, e.g. `{ "OK-ACCESS-PASSPHRASE": "{{passphrase}}" }`. */
  headers?: Record<string, string>;
}

const placement = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    header: { type: 'string', pattern: TOKEN_PATTERN, maxLength: 256 },
    query: { type: 'string', minLength: 1, maxLength: 256 },
  },
} as const;

const simplePart = { type: 'object', additionalProperties: false, required: ['type'], properties: { type: { enum: ['timestamp', 'method', 'path', 'pathWithQuery', 'query', 'body'] } } };
const literalPart = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'value'],
  properties: { type: { const: 'literal' }, value: { type: 'string', maxLength: 1024 } },
};
const namedPart = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'name'],
  properties: { type: { enum: ['header', 'bodyParam'] }, name: { type: 'string', minLength: 1, maxLength: 256 } },
};

export const HMAC_TEMPLATE_SCHEMA = {
  $id: 'hmac-template',
  type: 'object',
  additionalProperties: false,
  required: ['algorithm', 'secretField', 'secretEncoding', 'timestampFormat', 'message', 'output', 'signature'],
  definitions: {
    part: {
      type: 'object',
      required: ['type'],
      properties: { type: { enum: ['timestamp', 'method', 'path', 'pathWithQuery', 'query', 'body', 'literal', 'header', 'bodyParam', 'hash'] } },
      // The type decides the rest of the shape (checked per type below).
      if: { properties: { type: { const: 'hash' } } },
      then: {
        additionalProperties: false,
        required: ['type', 'algorithm', 'parts'],
        properties: {
          type: { const: 'hash' },
          algorithm: { enum: ['sha256', 'sha512'] },
          encoding: { enum: ['raw', 'hex', 'base64'] },
          parts: { type: 'array', minItems: 1, maxItems: 20, items: { $ref: '#/definitions/part' } },
        },
      },
      else: {
        if: { properties: { type: { const: 'literal' } } },
        then: literalPart,
        else: { if: { properties: { type: { enum: ['header', 'bodyParam'] } } }, then: namedPart, else: simplePart },
      },
    },
  },
  properties: {
    algorithm: { enum: ['sha256', 'sha512'] },
    secretField: { type: 'string', minLength: 1, maxLength: 64 },
    secretEncoding: { enum: ['utf8', 'base64', 'hex'] },
    timestampFormat: { enum: ['unix_s', 'unix_ms', 'iso_ms'] },
    message: { type: 'array', minItems: 1, maxItems: 20, items: { $ref: '#/definitions/part' } },
    output: { enum: ['hex', 'base64'] },
    signature: placement,
    timestamp: placement,
    keyId: {
      type: 'object',
      additionalProperties: false,
      required: ['field'],
      minProperties: 2,
      maxProperties: 2,
      properties: { ...placement.properties, field: { type: 'string', minLength: 1, maxLength: 64 } },
    },
    headers: {
      type: 'object',
      maxProperties: 20,
      propertyNames: { pattern: TOKEN_PATTERN },
      additionalProperties: { type: 'string', maxLength: 1024, pattern: HEADER_VALUE_PATTERN },
    },
  },
} as const;

const validate = lazyValidator('hmacTemplate', HMAC_TEMPLATE_SCHEMA);

/** Problems of a template against the fields a record (or catalog entry) has; `where` prefixes each field name. */
export function hmacTemplateProblems(raw: unknown, fieldNames: ReadonlySet<string>, where: string): ErrorDetail[] {
  if (!validate(raw)) {
    // Only the most specific problem per place: if/then/else adds a generic "must match" for each.
    const seen = new Set<string>();
    const out: ErrorDetail[] = [];
    for (const e of validate.errors ?? []) {
      if (e.keyword === 'if') continue;
      const path = e.instancePath.slice(1).replace(/\/(\d+)/g, '[$1]').replaceAll('/', '.');
      const field = `${where}${path ? `.${path}` : ''}`;
      let problem = e.message ?? 'is invalid';
      if (e.keyword === 'enum') problem = `must be one of ${(e.params.allowedValues as string[]).join(', ')}`;
      if (e.keyword === 'additionalProperties') problem = `has an unknown property "${String(e.params.additionalProperty)}"`;
      if (e.keyword === 'required') problem = `must have property "${String(e.params.missingProperty)}"`;
      if (e.keyword === 'minProperties' || e.keyword === 'maxProperties') problem = 'must name exactly one of header or query';
      const key = `${field}|${problem}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ field, problem });
    }
    return out;
  }
  const t = raw as HmacTemplate;
  const out: ErrorDetail[] = [];
  const say = (field: string, problem: string): void => void out.push({ field: `${where}.${field}`, problem });
  if (!fieldNames.has(t.secretField)) say('secretField', `names no credential field (${[...fieldNames].join(', ')})`);
  if (t.keyId && !fieldNames.has(t.keyId.field)) say('keyId.field', `names no credential field (${[...fieldNames].join(', ')})`);
  for (const [name, value] of Object.entries(t.headers ?? {})) {
    if (isForbiddenStaticHeader(name) || name.toLowerCase().startsWith('x-latchkey-')) say(`headers.${name}`, 'cannot be set');
    for (const f of placeholders(value)) if (!fieldNames.has(f)) say(`headers.${name}`, `{{${f}}} names no credential field`);
  }
  for (const p of [t.signature, t.timestamp, t.keyId]) {
    if (p?.header && isForbiddenStaticHeader(p.header)) say('signature', `${p.header} cannot carry a signature, timestamp or key`);
  }
  return out;
}

/** Whether the message reads the body (then it is buffered, up to proxy.signing.maxBodyBytes). */
export function usesBody(parts: readonly HmacPart[]): boolean {
  return parts.some((p) => p.type === 'body' || p.type === 'bodyParam' || (p.type === 'hash' && usesBody(p.parts)));
}
