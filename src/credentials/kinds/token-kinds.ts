/**
 * The four token kinds (OAuth 2 client credentials, refresh tokens, Google
 * service accounts, GitHub Apps): how their input is checked, which half of it
 * is secret (sealed) and which is shown (`tokenConfig`). The injected header is
 * an access token that src/credentials/tokens obtains and renews.
 */
import { createPrivateKey } from 'node:crypto';
import type { ErrorDetail } from '../../errors.js';
import { isLoopback } from '../../config/load.js';

export const TOKEN_KINDS = ['OAUTH2_CLIENT_CREDENTIALS', 'OAUTH2_REFRESH_TOKEN', 'GOOGLE_SERVICE_ACCOUNT', 'GITHUB_APP'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];
export const isTokenKind = (t: string): t is TokenKind => (TOKEN_KINDS as readonly string[]).includes(t);

export type ClientAuthMethod = 'basic' | 'post' | 'none';

/** Non-secret settings: stored as JSON, shown in responses. */
export type TokenConfig =
  | { kind: 'OAUTH2_CLIENT_CREDENTIALS'; tokenUrl: string; clientId: string; scope?: string; audience?: string; clientAuth: ClientAuthMethod }
  | { kind: 'OAUTH2_REFRESH_TOKEN'; tokenUrl: string; clientId: string; scope?: string; clientAuth: ClientAuthMethod }
  | { kind: 'GOOGLE_SERVICE_ACCOUNT'; clientEmail: string; tokenUri: string; scopes: string[]; subject?: string; privateKeyId?: string }
  | { kind: 'GITHUB_APP'; appId: string; installationId: string; apiUrl: string };

/** The sealed half. */
export interface TokenSecrets {
  clientSecret?: string;
  refreshToken?: string;
  /** PEM: the service account's `private_key` or the GitHub App's key. */
  privateKey?: string;
}

export const TOKEN_LIMITS = { secret: 8192, privateKey: 16384, scope: 2048, id: 256, url: 2048 } as const;
export const DEFAULT_GITHUB_API = 'https://api.github.com';
export const DEFAULT_GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

/** Which request-body object each kind reads. */
export const TOKEN_FIELD: Record<TokenKind, 'oauth2' | 'googleServiceAccount' | 'githubApp'> = {
  OAUTH2_CLIENT_CREDENTIALS: 'oauth2',
  OAUTH2_REFRESH_TOKEN: 'oauth2',
  GOOGLE_SERVICE_ACCOUNT: 'googleServiceAccount',
  GITHUB_APP: 'githubApp',
};

/**
 * Token endpoints must be https. Plain http is accepted only for a loopback
 * host (a local test or development authorization server): there the token
 * never crosses a network, and anywhere else a client secret would.
 */
export function endpointProblem(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.username || url.password || url.hash) return 'must not hold userinfo or a fragment';
  if (url.protocol === 'https:') return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol === 'http:' && isLoopback(host)) return null;
  return 'must be an https URL (http only for a loopback host)';
}

/** http:// endpoints passed endpointProblem only for loopback hosts. */
export const isInsecureEndpoint = (url: string): boolean => url.startsWith('http:');

type Say = (field: string, problem: string) => void;

function str(say: Say, field: string, value: unknown, max: number, required: boolean): string | undefined {
  if (value === undefined) {
    if (required) say(field, 'is required');
    return undefined;
  }
  if (typeof value !== 'string') say(field, 'must be a string');
  else if (value.length === 0) say(field, 'must not be empty');
  else if (value.length > max) say(field, `must be at most ${max} characters`);
  // Every one of these ends up in a header or a form body: no control characters.
  else if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value) && max !== TOKEN_LIMITS.privateKey) say(field, 'must not contain control characters');
  else return value;
  return undefined;
}

function url(say: Say, field: string, value: unknown, required: boolean): string | undefined {
  const v = str(say, field, value, TOKEN_LIMITS.url, required);
  if (v === undefined) return undefined;
  const problem = endpointProblem(v);
  if (problem) say(field, problem);
  return problem ? undefined : v;
}

