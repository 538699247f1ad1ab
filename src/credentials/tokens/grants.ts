/**
 * One token request per kind. OAuth 2 grants go through oauth4webapi (strict
 * response checks); the JWTs (Google's RS256 assertion, a GitHub App's JWT)
 * are made with jose; both are imported at the first token request. Every request uses latchkey's own undici agent, so a
 * proxy variable in latchkey's environment never routes a secret elsewhere.
 */
import { createPrivateKey } from 'node:crypto';
import type * as OAuth from 'oauth4webapi';
import type { Dispatcher } from 'undici';
import type { TokenConfig, TokenSecrets } from '../kinds/token-kinds.js';
import { isInsecureEndpoint } from '../kinds/token-kinds.js';
import { LatchkeyError } from '../../errors.js';
import { lazyModule } from '../../lazy.js';

interface Libraries {
  oauth: typeof OAuth;
  jose: typeof import('jose');
  /** undici's fetch, which sends through latchkey's own agent (undici's index is not loaded at start either). */
  fetch: typeof import('undici').fetch;
}
/** Set once the libraries are loaded: an oauth4webapi error can only exist after that. */
let loaded: Libraries | undefined;
/** oauth4webapi and jose, imported at the first token request or connect flow (src/lazy.ts), not at start. */
export const tokenLibraries = lazyModule('OAuth 2 and JWT token requests', async (): Promise<Libraries> => {
  const [oauth, jose, undici] = await Promise.all([import('oauth4webapi'), import('jose'), import('undici')]);
  loaded = { oauth, jose, fetch: undici.fetch };
  return loaded;
});

export interface IssuedToken {
  accessToken: string;
  /** Seconds, as the endpoint said (or the default when it said nothing). */
  expiresIn: number;
  /** Present when the endpoint rotated the refresh token. */
  refreshToken?: string;
}

/**
 * Why a token request failed. `refused`: the endpoint refused the grant or the
 * client (invalid_grant, invalid_client): a person must act. `failed`: the
 * endpoint could not be reached or answered something else: retried later.
 * `detail` names an error code or a status, never a secret.
 */
export class GrantError extends Error {
  constructor(
    readonly kind: 'refused' | 'failed',
    readonly detail: string,
  ) {
    super(detail);
    this.name = 'GrantError';
  }
}

/** When a token endpoint gives no expires_in: renewed after an hour, or at the first 401. */
export const DEFAULT_EXPIRES_IN = 3600;
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const REFUSALS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client']);

/**
 * Token types accepted besides bearer: Slack's OAuth v2 answers "bot" or
 * "user" for tokens that are sent as bearer tokens all the same.
 */
export const PROCESS_OPTIONS: OAuth.ProcessTokenResponseOptions = {
  recognizedTokenTypes: { bot: () => undefined, user: () => undefined },
};

export interface GrantContext {
  agent: Dispatcher;
  timeoutMs: number;
}

function requestOptions({ oauth, fetch: undiciFetch }: Libraries, ctx: GrantContext, endpoint: string): OAuth.TokenEndpointRequestOptions {
  const fetchVia: NonNullable<OAuth.TokenEndpointRequestOptions[typeof OAuth.customFetch]> = (url, init) =>
    undiciFetch(url, { ...init, dispatcher: ctx.agent } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
  return {
    [oauth.customFetch]: fetchVia,
    // Only loopback http:// endpoints get this far (checked when the record is written).
    [oauth.allowInsecureRequests]: isInsecureEndpoint(endpoint),
    signal: AbortSignal.timeout(ctx.timeoutMs),
  };
}

/** Maps oauth4webapi's and the network's errors to a GrantError, keeping only codes and statuses. */
export function grantErrorOf(err: unknown): GrantError {
  if (err instanceof GrantError) return err;
  // The libraries could not be loaded: that is the reason to give.
  if (err instanceof LatchkeyError) return new GrantError('failed', err.message);
  const oauth = loaded?.oauth;
  if (!oauth) return networkError(err);
  if (err instanceof oauth.ResponseBodyError) {
    return new GrantError(REFUSALS.has(err.error) ? 'refused' : 'failed', `token endpoint answered ${err.status} ${err.error}`);
  }
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    // A 401 with a challenge at a token endpoint is the client being refused.
    return new GrantError(err.status === 401 ? 'refused' : 'failed', `token endpoint answered ${err.status} with a challenge`);
  }
  if (err instanceof oauth.OperationProcessingError) return new GrantError('failed', `token endpoint response refused (${err.code ?? 'invalid'})`);
  return networkError(err);
}

