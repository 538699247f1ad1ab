/**
 * POST /v1/integrations/{provider}/credentials: check the fields against the
 * catalog entry, try them with the provider's probe (through the same
 * injection the proxy uses), and only then store the integration and its
 * sealed auth record together. An OAuth 2 provider that offers the
 * client-credentials grant takes a client id and secret instead, tried with
 * one token request and stored as OAUTH2_CLIENT_CREDENTIALS.
 */
import type { Dispatcher } from 'undici';
import { LatchkeyError, validationError, type ErrorDetail } from '../errors.js';
import { HEADER_VALUE_PATTERN, HEADER_VALUE_PROBLEM } from '../credentials/headers.js';
import { render } from '../credentials/template.js';
import { shortSecretWarnings } from '../credentials/redaction-warnings.js';
import { checkBaseUrl, hostAllowed, type ParsedBaseUrl } from '../hosts.js';
import { newIntegrationId } from '../ids.js';
import { buildAuthPlan } from '../proxy/plans.js';
import { injectQuery, splitPathQuery, upstreamHeaders } from '../proxy/inject.js';
import { upstreamError, type UpstreamRequest } from '../proxy/forward.js';
import { applyInjector } from '../proxy/apply.js';
import type { KindDeps, KindInput, ParsedCredential } from '../credentials/kind.js';
import { kindOf } from '../credentials/kinds/index.js';
import { parseTokenCredential } from '../credentials/kinds/token-kinds.js';
import { grantErrorOf, requestToken, type GrantContext, type IssuedToken } from '../credentials/tokens/grants.js';
import { liveToken } from '../credentials/tokens/token-cache.js';
import type { Store } from '../store/store.js';
import type { AuthRecord } from '../store/auth-records.js';
import type { AuthType, NewCredential } from '../credentials/auth-types.js';
import { URL_FIELD_VALUE, type Catalog, type CompiledProvider, type ProviderOAuth2 } from './catalog.js';
import { isIntegrationId } from '../admin/schemas.js';

export interface CredentialRequest {
  credentials: Record<string, unknown>;
  label?: string;
  integrationId?: string;
}

export type CredentialStatus = 'validated' | 'unverified';

export interface StoredCredential {
  credentialId: string;
  integrationId: string;
  provider: string;
  label: string | null;
  status: CredentialStatus;
  createdAt: string;
  /** Present when a secret field is too short to be redacted from responses. */
  warnings?: string[];
}

export interface StoreResult {
  credential: StoredCredential;
  probeDetail: string;
}

export interface CredentialDeps {
  store: Store;
  catalog: Catalog;
  agent: Dispatcher;
  probeTimeoutMs: number;
  kindDeps: KindDeps;
  /** Token requests (a client-credentials provider's check), and the renewal margin of the token it gets. */
  grant: GrantContext;
  marginSeconds: number;
}

const VALUE = new RegExp(HEADER_VALUE_PATTERN);
const MAX_VALUE = 8192;

/**
 * Every problem at once: missing required fields are listed, unknown ones
 * named (typos). The fields are the entry's, or those given (a
 * client-credentials provider's client id and secret).
 */
