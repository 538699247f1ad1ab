/**
 * The one injection engine: a template names where credential fields go
 * (headers, query parameters, Basic auth) as `{{field}}` placeholders. The four
 * basic auth types and every catalog provider compile to a template; rendering
 * it with the opened secret fields gives what the proxy sets on a call.
 */

export interface InjectionTemplate {
  /** Header name (RFC 9110 token) and value template. */
  headers: Array<[string, string]>;
  /** Query parameter name and value template. */
  query: Array<[string, string]>;
  /** Basic auth: `Authorization: Basic base64(username:password)`. */
  basic: { username: string; password: string } | null;
}

/** What a rendered template sets: header names lower-case. */
export interface Injection {
  headers: Array<[string, string]>;
  query: Array<[string, string]>;
}

/** Shorter secrets are not redacted from responses: replacing every short string would garble them (README). */
export const MIN_SECRET_LENGTH = 8;

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;

/** The field names a template string uses. */
export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1] as string);
}

export function templateFields(t: InjectionTemplate): Set<string> {
  const all = [...t.headers, ...t.query].map(([, v]) => v);
  if (t.basic) all.push(t.basic.username, t.basic.password);
  return new Set(all.flatMap(placeholders));
}

/**
 * One pass, so a secret that happens to contain "{{x}}" is never expanded.
 * Null when the template uses a field that has no value (an optional field
 * left out): the header or parameter is then not set at all.
 */
export function render(template: string, fields: Readonly<Record<string, string | undefined>>): string | null {
  let missing = false;
  const out = template.replace(PLACEHOLDER, (_, name: string) => {
    const v = fields[name];
    if (v === undefined) missing = true;
    return v ?? '';
  });
  return missing ? null : out;
}

export function renderInjection(t: InjectionTemplate, fields: Readonly<Record<string, string | undefined>>): Injection {
  const headers: Array<[string, string]> = [];
  for (const [name, tpl] of t.headers) {
    const v = render(tpl, fields);
    if (v !== null) headers.push([name.toLowerCase(), v]);
  }
  if (t.basic) {
    const user = render(t.basic.username, fields);
    const pass = render(t.basic.password, fields);
    if (user !== null && pass !== null) headers.push(['authorization', `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`]);
  }
  const query: Array<[string, string]> = [];
  for (const [name, tpl] of t.query) {
    const v = render(tpl, fields);
    if (v !== null) query.push([name, v]);
  }
  return { headers, query };
}

/** Where this template puts a credential: a client's `lk_` key found there is the client's own. */
export function credentialPlaces(t: InjectionTemplate): { headers: string[]; query: string[] } {
  const headers = t.headers.map(([name]) => name.toLowerCase());
  if (t.basic) headers.push('authorization');
  return { headers, query: t.query.map(([name]) => name) };
}

/**
 * The secret values a rendered template injects: every field a header or
 * query template uses, and the Basic password and "user:password" pair. The
 * Basic user name identifies rather than authenticates (a Twilio account SID,
 * a Jira e-mail) and comes back in ordinary answers, so it is a secret only
 * when the password is empty, as with Stripe, whose key is the user name.
 */
export function injectedSecrets(t: InjectionTemplate, fields: Readonly<Record<string, string | undefined>>): string[] {
  const out = new Set<string>();
  for (const n of secretFieldNames(t, fields)) {
    const v = fields[n];
    if (v) out.add(v);
  }
  if (t.basic) {
    const user = render(t.basic.username, fields);
    const pass = render(t.basic.password, fields);
    if (user !== null && pass !== null) out.add(`${user}:${pass}`);
  }
  return [...out];
}

/** The fields whose values injectedSecrets treats as secret. */
function secretFieldNames(t: InjectionTemplate, fields: Readonly<Record<string, string | undefined>>): Set<string> {
  const names = new Set([...t.headers, ...t.query].flatMap(([, v]) => placeholders(v)));
  if (t.basic) {
    const pass = render(t.basic.password, fields);
    for (const n of placeholders(pass ? t.basic.password : t.basic.username)) names.add(n);
  }
  return names;
}
