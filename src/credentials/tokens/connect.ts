/**
 * The connect flow (authorization code with PKCE S256): latchkey makes the
 * authorize URL a person opens, and at GET /oauth/callback exchanges the code
 * for tokens and stores an OAUTH2_REFRESH_TOKEN record. The state is random,
 * single-use, ten minutes long, and stored only as a hash; the PKCE verifier
 * and the client secret wait sealed.
 */
import type * as OAuth from 'oauth4webapi';
import { LatchkeyError, validationError, type ErrorDetail } from '../../errors.js';
import { endpointProblem, type TokenConfig } from '../kinds/token-kinds.js';
import type { Store } from '../../store/store.js';
import type { ConnectSettings } from '../../store/oauth-states.js';
import type { Catalog } from '../../catalog/catalog.js';
import { isIntegrationId } from '../../admin/schemas.js';
import { parseBaseUrl } from '../../hosts.js';
import { liveToken } from './token-cache.js';
import { PROCESS_OPTIONS, checkIssued, clientAuthOf, grantErrorOf, serverOf, tokenLibraries, tokenRequestOptions, DEFAULT_EXPIRES_IN, type GrantContext } from './grants.js';

export const STATE_TTL_MS = 10 * 60 * 1000;

/** Parameters latchkey sets itself: extraParams may not override them. */
const RESERVED = new Set(['response_type', 'client_id', 'redirect_uri', 'scope', 'state', 'code_challenge', 'code_challenge_method']);

export interface AuthorizeBody {
  authorizeUrl?: string;
  tokenUrl?: string;
  clientId?: string;
  clientSecret?: string;
  scope?: string;
  extraParams?: Record<string, string>;
  clientAuth?: 'basic' | 'post';
}

export const authorizeBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    authorizeUrl: { type: 'string', maxLength: 2048 },
    tokenUrl: { type: 'string', maxLength: 2048 },
    clientId: { type: 'string', minLength: 1, maxLength: 256 },
    clientSecret: { type: 'string', minLength: 1, maxLength: 8192 },
    scope: { type: 'string', maxLength: 2048 },
    extraParams: { type: 'object', maxProperties: 20, additionalProperties: { type: 'string', maxLength: 1024 } },
    clientAuth: { enum: ['basic', 'post'] },
  },
  examples: [
    {
      authorizeUrl: 'https://login.example.com/oauth/authorize',
      tokenUrl: 'https://login.example.com/oauth/token',
      clientId: 'app-1',
      clientSecret: 'app-secret-example',
      scope: 'contacts.read offline_access',
    },
    // A catalog provider of kind oauth2: the endpoints and default scopes come from the catalog.
    { clientId: '1234.apps.googleusercontent.com', clientSecret: 'client-secret-example' },
  ],
} as const;

export interface ConnectDeps {
  store: Store;
  catalog: Catalog;
  grant: GrantContext;
  /** Config oauth.redirectUri, else http://{admin addr}/oauth/callback (known once the listener is bound). */
  redirectUri: () => string;
  marginSeconds: number;
}

/**
 * Starts a flow for an existing integration, or for a catalog provider of
 * kind oauth2 (its integration is created when the flow completes). Values
 * given in the body win over the catalog's.
 */
