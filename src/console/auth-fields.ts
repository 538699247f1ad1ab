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
}

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
