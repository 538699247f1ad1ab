/** API keys (create, shown once, revoke) and widget tokens. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { actionButton, csrfField, html, page, when, type Html } from './html.js';
import { sendPage, type ConsoleKit } from './server.js';
import { chrome, lines } from './pages-integrations.js';
import type { Session } from './sessions.js';

type View = Record<string, unknown>;
const enc = encodeURIComponent;

/** A secret shown this once, with a copy button (console.js). */
export const onceBox = (label: string, value: string, note: string): Html =>
  html`<section class="card once" aria-labelledby="once-h"><h2 id="once-h">${label}</h2>
<p>${note}</p><div class="copyrow"><output id="once-value" class="secret-once">${value}</output>
<button type="button" data-copy="once-value">Copy</button></div></section>`;

const scopeList = (text: string | null): string[] =>
  (text ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** datetime-local has no zone: the form labels it UTC. */
const utcIso = (value: string | null): string | null | undefined => {
  if (!value) return undefined;
  const t = Date.parse(/Z$|[+-]\d\d:\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(t) ? value : new Date(t).toISOString();
};

export function accessPages(app: FastifyInstance, kit: ConsoleKit): void {
  /** Optional key fields (request rules, rate limits) appear when the API's own schema has them. */
  const keyOptions = async () => {
    const props = ((await kit.bodySchema('POST', '/v1/api-keys'))?.properties ?? {}) as View;
    const patch = (await kit.bodySchema('PATCH', '/v1/api-keys/{keyId}'))?.properties as View | undefined;
    return { rules: 'rules' in props, rateLimit: 'rateLimit' in props, patch: patch ? new Set(Object.keys(patch)) : null };
  };

  /** Shown only when the admin API has PATCH /v1/api-keys/{keyId}, with the fields its schema takes. */
  const editForm = (k: View, csrf: string, fields: Set<string>): Html =>
    html`<details><summary>Edit</summary><form method="post" action="/console/keys/${enc(String(k.keyId))}">${csrfField(csrf)}
${fields.has('name') ? html`<label>Name<input name="name" value="${k.name}" maxlength="200"></label>` : ''}
${fields.has('expiresAt') ? html`<label>Expires at <span class="muted">(UTC; empty: unchanged)</span><input name="expiresAt" type="datetime-local" value="${typeof k.expiresAt === 'string' ? k.expiresAt.slice(0, 16) : ''}"></label>` : ''}
${fields.has('rules') ? html`<label>Request rules <span class="muted">(JSON; empty: unchanged)</span><textarea name="rules" rows="2" spellcheck="false">${k.rules ? JSON.stringify(k.rules) : ''}</textarea></label>` : ''}
${fields.has('rateLimit') ? html`<label>Rate limit: requests<input name="rateRequests" type="number" min="1"></label><label>per seconds<input name="ratePerSeconds" type="number" min="1"></label>` : ''}
<button type="submit">Save</button></form></details>`;

  /** Optional key fields from a form, shared by create and edit. A string is the problem to show. */
  const keyExtras = (f: URLSearchParams, payload: View): string | null => {
    const expiresAt = utcIso(f.get('expiresAt'));
    if (expiresAt) payload.expiresAt = expiresAt;
    const rules = f.get('rules')?.trim();
    if (rules) {
      try {
        payload.rules = JSON.parse(rules) as unknown;
      } catch {
        return 'rules: not valid JSON';
      }
    }
    if (f.get('rateRequests') || f.get('ratePerSeconds')) {
      payload.rateLimit = { requests: Number(f.get('rateRequests')), perSeconds: Number(f.get('ratePerSeconds')) };
    }
    return null;
  };

  const keysPage = async (req: FastifyRequest, created: View | null): Promise<string> => {
    const a = await kit.api(req, 'GET', '/v1/api-keys?limit=200');
    const rows = (a.json?.data ?? []) as View[];
    const csrf = (req.consoleSession as Session).csrf;
    const opts = await keyOptions();
    const body = html`
${created ? onceBox(`New key "${String(created.name)}"`, String(created.key), 'Copy it now: it is shown this once and cannot be read again (only its hash is stored).') : ''}
<section aria-labelledby="keys-h"><h2 id="keys-h">Active keys</h2>
<table><thead><tr><th scope="col">Name</th><th scope="col">Key id</th><th scope="col">Role</th><th scope="col">Integrations</th><th scope="col">Prefix</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th>${opts.rules ? html`<th scope="col">Rules</th>` : ''}<th scope="col"><span class="sr-only">Action</span></th></tr></thead><tbody>
${rows.map(
  (k) => html`<tr><td>${k.name}</td><td><code>${k.keyId}</code></td><td><span class="badge">${k.role}</span></td><td>${(k.integrations as string[]).join(', ')}</td>
<td><code>${k.prefix}…</code></td><td>${when(k.createdAt as string)}</td><td>${k.expiresAt ? when(k.expiresAt as string) : html`<span class="muted">no expiry</span>`}</td><td>${when(k.lastUsedAt as string | null)}</td>
${opts.rules ? html`<td>${k.rules ? html`<code>${JSON.stringify(k.rules)}</code>` : html`<span class="muted">any call</span>`}${k.rateLimit ? html`<br><code>${JSON.stringify(k.rateLimit)}</code>` : ''}</td>` : ''}
<td>${opts.patch ? editForm(k, csrf, opts.patch) : ''}${actionButton(`/console/keys/${enc(String(k.keyId))}/revoke`, csrf, 'Revoke', `Revoke key ${String(k.name)}? Calls with it fail at once.`, String(k.name))}</td></tr>`,
)}</tbody></table></section>
<section class="card" aria-labelledby="newkey-h"><h2 id="newkey-h">New API key</h2>
<form method="post" action="/console/keys">${csrfField(csrf)}<div class="grid">
<label>Name<input name="name" required maxlength="200" placeholder="ci-agent"></label>
<label>Role<select name="role"><option value="agent">agent: the proxy, for its integrations</option><option value="admin">admin: everything</option></select></label>
<label>Integrations <span class="muted">(ids, comma separated; * for all)</span><input name="integrations" value="*"></label>
<label>Expires at <span class="muted">(UTC, optional)</span><input name="expiresAt" type="datetime-local"></label></div>
${opts.rules ? html`<label>Request rules <span class="muted">(JSON list of {integration, methods?, paths?}; empty: any call)</span><textarea name="rules" rows="3" spellcheck="false" placeholder='[{"integration": "github", "methods": ["GET"], "paths": ["/repos/**"]}]'></textarea></label>` : ''}
${opts.rateLimit ? html`<div class="grid"><label>Rate limit: requests<input name="rateRequests" type="number" min="1"></label><label>per seconds<input name="ratePerSeconds" type="number" min="1"></label></div>` : ''}
<button type="submit">Create key</button></form></section>`;
    return page(chrome(req, kit, 'API keys', 'keys'), body);
  };

  app.get('/console/keys', async (req, reply) => sendPage(reply, await keysPage(req, null)));

  app.post<{ Body: URLSearchParams }>('/console/keys', async (req, reply) => {
    const f = req.body;
    const payload: View = { name: f.get('name') ?? '', role: f.get('role') ?? '', integrations: scopeList(f.get('integrations')) };
    const problem = keyExtras(f, payload);
    if (problem) {
      kit.flash(req, { kind: 'error', text: problem });
      return reply.redirect('/console/keys', 303);
    }
    const a = await kit.api(req, 'POST', '/v1/api-keys', payload);
    if (a.status !== 201) {
      kit.flash(req, { kind: 'error', text: kit.problem(a) });
      return reply.redirect('/console/keys', 303);
    }
    // Rendered here, not after a redirect: the key is never kept anywhere to show it again.
    return sendPage(reply, await keysPage(req, a.json as View), 201);
  });

  app.post<{ Params: { keyId: string }; Body: URLSearchParams }>('/console/keys/:keyId', async (req, reply) => {
    const payload: View = {};
    const name = req.body.get('name')?.trim();
    if (name) payload.name = name;
    const problem = keyExtras(req.body, payload);
    const a = problem ? null : await kit.api(req, 'PATCH', `/v1/api-keys/${enc(req.params.keyId)}`, payload);
    kit.flash(req, a && a.status === 200 ? { kind: 'ok', text: `Key ${req.params.keyId} saved.` } : { kind: 'error', text: problem ?? kit.problem(a as never) });
    return reply.redirect('/console/keys', 303);
  });

  app.post<{ Params: { keyId: string } }>('/console/keys/:keyId/revoke', async (req, reply) => {
    const a = await kit.api(req, 'DELETE', `/v1/api-keys/${enc(req.params.keyId)}`);
    kit.flash(req, a.status === 204 ? { kind: 'ok', text: `Key ${req.params.keyId} revoked.` } : { kind: 'error', text: kit.problem(a) });
    return reply.redirect('/console/keys', 303);
  });

  const tokensPage = (req: FastifyRequest, minted: View | null): string => {
    const csrf = (req.consoleSession as Session).csrf;
    const body = html`
${minted ? onceBox('New widget token', String(minted.token), `Valid until ${String(minted.expiresAt)}, and only while your key is. Shown this once.`) : ''}
${kit.ctx.authn.tokens.configured ? '' : html`<p class="flash flash-error" role="alert">Widget tokens are off: start latchkey with LATCHKEY_JWT_SECRET (at least 32 bytes) to mint them.</p>`}
<p class="hint">A widget token lets browser code call the proxy for a few integrations from a few origins (X-Latchkey-Key header), for at most an hour. It never reaches further than the key that minted it.</p>
<section class="card" aria-labelledby="tok-h"><h2 id="tok-h">Mint a widget token</h2>
<form method="post" action="/console/tokens">${csrfField(csrf)}<div class="grid">
<label>Integrations <span class="muted">(ids, comma separated)</span><input name="integrations" required></label>
<label>Time to live, seconds <span class="muted">(at most 3600)</span><input name="ttlSeconds" type="number" min="1" max="3600" value="900"></label></div>
<label>Origins <span class="muted">(one per line, e.g. https://app.example.com)</span><textarea name="origins" rows="2" required></textarea></label>
<button type="submit">Mint token</button></form></section>`;
    return page(chrome(req, kit, 'Widget tokens', 'tokens'), body);
  };

  app.get('/console/tokens', async (req, reply) => sendPage(reply, tokensPage(req, null)));

  app.post<{ Body: URLSearchParams }>('/console/tokens', async (req, reply) => {
    const f = req.body;
    const ttl = Number(f.get('ttlSeconds') || 900);
    const a = await kit.api(req, 'POST', '/v1/tokens', { integrations: scopeList(f.get('integrations')), origins: lines(f.get('origins')), ttlSeconds: ttl });
    if (a.status !== 201) {
      kit.flash(req, { kind: 'error', text: kit.problem(a) });
      return reply.redirect('/console/tokens', 303);
    }
    return sendPage(reply, tokensPage(req, a.json as View), 201);
  });
}