export async function startConnect(
  deps: ConnectDeps,
  integrationId: string,
  body: AuthorizeBody,
  keyId: string | null,
): Promise<{ url: string; state: string; expiresAt: string }> {
  const existing = deps.store.integrations.get(integrationId);
  const providerId = existing ? existing.provider : integrationId;
  const entry = providerId ? deps.catalog.get(providerId)?.entry : undefined;
  const fromCatalog = entry?.kind === 'oauth2' ? entry.oauth2 : undefined;
  if (!existing && !fromCatalog) {
    throw new LatchkeyError('NOT_FOUND', `integration ${integrationId} not found, and no oauth2 provider of that name is in the catalog`);
  }
  const details: ErrorDetail[] = [];
  const authorizeUrl = body.authorizeUrl ?? fromCatalog?.authorizeUrl;
  const tokenUrl = body.tokenUrl ?? fromCatalog?.tokenUrl;
  for (const [field, value] of [['authorizeUrl', authorizeUrl], ['tokenUrl', tokenUrl]] as const) {
    if (value === undefined) details.push({ field, problem: 'is required (the integration is not a catalog oauth2 provider)' });
    else {
      const problem = endpointProblem(value);
      if (problem) details.push({ field, problem });
    }
  }
  if (body.clientId === undefined) details.push({ field: 'clientId', problem: 'is required' });
  for (const [name, value] of Object.entries(body.extraParams ?? {})) {
    if (RESERVED.has(name)) details.push({ field: `extraParams.${name}`, problem: 'is set by latchkey' });
    else if (/[\u0000-\u001F\u007F]/.test(value)) details.push({ field: `extraParams.${name}`, problem: 'must not contain control characters' });
  }
  if (!existing && !isIntegrationId(integrationId)) details.push({ field: 'integrationId', problem: 'is not a valid integration id' });
  if (details.length > 0) throw validationError(details);

  const scope = body.scope ?? fromCatalog?.scopes.join(fromCatalog.scopeSeparator ?? ' ');
  const clientAuth = body.clientSecret === undefined ? 'none' : (body.clientAuth ?? fromCatalog?.clientAuth ?? 'basic');
  const settings: ConnectSettings = {
    authorizeUrl: authorizeUrl as string,
    tokenUrl: tokenUrl as string,
    clientId: body.clientId as string,
    redirectUri: deps.redirectUri(),
    clientAuth,
    ...(scope ? { scope } : {}),
    ...(!existing && providerId ? { provider: providerId } : {}),
    ...(keyId ? { keyId } : {}),
  };
  const { oauth } = await tokenLibraries();
  const state = oauth.generateRandomState();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const url = new URL(settings.authorizeUrl);
  const params = url.searchParams;
  for (const [k, v] of Object.entries({ ...fromCatalog?.extraParams, ...body.extraParams })) params.set(k, v);
  params.set('response_type', 'code');
  params.set('client_id', settings.clientId);
  params.set('redirect_uri', settings.redirectUri);
  if (scope) params.set('scope', scope);
  params.set('state', state);
  params.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  params.set('code_challenge_method', 'S256');
  const expiresAt = Date.now() + STATE_TTL_MS;
  deps.store.oauthStates.create(state, integrationId, settings, { codeVerifier, ...(body.clientSecret ? { clientSecret: body.clientSecret } : {}) }, expiresAt);
  return { url: url.toString(), state, expiresAt: new Date(expiresAt).toISOString() };
}

export interface Connected {
  integrationId: string;
  authId: string;
  keyId: string | null;
  createdIntegration: boolean;
}

const invalidState = (): LatchkeyError =>
  new LatchkeyError('INVALID_STATE', 'this sign-in link is unknown, was already used, or is older than 10 minutes: start again');

/**
 * Handles the provider's redirect: consumes the state (whatever happens next,
 * it cannot be replayed), exchanges the code with the PKCE verifier, and
 * stores the record together with its first access token.
 */
