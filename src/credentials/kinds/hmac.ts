/**
 * HMAC: a request signature described by a template (credentials/hmac-template.ts),
 * computed at send time over the exact bytes sent, with latchkey's clock.
 * The client's own values at the signature, timestamp and key-id places are
 * removed first, so a dummy-signed call is signed again, never twice.
 */
import { createHash, createHmac } from 'node:crypto';
import { LatchkeyError, type ErrorDetail } from '../../errors.js';
import type { CredentialKind, Fields, Injector, KindDeps, OutgoingRequest } from '../kind.js';
import { HEADER_VALUE_PATTERN } from '../headers.js';
import { hmacTemplateProblems, usesBody, type HmacPart, type HmacTemplate } from '../hmac-template.js';
import type { InjectionTemplate } from '../template.js';
import { injectQuery, queryValue } from '../../proxy/inject.js';

const VALUE = new RegExp(HEADER_VALUE_PATTERN);
const MAX_FIELDS = 10;
const MAX_VALUE = 8192;

export function formatTimestamp(now: number, format: HmacTemplate['timestampFormat']): string {
  if (format === 'unix_s') return String(Math.floor(now / 1000));
  if (format === 'unix_ms') return String(now);
  return new Date(now).toISOString();
}

export function decodeSecret(value: string, encoding: HmacTemplate['secretEncoding']): Buffer {
  if (encoding === 'utf8') return Buffer.from(value, 'utf8');
  return Buffer.from(value, encoding);
}

interface MessageInput {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  timestamp: string;
}

/** A form or JSON body's top-level field (Kraken signs its nonce this way). */
function bodyParam(body: Buffer, name: string): string {
  const text = body.toString('utf8');
  if (/^\s*\{/.test(text)) {
    try {
      const v = (JSON.parse(text) as Record<string, unknown>)[name];
      return v === undefined || v === null ? '' : String(v);
    } catch {
      return '';
    }
  }
  return queryValue(text, name) ?? '';
}

export function messageBytes(parts: readonly HmacPart[], m: MessageInput): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    switch (p.type) {
      case 'timestamp':
        out.push(Buffer.from(m.timestamp));
        break;
      case 'method':
        out.push(Buffer.from(m.method.toUpperCase()));
        break;
      case 'path':
        out.push(Buffer.from(m.path));
        break;
      case 'pathWithQuery':
        out.push(Buffer.from(m.query ? `${m.path}?${m.query}` : m.path));
        break;
      case 'query':
        out.push(Buffer.from(m.query));
        break;
      case 'body':
        out.push(m.body);
        break;
      case 'literal':
        out.push(Buffer.from(p.value));
        break;
      case 'header': {
        const v = m.headers[p.name.toLowerCase()];
        out.push(Buffer.from(Array.isArray(v) ? v.join(',') : (v ?? '')));
        break;
      }
      case 'bodyParam':
        out.push(Buffer.from(bodyParam(m.body, p.name)));
        break;
      case 'hash': {
        const digest = createHash(p.algorithm).update(messageBytes(p.parts, m)).digest();
        const enc = p.encoding ?? 'raw';
        out.push(enc === 'raw' ? digest : Buffer.from(digest.toString(enc)));
        break;
      }
    }
  }
  return Buffer.concat(out);
}

export function sign(t: HmacTemplate, secret: string, m: MessageInput): string {
  return createHmac(t.algorithm, decodeSecret(secret, t.secretEncoding)).update(messageBytes(t.message, m)).digest(t.output);
}

const splitPath = (path: string): { path: string; query: string } => {
  const q = path.indexOf('?');
  return q < 0 ? { path, query: '' } : { path: path.slice(0, q), query: path.slice(q + 1) };
};

export function hmacInjector(t: HmacTemplate, fields: Fields, deps: KindDeps): Injector {
  const secret = fields[t.secretField] ?? '';
  const apply = (req: OutgoingRequest): void => {
    if (req.body === null && usesBody(t.message)) throw new LatchkeyError('SIGNING_FAILED', 'the HMAC message needs the body');
    let { path, query } = splitPath(req.path);
    // A client that signed with a dummy key sent its own signature and timestamp: they are replaced, not doubled.
    const drop = [t.signature.query, t.timestamp?.query].filter((n): n is string => n !== undefined);
    if (drop.length > 0) query = injectQuery(query, [], drop);
    for (const p of [t.signature.header, t.timestamp?.header]) if (p) delete req.headers[p.toLowerCase()];
    const timestamp = formatTimestamp(req.now, t.timestampFormat);
    if (t.timestamp?.header) req.headers[t.timestamp.header.toLowerCase()] = timestamp;
    if (t.timestamp?.query) query = injectQuery(query, [[t.timestamp.query, timestamp]], []);
    const sig = sign(t, secret, { method: req.method, path, query, headers: req.headers, body: req.body ?? Buffer.alloc(0), timestamp });
    if (t.signature.header) req.headers[t.signature.header.toLowerCase()] = sig;
    // Appended last: the signed query is everything before it (Binance's rule, harmless for others).
    if (t.signature.query) query = query ? `${query}&${encodeURIComponent(t.signature.query)}=${encodeURIComponent(sig)}` : `${encodeURIComponent(t.signature.query)}=${encodeURIComponent(sig)}`;
    req.path = query ? `${path}?${query}` : path;
  };
  return usesBody(t.message) ? { needsBody: { maxBytes: deps.maxBodyBytes }, apply } : { apply };
}

