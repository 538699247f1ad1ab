/**
 * The four auth types of an auth record. For each one: which secret fields it
 * has, how a create or a PATCH is checked, and the injection plan it compiles
 * to. The plan is the only thing the proxy's hot path runs.
 */
import { validationError, type ErrorDetail } from '../errors.js';
import {
  CONTROL_CHARACTERS,
  HEADER_VALUE_PATTERN,
  HEADER_VALUE_PROBLEM,
  TOKEN_PATTERN,
  isForbiddenStaticHeader,
  type StaticHeader,
} from './headers.js';
import type { InjectionTemplate } from './template.js';
import { TOKEN_KINDS, type TokenSecrets } from './kinds/token-kinds.js';

export const AUTH_TYPES = ['NO_AUTH', 'BASIC_AUTH', 'BEARER_TOKEN', 'API_KEY', 'AWS_SIGV4', 'HMAC', ...TOKEN_KINDS] as const;
export type AuthType = (typeof AUTH_TYPES)[number];

export type ApiKeyPosition = 'header' | 'query';

/** The non-secret half of an API_KEY credential: shown in responses. */
export interface ApiKeyPlacement {
  key: string;
  position: ApiKeyPosition;
}

/** The sealed half: every value here is secret. */
export interface Secrets extends TokenSecrets {
  token?: string;
  username?: string;
  password?: string;
  apiKeyValue?: string;
}

export const LIMITS = { token: 8192, username: 256, password: 512, apiKeyValue: 8192, apiKeyName: 256 } as const;

/** Which request-body fields belong to which type. */
const FIELDS: Record<AuthType, readonly string[]> = {
  NO_AUTH: [],
  BASIC_AUTH: ['username', 'password'],
  BEARER_TOKEN: ['token'],
  API_KEY: ['apiKey'],
  // Token kinds parse their own object (credentials/kinds/tokens.ts).
  OAUTH2_CLIENT_CREDENTIALS: [],
  OAUTH2_REFRESH_TOKEN: [],
  GOOGLE_SERVICE_ACCOUNT: [],
  GITHUB_APP: [],
  // Signing kinds keep their credential in one object of their own (credentials/kinds/*).
  AWS_SIGV4: [],
  HMAC: [],
};
const CREDENTIAL_FIELDS = ['token', 'username', 'password', 'apiKey'] as const;

export function parseAuthType(value: unknown): AuthType {
  const upper = typeof value === 'string' ? value.toUpperCase() : '';
  const found = AUTH_TYPES.find((t) => t === upper);
  if (!found) throw validationError([{ field: 'authType', problem: `must be one of ${AUTH_TYPES.join(', ')}` }]);
  return found;
}

export interface CredentialInput {
  token?: string;
  username?: string;
  password?: string;
  apiKey?: { key?: string; value?: string; position?: string };
}

function lengthProblem(details: ErrorDetail[], field: string, value: string | undefined, max: number, allowEmpty = false): void {
  if (value === undefined) return;
  if (value.length === 0 && !allowEmpty) details.push({ field, problem: 'must not be empty' });
  else if (value.length > max) details.push({ field, problem: `must be at most ${max} characters` });
}

const HEADER_VALUE = new RegExp(HEADER_VALUE_PATTERN);
const HEADER_NAME = new RegExp(TOKEN_PATTERN);

/**
 * A credential value is checked like the header value it becomes, when it is
 * stored: a CR/LF or a character outside Latin-1 would otherwise be accepted
 * and make every later call fail with an error that blames the upstream. A
 * value placed in the query is URL-encoded, so only control characters matter.
 */
function valueProblem(details: ErrorDetail[], field: string, value: string | undefined, inHeader: boolean): void {
  if (value === undefined) return;
  if (inHeader ? !HEADER_VALUE.test(value) : CONTROL_CHARACTERS.test(value)) {
    details.push({ field, problem: inHeader ? HEADER_VALUE_PROBLEM : 'must not contain control characters' });
  }
}

function checkApiKeyName(details: ErrorDetail[], key: string | undefined, position: ApiKeyPosition): void {
  lengthProblem(details, 'apiKey.key', key, LIMITS.apiKeyName);
  if (!key || position !== 'header') return;
  // A header name that is not a token could split the request; a query name is URL-encoded instead.
  if (!HEADER_NAME.test(key)) {
    details.push({ field: 'apiKey.key', problem: 'must be an RFC 9110 token when position is header' });
  } else if (isForbiddenStaticHeader(key) || key.toLowerCase().startsWith('x-latchkey-')) {
    // Framing and routing headers cannot carry a credential: Host or Content-Length from a record could smuggle a request.
    details.push({ field: 'apiKey.key', problem: `${key} cannot carry a credential` });
  }
}

/** Empty user names and passwords are real (Stripe, Mailgun); a ":" in the user name would shift the split. */
function basicProblems(details: ErrorDetail[], input: CredentialInput): void {
  lengthProblem(details, 'username', input.username, LIMITS.username, true);
  lengthProblem(details, 'password', input.password, LIMITS.password, true);
  if (input.username?.includes(':')) details.push({ field: 'username', problem: 'must not contain ":"' });
}