function checkFields(
  p: CompiledProvider,
  req: CredentialRequest,
  required: readonly string[] = p.entry.requiredFields,
  known: ReadonlySet<string> = p.fields,
): Record<string, string> {
  const details: ErrorDetail[] = [];
  const fields: Record<string, string> = {};
  for (const name of required) {
    if (req.credentials[name] === undefined) details.push({ field: `credentials.${name}`, problem: 'is required' });
  }
  const urlFields = new Set(p.entry.urlFields ?? []);
  for (const [name, raw] of Object.entries(req.credentials)) {
    const field = `credentials.${name}`;
    if (!known.has(name)) {
      details.push({ field, problem: `is not a field of ${p.entry.provider}` });
    } else if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_VALUE) {
      details.push({ field, problem: `must be a string of 1 to ${MAX_VALUE} characters` });
    } else if (!VALUE.test(raw)) {
      details.push({ field, problem: HEADER_VALUE_PROBLEM });
    } else if (urlFields.has(name) && !URL_FIELD_VALUE.test(raw.toLowerCase())) {
      // It becomes part of a host name: only a plain label, so it cannot point elsewhere.
      details.push({ field, problem: 'must be a host label (letters, digits and "-")' });
    } else {
      fields[name] = urlFields.has(name) ? raw.toLowerCase() : raw;
    }
  }
  if (req.label !== undefined && (typeof req.label !== 'string' || req.label.length > 100)) {
    details.push({ field: 'label', problem: 'must be a string of at most 100 characters' });
  }
  if (req.integrationId !== undefined && !isIntegrationId(req.integrationId)) {
    details.push({ field: 'integrationId', problem: 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' });
  }
  if (details.length > 0) throw validationError(details);
  return fields;
}

interface ProbeOutcome {
  outcome: CredentialStatus | 'rejected';
  /** Why, for the log: a status or the connection failure. Never a header or a body. */
  detail: string;
}

function jsonField(text: string, path: string): unknown {
  try {
    return path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * What the record stores: an API-key provider's fields as they are; a
 * signing provider's fields mapped onto its kind's credential (AWS_SIGV4's
 * `aws`, HMAC's `hmac`) and checked by that kind, problems named by the
 * catalog field.
 */
function kindCredential(p: CompiledProvider, fields: Record<string, string>): ParsedCredential {
  const sign = p.entry.sign;
  if (!sign) return { secrets: fields, config: null };
  const kind = kindOf(p.authType);
  const problems: ErrorDetail[] = [];
  let parsed: ParsedCredential;
  let rename: (field: string) => string;
  if (sign.aws) {
    const map = sign.aws as unknown as Record<string, string>;
    const input = Object.fromEntries(Object.entries(map).flatMap(([k, name]) => (fields[name] === undefined ? [] : [[k, fields[name]]])));
    parsed = kind.parse?.(input, problems) ?? { secrets: {}, config: null };
    rename = (f) => `credentials.${map[f.replace(/^aws\./, '')] ?? f}`;
  } else {
    parsed = kind.parse?.({ fields, template: sign.hmac }, problems) ?? { secrets: {}, config: null };
    rename = (f) => f.replace(/^hmac\.fields\./, 'credentials.');
  }
  if (problems.length > 0) throw validationError(problems.map((d) => ({ field: rename(d.field), problem: d.problem })));
  return parsed;
}

/** The provider's cheap authenticated call, built (and signed) by the proxy's own injection. */
async function probe(deps: CredentialDeps, p: CompiledProvider, base: ParsedBaseUrl, fields: Record<string, string>): Promise<ProbeOutcome> {
  const spec = p.entry.probe;
  if (!spec) return { outcome: 'unverified', detail: 'the provider has no probe' };
  const stored = kindCredential(p, fields);
  const input: KindInput = { authType: p.authType, fields: stored.secrets, config: stored.config, template: p.template, apiKey: null };
  const plan = buildAuthPlan('probe', input, deps.kindDeps, p.staticHeaders, []);
  const encoded = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, encodeURIComponent(v)]));
  const { path, query } = splitPathQuery(render(spec.path, encoded) ?? spec.path);
  const q = injectQuery(query, plan.query, []);
  const headers = upstreamHeaders({}, plan, []);
  if (spec.body !== undefined) headers['content-type'] = 'application/json';
  const body = spec.body === undefined ? null : Buffer.from(JSON.stringify(spec.body));
  const up: UpstreamRequest = {
    origin: `${base.protocol}//${base.host}`,
    path: `${base.pathPrefix}${path}${q ? `?${q}` : ''}`,
    method: spec.method,
    headers,
    hostname: base.hostname,
    injectedQuery: plan.query,
    // The probe's answer is read by latchkey itself, never passed to a caller.
    redactor: null,
  };
  // A signing provider's probe is signed exactly as a proxied call would be; a signing failure is its own error.
  await applyInjector(plan, up, body);
  try {
    const res = await deps.agent.request({
      origin: up.origin,
      path: up.path,
      method: spec.method,
      headers: up.headers,
      body: up.body ?? body,
      headersTimeout: deps.probeTimeoutMs,
      bodyTimeout: deps.probeTimeoutMs,
      signal: AbortSignal.timeout(deps.probeTimeoutMs),
    });
    const text = spec.rejectedWhen ? await res.body.text() : (await res.body.dump(), '');
    const detail = `probe answered ${res.statusCode}`;
    if (res.statusCode === 401 || res.statusCode === 403) return { outcome: 'rejected', detail };
    if (!spec.expect.includes(res.statusCode)) return { outcome: 'unverified', detail };
    if (spec.rejectedWhen && jsonField(text, spec.rejectedWhen.field) === spec.rejectedWhen.equals) {
      return { outcome: 'rejected', detail: `${detail} with ${spec.rejectedWhen.field}=${String(spec.rejectedWhen.equals)}` };
    }
    return { outcome: 'validated', detail };
  } catch (err) {
    // Unreachable, timed out, TLS: the credential may well be good; it is kept as unverified.
    return { outcome: 'unverified', detail: upstreamError(err, base.hostname).message };
  }
}

const slug = (label: string): string =>
  label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);

