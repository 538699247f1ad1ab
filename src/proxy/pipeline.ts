/**
 * The data plane as a list of stages over one Call:
 *
 *   tag -> resolve -> authenticate -> authorize -> build -> restrict -> inject -> forward
 *
 * Each stage fills in the Call or throws a coded LatchkeyError; server.ts runs
 * them in order and turns any error into the proxy's own answer.
 */
import type { IncomingMessage } from 'node:http';
import { LatchkeyError } from '../errors.js';
import { canonicalHostPort, hostRefusal } from '../hosts.js';
import { mayUseIntegration, type Principal } from '../access/principal.js';
import type { Authenticator } from '../access/credentials.js';
import type { Limiter, RateDecision } from '../access/rate-limit.js';
import type { RateLimit } from '../access/rules.js';
import { redactorForCall, type AuthPlan, type IntegrationPlan, type PlanCache } from './plans.js';
import {
  injectQuery,
  normalizeUpstreamPath,
  queryValue,
  splitPathQuery,
  upstreamHeaders,
  type ClientKeyPlace,
} from './inject.js';
import type { UpstreamRequest } from './forward.js';
import { applyInjector } from './apply.js';
import { sameAuthority, type Tunnel } from './tunnel.js';
import { acceptOnlyDecodable } from './response-body.js';

export type Mode = 'path' | 'header' | 'forward' | 'connect';

export interface Call {
  req: IncomingMessage;
  requestId: string;
  started: number;
  mode: Mode;
  integrationId: string | null;
  /** Forward mode: the absolute-form target's host[:port]; connect mode: the CONNECT target. */
  target: string | null;
  /** Set for requests inside a CONNECT tunnel (and for the CONNECT itself once it is accepted). */
  tunnel: Tunnel | null;
  /** The secret that authenticated the call (kept for the tunnel a CONNECT opens). */
  keySecret: string | null;
  /** The path and query the caller asked for, below the integration (raw, undecoded). */
  path: string;
  query: string;
  plan: IntegrationPlan | null;
  auth: AuthPlan | null;
  principal: Principal | null;
  /** Every place a client key was found: all are removed before forwarding. */
  clientKeys: ClientKeyPlace[];
  upstream: UpstreamRequest | null;
  /** A widget token's verified Origin: answers to it carry CORS headers. */
  corsOrigin: string | null;
  /** Every secret value injected into this call (set by the inject stage): response redaction works from these. */
  secrets: readonly string[];
  /**
   * The path below the base URL as sent upstream (normalised), what request
   * rules match; null when a forward-mode call leaves the base URL's path.
   */
  rulePath: string | null;
  /** The rule outcome for the audit: "rules[i]" (allowed by it), "none" (refused), null (the key has no rules). */
  rule: string | null;
  /** Set by forward: how many secrets were replaced in the response. */
  redactions: number;
}