function networkError(err: unknown): GrantError {
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  const code = e.cause?.code ?? e.code ?? e.name ?? 'error';
  return new GrantError('failed', `token endpoint unreachable (${code})`);
}

/** Longest access or refresh token kept: beyond it an endpoint is misbehaving. */
export const MAX_TOKEN_CHARS = 16_384;
/** RFC 6750's b64token and then some: printable ASCII without spaces, so it can only ever be one header value. */
const TOKEN_CHARS = /^[\x21-\x7E]+$/;

/**
 * Checks what an endpoint issued before anything keeps it: a token with a CR,
 * LF or space would split or corrupt the Authorization header it goes into.
 */
export function checkIssued(accessToken: unknown, refreshToken?: unknown): asserts accessToken is string {
  for (const [what, v] of [['access token', accessToken], ['refresh token', refreshToken]] as const) {
    if (v === undefined && what === 'refresh token') continue;
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TOKEN_CHARS || !TOKEN_CHARS.test(v)) {
      throw new GrantError('failed', `the token endpoint issued an unusable ${what}`);
    }
  }
}

function issued(r: OAuth.TokenEndpointResponse): IssuedToken {
  checkIssued(r.access_token, r.refresh_token);
  const expiresIn = typeof r.expires_in === 'number' && r.expires_in > 0 ? r.expires_in : DEFAULT_EXPIRES_IN;
  return { accessToken: r.access_token, expiresIn, ...(r.refresh_token ? { refreshToken: r.refresh_token } : {}) };
}

function clientAuthOf(oauth: typeof OAuth, method: 'basic' | 'post' | 'none', secret: string | undefined): OAuth.ClientAuth {
  if (method === 'none' || secret === undefined) return oauth.None();
  return method === 'post' ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

export const serverOf = (tokenUrl: string): OAuth.AuthorizationServer => ({ issuer: new URL(tokenUrl).origin, token_endpoint: tokenUrl });

/** An RS256 JWT signed with a PEM key (PKCS#8 or, as GitHub issues them, PKCS#1). */
async function signJwt(pem: string, claims: Record<string, unknown>, header: Record<string, string>, ttlSeconds: number, backdate = 0): Promise<string> {
  const { SignJWT } = (await tokenLibraries()).jose;
  const key = createPrivateKey(pem);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...header })
    .setIssuedAt(now - backdate)
    .setExpirationTime(now + ttlSeconds)
    .sign(key);
}

