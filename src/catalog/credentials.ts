/**
 * POST /v1/integrations/{provider}/credentials: check the fields against the
 * catalog entry, try them with the provider's probe (through the same
 * injection the proxy uses), and only then store the integration and its
 * sealed auth record together.
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
import type { Store } from '../store/store.js';
import { URL_FIELD_VALUE, type Catalog, type CompiledProvider } from './catalog.js';
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
}

const VALUE = new RegExp(HEADER_VALUE_PATTERN);
const MAX_VALUE = 8192;

/** Every problem at once: missing required fields are listed, unknown ones named (typos). */
function checkFields(p: CompiledProvider, req: CredentialRequest): Record<string, string> {
  const details: ErrorDetail[] = [];
  const fields: Record<string, string> = {};
  for (const name of p.entry.requiredFields) {
    if (req.credentials[name] === undefined) details.push({ field: `credentials.${name}`, problem: 'is required' });
  }
  const urlFields = new Set(p.entry.urlFields ?? []);
  for (const [name, raw] of Object.entries(req.credentials)) {
    const field = `credentials.${name}`;
    if (!p.fields.has(name)) {
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

export async function storeProviderCredential(deps: CredentialDeps, providerId: string, req: CredentialRequest): Promise<StoreResult> {
  const p = deps.catalog.get(providerId);
  if (!p) throw new LatchkeyError('UNKNOWN_PROVIDER', `no provider ${providerId} in the catalog`);
  if (p.entry.kind === 'oauth2') {
    // Its credential is a grant a person approves, not fields to store: the connect flow makes it.
    throw validationError([
      { field: 'credentials', problem: `${providerId} is an OAuth 2 provider: connect it with POST /v1/integrations/${providerId}/oauth/authorize` },
    ]);
  }
  const fields = checkFields(p, req);
  const base = checkBaseUrl(render(p.entry.baseUrl, fields) ?? '');
  const allowedHosts = p.entry.allowedHosts.map((h) => (render(h, fields) ?? '').toLowerCase());
  if (typeof base === 'string' || !hostAllowed(allowedHosts, base.host, base.port)) {
    throw new LatchkeyError('INTERNAL_ERROR', `catalog entry ${providerId} renders an invalid base URL`);
  }

  const stored = kindCredential(p, fields);
  const { outcome, detail } = await probe(deps, p, base, fields);
  if (outcome === 'rejected') {
    throw new LatchkeyError('CREDENTIAL_VALIDATION_FAILED', `${p.entry.displayName} rejected these credentials; nothing was stored`);
  }

  const label = req.label ?? null;
  const { store } = deps;
  const record = store.db.transaction(() => {
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
    // The integration carries the provider's fixed headers; the record carries the secrets and the template.
    const template = p.authType === 'API_KEY' ? p.template : null;
    return store.authRecords.create(target.id, p.authType, [], { apiKey: null, secrets: stored.secrets, config: stored.config }, { provider: providerId, label, template });
  }).immediate();
  const credential: StoredCredential = {
    credentialId: record.authId,
    integrationId: record.integrationId,
    provider: providerId,
    label,
    status: outcome,
    createdAt: record.createdAt,
  };
  const warnings = shortSecretWarnings({ authType: 'API_KEY', fields, config: null, template: p.template, apiKey: null });
  if (warnings.length > 0) credential.warnings = warnings;
  return { credential, probeDetail: detail };
}
