/** The registry of credential kinds: one entry per auth type. */
import type { AuthType } from '../auth-types.js';
import type { CredentialKind } from '../kind.js';
import { staticKind } from './static.js';
import { tokenKind } from './tokens.js';
import { awsSigV4Kind } from './aws-sigv4.js';
import { hmacKind } from './hmac.js';

const KINDS = new Map<AuthType, CredentialKind>([
  ['NO_AUTH', staticKind('NO_AUTH')],
  ['BASIC_AUTH', staticKind('BASIC_AUTH')],
  ['BEARER_TOKEN', staticKind('BEARER_TOKEN')],
  ['API_KEY', staticKind('API_KEY')],
  ['OAUTH2_CLIENT_CREDENTIALS', tokenKind('OAUTH2_CLIENT_CREDENTIALS')],
  ['OAUTH2_REFRESH_TOKEN', tokenKind('OAUTH2_REFRESH_TOKEN')],
  ['GOOGLE_SERVICE_ACCOUNT', tokenKind('GOOGLE_SERVICE_ACCOUNT')],
  ['GITHUB_APP', tokenKind('GITHUB_APP')],
  ['AWS_SIGV4', awsSigV4Kind],
  ['HMAC', hmacKind],
]);

export function kindOf(type: AuthType): CredentialKind {
  const kind = KINDS.get(type);
  if (!kind) throw new Error(`no credential kind for ${type}`);
  return kind;
}

/** Request-body properties of the kinds that parse their own credential (`aws`, `hmac`...). */
export function kindBodyFields(): string[] {
  return [...KINDS.values()].flatMap((k) => (k.field ? [k.field] : []));
}

/** Those properties' schemas, for the admin API's request bodies and its OpenAPI description. */
export function kindBodySchemas(): Record<string, Record<string, unknown>> {
  return Object.fromEntries([...KINDS.values()].flatMap((k) => (k.field ? [[k.field, k.bodySchema ?? { type: 'object' }]] : [])));
}