/** The given id, else {provider} if free, else {provider}-{label slug} if free, else a generated one. */
function chooseIntegrationId(store: Store, provider: string, req: CredentialRequest): { id: string; exists: boolean } {
  if (req.integrationId !== undefined) {
    const existing = store.integrations.get(req.integrationId);
    if (existing && existing.provider !== provider) {
      throw new LatchkeyError('CONFLICT', `integration ${req.integrationId} already exists and is not a ${provider} integration`);
    }
    return { id: req.integrationId, exists: existing !== undefined };
  }
  const candidates = [provider];
  if (req.label && slug(req.label)) candidates.push(`${provider}-${slug(req.label)}`);
  const free = candidates.find((c) => !store.integrations.get(c));
  return { id: free ?? newIntegrationId(), exists: false };
}

/** The entry's base URL and allowed hosts, rendered with the fields (URL fields name the host). */
function renderedBase(p: CompiledProvider, fields: Record<string, string>): { base: ParsedBaseUrl; allowedHosts: string[] } {
  const base = checkBaseUrl(render(p.entry.baseUrl, fields) ?? '');
  const allowedHosts = p.entry.allowedHosts.map((h) => (render(h, fields) ?? '').toLowerCase());
  if (typeof base === 'string' || !hostAllowed(allowedHosts, base.host, base.port)) {
    throw new LatchkeyError('INTERNAL_ERROR', `catalog entry ${p.entry.provider} renders an invalid base URL`);
  }
  return { base, allowedHosts };
}

const rejected = (p: CompiledProvider): LatchkeyError =>
  new LatchkeyError('CREDENTIAL_VALIDATION_FAILED', `${p.entry.displayName} rejected these credentials; nothing was stored`);

export async function storeProviderCredential(deps: CredentialDeps, providerId: string, req: CredentialRequest): Promise<StoreResult> {
  const p = deps.catalog.get(providerId);
  if (!p) throw new LatchkeyError('UNKNOWN_PROVIDER', `no provider ${providerId} in the catalog`);
  if (p.entry.kind === 'oauth2') {
    if (p.entry.oauth2?.clientCredentials) return storeClientCredentials(deps, p, p.entry.oauth2, req);
    // Its credential is a grant a person approves, not fields to store: the connect flow makes it.
    throw validationError([
      { field: 'credentials', problem: `${providerId} is an OAuth 2 provider: connect it with POST /v1/integrations/${providerId}/oauth/authorize` },
    ]);
  }
  const fields = checkFields(p, req);
  const { base, allowedHosts } = renderedBase(p, fields);

  const stored = kindCredential(p, fields);
  const { outcome, detail } = await probe(deps, p, base, fields);
  if (outcome === 'rejected') throw rejected(p);

  // The integration carries the provider's fixed headers; the record carries the secrets and the template.
  const template = p.authType === 'API_KEY' ? p.template : null;
  const record = saveRecord(deps, p, req, base, allowedHosts, p.authType, { apiKey: null, secrets: stored.secrets, config: stored.config }, template);
  const warnings = shortSecretWarnings({ authType: 'API_KEY', fields, config: null, template: p.template, apiKey: null });
  return { credential: storedCredential(p, req, record, outcome, warnings), probeDetail: detail };
}

