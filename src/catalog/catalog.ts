/**
 * The provider catalog: config/providers.json plus the config file's
 * `providers` (same `provider` id: replaced). Each entry is checked once, at
 * start, against PROVIDER_SCHEMA and against its own field lists, then
 * compiled to the injection template every auth record uses.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HEADER_VALUE_PATTERN, TOKEN_PATTERN, isForbiddenStaticHeader, type StaticHeader } from '../credentials/headers.js';
import { placeholders, render, type InjectionTemplate } from '../credentials/template.js';
import { checkBaseUrl, checkHostEntry, hostAllowed } from '../hosts.js';
import { endpointProblem } from '../credentials/kinds/token-kinds.js';
import type { AuthType } from '../credentials/auth-types.js';
import { hmacTemplateProblems, type HmacTemplate } from '../credentials/hmac-template.js';
import { lazyValidator } from '../json-schema.js';

export interface ProviderProbe {
  method: 'GET' | 'POST' | 'HEAD';
  /** Below the base URL; may use `{{field}}` (URL-encoded when rendered). */
  path: string;
  body?: unknown;
  /** Statuses that mean the credential works. */
  expect: number[];
  /** Some APIs answer 200 to a bad key; this JSON field value says "rejected". */
  rejectedWhen?: { field: string; equals: string | number | boolean | null };
}

/** How a provider's tokens are obtained (kind oauth2): its public endpoints and default scopes. */
export interface ProviderOAuth2 {
  authorizeUrl: string;
  tokenUrl: string;
  scopes: string[];
  /** How scopes are joined in the request (space by RFC 6749; a few providers use commas). */
  scopeSeparator?: string;
  /** Extra authorize parameters the provider needs to issue a refresh token (access_type=offline...). */
  extraParams?: Record<string, string>;
  clientAuth?: 'basic' | 'post';
  /** The provider offers the client-credentials grant: POST .../credentials stores OAUTH2_CLIENT_CREDENTIALS. */
  clientCredentials?: boolean;
}

/** AWS_SIGV4 record fields, each mapped to the name of the catalog field that fills it. */
export interface AwsFieldMap {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  region?: string;
  service?: string;
}

export type ProviderKind = 'api_key' | 'signing' | 'oauth2';

export interface ProviderEntry {
  provider: string;
  /** Default api_key. */
  kind?: ProviderKind;
  oauth2?: ProviderOAuth2;
  displayName: string;
  docs?: string;
  baseUrl: string;
  allowedHosts: string[];
  requiredFields: string[];
  optionalFields: string[];
  /** Fields placed in the base URL's host (a shop or site name): not secret, host-label characters only. */
  urlFields?: string[];
  /** api_key entries: where each field goes. oauth2 entries inject the access token instead. */
  inject?: {
    headers?: Record<string, string>;
    query?: Record<string, string>;
    basic?: { username: string; password: string };
  };
  /** Signing providers: exactly one of `aws` (AWS_SIGV4) or `hmac` (an HMAC template over the fields). */
  sign?: { aws?: AwsFieldMap; hmac?: HmacTemplate };
  /** Fixed headers the provider requires (a version header, an Accept type). */
  headers?: Record<string, string>;
  probe?: ProviderProbe | null;
}

const FIELD = '^[a-z][a-z0-9_]{0,63}$';
const fieldList = { type: 'array', maxItems: 20, uniqueItems: true, items: { type: 'string', pattern: FIELD } } as const;
const headerMap = {
  type: 'object',
  maxProperties: 20,
  propertyNames: { pattern: TOKEN_PATTERN },
  additionalProperties: { type: 'string', maxLength: 1024, pattern: HEADER_VALUE_PATTERN },
} as const;