export interface PipelineDeps {
  plans: PlanCache;
  authn: Authenticator;
  clientAuth: 'required' | 'none';
  /** Whether an unexpired widget token was minted for this origin and integration. */
  originGranted: (origin: string, integrationId: string) => boolean;
  limiter: Limiter;
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

export function basicParts(value: string): { user: string; pass: string } | null {
  const m = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(value);
  if (!m) return null;
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

/**
 * Whether the request carries anything that may be a latchkey credential.
 * HTTP proxy clients often send proxy credentials only after a 407, so in
 * forward and CONNECT mode a request with none is challenged before anything
 * else is looked at; a loose yes only means the full check runs.
 */
export function requireSomeCredential(call: Call, deps: PipelineDeps): void {
  if (deps.clientAuth === 'none') return;
  const { req } = call;
  const headers = req.headers;
  if (headers['proxy-authorization'] !== undefined || headers['x-latchkey-key'] !== undefined) return;
  if ((req.url ?? '').includes('lk_')) return;
  for (const value of Object.values(headers)) {
    if (typeof value === 'string' ? value.includes('lk_') : value?.some((v) => v.includes('lk_'))) return;
  }
  const basic = headers.authorization ? basicParts(headers.authorization) : null;
  if (basic && (basic.user.startsWith('lk_') || basic.pass.startsWith('lk_'))) return;
  throw new LatchkeyError('PROXY_AUTH_REQUIRED', 'a latchkey key is required to use an integration');
}

/** An absolute-form request target split into its authority and the rest. */
function splitAbsolute(url: string): { authority: string; rest: string } {
  const afterScheme = url.indexOf('//') + 2;
  const slash = url.indexOf('/', afterScheme);
  const qmark = url.indexOf('?', afterScheme);
  const end = slash < 0 ? (qmark < 0 ? url.length : qmark) : qmark < 0 ? slash : Math.min(slash, qmark);
  return { authority: url.slice(afterScheme, end).toLowerCase(), rest: url.slice(end) || '/' };
}

/**
 * Inside a tunnel the target and integration are the CONNECT's; the request
 * must still say it is for that target (a client confused about where it is
 * talking must not get another host's answer, nor send that host's request
 * with this host's credential).
 */
function tagTunnelled(call: Call, tunnel: Tunnel): void {
  const url = call.req.url ?? '/';
  call.mode = 'connect';
  call.target = tunnel.target;
  call.integrationId = tunnel.integrationId;
  let authority = header(call.req, 'host');
  let rest = url;
  if (/^https?:\/\//i.test(url)) ({ authority, rest } = splitAbsolute(url));
  if (!sameAuthority(authority, tunnel)) {
    throw new LatchkeyError('MISDIRECTED_REQUEST', `this tunnel is for ${tunnel.target}, not ${authority ?? '(no Host)'}`);
  }
  if (!rest.startsWith('/')) throw new LatchkeyError('INVALID_TARGET', 'requests inside a tunnel need an origin-form target');
  ({ path: call.path, query: call.query } = splitPathQuery(rest));
}

/**
 * Forward and CONNECT modes: X-Latchkey-Integration, else the
 * Proxy-Authorization Basic user name unless it is empty or `auto`; null
 * means "the integration that allows the target".
 */
export function namedIntegration(req: IncomingMessage): string | null {
  const named = header(req, 'x-latchkey-integration');
  if (named) return named;
  const proxyAuth = header(req, 'proxy-authorization');
  const user = proxyAuth ? basicParts(proxyAuth)?.user : undefined;
  return user && user !== 'auto' ? user : null;
}

/** TRACE echoes the request, credential included, back to the caller; TRACK is its IIS twin. */
const REFUSED_METHODS = new Set(['TRACE', 'TRACK']);

/** Where a path-mode target's first segment (after its leading /) ends: the next / or ?, or the end. */
function idEnd(url: string): number {
  for (let i = 1; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) return i;
  }
  return url.length;
}

/** Stage 1: which integration, which mode, which path. */
export function tag(call: Call, deps: PipelineDeps): void {
  const { req } = call;
  if (REFUSED_METHODS.has(req.method ?? '')) {
    throw new LatchkeyError('METHOD_NOT_ALLOWED', `${req.method as string} is never forwarded: it would echo the credential`);
  }
  if (call.tunnel) return tagTunnelled(call, call.tunnel);
  const url = req.url ?? '/';
  const named = header(req, 'x-latchkey-integration');
  if (/^https?:\/\//i.test(url)) {
    call.mode = 'forward';
    requireSomeCredential(call, deps);
    const { authority, rest } = splitAbsolute(url);
    // No userinfo in a request target: "http://a@b/" would make the target ambiguous.
    if (authority.includes('@') || authority.length === 0) throw new LatchkeyError('HOST_NOT_ALLOWED', 'invalid request target');
    // One spelling per address: policy checks compare canonical hosts.
    call.target = canonicalHostPort(authority);
    const { path, query } = splitPathQuery(rest);
    call.path = path.startsWith('/') ? path : `/${path}`;
    call.query = query;
    // None named: chosen by the target host once the caller is known (stage choose).
    call.integrationId = namedIntegration(req);
    return;
  } else if (named !== undefined) {
    call.mode = 'header';
    call.integrationId = named;
    ({ path: call.path, query: call.query } = splitPathQuery(url));
  } else {
    call.mode = 'path';
    // /{integrationId} then the rest from the next / or ?: what /^\/([^/?]+)(.*)$/s matches.
    const end = url.charCodeAt(0) === 0x2f ? idEnd(url) : 1;
    if (end > 1) {
      call.integrationId = url.slice(1, end);
      ({ path: call.path, query: call.query } = splitPathQuery(url.slice(end)));
    }
  }
  if (!call.integrationId) {
    throw new LatchkeyError(
      'MISSING_INTEGRATION',
      'name the integration: /{integrationId}/path, X-Latchkey-Integration, or the Proxy-Authorization user name',
    );
  }
}

/** Stage 2: the integration's plan and the auth record the call uses (errors wait for authentication). */
export function resolve(call: Call, deps: PipelineDeps): void {
  if (call.integrationId === null) return;
  call.plan = deps.plans.get(call.integrationId as string);
  if (call.plan) call.auth = deps.plans.authPlan(call.plan, header(call.req, 'x-latchkey-auth-id'));
}

interface FoundKey {
  secret: string;
  place: ClientKeyPlace;
}

const AUTHORIZATION: ClientKeyPlace = Object.freeze({ kind: 'header', name: 'authorization' });

/** `Bearer ` and a key of printable ASCII alone (what SDKs send): the scheme pattern below would give the same. */
function plainBearerKey(value: string): string | undefined {
  if (!value.startsWith('Bearer lk_') || value.length === 10) return undefined;
  for (let i = 10; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return undefined;
  }
  return value.slice(7);
}

/** A latchkey key in an Authorization value: after any scheme, in Basic credentials, or as a SigV4 access key id. */
export function keyInAuthorization(value: string): string | undefined {
  // Any scheme: SDKs send `Bearer lk_…`, GitHub's `token lk_…`.
  const bearer = plainBearerKey(value) ?? /^[A-Za-z][\w.+-]* +(lk_\S+) *$/.exec(value)?.[1];
  if (bearer !== undefined) return bearer;
  const basic = basicParts(value);
  const inBasic = basic?.pass.startsWith('lk_') ? basic.pass : basic?.user.startsWith('lk_') ? basic.user : undefined;
  // An AWS SDK given the latchkey key as its access key id signs with it: Credential=lk_.../date/region/...
  return inBasic ?? /^AWS4-HMAC-SHA256 +Credential=(lk_[^/,\s]+)\//.exec(value)?.[1];
}

/**
 * Every place a client key sits, in order of precedence: Proxy-Authorization,
 * X-Latchkey-Key, then `lk_` values where the integration's own credential
 * goes (SDK drop-in). The first one authenticates; all of them are removed
 * before the call leaves, so a latchkey key never reaches a third party.
 */
function findClientKeys(call: Call): FoundKey[] {
  const { req } = call;
  const found: FoundKey[] = [];
  const proxyAuth = header(req, 'proxy-authorization');
  if (proxyAuth) {
    const bearer = /^Bearer +(\S+) *$/i.exec(proxyAuth);
    const secret = bearer ? bearer[1] : basicParts(proxyAuth)?.pass;
    if (secret) found.push({ secret, place: { kind: 'proxy-authorization' } });
  }
  const explicit = header(req, 'x-latchkey-key');
  if (explicit) found.push({ secret: explicit.trim(), place: { kind: 'header', name: 'x-latchkey-key' } });
  const authorization = header(req, 'authorization');
  if (authorization) {
    const secret = keyInAuthorization(authorization);
    if (secret) found.push({ secret, place: AUTHORIZATION });
  }
  for (const name of call.auth?.credentialHeaders ?? []) {
    const v = header(req, name);
    if (v?.startsWith('lk_') && name !== 'authorization') found.push({ secret: v, place: { kind: 'header', name } });
  }
  for (const name of call.auth?.credentialQuery ?? []) {
    const v = queryValue(call.query, name);
    if (v?.startsWith('lk_')) found.push({ secret: v, place: { kind: 'query', name } });
  }
  return found;
}

/** Host names that can only mean this machine: a DNS-rebound name is none of them. */
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

/**
 * With proxy.clientAuth "none" any local process may use every integration,
 * and so could any web page the user visits: a "simple" cross-site POST needs
 * no preflight, and a DNS-rebound name reaches 127.0.0.1 under another Host.
 * Browsers say where a request comes from (Origin, Sec-Fetch-Site); programs
 * that send those are refused, and so is a Host that is not a loopback name.
 */
function refuseBrowsers(call: Call): void {
  const { req } = call;
  if (req.headers.origin !== undefined || header(req, 'sec-fetch-site') === 'cross-site') {
    throw new LatchkeyError('ORIGIN_NOT_ALLOWED', 'proxy.clientAuth "none" serves local programs, never web pages (a request with Origin)');
  }
  // Forward and CONNECT requests name their target in Host; a page cannot send either without Origin.
  if (call.mode !== 'forward' && call.mode !== 'connect' && !LOOPBACK_HOST.test(header(req, 'host') ?? '')) {
    throw new LatchkeyError('ORIGIN_NOT_ALLOWED', 'proxy.clientAuth "none" answers only requests addressed to a loopback name (Host)');
  }
}

const ANONYMOUS: Principal = { keyId: 'anonymous', role: 'agent', integrations: ['*'], kind: 'key', rules: null, rateLimit: null };

/** On the data plane every unusable credential reads the same. */
function asInvalidKey(err: unknown): never {
  if (err instanceof LatchkeyError && err.code === 'INVALID_AUTH_FORMAT') {
    throw new LatchkeyError('INVALID_API_KEY', 'the latchkey key is invalid, expired or revoked');
  }
  throw err;
}

/** Stage 3: who is calling. Synchronous for a latchkey key; a promise only for a widget token (its signature). */
export function authenticate(call: Call, deps: PipelineDeps): void | Promise<void> {
  const keys = findClientKeys(call);
  call.clientKeys = keys.map((k) => k.place);
  // Inside a tunnel the CONNECT's key decides; keys found in the request are only removed.
  const tunnelKey: FoundKey | undefined =
    call.tunnel?.secret != null ? { secret: call.tunnel.secret, place: { kind: 'proxy-authorization' } } : undefined;
  const found = call.tunnel ? tunnelKey : keys[0];
  if (deps.clientAuth === 'none') {
    refuseBrowsers(call);
    call.principal = ANONYMOUS;
    return;
  }
  if (!found) throw new LatchkeyError('PROXY_AUTH_REQUIRED', 'a latchkey key is required to use an integration');
  let principal: Principal | Promise<Principal>;
  try {
    principal = deps.authn.resolve(found.secret);
  } catch (err) {
    asInvalidKey(err);
  }
  if (principal instanceof Promise) return principal.then((p) => authenticated(call, found, p), asInvalidKey);
  authenticated(call, found, principal);
}

function authenticated(call: Call, found: FoundKey, principal: Principal): void {
  call.principal = principal;
  call.keySecret = found.secret;
  if (principal.kind === 'token') {
    // Widget tokens come from browser code, in X-Latchkey-Key only: one place to reason about.
    if (found.place.kind !== 'header' || found.place.name !== 'x-latchkey-key') {
      throw new LatchkeyError('INVALID_API_KEY', 'widget tokens are accepted in X-Latchkey-Key only');
    }
    // A widget token is bound to the pages it was minted for; a browser always sends Origin.
    const origin = header(call.req, 'origin');
    if (!origin || !principal.origins?.includes(origin)) {
      throw new LatchkeyError('ORIGIN_NOT_ALLOWED', `origin ${origin ?? '(none)'} may not use this token`);
    }
    call.corsOrigin = origin;
  }
}

/**
 * Stage 3b, forward and connect modes with no integration named: the one
 * integration the caller may use whose allowedHosts match the target.
 */
export function choose(call: Call, deps: PipelineDeps): void {
  if (call.integrationId !== null || call.target === null) return;
  const principal = call.principal as Principal;
  const usable = deps.plans.integrationsAllowing(call.target).filter((id) => mayUseIntegration(principal, id));
  if (usable.length > 1) {
    throw new LatchkeyError(
      'AMBIGUOUS_INTEGRATION',
      `${call.target} is allowed by integrations ${usable.join(', ')}: name one as the proxy user name`,
    );
  }
  if (usable.length === 0) throw new LatchkeyError('HOST_NOT_ALLOWED', `no integration this key may use allows ${call.target}`);
  call.integrationId = usable[0] as string;
  resolve(call, deps);
  // Now that the credential's places are known, a key sitting in one of them is found (and removed) too.
  call.clientKeys = findClientKeys(call).map((k) => k.place);
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. */
export function isPreflight(req: IncomingMessage): boolean {
  return req.method === 'OPTIONS' && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
}

/**
 * Preflights carry no credential, so they are answered from the grants of
 * minted widget tokens: an origin holding an unexpired token for the
 * integration may send the real call, which is then checked in full.
 */
export function preflightHeaders(call: Call, deps: PipelineDeps): Record<string, string> {
  const origin = header(call.req, 'origin') as string;
  if (!deps.originGranted(origin, call.integrationId as string)) {
    throw new LatchkeyError('ORIGIN_NOT_ALLOWED', `origin ${origin} holds no widget token for ${call.integrationId as string}`);
  }
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': header(call.req, 'access-control-request-method') as string,
    'access-control-allow-headers': header(call.req, 'access-control-request-headers') ?? 'x-latchkey-key',
    'access-control-max-age': '600',
    vary: 'Origin',
  };
}

/** Headers on every answer to a widget call from its verified origin. */
export function corsHeaders(origin: string): Record<string, string> {
  return {
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'x-request-id, x-latchkey-error',
    vary: 'Origin',
  };
}

/** Stage 4: may this caller use this integration, towards this host, with a credential? */
export function authorize(call: Call): void {
  const id = call.integrationId as string;
  if (!call.plan) throw new LatchkeyError('UNKNOWN_INTEGRATION', `integration ${id} does not exist`);
  if (!mayUseIntegration(call.principal as Principal, id)) {
    throw new LatchkeyError('INTEGRATION_NOT_ALLOWED', `this key may not use integration ${id}`);
  }
  const { base, allowedHosts } = call.plan;
  const target = call.target ?? base.host;
  const refusal = call.target === null ? call.plan.baseRefusal : hostRefusal(allowedHosts, target, base.port);
  if (refusal === 'not-allowed') {
    throw new LatchkeyError('HOST_NOT_ALLOWED', `${target} is not an allowed host of integration ${id}`);
  }
  if (refusal === 'link-local') {
    throw new LatchkeyError('HOST_NOT_ALLOWED', `${target} is link-local and is never dialled`);
  }
  if (!call.auth) {
    const named = header(call.req, 'x-latchkey-auth-id');
    throw new LatchkeyError(
      'NO_AUTH_RECORD',
      named ? `integration ${id} has no auth record ${named}` : `integration ${id} has no auth record`,
    );
  }
}

/** Stage 5: the request that goes upstream, with the credential in place. */
export function build(call: Call): void {
  const plan = call.plan as IntegrationPlan;
  const auth = call.auth as AuthPlan;
  const { base } = plan;
  let origin: string;
  let path: string;
  let hostname: string;
  if (call.mode === 'forward' || call.mode === 'connect') {
    // Forward: the scheme is the integration's, so an http:// target of an https integration goes out
    // over TLS. Connect: always TLS to the CONNECT target, whatever the client put in Host.
    const target = call.target as string;
    const hasPort = /:\d+$/.test(target);
    const protocol = call.mode === 'connect' ? 'https:' : base.protocol;
    origin = `${protocol}//${hasPort ? target : `${target}:${base.port}`}`;
    hostname = target.replace(/:\d+$/, '');
    path = normalizeUpstreamPath(call.path);
  } else {
    origin = `${base.protocol}//${base.host}`;
    hostname = base.hostname;
    const rest = call.path === '' ? '' : normalizeUpstreamPath(call.path);
    path = `${base.pathPrefix}${rest}` || '/';
  }
  // What request rules see, whatever the mode: the sent path below the base URL's path
  // (null when a forward-mode target leaves it).
  const prefix = base.pathPrefix;
  call.rulePath = prefix === '' ? path : path === prefix ? '/' : path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : null;
  const queryKeys: string[] = [];
  const clientKeyHeaders: string[] = [];
  for (const k of call.clientKeys) {
    if (k.kind === 'query') queryKeys.push(k.name);
    else if (k.kind === 'header') clientKeyHeaders.push(k.name);
  }
  const query = injectQuery(call.query, auth.query, queryKeys);
  call.upstream = {
    origin,
    path: query ? `${path}?${query}` : path,
    method: call.req.method ?? 'GET',
    headers: upstreamHeaders(call.req.headers, auth, clientKeyHeaders),
    hostname,
    injectedQuery: auth.query,
    redactor: plan.redactResponses ? auth.redactor : null,
  };
  // Before inject: a signer signs the headers as they will be sent, Accept-Encoding included. A
  // WebSocket upgrade offers no extension (permessage-deflate): its messages arrive uncompressed, searchable.
  if (plan.redactResponses) {
    acceptOnlyDecodable(call.upstream.headers);
    delete call.upstream.headers['sec-websocket-extensions'];
  }
}

const NO_SECRETS: readonly string[] = [];

/**
 * After inject: the response is searched for every secret of this call, the
 * plan's and those a kind put in at send time (an access token, a signing
 * key), unless the integration turned redactResponses off.
 */
export function chooseRedactor(call: Call): void {
  const up = call.upstream as UpstreamRequest;
  const auth = call.auth as AuthPlan;
  // A static kind injects exactly the plan's secrets (the same array): nothing to add.
  const extra = call.secrets === auth.secrets ? NO_SECRETS : call.secrets.filter((s) => !auth.secrets.includes(s));
  up.redactor = (call.plan as IntegrationPlan).redactResponses ? redactorForCall(auth, extra) : null;
}

/**
 * Stage 6: least privilege. A key with rules may only make calls that match
 * one of them, checked on the built request (the normalised path that is
 * sent, the method upper-cased); then the key's rate limit. Both refuse
 * before anything is sent, and a refused call does not use the budget.
 */
export function restrict(call: Call, deps: PipelineDeps): void | Promise<void> {
  const p = call.principal as Principal;
  if (p.rules) {
    const outcome = p.rules.match(call.integrationId as string, call.req.method ?? 'GET', call.rulePath);
    call.rule = outcome.allowed ? `rules[${outcome.index}]` : 'none';
    if (!outcome.allowed) {
      throw new LatchkeyError(
        'REQUEST_NOT_ALLOWED',
        `no rule of this key allows ${(call.req.method ?? 'GET').toUpperCase()} ${call.rulePath ?? call.path} on integration ${call.integrationId as string}`,
      );
    }
  }
  if (!p.rateLimit) return;
  const limit = p.rateLimit;
  const decision = deps.limiter.take(p.keyId, limit);
  // A cluster worker's answer comes from the primary; only then may the call go on.
  if (decision instanceof Promise) return decision.then((d) => refuseIfLimited(limit, d));
  refuseIfLimited(limit, decision);
}

function refuseIfLimited(limit: RateLimit, decision: RateDecision): void {
  if (decision.allowed) return;
  throw new LatchkeyError(
    'RATE_LIMITED',
    `this key may make ${limit.requests} calls per ${limit.perSeconds} s; retry after ${decision.retryAfter} s`,
    undefined,
    { retryAfterSeconds: decision.retryAfter },
  );
}

/**
 * Stage 6: a dynamic credential kind (a signer, a token) edits the built
 * request last, at send time, so it sees exactly what goes out. Static kinds
 * were rendered into the plan and pass straight through.
 */
export function inject(call: Call): void | Promise<void> {
  const secrets = applyInjector(call.auth as AuthPlan, call.upstream as UpstreamRequest, call.req);
  // A static kind answers at once: nothing to await.
  if (!(secrets instanceof Promise)) {
    call.secrets = secrets;
    return;
  }
  return secrets.then((s) => {
    call.secrets = s;
  });
}