export async function finishConnect(deps: ConnectDeps, query: Record<string, string | undefined>): Promise<Connected> {
  const state = query.state;
  if (!state || state.length > 512) throw invalidState();
  // Loaded before the state is used up: if it cannot be, the person can still retry with the same link.
  const libs = await tokenLibraries();
  const { oauth } = libs;
  const pending = deps.store.oauthStates.consume(state, Date.now());
  if (!pending) throw invalidState();
  const { settings, secrets } = pending;
  if (query.error) {
    // The person declined, or the provider refused the request: its code only, never free text.
    const code = /^[\x20-\x7E]{1,64}$/.test(query.error) ? query.error : 'error';
    throw new LatchkeyError('VALIDATION_ERROR', `the provider did not authorize latchkey (${code})`);
  }
  if (!query.code || query.code.length > 4096) throw new LatchkeyError('VALIDATION_ERROR', 'the provider sent no authorization code');

  const as = serverOf(settings.tokenUrl);
  const client: OAuth.Client = { client_id: settings.clientId };
  let tokens: OAuth.TokenEndpointResponse;
  try {
    // The state was checked against the database above; the code goes to the token endpoint bound to that state.
    const res = await oauth.genericTokenEndpointRequest(
      as,
      client,
      clientAuthOf(oauth, settings.clientAuth, secrets.clientSecret),
      'authorization_code',
      { code: query.code, redirect_uri: settings.redirectUri, code_verifier: secrets.codeVerifier },
      tokenRequestOptions(libs, deps.grant, settings.tokenUrl),
    );
    tokens = await oauth.processGenericTokenEndpointResponse(as, client, res, PROCESS_OPTIONS);
    checkIssued(tokens.access_token, tokens.refresh_token);
  } catch (err) {
    throw new LatchkeyError('TOKEN_REFRESH_FAILED', `the code exchange failed: ${grantErrorOf(err).detail}`);
  }
  // No refresh token and no expiry (a GitHub OAuth app): the access token is a long-lived bearer token.
  const longLived = !tokens.refresh_token && tokens.expires_in === undefined;
  if (!tokens.refresh_token && !longLived) {
    throw new LatchkeyError(
      'TOKEN_REFRESH_FAILED',
      'the provider issued no refresh token (it may need offline access, e.g. extraParams access_type=offline)',
    );
  }

  const tokenConfig: TokenConfig = {
    kind: 'OAUTH2_REFRESH_TOKEN',
    tokenUrl: settings.tokenUrl,
    clientId: settings.clientId,
    clientAuth: settings.clientAuth,
    ...(settings.scope ? { scope: settings.scope } : {}),
  };
  const { store } = deps;
  let createdIntegration = false;
  const record = store.db.transaction(() => {
    if (!store.integrations.get(pending.integrationId)) {
      const entry = settings.provider ? deps.catalog.get(settings.provider)?.entry : undefined;
      const base = entry ? parseBaseUrl(entry.baseUrl) : 'no catalog entry';
      if (!entry || typeof base === 'string') throw new LatchkeyError('NOT_FOUND', `integration ${pending.integrationId} no longer exists`);
      store.integrations.create({
        integrationId: pending.integrationId,
        name: entry.displayName,
        baseUrl: base.href,
        allowedHosts: entry.allowedHosts,
        headers: Object.entries(entry.headers ?? {}).map(([key, value]) => ({ key, value })),
        provider: entry.provider,
      });
      createdIntegration = true;
    }
    if (longLived) return store.authRecords.create(pending.integrationId, 'BEARER_TOKEN', [], { apiKey: null, secrets: { token: tokens.access_token } });
    return store.authRecords.create(pending.integrationId, 'OAUTH2_REFRESH_TOKEN', [], {
      apiKey: null,
      secrets: { ...(secrets.clientSecret ? { clientSecret: secrets.clientSecret } : {}), refreshToken: tokens.refresh_token as string },
      config: tokenConfig as unknown as Record<string, unknown>,
    });
  }).immediate();
  if (longLived) return { integrationId: record.integrationId, authId: record.authId, keyId: settings.keyId ?? null, createdIntegration };
  // The first access token is kept, so the first call needs no renewal.
  const expiresIn = typeof tokens.expires_in === 'number' && tokens.expires_in > 0 ? tokens.expires_in : DEFAULT_EXPIRES_IN;
  store.tokenState.save(record.integrationId, record.authId, liveToken(tokens.access_token, expiresIn, deps.marginSeconds * 1000), null);
  return { integrationId: record.integrationId, authId: record.authId, keyId: settings.keyId ?? null, createdIntegration };
}
