import { validationError, type ErrorDetail } from '../errors.js';
import type { NewApiKey } from '../store/api-keys.js';
import { isScopeEntry } from '../admin/schemas.js';

/** One check for a new key's fields, shared by the admin API and the CLI. */
export function parseNewKey(input: { name?: unknown; role?: unknown; integrations?: unknown; expiresAt?: unknown }): NewApiKey {
  const details: ErrorDetail[] = [];
  const name = input.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    details.push({ field: 'name', problem: 'is required, 1 to 200 characters' });
  }
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
  let expiresAt: string | null = null;
  if (input.expiresAt !== undefined && input.expiresAt !== null) {
    const t = typeof input.expiresAt === 'string' ? Date.parse(input.expiresAt) : NaN;
    if (Number.isNaN(t)) details.push({ field: 'expiresAt', problem: 'must be an ISO 8601 date-time' });
    else if (t <= Date.now()) details.push({ field: 'expiresAt', problem: 'must be in the future' });
    else expiresAt = new Date(t).toISOString();
  }
  if (details.length > 0) throw validationError(details);
  return { name: name as string, role: role as NewApiKey['role'], integrations, expiresAt };
}
