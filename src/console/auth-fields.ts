/**
 * How the console draws the form of each auth type: its fields, which are
 * secret (write-only password inputs, never pre-filled) and where each goes in
 * the admin API body. A type without an entry here still works: the console
 * offers its credential fields as one JSON object (write-only too). Adding a
 * type to AUTH_TYPES is enough for it to appear; an entry here makes its form
 * friendlier.
 */
import { AUTH_TYPES } from '../credentials/auth-types.js';

export interface AuthField {
  /** Dotted path in the request body: "token", "apiKey.value". */
  path: string;
  label: string;
  secret: boolean;
  options?: string[];
  hint?: string;
  /** Shown (and kept) on a rotation form, pre-filled from the record's view. */
  editable?: boolean;
  /** Left out of the body when empty (the API then applies its default or keeps the stored value). */
  optional?: boolean;
  /** How the text becomes the API's value: several lines (a PEM), a JSON object (a key file), or a list (one per line or comma). */
  input?: 'multiline' | 'json' | 'list';
}

const oauth2Common = (refresh: boolean): AuthField[] => [
  { path: 'oauth2.tokenUrl', label: 'Token URL', secret: false, editable: true, hint: 'https://… (http only on loopback)' },
  { path: 'oauth2.clientId', label: 'Client id', secret: false, editable: true },
  { path: 'oauth2.clientSecret', label: 'Client secret', secret: true, optional: refresh, hint: refresh ? 'omit for a public client' : undefined },
  ...(refresh ? [{ path: 'oauth2.refreshToken', label: 'Refresh token', secret: true }] : []),
  { path: 'oauth2.scope', label: 'Scope', secret: false, editable: true, optional: true, hint: 'space separated, as the provider wants it' },
  ...(refresh ? [] : [{ path: 'oauth2.audience', label: 'Audience', secret: false, editable: true, optional: true }]),
  { path: 'oauth2.clientAuth', label: 'Client authentication', secret: false, editable: true, optional: true, options: ['', 'basic', 'post'], hint: 'empty: basic with a secret, none without' },
];

export const AUTH_FORMS: Partial<Record<string, AuthField[]>> = {
  NO_AUTH: [],
  BEARER_TOKEN: [{ path: 'token', label: 'Token', secret: true, hint: 'Sent as Authorization: Bearer …' }],
  BASIC_AUTH: [
    { path: 'username', label: 'User name', secret: true },
    { path: 'password', label: 'Password', secret: true },
  ],
  API_KEY: [
    { path: 'apiKey.key', label: 'Header or query parameter name', secret: false, editable: true, hint: 'e.g. X-API-Key' },
    { path: 'apiKey.value', label: 'Key value', secret: true },
    { path: 'apiKey.position', label: 'Where it goes', secret: false, editable: true, options: ['header', 'query'] },
  ],
  AWS_SIGV4: [
    { path: 'aws.accessKeyId', label: 'Access key id', secret: true },
    { path: 'aws.secretAccessKey', label: 'Secret access key', secret: true },
    { path: 'aws.sessionToken', label: 'Session token', secret: true, optional: true, hint: 'temporary credentials only' },
    { path: 'aws.region', label: 'Region', secret: false, editable: true, optional: true, hint: 'e.g. eu-west-1; empty: read from the host name' },
    { path: 'aws.service', label: 'Service', secret: false, editable: true, optional: true, hint: 'e.g. s3; empty: read from the host name' },
  ],
  OAUTH2_CLIENT_CREDENTIALS: oauth2Common(false),
  OAUTH2_REFRESH_TOKEN: oauth2Common(true),
  GOOGLE_SERVICE_ACCOUNT: [
    { path: 'googleServiceAccount.key', label: 'Service account key (the JSON key file)', secret: true, input: 'json' },
    { path: 'googleServiceAccount.scopes', label: 'Scopes', secret: false, editable: true, input: 'list', hint: 'one per line' },
    { path: 'googleServiceAccount.subject', label: 'Subject (user to impersonate)', secret: false, editable: true, optional: true },
  ],
  GITHUB_APP: [
    { path: 'githubApp.appId', label: 'App id', secret: false, editable: true },
    { path: 'githubApp.installationId', label: 'Installation id', secret: false, editable: true },
    { path: 'githubApp.privateKey', label: 'Private key (PEM)', secret: true, input: 'multiline' },
    { path: 'githubApp.apiUrl', label: 'API URL', secret: false, editable: true, optional: true, hint: 'GitHub Enterprise only; default https://api.github.com' },
  ],
};

export const consoleAuthTypes = (): readonly string[] => AUTH_TYPES;

/** Reads "apiKey.key" out of a record view. */
export function valueAt(view: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), view);
}

export function setAt(body: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = body;
  for (const p of parts.slice(0, -1)) {
    node[p] = (node[p] as Record<string, unknown> | undefined) ?? {};
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}