export const PROVIDER_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['provider', 'displayName', 'baseUrl', 'allowedHosts', 'requiredFields', 'optionalFields'],
  properties: {
    provider: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,40}$' },
    kind: { enum: ['api_key', 'signing', 'oauth2'] },
    oauth2: {
      type: 'object',
      additionalProperties: false,
      required: ['authorizeUrl', 'tokenUrl', 'scopes'],
      properties: {
        authorizeUrl: { type: 'string', maxLength: 500 },
        tokenUrl: { type: 'string', maxLength: 500 },
        scopes: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 300, pattern: '^[^\\s,]+$' } },
        scopeSeparator: { enum: [' ', ','] },
        extraParams: { type: 'object', maxProperties: 10, additionalProperties: { type: 'string', maxLength: 300 } },
        clientAuth: { enum: ['basic', 'post'] },
        clientCredentials: { type: 'boolean' },
      },
    },
    displayName: { type: 'string', minLength: 1, maxLength: 100 },
    docs: { type: 'string', pattern: '^https://' },
    baseUrl: { type: 'string', minLength: 1, maxLength: 500 },
    allowedHosts: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'string', minLength: 1, maxLength: 260 } },
    requiredFields: fieldList,
    optionalFields: fieldList,
    urlFields: fieldList,
    inject: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        headers: headerMap,
        query: { type: 'object', maxProperties: 10, additionalProperties: { type: 'string', maxLength: 1024 } },
        basic: {
          type: 'object',
          additionalProperties: false,
          required: ['username', 'password'],
          properties: { username: { type: 'string', maxLength: 512 }, password: { type: 'string', maxLength: 512 } },
        },
      },
    },
    sign: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: {
        aws: {
          type: 'object',
          additionalProperties: false,
          required: ['accessKeyId', 'secretAccessKey'],
          properties: Object.fromEntries(
            ['accessKeyId', 'secretAccessKey', 'sessionToken', 'region', 'service'].map((k) => [k, { type: 'string', pattern: FIELD }]),
          ),
        },
        // Checked in full by hmacTemplateProblems, with field names.
        hmac: { type: 'object' },
      },
    },
    headers: headerMap,
    probe: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['method', 'path', 'expect'],
      properties: {
        method: { enum: ['GET', 'POST', 'HEAD'] },
        path: { type: 'string', pattern: '^/', maxLength: 500 },
        body: {},
        expect: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 200, maximum: 399 } },
        rejectedWhen: {
          type: 'object',
          additionalProperties: false,
          required: ['field', 'equals'],
          properties: { field: { type: 'string' }, equals: { type: ['string', 'number', 'boolean', 'null'] } },
        },
      },
    },
  },
} as const;

const validateEntry = lazyValidator('catalogEntry', PROVIDER_SCHEMA);

/** A host label: what a url field may hold, so it can never change which host is reached. */
export const URL_FIELD_VALUE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Problems of one entry, each prefixed by `where` (e.g. "providers[2]"). Empty: the entry is sound. */
export function providerProblems(raw: unknown, where: string): string[] {
  if (!validateEntry(raw)) {
    return (validateEntry.errors ?? []).map((e) => {
      const path = e.instancePath.slice(1).replaceAll('/', '.');
      const extra = e.keyword === 'additionalProperties' ? ` "${String(e.params.additionalProperty)}"` : '';
      return `${where}${path ? `.${path}` : ''}: ${e.message ?? 'invalid'}${extra}`;
    });
  }
  const p = raw as ProviderEntry;
  const problems: string[] = [];
  const say = (path: string, problem: string): void => {
    problems.push(`${where}.${path}: ${problem}`);
  };
  const declared = new Set([...p.requiredFields, ...p.optionalFields]);
  const urlFields = new Set(p.urlFields ?? []);
  const kind = p.kind ?? 'api_key';
  if (kind === 'oauth2') {
    // Its credential is an access token from the connect flow: no fields are injected.
    if (!p.oauth2) say('oauth2', 'is required for kind oauth2');
    for (const key of ['authorizeUrl', 'tokenUrl'] as const) {
      const problem = p.oauth2 ? endpointProblem(p.oauth2[key]) : null;
      if (problem) say(`oauth2.${key}`, problem);
    }
    if (p.inject) say('inject', 'an oauth2 provider injects its access token; remove inject');
  } else {
    if (p.oauth2) say('oauth2', `does not belong to kind ${kind}`);
    if (kind === 'api_key' && (!p.inject || Object.keys(p.inject).length === 0)) say('inject', 'is required for this kind');
    if (kind === 'signing' && !p.sign) say('sign', 'is required for kind signing');
    if (declared.size === 0) say('requiredFields', 'a provider needs at least one field');
  }
  if (kind !== 'signing' && p.sign) say('sign', 'belongs to kind signing');
  const inject = p.inject ?? {};
  for (const f of p.optionalFields) if (p.requiredFields.includes(f)) say('optionalFields', `${f} is also required`);
  for (const f of urlFields) if (!p.requiredFields.includes(f)) say('urlFields', `${f} must be a required field`);
  const useOnly = (path: string, template: string, allowed: Set<string>, what: string): void => {
    for (const name of placeholders(template)) if (!allowed.has(name)) say(path, `{{${name}}} is not a declared ${what}`);
  };
  if (p.sign?.aws) {
    for (const [key, name] of Object.entries(p.sign.aws)) if (!declared.has(name)) say(`sign.aws.${key}`, `${name} is not a declared field`);
  }
  if (p.sign?.hmac) {
    for (const d of hmacTemplateProblems(p.sign.hmac, declared, `${where}.sign.hmac`)) problems.push(`${d.field}: ${d.problem}`);
  }
  for (const [name, tpl] of Object.entries(inject.headers ?? {})) {
    if (isForbiddenStaticHeader(name)) say(`inject.headers.${name}`, 'cannot be set by a provider');
    useOnly(`inject.headers.${name}`, tpl, declared, 'field');
  }
  for (const [name, tpl] of Object.entries(inject.query ?? {})) useOnly(`inject.query.${name}`, tpl, declared, 'field');
  if (inject.basic) {
    useOnly('inject.basic.username', inject.basic.username, declared, 'field');
    useOnly('inject.basic.password', inject.basic.password, declared, 'field');
  }
  for (const [name, value] of Object.entries(p.headers ?? {})) {
    if (isForbiddenStaticHeader(name)) say(`headers.${name}`, 'cannot be a static header');
    if (placeholders(value).length > 0) say(`headers.${name}`, 'fixed headers hold no fields; use inject.headers');
  }
  if (p.probe) useOnly('probe.path', p.probe.path, declared, 'field');
  useOnly('baseUrl', p.baseUrl, urlFields, 'url field');
  p.allowedHosts.forEach((h, i) => useOnly(`allowedHosts[${i}]`, h, urlFields, 'url field'));
  // With sample values in the url fields, the base URL and hosts must be sound and agree.
  const sample = Object.fromEntries([...urlFields].map((f) => [f, 'sample']));
  const base = checkBaseUrl(render(p.baseUrl, sample) ?? '');
  const hosts = p.allowedHosts.map((h) => (render(h, sample) ?? '').toLowerCase());
  if (typeof base === 'string') say('baseUrl', base);
  hosts.forEach((h, i) => {
    const problem = checkHostEntry(h);
    if (problem) say(`allowedHosts[${i}]`, problem);
  });
  if (typeof base !== 'string' && !hostAllowed(hosts, base.host, base.port)) say('allowedHosts', 'must include the host of baseUrl');
  return problems;
}

