import { LatchkeyError, validationError, type ErrorDetail } from '../errors.js';
import type { ApiKeyChange, NewApiKey } from '../store/api-keys.js';
import { isScopeEntry } from '../admin/schemas.js';
import { parseRateLimit, parseRules } from './rules.js';

type KeyInput = { name?: unknown; role?: unknown; integrations?: unknown; expiresAt?: unknown; rules?: unknown; rateLimit?: unknown };

function checkName(details: ErrorDetail[], name: unknown): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    details.push({ field: 'name', problem: 'is required, 1 to 200 characters' });
  }
}

function checkExpiresAt(details: ErrorDetail[], value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const t = typeof value === 'string' ? Date.parse(value) : NaN;
  if (Number.isNaN(t)) details.push({ field: 'expiresAt', problem: 'must be an ISO 8601 date-time' });
  else if (t <= Date.now()) details.push({ field: 'expiresAt', problem: 'must be in the future' });
  else return new Date(t).toISOString();
  return null;
}

/** Rules and rate limit: each parser names its own fields; all problems are reported together. */
function checkLimits(details: ErrorDetail[], input: KeyInput): Pick<ApiKeyChange, 'rules' | 'rateLimit'> {
  const out: Pick<ApiKeyChange, 'rules' | 'rateLimit'> = {};
  const collect = (f: () => void): void => {
    try {
      f();
    } catch (err) {
      if (err instanceof LatchkeyError && err.details) details.push(...err.details);
      else throw err;
    }
  };
  if (input.rules !== undefined) collect(() => (out.rules = parseRules(input.rules)));
  if (input.rateLimit !== undefined) collect(() => (out.rateLimit = parseRateLimit(input.rateLimit)));
  return out;
}

/** PATCH /v1/api-keys/{keyId} and `latchkey keys update`: name, expiresAt, rules, rateLimit. */
export function parseKeyChange(input: KeyInput): ApiKeyChange {
  const details: ErrorDetail[] = [];
  for (const field of ['role', 'integrations'] as const) {
    // A key's role and scope are what it was issued with: widen them with a new key.
    if (input[field] !== undefined) details.push({ field, problem: 'cannot be changed; create a new key' });
  }
  const change: ApiKeyChange = checkLimits(details, input);
  if (input.name !== undefined) {
    checkName(details, input.name);
    change.name = input.name as string;
  }
  if (input.expiresAt !== undefined) change.expiresAt = checkExpiresAt(details, input.expiresAt);
  if (details.length > 0) throw validationError(details);
  return change;
}

/** One check for a new key's fields, shared by the admin API and the CLI. */
export function parseNewKey(input: KeyInput): NewApiKey {
  const details: ErrorDetail[] = [];
  const name = input.name;
  checkName(details, name);
  const role = input.role;
  if (role !== 'admin' && role !== 'agent') details.push({ field: 'role', problem: 'must be admin or agent' });
  let integrations: string[] = ['*'];
  if (input.integrations !== undefined) {
    const list = input.integrations;
    if (!Array.isArray(list) || list.length === 0 || list.length > 500 || !list.every(isScopeEntry)) {
      details.push({ field: 'integrations', problem: 'must be a non-empty list of integration ids, or ["*"]' });
    } else {
      integrations = list as string[];
    }
  } else if (role === 'agent') {
    // An agent's scope is a deliberate choice: no silent "everything".
    details.push({ field: 'integrations', problem: 'is required for role agent (a list of ids, or ["*"])' });
  }
  const expiresAt = checkExpiresAt(details, input.expiresAt);
  const limits = checkLimits(details, input);
  if (details.length > 0) throw validationError(details);
  return {
    name: name as string,
    role: role as NewApiKey['role'],
    integrations,
    expiresAt,
    rules: limits.rules ?? null,
    rateLimit: limits.rateLimit ?? null,
  };
}