function pem(say: Say, field: string, value: unknown, required: boolean): string | undefined {
  const v = str(say, field, value, TOKEN_LIMITS.privateKey, required);
  if (v === undefined) return undefined;
  try {
    const key = createPrivateKey(v);
    if (key.asymmetricKeyType !== 'rsa') say(field, 'must be an RSA private key');
    else return v;
  } catch {
    // The parser's message could quote key material: only say what is wrong.
    say(field, 'must be a PEM private key');
  }
  return undefined;
}

function idLike(say: Say, field: string, value: unknown, required: boolean): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return String(value);
  const v = str(say, field, value, TOKEN_LIMITS.id, required);
  if (v !== undefined && !/^[0-9]+$/.test(v)) say(field, 'must be a positive integer');
  return v;
}

function clientAuthOf(say: Say, value: unknown, hasSecret: boolean): ClientAuthMethod {
  if (value === undefined) return hasSecret ? 'basic' : 'none';
  if (value !== 'basic' && value !== 'post') say('oauth2.clientAuth', 'must be basic or post');
  else if (!hasSecret) say('oauth2.clientAuth', 'needs oauth2.clientSecret');
  return value === 'post' ? 'post' : 'basic';
}

function scopeList(say: Say, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    say('googleServiceAccount.scopes', 'must be a non-empty list of scope strings');
    return [];
  }
  const out: string[] = [];
  value.forEach((s, i) => {
    const v = str(say, `googleServiceAccount.scopes[${i}]`, s, TOKEN_LIMITS.scope, true);
    if (v !== undefined && /\s/.test(v)) say(`googleServiceAccount.scopes[${i}]`, 'must not contain spaces');
    else if (v !== undefined) out.push(v);
  });
  return out;
}

export interface TokenCredential {
  tokenConfig: TokenConfig;
  secrets: TokenSecrets;
}

/**
 * The whole credential of a token kind from its input object (the body's
 * `oauth2`, `googleServiceAccount` or `githubApp`), every problem at once.
 * `current` (PATCH) supplies the fields that were not given.
 */