async function githubInstallationToken(ctx: GrantContext, c: Extract<TokenConfig, { kind: 'GITHUB_APP' }>, s: TokenSecrets): Promise<IssuedToken> {
  // GitHub allows at most 10 minutes; iat is backdated a minute for clock drift, as its docs advise.
  const jwt = await signJwt(s.privateKey ?? '', { iss: c.appId }, {}, 540, 60);
  const url = new URL(`${c.apiUrl}/app/installations/${encodeURIComponent(c.installationId)}/access_tokens`);
  let res: Dispatcher.ResponseData;
  try {
    res = await ctx.agent.request({
      origin: url.origin,
      path: url.pathname,
      method: 'POST',
      headers: {
        authorization: `Bearer ${jwt}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'latchkey',
      },
      headersTimeout: ctx.timeoutMs,
      bodyTimeout: ctx.timeoutMs,
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
  } catch (err) {
    throw grantErrorOf(err);
  }
  const text = await res.body.text().catch(() => '');
  // 401: the app key or id is wrong or revoked; 403/404: the installation is suspended or gone.
  if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 404) {
    throw new GrantError('refused', `GitHub answered ${res.statusCode} to the installation token request`);
  }
  if (res.statusCode !== 201 && res.statusCode !== 200) throw new GrantError('failed', `GitHub answered ${res.statusCode}`);
  let body: { token?: unknown; expires_at?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new GrantError('failed', 'GitHub answered a body that is not JSON');
  }
  checkIssued(body.token);
  const expiresAt = typeof body.expires_at === 'string' ? Date.parse(body.expires_at) : NaN;
  const expiresIn = Number.isFinite(expiresAt) ? Math.max(1, Math.floor((expiresAt - Date.now()) / 1000)) : DEFAULT_EXPIRES_IN;
  return { accessToken: body.token, expiresIn };
}

/** Asks the kind's token endpoint for a new access token. Throws GrantError. */
export async function requestToken(ctx: GrantContext, config: TokenConfig, secrets: TokenSecrets): Promise<IssuedToken> {
  try {
    const libs = await tokenLibraries();
    const { oauth } = libs;
    switch (config.kind) {
      case 'OAUTH2_CLIENT_CREDENTIALS': {
        const as = serverOf(config.tokenUrl);
        const client: OAuth.Client = { client_id: config.clientId };
        const params: Record<string, string> = {};
        if (config.scope) params.scope = config.scope;
        if (config.audience) params.audience = config.audience;
        const opts = requestOptions(libs, ctx, config.tokenUrl);
        const res = await oauth.clientCredentialsGrantRequest(as, client, clientAuthOf(oauth, config.clientAuth, secrets.clientSecret), params, opts);
        return issued(await oauth.processClientCredentialsResponse(as, client, res, PROCESS_OPTIONS));
      }
      case 'OAUTH2_REFRESH_TOKEN': {
        const as = serverOf(config.tokenUrl);
        const client: OAuth.Client = { client_id: config.clientId };
        const opts = requestOptions(libs, ctx, config.tokenUrl);
        if (config.scope) opts.additionalParameters = { scope: config.scope };
        const res = await oauth.refreshTokenGrantRequest(
          as,
          client,
          clientAuthOf(oauth, config.clientAuth, secrets.clientSecret),
          secrets.refreshToken ?? '',
          opts,
        );
        return issued(await oauth.processRefreshTokenResponse(as, client, res, PROCESS_OPTIONS));
      }
      case 'GOOGLE_SERVICE_ACCOUNT': {
        // RFC 7523 JWT-bearer: the assertion is the client's proof, so no other client authentication.
        const claims: Record<string, unknown> = { iss: config.clientEmail, aud: config.tokenUri, scope: config.scopes.join(' ') };
        if (config.subject) claims.sub = config.subject;
        const header: Record<string, string> = config.privateKeyId ? { kid: config.privateKeyId } : {};
        const assertion = await signJwt(secrets.privateKey ?? '', claims, header, 3600);
        const as = serverOf(config.tokenUri);
        const client: OAuth.Client = { client_id: config.clientEmail };
        const noClientAuth: OAuth.ClientAuth = () => undefined;
        const opts = requestOptions(libs, ctx, config.tokenUri);
        const res = await oauth.genericTokenEndpointRequest(as, client, noClientAuth, JWT_BEARER, { assertion }, opts);
        return issued(await oauth.processGenericTokenEndpointResponse(as, client, res, PROCESS_OPTIONS));
      }
      case 'GITHUB_APP':
        return await githubInstallationToken(ctx, config, secrets);
    }
  } catch (err) {
    throw grantErrorOf(err);
  }
}

export { requestOptions as tokenRequestOptions, clientAuthOf };