export interface NewCredential {
  apiKey: ApiKeyPlacement | null;
  secrets: Secrets;
  /** A kind's non-secret settings (see credentials/kind.ts); absent for the seed types. */
  config?: Record<string, unknown> | null;
}

/** Create: fields of other types are dropped; a missing required one is named. */
export function credentialForCreate(authType: AuthType, input: CredentialInput): NewCredential {
  const details: ErrorDetail[] = [];
  const require = (field: string, value: unknown): void => {
    if (value === undefined) details.push({ field, problem: `is required for authType ${authType}` });
  };
  let apiKey: ApiKeyPlacement | null = null;
  const secrets: Secrets = {};
  if (authType === 'BEARER_TOKEN') {
    require('token', input.token);
    lengthProblem(details, 'token', input.token, LIMITS.token);
    valueProblem(details, 'token', input.token, true);
    secrets.token = input.token;
  } else if (authType === 'BASIC_AUTH') {
    require('username', input.username);
    require('password', input.password);
    basicProblems(details, input);
    secrets.username = input.username;
    secrets.password = input.password;
  } else if (authType === 'API_KEY') {
    require('apiKey', input.apiKey);
    if (input.apiKey) {
      require('apiKey.key', input.apiKey.key);
      require('apiKey.value', input.apiKey.value);
      const position = (input.apiKey.position ?? 'header') as ApiKeyPosition;
      checkApiKeyName(details, input.apiKey.key, position);
      lengthProblem(details, 'apiKey.value', input.apiKey.value, LIMITS.apiKeyValue);
      valueProblem(details, 'apiKey.value', input.apiKey.value, position === 'header');
      apiKey = { key: input.apiKey.key ?? '', position };
      secrets.apiKeyValue = input.apiKey.value;
    }
  }
  if (details.length > 0) throw validationError(details);
  return { apiKey, secrets };
}

/**
 * PATCH: only given fields change. A credential field of another type is an
 * error here (unlike on create): silently ignoring it would leave the caller
 * believing a secret was rotated when it was not.
 */
export function credentialForPatch(
  authType: AuthType,
  current: NewCredential,
  input: CredentialInput,
): { credential: NewCredential; secretsChanged: boolean } {
  const details: ErrorDetail[] = [];
  for (const field of CREDENTIAL_FIELDS) {
    if (input[field] !== undefined && !FIELDS[authType].includes(field)) {
      details.push({ field, problem: `does not belong to authType ${authType}` });
    }
  }
  if (details.length > 0) throw validationError(details);

  const secrets: Secrets = { ...current.secrets };
  let apiKey = current.apiKey;
  if (input.token !== undefined) secrets.token = input.token;
  if (input.username !== undefined) secrets.username = input.username;
  if (input.password !== undefined) secrets.password = input.password;
  if (input.apiKey !== undefined && apiKey) {
    apiKey = { key: input.apiKey.key ?? apiKey.key, position: (input.apiKey.position as ApiKeyPosition) ?? apiKey.position };
    if (input.apiKey.value !== undefined) secrets.apiKeyValue = input.apiKey.value;
  }
  lengthProblem(details, 'token', input.token, LIMITS.token);
  valueProblem(details, 'token', input.token, true);
  basicProblems(details, input);
  if (input.apiKey && apiKey) {
    checkApiKeyName(details, apiKey.key, apiKey.position);
    lengthProblem(details, 'apiKey.value', input.apiKey.value, LIMITS.apiKeyValue);
    // A stored value moved into a header by a position change is checked as a header value too.
    valueProblem(details, 'apiKey.value', input.apiKey.value ?? secrets.apiKeyValue, apiKey.position === 'header');
  }
  if (details.length > 0) throw validationError(details);
  const secretsChanged =
    input.token !== undefined || input.username !== undefined || input.password !== undefined || input.apiKey?.value !== undefined;
  return { credential: { apiKey, secrets }, secretsChanged };
}

/** The template each basic auth type compiles to; its fields are the sealed Secrets. */
export function templateFor(authType: AuthType, apiKey: ApiKeyPlacement | null): InjectionTemplate {
  switch (authType) {
    case 'BEARER_TOKEN':
      return { headers: [['Authorization', 'Bearer {{token}}']], query: [], basic: null };
    case 'BASIC_AUTH':
      return { headers: [], query: [], basic: { username: '{{username}}', password: '{{password}}' } };
    case 'API_KEY':
      if (!apiKey) return { headers: [], query: [], basic: null };
      return apiKey.position === 'query'
        ? { headers: [], query: [[apiKey.key, '{{apiKeyValue}}']], basic: null }
        : { headers: [[apiKey.key, '{{apiKeyValue}}']], query: [], basic: null };
    default:
      // NO_AUTH, and kinds whose template comes from their own prepare().
      return { headers: [], query: [], basic: null };
  }
}

export const headersToPairs = (headers: StaticHeader[]): Array<[string, string]> =>
  headers.map((h) => [h.key.toLowerCase(), h.value]);
