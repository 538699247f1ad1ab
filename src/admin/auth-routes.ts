import type { FastifyInstance } from 'fastify';
import { LatchkeyError, validationError } from '../errors.js';
import { staticHeaderProblems, type StaticHeader } from '../credentials/headers.js';
import {
  credentialForCreate,
  credentialForPatch,
  parseAuthType,
  type CredentialInput,
} from '../credentials/auth-types.js';
import { shortSecretWarnings } from '../credentials/redaction-warnings.js';
import type { AuthRecord } from '../store/auth-records.js';
import type { TokenStateView } from '../store/token-state.js';
import { isTokenKind } from '../credentials/kinds/token-kinds.js';
import { kindBodyFields, kindOf } from '../credentials/kinds/index.js';
import type { ErrorDetail } from '../errors.js';
import type { NewCredential } from '../credentials/auth-types.js';
import { createAuthBody, patchAuthBody } from './schemas.js';
import { auditChange, type AdminContext } from './context.js';

interface AuthBody extends CredentialInput {
  authType?: string;
  headers?: StaticHeader[];
  [kindField: string]: unknown;
}

/** Create for a kind that parses its own credential object (`aws`, `hmac`...); others: the seed types' rules. */
function newCredential(authType: ReturnType<typeof parseAuthType>, body: AuthBody): NewCredential {
  const kind = kindOf(authType);
  if (!kind.field || !kind.parse) return credentialForCreate(authType, body);
  const input = body[kind.field];
  if (input === undefined) throw validationError([{ field: kind.field, problem: `is required for authType ${authType}` }]);
  const problems: ErrorDetail[] = [];
  const parsed = kind.parse(input, problems);
  if (problems.length > 0) throw validationError(problems);
  return { apiKey: null, secrets: parsed.secrets, config: parsed.config };
}

type Params = { integrationId: string; authId: string };

/** The only view of an auth record an admin response ever holds: no secret field exists on it. */
export function authView(r: AuthRecord, token?: TokenStateView): Record<string, unknown> {
  const view: Record<string, unknown> = {
    authId: r.authId,
    integrationId: r.integrationId,
    authType: r.authType,
    headers: r.headers,
  };
  if (r.authType === 'API_KEY' && r.apiKey) view.apiKey = { key: r.apiKey.key, position: r.apiKey.position };
  const kind = kindOf(r.authType);
  // A kind's view holds its non-secret settings only (region, template): secrets never reach it.
  if (kind.field && kind.view) view[kind.field] = kind.view(r.config);
  if (isTokenKind(r.authType)) {
    // The token itself never appears: only whether the grant still works and when the current token ends.
    view.status = token?.status ?? 'active';
    view.tokenExpiresAt = token?.tokenExpiresAt ?? null;
  }
  if (r.provider) {
    view.provider = r.provider;
    view.label = r.label;
  }
  view.createdAt = r.createdAt;
  view.updatedAt = r.updatedAt;
  return view;
}

function checkHeaders(headers: StaticHeader[] | undefined): void {
  const details = headers ? staticHeaderProblems(headers) : [];
  if (details.length > 0) throw validationError(details);
}