export function parseTokenCredential(kind: TokenKind, raw: unknown, details: ErrorDetail[], current?: TokenCredential): TokenCredential {
  const say: Say = (field, problem) => details.push({ field, problem });
  const fieldName = TOKEN_FIELD[kind];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) say(fieldName, 'must be an object');
  const given = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const cur = current?.tokenConfig as Record<string, unknown> | undefined;
  const curSecrets = current?.secrets ?? {};
  const pick = (name: string): unknown => (given[name] !== undefined ? given[name] : cur?.[name]);
  const required = !current;
  let result: TokenCredential | null = null;

  if (kind === 'OAUTH2_CLIENT_CREDENTIALS' || kind === 'OAUTH2_REFRESH_TOKEN') {
    const p = 'oauth2';
    const tokenUrl = url(say, `${p}.tokenUrl`, pick('tokenUrl'), true);
    const clientId = str(say, `${p}.clientId`, pick('clientId'), TOKEN_LIMITS.id, true);
    const secretIn = str(say, `${p}.clientSecret`, given.clientSecret, TOKEN_LIMITS.secret, required && kind === 'OAUTH2_CLIENT_CREDENTIALS');
    const clientSecret = secretIn ?? curSecrets.clientSecret;
    const scope = str(say, `${p}.scope`, pick('scope'), TOKEN_LIMITS.scope, false);
    const clientAuth = clientAuthOf(say, given.clientAuth ?? (cur?.clientAuth === 'none' ? undefined : cur?.clientAuth), clientSecret !== undefined);
    const secrets: TokenSecrets = clientSecret === undefined ? {} : { clientSecret };
    if (kind === 'OAUTH2_CLIENT_CREDENTIALS') {
      const audience = str(say, `${p}.audience`, pick('audience'), TOKEN_LIMITS.url, false);
      if (given.refreshToken !== undefined) say(`${p}.refreshToken`, 'does not belong to OAUTH2_CLIENT_CREDENTIALS');
      result = {
        tokenConfig: { kind, tokenUrl: tokenUrl ?? '', clientId: clientId ?? '', clientAuth, ...(scope ? { scope } : {}), ...(audience ? { audience } : {}) },
        secrets,
      };
    } else {
      const refreshToken = str(say, `${p}.refreshToken`, given.refreshToken, TOKEN_LIMITS.secret, required) ?? curSecrets.refreshToken;
      if (given.audience !== undefined) say(`${p}.audience`, 'does not belong to OAUTH2_REFRESH_TOKEN');
      result = {
        tokenConfig: { kind, tokenUrl: tokenUrl ?? '', clientId: clientId ?? '', clientAuth, ...(scope ? { scope } : {}) },
        secrets: { ...secrets, ...(refreshToken ? { refreshToken } : {}) },
      };
    }
  } else if (kind === 'GOOGLE_SERVICE_ACCOUNT') {
    const p = 'googleServiceAccount';
    let clientEmail = cur?.clientEmail as string | undefined;
    let tokenUri = (cur?.tokenUri as string | undefined) ?? DEFAULT_GOOGLE_TOKEN_URI;
    let privateKeyId = cur?.privateKeyId as string | undefined;
    let privateKey = curSecrets.privateKey;
    const key = given.key;
    if (key !== undefined || required) {
      if (typeof key !== 'object' || key === null || Array.isArray(key)) {
        say(`${p}.key`, 'must be the service account JSON key file, as an object');
      } else {
        const k = key as Record<string, unknown>;
        if (k.type !== undefined && k.type !== 'service_account') say(`${p}.key.type`, 'must be service_account');
        clientEmail = str(say, `${p}.key.client_email`, k.client_email, TOKEN_LIMITS.id, true);
        privateKey = pem(say, `${p}.key.private_key`, k.private_key, true);
        privateKeyId = str(say, `${p}.key.private_key_id`, k.private_key_id, TOKEN_LIMITS.id, false);
        tokenUri = url(say, `${p}.key.token_uri`, k.token_uri ?? DEFAULT_GOOGLE_TOKEN_URI, true) ?? tokenUri;
      }
    }
    const scopes = given.scopes !== undefined || required ? scopeList(say, given.scopes) : ((cur?.scopes as string[]) ?? []);
    const subject = str(say, `${p}.subject`, pick('subject'), TOKEN_LIMITS.id, false);
    result = {
      tokenConfig: { kind, clientEmail: clientEmail ?? '', tokenUri, scopes, ...(subject ? { subject } : {}), ...(privateKeyId ? { privateKeyId } : {}) },
      secrets: privateKey ? { privateKey } : {},
    };
  } else {
    const p = 'githubApp';
    const appId = idLike(say, `${p}.appId`, pick('appId'), true);
    const installationId = idLike(say, `${p}.installationId`, pick('installationId'), true);
    const privateKey = pem(say, `${p}.privateKey`, given.privateKey, required) ?? curSecrets.privateKey;
    const apiUrl = url(say, `${p}.apiUrl`, pick('apiUrl') ?? DEFAULT_GITHUB_API, true);
    result = {
      tokenConfig: { kind, appId: appId ?? '', installationId: installationId ?? '', apiUrl: (apiUrl ?? DEFAULT_GITHUB_API).replace(/\/+$/, '') },
      secrets: privateKey ? { privateKey } : {},
    };
  }
  return result;
}

/** The redacted view: the only form a response or a log line sees. */
export function tokenConfigView(c: TokenConfig): Record<string, unknown> {
  switch (c.kind) {
    case 'OAUTH2_CLIENT_CREDENTIALS':
    case 'OAUTH2_REFRESH_TOKEN': {
      const view: Record<string, unknown> = { tokenUrl: c.tokenUrl, clientId: c.clientId, clientAuth: c.clientAuth };
      if (c.scope) view.scope = c.scope;
      if (c.kind === 'OAUTH2_CLIENT_CREDENTIALS' && c.audience) view.audience = c.audience;
      return { oauth2: view };
    }
    case 'GOOGLE_SERVICE_ACCOUNT':
      return {
        googleServiceAccount: { client_email: c.clientEmail, token_uri: c.tokenUri, scopes: c.scopes, ...(c.subject ? { subject: c.subject } : {}) },
      };
    case 'GITHUB_APP':
      return { githubApp: { appId: c.appId, installationId: c.installationId, apiUrl: c.apiUrl } };
  }
}