export interface CompiledProvider {
  entry: ProviderEntry;
  /** The auth type its records get: API_KEY (a template), AWS_SIGV4 or HMAC. */
  authType: AuthType;
  template: InjectionTemplate;
  staticHeaders: StaticHeader[];
  fields: Set<string>;
}

function compile(raw: ProviderEntry): CompiledProvider {
  const entry: ProviderEntry = { ...raw, kind: raw.kind ?? 'api_key' };
  const inject = entry.inject ?? {};
  return {
    entry,
    authType: entry.sign?.aws ? 'AWS_SIGV4' : entry.sign?.hmac ? 'HMAC' : 'API_KEY',
    template: {
      headers: Object.entries(inject.headers ?? {}),
      query: Object.entries(inject.query ?? {}),
      basic: inject.basic ?? null,
    },
    staticHeaders: Object.entries(entry.headers ?? {}).map(([key, value]) => ({ key, value })),
    fields: new Set([...entry.requiredFields, ...entry.optionalFields]),
  };
}

export class Catalog {
  private readonly byId: Map<string, CompiledProvider>;

  constructor(entries: ProviderEntry[]) {
    this.byId = new Map(entries.map((e) => [e.provider, compile(e)]));
  }

  get(provider: string): CompiledProvider | undefined {
    return this.byId.get(provider);
  }

  list(): ProviderEntry[] {
    return [...this.byId.values()].map((c) => c.entry).sort((a, b) => a.provider.localeCompare(b.provider));
  }
}

/** The package's own folder (holding package.json), wherever latchkey is started from. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The package's own config/ folder, wherever latchkey is started from. */
export function builtInCatalogPath(): string {
  return join(packageRoot(), 'config', 'providers.json');
}

/** Built-in entries, then the config's: returns the catalog or the list of problems. */
export function buildCatalog(fromConfig: unknown[]): Catalog | string[] {
  const path = builtInCatalogPath();
  const builtIn = JSON.parse(readFileSync(path, 'utf8')) as unknown[];
  const problems = [
    ...builtIn.flatMap((e, i) => providerProblems(e, `config/providers.json[${i}]`)),
    ...fromConfig.flatMap((e, i) => providerProblems(e, `providers[${i}]`)),
  ];
  if (problems.length > 0) return problems;
  const merged = new Map<string, ProviderEntry>();
  for (const e of [...builtIn, ...fromConfig] as ProviderEntry[]) merged.set(e.provider, e);
  return new Catalog([...merged.values()]);
}