export function authRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { store } = ctx;
  const base = '/integrations/:integrationId/auth';
  const view = (r: AuthRecord): Record<string, unknown> => authView(r, isTokenKind(r.authType) ? store.tokenState.view(r.authId) : undefined);
  /** The view, with `warnings` when a stored secret is too short to be redacted from responses. */
  const warnedView = (r: AuthRecord): Record<string, unknown> => {
    const fields = store.authRecords.openSecrets(r.integrationId, r.authId);
    const warnings = shortSecretWarnings({ authType: r.authType, fields, config: r.config, template: r.template, apiKey: r.apiKey });
    return warnings.length > 0 ? { ...view(r), warnings } : view(r);
  };

  app.post<{ Params: { integrationId: string }; Body: AuthBody }>(base, { schema: { body: createAuthBody } }, async (req, reply) => {
    const { integrationId } = req.params;
    store.integrations.mustGet(integrationId);
    const authType = parseAuthType(req.body.authType);
    checkHeaders(req.body.headers);
    const credential = newCredential(authType, req.body);
    const rec = store.authRecords.create(integrationId, authType, req.body.headers ?? [], credential);
    auditChange(ctx, req, 'auth.create', { integrationId, authId: rec.authId });
    return reply.code(201).send(warnedView(rec));
  });

  app.get<{ Params: { integrationId: string } }>(base, async (req) => {
    store.integrations.mustGet(req.params.integrationId);
    return { data: store.authRecords.list(req.params.integrationId).map(view) };
  });

  app.get<{ Params: Params }>(`${base}/:authId`, async (req) =>
    view(store.authRecords.mustGet(req.params.integrationId, req.params.authId)),
  );

  app.patch<{ Params: Params; Body: AuthBody }>(`${base}/:authId`, { schema: { body: patchAuthBody } }, async (req) => {
    const { integrationId, authId } = req.params;
    const current = store.authRecords.mustGet(integrationId, authId);
    const b = req.body;
    if (b.authType !== undefined && parseAuthType(b.authType) !== current.authType) {
      throw validationError([{ field: 'authType', problem: `is fixed at creation (${current.authType})` }]);
    }
    checkHeaders(b.headers);
    const kind = kindOf(current.authType);
    const wrongKindField = kindBodyFields().find((f) => b[f] !== undefined && f !== kind.field);
    if (wrongKindField) throw validationError([{ field: wrongKindField, problem: `does not belong to authType ${current.authType}` }]);
    const kindInput = kind.field ? b[kind.field] : undefined;
    const touchesCredential =
      b.token !== undefined || b.username !== undefined || b.password !== undefined || b.apiKey !== undefined || kindInput !== undefined;
    if (touchesCredential && current.provider) {
      // Its fields are the provider's, checked by the probe: rotate by storing new credentials.
      throw validationError([
        { field: 'credentials', problem: `rotate ${current.provider} credentials with POST /v1/integrations/${current.provider}/credentials` },
      ]);
    }
    // Secrets are opened only when a credential field changes, and only to merge it.
    const secrets = touchesCredential ? store.authRecords.openSecrets(integrationId, authId) : {};
    let updated: AuthRecord;
    if (kind.patch && kindInput !== undefined) {
      const problems: ErrorDetail[] = [];
      const parsed = kind.patch({ secrets, config: current.config }, kindInput, problems);
      if (problems.length > 0) throw validationError(problems);
      updated = store.db.transaction(() => {
        const rec = store.authRecords.update(integrationId, authId, b.headers ?? current.headers, null, parsed.secrets, parsed.config);
        // New token settings or secrets: the old access token and a reauthorization_required status go with them.
        if (isTokenKind(current.authType)) store.tokenState.reset(authId);
        return rec;
      }).immediate();
    } else {
      const { credential, secretsChanged } = credentialForPatch(current.authType, { apiKey: current.apiKey, secrets }, b);
      updated = store.authRecords.update(
        integrationId,
        authId,
        b.headers ?? current.headers,
        credential.apiKey,
        secretsChanged ? credential.secrets : null,
      );
    }
    auditChange(ctx, req, 'auth.update', { integrationId, authId });
    return touchesCredential ? warnedView(updated) : view(updated);
  });

  app.delete<{ Params: Params }>(`${base}/:authId`, async (req, reply) => {
    const { integrationId, authId } = req.params;
    if (!store.authRecords.delete(integrationId, authId)) {
      throw new LatchkeyError('NOT_FOUND', `auth record ${authId} not found in integration ${integrationId}`);
    }
    auditChange(ctx, req, 'auth.delete', { integrationId, authId });
    return reply.code(204).send();
  });
}