/** The key id and further headers are fixed per record: rendered once, like any static credential. */
export function staticPart(t: HmacTemplate): InjectionTemplate {
  const headers: Array<[string, string]> = Object.entries(t.headers ?? {});
  const query: Array<[string, string]> = [];
  if (t.keyId?.header) headers.push([t.keyId.header, `{{${t.keyId.field}}}`]);
  if (t.keyId?.query) query.push([t.keyId.query, `{{${t.keyId.field}}}`]);
  return { headers, query, basic: null };
}

function checkFields(raw: unknown, problems: ErrorDetail[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push({ field: 'hmac.fields', problem: 'must be an object of field names to secret strings' });
    return out;
  }
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_FIELDS) problems.push({ field: 'hmac.fields', problem: `must hold 1 to ${MAX_FIELDS} fields` });
  for (const [name, v] of entries) {
    const field = `hmac.fields.${name}`;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name)) problems.push({ field, problem: 'name must be letters, digits and "_"' });
    else if (typeof v !== 'string' || v.length === 0 || v.length > MAX_VALUE) problems.push({ field, problem: `must be a string of 1 to ${MAX_VALUE} characters` });
    else if (!VALUE.test(v)) problems.push({ field, problem: 'must not contain control characters' });
    else out[name] = v;
  }
  return out;
}

/** A base64 or hex secret that does not decode would sign with garbage: refused when stored. */
function checkSecretEncoding(t: HmacTemplate, fields: Record<string, string>, problems: ErrorDetail[]): void {
  const v = fields[t.secretField];
  if (v === undefined) return;
  const ok = t.secretEncoding === 'utf8' || (t.secretEncoding === 'hex' ? /^([0-9a-fA-F]{2})+$/.test(v) : /^[A-Za-z0-9+/_-]+={0,2}$/.test(v) && decodeSecret(v, 'base64').length > 0);
  if (!ok) problems.push({ field: `hmac.fields.${t.secretField}`, problem: `is not valid ${t.secretEncoding}` });
}

function parseHmac(input: unknown, problems: ErrorDetail[], current?: { secrets: Record<string, string>; config: Record<string, unknown> | null }) {
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    problems.push({ field: 'hmac', problem: 'must be an object with fields and template' });
    return { secrets: {}, config: null };
  }
  const { fields: rawFields, template: rawTemplate, ...rest } = input as Record<string, unknown>;
  for (const k of Object.keys(rest)) problems.push({ field: `hmac.${k}`, problem: 'is not a property of an HMAC credential' });
  if (!current && rawFields === undefined) problems.push({ field: 'hmac.fields', problem: 'is required for authType HMAC' });
  if (!current && rawTemplate === undefined) problems.push({ field: 'hmac.template', problem: 'is required for authType HMAC' });
  // PATCH: fields given replace the field set (a rotated secret); a template given replaces the template.
  const fields = rawFields === undefined ? (current?.secrets ?? {}) : checkFields(rawFields, problems);
  const template = rawTemplate === undefined ? current?.config?.template : rawTemplate;
  if (template !== undefined) {
    const found = hmacTemplateProblems(template, new Set(Object.keys(fields)), 'hmac.template');
    problems.push(...found);
    if (found.length === 0) checkSecretEncoding(template as HmacTemplate, fields, problems);
  }
  return { secrets: fields, config: { template } };
}

const templateOf = (config: Readonly<Record<string, unknown>> | null): HmacTemplate => config?.template as HmacTemplate;

export const hmacKind: CredentialKind = {
  type: 'HMAC',
  field: 'hmac',
  bodySchema: {
    type: 'object',
    description: 'HMAC credential: fields (all sealed) and the signing template (shown); see docs/signing.md.',
    properties: {
      fields: { type: 'object', additionalProperties: { type: 'string' } },
      template: { type: 'object' },
    },
  },
  parse: (input, problems) => parseHmac(input, problems),
  patch: (current, input, problems) => parseHmac(input, problems, current),
  // The template names fields; the fields' values are sealed and never shown.
  view: (config) => ({ template: templateOf(config) }),
  secretsOf: (input) => Object.values(input.fields).filter((v): v is string => v !== undefined),
  prepare(input, deps) {
    const t = templateOf(input.config);
    const template = staticPart(t);
    // A client's latchkey key may sit where the key id goes (an SDK given it as its API key).
    const clientKeyHeaders = t.keyId?.header ? [t.keyId.header.toLowerCase()] : [];
    return { template, injector: hmacInjector(t, input.fields, deps), clientKeyHeaders };
  },
};