const CLIENT_CREDENTIAL_FIELDS: ReadonlySet<string> = new Set(['clientId', 'clientSecret', 'scope']);

/**
 * A client-credentials provider: `{clientId, clientSecret, scope?}` (the
 * token URL and client authentication are the catalog's; scope is only what
 * is given, as client-credentials scopes are the app's own, e.g. Microsoft's
 * `https://graph.microsoft.com/.default`). One token request checks them: a
 * refusal (invalid_client, 401) is 422 and nothing is stored; an endpoint that
 * cannot be reached stores them unverified. The token obtained is kept, so the
 * first call needs no request of its own.
 */
async function storeClientCredentials(deps: CredentialDeps, p: CompiledProvider, o: ProviderOAuth2, req: CredentialRequest): Promise<StoreResult> {
  const fields = checkFields(p, req, ['clientId', 'clientSecret'], CLIENT_CREDENTIAL_FIELDS);
  const details: ErrorDetail[] = [];
  const parsed = parseTokenCredential(
    'OAUTH2_CLIENT_CREDENTIALS',
    { tokenUrl: o.tokenUrl, clientId: fields.clientId, clientSecret: fields.clientSecret, scope: fields.scope, clientAuth: o.clientAuth },
    details,
  );
  if (details.length > 0) throw validationError(details.map((d) => ({ field: d.field.replace(/^oauth2\./, 'credentials.'), problem: d.problem })));
  const { base, allowedHosts } = renderedBase(p, fields);

  let issued: IssuedToken | null = null;
  let outcome: CredentialStatus = 'validated';
  let detail = 'the token endpoint issued a token';
  try {
    issued = await requestToken(deps.grant, parsed.tokenConfig, parsed.secrets);
  } catch (err) {
    const e = grantErrorOf(err);
    if (e.kind === 'refused') throw rejected(p);
    outcome = 'unverified';
    detail = e.detail;
  }
  const config = parsed.tokenConfig as unknown as Record<string, unknown>;
  const record = saveRecord(deps, p, req, base, allowedHosts, 'OAUTH2_CLIENT_CREDENTIALS', { apiKey: null, secrets: parsed.secrets, config }, null);
  if (issued) deps.store.tokenState.save(record.integrationId, record.authId, liveToken(issued.accessToken, issued.expiresIn, deps.marginSeconds * 1000), null);
  const warnings = shortSecretWarnings({ authType: 'OAUTH2_CLIENT_CREDENTIALS', fields: { ...parsed.secrets }, config, template: null, apiKey: null });
  return { credential: storedCredential(p, req, record, outcome, warnings), probeDetail: detail };
}

function storedCredential(p: CompiledProvider, req: CredentialRequest, record: AuthRecord, status: CredentialStatus, warnings: string[]): StoredCredential {
  const credential: StoredCredential = {
    credentialId: record.authId,
    integrationId: record.integrationId,
    provider: p.entry.provider,
    label: req.label ?? null,
    status,
    createdAt: record.createdAt,
  };
  if (warnings.length > 0) credential.warnings = warnings;
  return credential;
}

/** The integration (made from the entry unless it exists) and the record, in one transaction. */
function saveRecord(
  deps: CredentialDeps,
  p: CompiledProvider,
  req: CredentialRequest,
  base: ParsedBaseUrl,
  allowedHosts: string[],
  authType: AuthType,
  credential: NewCredential,
  template: CompiledProvider['template'] | null,
): AuthRecord {
  const providerId = p.entry.provider;
  const label = req.label ?? null;
  const { store } = deps;
  return store.db.transaction(() => {
    const target = chooseIntegrationId(store, providerId, req);
    if (!target.exists) {
      store.integrations.create({
        integrationId: target.id,
        name: label ? `${p.entry.displayName} (${label})` : p.entry.displayName,
        baseUrl: base.href,
        allowedHosts,
        headers: p.staticHeaders,
        provider: providerId,
        redactResponses: true,
      });
    }
    return store.authRecords.create(target.id, authType, [], credential, { provider: providerId, label, template });
  }).immediate();
}
