/** The provider catalog and its "connect" form (POST /v1/integrations/{provider}/credentials). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { csrfField, html, page } from './html.js';
import { sendPage, type ConsoleKit } from './server.js';
import { chrome } from './pages-integrations.js';
import type { Session } from './sessions.js';

type View = Record<string, unknown>;
const enc = encodeURIComponent;

const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

/** provider -> integrations holding one of its credentials (from the auth records' provider field). */
async function connectedProviders(kit: ConsoleKit, req: FastifyRequest): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const integrations = ((await kit.api(req, 'GET', '/v1/integrations?limit=200')).json?.data ?? []) as View[];
  for (const i of integrations) {
    const id = String(i.integrationId);
    const records = ((await kit.api(req, 'GET', `/v1/integrations/${enc(id)}/auth`)).json?.data ?? []) as View[];
    for (const provider of new Set(records.map((r) => r.provider).filter((p): p is string => typeof p === 'string'))) {
      out.set(provider, [...(out.get(provider) ?? []), id]);
    }
  }
  return out;
}

export function catalogPages(app: FastifyInstance, kit: ConsoleKit): void {
  app.get('/console/catalog', async (req, reply) => {
    const a = await kit.api(req, 'GET', '/v1/catalog?limit=200');
    const rows = (a.json?.data ?? []) as View[];
    const connected = await connectedProviders(kit, req);
    const body = html`<p class="hint">Connect a provider: latchkey creates the integration and its credential, then checks it with the provider's own probe (validated), or stores it unverified when the provider has no probe or cannot be reached.</p>
<table><thead><tr><th scope="col">Provider</th><th scope="col">Base URL</th><th scope="col">Fields</th><th scope="col">Probe</th><th scope="col">Connected as</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead><tbody>
${rows.map(
  (p) => html`<tr><td><strong>${p.displayName}</strong> <code>${p.provider}</code>${p.kind ? html` <span class="badge">${p.kind}</span>` : ''}</td><td><code>${p.baseUrl}</code></td>
<td>${list(p.requiredFields).join(', ')}${list(p.optionalFields).length ? html` <span class="muted">(optional: ${list(p.optionalFields).join(', ')})</span>` : ''}</td>
<td>${p.probe ? html`<span class="badge ok">yes</span>` : html`<span class="muted">none</span>`}</td>
<td>${(connected.get(String(p.provider)) ?? []).map((id) => html`<a href="/console/integrations/${enc(id)}">${id}</a> `)}</td>
<td><a class="button" href="/console/catalog/${enc(String(p.provider))}">Connect</a></td></tr>`,
)}</tbody></table>`;
    return sendPage(reply, page(chrome(req, kit, 'Provider catalog', 'catalog'), body));
  });

  app.get<{ Params: { provider: string } }>('/console/catalog/:provider', async (req, reply) => {
    const a = await kit.api(req, 'GET', `/v1/catalog/${enc(req.params.provider)}`);
    if (a.status !== 200) {
      kit.flash(req, { kind: 'error', text: kit.problem(a) });
      return reply.redirect('/console/catalog', 303);
    }
    const p = a.json as View;
    const urlFields = new Set(list(p.urlFields));
    const field = (name: string, required: boolean) =>
      html`<label for="c-${name}">${name}${required ? '' : html` <span class="muted">(optional)</span>`}</label>
<input id="c-${name}" name="c.${name}" type="${urlFields.has(name) ? 'text' : 'password'}" autocomplete="${urlFields.has(name) ? 'off' : 'new-password'}" spellcheck="false"${required ? html` required` : ''}>`;
    const body = html`<section class="card"><p>Base URL <code>${p.baseUrl}</code>; sends credentials only to ${list(p.allowedHosts).join(', ')}.
${p.docs ? html` Provider documentation: <code>${p.docs}</code>.` : ''}</p>
<form method="post" action="/console/catalog/${enc(String(p.provider))}">${csrfField((req.consoleSession as Session).csrf)}
${list(p.requiredFields).map((f) => field(f, true))}${list(p.optionalFields).map((f) => field(f, false))}
<div class="grid"><label>Label <span class="muted">(optional, e.g. prod)</span><input name="label"></label>
<label>Integration id <span class="muted">(optional; default ${p.provider})</span><input name="integrationId"></label></div>
<button type="submit">Connect ${p.displayName}</button></form></section>`;
    return sendPage(reply, page(chrome(req, kit, `Connect ${String(p.displayName)}`, 'catalog'), body));
  });

  app.post<{ Params: { provider: string }; Body: URLSearchParams }>('/console/catalog/:provider', async (req, reply) => {
    const credentials: Record<string, string> = {};
    for (const [k, v] of req.body) if (k.startsWith('c.') && v !== '') credentials[k.slice(2)] = v;
    const payload: View = { credentials };
    const label = req.body.get('label')?.trim();
    const integrationId = req.body.get('integrationId')?.trim();
    if (label) payload.label = label;
    if (integrationId) payload.integrationId = integrationId;
    const a = await kit.api(req, 'POST', `/v1/integrations/${enc(req.params.provider)}/credentials`, payload);
    if (a.status !== 201) {
      kit.flash(req, { kind: 'error', text: kit.problem(a) });
      return reply.redirect(`/console/catalog/${enc(req.params.provider)}`, 303);
    }
    const status = String(a.json.status);
    kit.flash(req, {
      kind: 'ok',
      text: `Connected ${req.params.provider} as integration ${String(a.json.integrationId)}: ${status === 'validated' ? 'validated by the provider' : 'stored unverified (no probe, or the provider could not be reached)'}.`,
    });
    return reply.redirect(`/console/integrations/${enc(String(a.json.integrationId))}`, 303);
  });
}
