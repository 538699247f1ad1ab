/**
 * Injection plans: everything a proxied call needs about its integration and
 * auth record, resolved from the store once and kept in memory. Whenever the
 * database version moves (a write from this process or any other), the change
 * log names the integrations whose rows changed and only their plans are
 * dropped, so an admin change applies to the very next call while audit writes
 * and lastUsedAt flushes cost nothing. At most `maxPlans` plans are kept; past
 * that the least used goes first (BoundedCache, second-chance eviction).
 */
import { canonicalHostPort, hostAllowed, hostRefusal, parseBaseUrl, type ParsedBaseUrl } from '../hosts.js';
import { headersToPairs, type AuthType } from '../credentials/auth-types.js';
import { credentialPlaces, renderInjection } from '../credentials/template.js';
import type { Injector, KindDeps, KindInput } from '../credentials/kind.js';
import { kindOf } from '../credentials/kinds/index.js';
import { Redactor } from './redact.js';
import type { StaticHeader } from '../credentials/headers.js';
import type { Store } from '../store/store.js';
import type { AuthRecord } from '../store/auth-records.js';
import { LatchkeyError } from '../errors.js';
import { ChangeWatcher } from '../store/changes.js';
import { BoundedCache } from '../bounded-cache.js';
import type { RecordSubject } from '../call-record.js';

export interface AuthPlan {
  authId: string;
  authType: AuthType;
  /** Where the credential goes: a client's `lk_` key found there is removed and replaced. */
  credentialHeaders: string[];
  credentialQuery: string[];
  /** integration headers, then record headers, then the credential: one entry per lower-case name, last wins. */
  headers: Array<[string, string]>;
  /** Query parameters to set (API_KEY in query position). */
  query: Array<[string, string]>;
  /** Dynamic kinds (signers, tokens): runs at send time after every other edit; null for static kinds. */
  injector: Injector | null;
  /** Every secret value the plan injects (its kind's secretsOf); an injector may add more per call. */
  secrets: readonly string[];
  /** The secrets compiled for response redaction, once per plan; null when none is long enough to redact. */
  redactor: Redactor | null;
  /** The per-call records' text for this plan's integration, record and last caller (src/call-record.ts). */
  recordSubject: RecordSubject | null;
}

export interface IntegrationPlan {
  integrationId: string;
  base: ParsedBaseUrl;
  allowedHosts: string[];
  /** hostRefusal of the base URL's own host, decided once: path and header mode calls go there. */
  baseRefusal: 'not-allowed' | 'link-local' | null;
  /** The integration's static headers, the first layer of every auth plan. */
  headers: StaticHeader[];
  /** Whether injected secrets are replaced in responses (integration field redactResponses). */
  redactResponses: boolean;
  /** The most recent auth record's plan, or null when the integration has none. */
  latest: AuthPlan | null;
  /** Plans for records named with X-Latchkey-Auth-Id, filled on demand. */
  byAuthId: Map<string, AuthPlan | null> | null;
}

/** Merges header lists so that a later list replaces a same-named (case-insensitive) header. */
export function mergeHeaders(...lists: Array<Array<[string, string]>>): Array<[string, string]> {
  const merged = new Map<string, string>();
  for (const list of lists) for (const [name, value] of list) merged.set(name.toLowerCase(), value);
  return [...merged];
}

/**
 * The plan for one credential: integration headers, record headers, then the
 * kind's rendered template, and its injector if it has one. The proxy and the
 * catalog's validation probe both build their requests from this.
 */
export function buildAuthPlan(
  authId: string,
  input: KindInput,
  deps: KindDeps,
  integrationHeaders: StaticHeader[],
  recordHeaders: StaticHeader[],
): AuthPlan {
  const kind = kindOf(input.authType);
  const prepared = kind.prepare(input, deps);
  const credential = renderInjection(prepared.template, input.fields);
  const places = credentialPlaces(prepared.template);
  const secrets = kind.secretsOf(input);
  return {
    authId,
    authType: input.authType,
    credentialHeaders: [...new Set([...places.headers, ...(prepared.clientKeyHeaders ?? [])])],
    credentialQuery: places.query,
    headers: mergeHeaders(headersToPairs(integrationHeaders), headersToPairs(recordHeaders), credential.headers),
    query: credential.query,
    injector: prepared.injector,
    secrets,
    redactor: Redactor.of(secrets),
    recordSubject: null,
  };
}

/**
 * The redactor for one call: the plan's own, or, when a credential kind put
 * more secrets into this call at send time (a fresh access token, a signing
 * key; the seam's addSecret), one that also covers those. The last extended
 * redactor is kept on the plan, so a token that changes hourly is compiled
 * once an hour, not once a call.
 */
export function redactorForCall(auth: AuthPlan & { lastExtra?: { key: string; redactor: Redactor | null } }, extra: readonly string[]): Redactor | null {
  if (extra.length === 0) return auth.redactor;
  const key = extra.join('\u0000');
  if (auth.lastExtra?.key !== key) auth.lastExtra = { key, redactor: Redactor.of([...auth.secrets, ...extra]) };
  return auth.lastExtra.redactor;
}

interface HostEntry {
  integrationId: string;
  allowedHosts: string[];
  basePort: number;
}

export class PlanCache {
  private readonly plans: BoundedCache<string, IntegrationPlan | null>;
  private hostIndex: HostEntry[] | null = null;
  private readonly watcher: ChangeWatcher;

  constructor(
    private readonly store: Store,
    private readonly kindDeps: KindDeps,
    maxPlans = 100_000,
  ) {
    this.plans = new BoundedCache(maxPlans);
    this.watcher = new ChangeWatcher(
      store,
      (entity, id) => {
        if (entity !== 'integration') return;
        this.plans.delete(id);
        // Any integration written may change which ones allow a host.
        this.hostIndex = null;
      },
      () => {
        this.plans.clear();
        this.hostIndex = null;
      },
    );
  }

  /** How many plans are held (for the benchmark's memory figure and tests). */
  get size(): number {
    return this.plans.size;
  }

  /** Ids of the integrations whose allowedHosts match `target` (host:port), oldest first. */
  integrationsAllowing(target: string): string[] {
    this.watcher.poll();
    this.hostIndex ??= this.store.integrations.all().flatMap((i) => {
      const base = parseBaseUrl(i.baseUrl);
      return typeof base === 'string' ? [] : [{ integrationId: i.integrationId, allowedHosts: i.allowedHosts, basePort: base.port }];
    });
    return this.hostIndex.filter((e) => hostAllowed(e.allowedHosts, target, e.basePort)).map((e) => e.integrationId);
  }

  /** The plan of an integration, or null when it does not exist. */
  get(integrationId: string): IntegrationPlan | null {
    this.watcher.poll();
    let plan = this.plans.get(integrationId);
    if (plan === undefined) {
      plan = this.load(integrationId);
      this.plans.set(integrationId, plan);
    }
    return plan;
  }

  /** The auth plan for a call: the named record, else the most recent one. */
  authPlan(plan: IntegrationPlan, authId: string | undefined): AuthPlan | null {
    if (authId === undefined) return plan.latest;
    let found = plan.byAuthId?.get(authId);
    if (found === undefined) {
      const record = this.store.authRecords.get(plan.integrationId, authId);
      found = record ? this.planFor(plan.headers, record) : null;
      // Made on first use: most plans never see X-Latchkey-Auth-Id, and 100,000 empty Maps weigh 18 MB.
      (plan.byAuthId ??= new Map()).set(authId, found);
    }
    return found;
  }

  private load(integrationId: string): IntegrationPlan | null {
    const integration = this.store.integrations.get(integrationId);
    if (!integration) return null;
    const base = parseBaseUrl(integration.baseUrl);
    if (typeof base === 'string') throw new LatchkeyError('INTERNAL_ERROR', `stored baseUrl of ${integrationId} is invalid`);
    const latest = this.store.authRecords.latest(integrationId);
    const allowedHosts = integration.allowedHosts.map(canonicalHostPort);
    return {
      integrationId,
      base,
      allowedHosts,
      baseRefusal: hostRefusal(allowedHosts, base.host, base.port),
      headers: integration.headers,
      redactResponses: integration.redactResponses,
      latest: latest ? this.planFor(integration.headers, latest) : null,
      byAuthId: null,
    };
  }

  private planFor(integrationHeaders: StaticHeader[], record: AuthRecord): AuthPlan {
    const fields = this.store.authRecords.openSecrets(record.integrationId, record.authId);
    const input: KindInput = {
      authType: record.authType,
      fields,
      config: record.config,
      template: record.template,
      apiKey: record.apiKey,
      record: { integrationId: record.integrationId, authId: record.authId, updatedAt: record.updatedAt },
    };
    return buildAuthPlan(record.authId, input, this.kindDeps, integrationHeaders, record.headers);
  }
}
