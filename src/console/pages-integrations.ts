/** Integrations and their auth records: list, create, edit, rotate, delete. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { actionButton, csrfField, html, page, when, type Html } from './html.js';
import { AUTH_FORMS, consoleAuthTypes, setAt, valueAt, type AuthField } from './auth-fields.js';
import { sendPage, type ApiAnswer, type ConsoleKit } from './server.js';
import type { Session } from './sessions.js';

type Form = URLSearchParams;
type View = Record<string, unknown>;
const enc = encodeURIComponent;

export const lines = (text: string | null): string[] =>
  (text ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);

/** "Name: value" per line. A line without a colon is sent as a name with an empty value, and the API judges it. */
export function parseHeaderLines(text: string | null): Array<{ key: string; value: string }> {
  return lines(text).map((l) => {
    const i = l.indexOf(':');
    return i < 0 ? { key: l, value: '' } : { key: l.slice(0, i).trim(), value: l.slice(i + 1).trim() };
  });
}

const headerText = (headers: unknown): string =>
  Array.isArray(headers) ? (headers as Array<{ key: string; value: string }>).map((h) => `${h.key}: ${h.value}`).join('\n') : '';

export function chrome(req: FastifyRequest, kit: ConsoleKit, title: string, nav: string) {
  const s = req.consoleSession as Session;
  return { title, nav, csrf: s.csrf, who: s.name, flash: kit.takeFlash(req) };
}

function integrationFields(i: View | null): Html {
  return html`
<div class="grid">
${i ? '' : html`<label>Integration id <span class="muted">(optional)</span><input name="integrationId" pattern="[A-Za-z0-9][A-Za-z0-9_\\-]{0,63}" placeholder="github"></label>`}
<label>Name<input name="name" value="${i?.name ?? ''}" placeholder="GitHub"></label>
<label>Base URL<input name="baseUrl" type="url" required value="${i?.baseUrl ?? ''}" placeholder="https://api.github.com"></label>
</div>
<label>Allowed hosts <span class="muted">(one per line; empty: the base URL's host; *.example.com for subdomains)</span>
<textarea name="allowedHosts" rows="3">${Array.isArray(i?.allowedHosts) ? (i?.allowedHosts as string[]).join('\n') : ''}</textarea></label>
<label>Static headers <span class="muted">(one "Name: value" per line)</span>
<textarea name="headers" rows="3" placeholder="X-GitHub-Api-Version: 2022-11-28">${headerText(i?.headers)}</textarea></label>`;
}

function integrationBody(form: Form, creating: boolean): View {
  const body: View = { headers: parseHeaderLines(form.get('headers')) };
  const id = form.get('integrationId')?.trim();
  if (creating && id) body.integrationId = id;
  const name = form.get('name')?.trim();
  if (name) body.name = name;
  body.baseUrl = form.get('baseUrl')?.trim() ?? '';
  const hosts = lines(form.get('allowedHosts'));
  body.allowedHosts = hosts.length > 0 ? hosts : null;
  return body;
}

/** One field of an auth form. Secret inputs are write-only: never pre-filled, never echoed. */
function fieldInput(prefix: string, f: AuthField, view: View | null): Html {
  const name = `${prefix}${f.path}`;
  const id = name.replace(/[^A-Za-z0-9_-]/g, '-');
  const current = view && !f.secret ? valueAt(view, f.path) : undefined;
  const hint = f.hint ? html` <span class="muted">${f.hint}</span>` : '';
  if (f.options) {
    return html`<label for="${id}">${f.label}${hint}</label><select id="${id}" name="${name}">${f.options.map(
      (o) => html`<option${current === o ? html` selected` : ''}>${o}</option>`,
    )}</select>`;
  }
  const placeholder = view && f.secret ? 'unchanged (write-only)' : '';
  if (f.input) {
    const text = current === undefined ? '' : Array.isArray(current) ? current.join('\n') : String(current);
    return html`<label for="${id}">${f.label}${hint}</label><textarea id="${id}" name="${name}" rows="${f.input === 'list' ? 2 : 4}" spellcheck="false" autocomplete="off" placeholder="${placeholder}">${text}</textarea>`;
  }
  return html`<label for="${id}">${f.label}${hint}</label><input id="${id}" name="${name}" type="${f.secret ? 'password' : 'text'}" autocomplete="${f.secret ? 'new-password' : 'off'}" spellcheck="false" placeholder="${placeholder}" value="${current === undefined ? '' : String(current)}">`;
}

const JSON_FIELD = '__json';

function typeFields(prefix: string, type: string, view: View | null): Html {
  const fields = AUTH_FORMS[type];
  if (fields) return html`${fields.map((f) => fieldInput(prefix, f, view))}`;
  return html`<label for="${prefix}json">Credential fields as JSON <span class="muted">(write-only; see docs/auth-types.md)</span></label>
<textarea id="${prefix}json" name="${prefix}${JSON_FIELD}" rows="4" spellcheck="false" autocomplete="off" placeholder='{"…": "…"}'></textarea>`;
}

/** A form field's text as the API's value; an Error names what is wrong with it. */
function fieldValue(f: AuthField, text: string): unknown {
  if (f.input === 'list') {
    return text
      .split(/[\n,]/)
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
  }
  if (f.input === 'json') {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed;
    } catch {
      // reported below
    }
    return new Error(`${f.label}: must be a JSON object`);
  }
  return text;
}

/** Builds the admin API body of one auth type from a form. On rotation, an empty secret field means "unchanged". */
export function authBody(form: Form, prefix: string, type: string, rotating: boolean): View | string {
  const body: View = {};
  const fields = AUTH_FORMS[type];
  if (fields) {
    for (const f of fields) {
      const value = form.get(`${prefix}${f.path}`);
      if (value === null || (rotating && (value === '' || !(f.secret || f.editable)))) continue;
      if (value === '' && f.optional) continue;
      const parsed = fieldValue(f, value);
      if (parsed instanceof Error) return parsed.message;
      setAt(body, f.path, parsed);
    }
  } else {
    const text = form.get(`${prefix}${JSON_FIELD}`)?.trim();
    if (text) {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return 'the credential fields must be a JSON object';
        Object.assign(body, parsed);
      } catch {
        return 'the credential fields are not valid JSON';
      }
    }
  }
  if (form.has('headers')) body.headers = parseHeaderLines(form.get('headers'));
  return body;
}

function recordCard(integrationId: string, r: View, csrf: string): Html {
  const type = String(r.authType);
  const action = `/console/integrations/${enc(integrationId)}/auth/${enc(String(r.authId))}`;
  const editable = !r.provider;
  const shown = (AUTH_FORMS[type] ?? []).filter((f) => !f.secret).map((f) => html`<dt>${f.label}</dt><dd>${String(valueAt(r, f.path) ?? '')}</dd>`);
  return html`<article class="card record" aria-labelledby="rec-${r.authId}">
<h3 id="rec-${r.authId}"><code>${r.authId}</code> <span class="badge">${type}</span>${r.provider ? html` <span class="badge">${r.provider}${r.label ? ` · ${r.label}` : ''}</span>` : ''}</h3>
<dl class="facts">${shown}<dt>Created</dt><dd>${when(r.createdAt as string)}</dd><dt>Updated</dt><dd>${when(r.updatedAt as string)}</dd></dl>
<details><summary>Rotate or edit</summary>
<form method="post" action="${action}">${csrfField(csrf)}
${editable ? typeFields('', type, r) : html`<p class="hint">Catalog credentials are rotated by connecting the provider again (Catalog page), then deleting this record.</p>`}
<label>Static headers <span class="muted">(one "Name: value" per line)</span><textarea name="headers" rows="2">${headerText(r.headers)}</textarea></label>
<button type="submit">Save</button></form></details>
${actionButton(`${action}/delete`, csrf, 'Delete record', `Delete auth record ${String(r.authId)}?`, String(r.authId))}
</article>`;
}

export function integrationPages(app: FastifyInstance, kit: ConsoleKit): void {
  const back = (reply: FastifyReply, to: string) => reply.redirect(to, 303);
  /** The outcome of an admin API call, as the next page's message. */
  const report = (req: FastifyRequest, a: ApiAnswer, okText: string): boolean => {
    const ok = a.status < 300;
    kit.flash(req, ok ? { kind: 'ok', text: okText } : { kind: 'error', text: kit.problem(a) });
    return ok;
  };

  app.get('/console/integrations', async (req, reply) => {
    const list = await kit.api(req, 'GET', '/v1/integrations?limit=200');
    const rows = (list.json?.data ?? []) as View[];
    const body = html`
<section aria-labelledby="list-h"><h2 id="list-h">Integrations</h2>
${rows.length === 0 ? html`<p class="muted">No integration yet. Create one below, or connect a provider from the <a href="/console/catalog">catalog</a>.</p>` : html`
<table><thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Base URL</th><th scope="col">Allowed hosts</th><th scope="col">Updated</th></tr></thead><tbody>
${rows.map((i) => html`<tr><td><a href="/console/integrations/${enc(String(i.integrationId))}">${i.integrationId}</a></td><td>${i.name}</td><td><code>${i.baseUrl}</code></td><td>${(i.allowedHosts as string[]).join(', ')}</td><td>${when(i.updatedAt as string)}</td></tr>`)}
</tbody></table>`}
${list.json?.nextCursor ? html`<p class="muted">Showing the first 200.</p>` : ''}</section>
<section aria-labelledby="new-h" class="card"><h2 id="new-h">New integration</h2>
<form method="post" action="/console/integrations">${csrfField((req.consoleSession as Session).csrf)}${integrationFields(null)}<button type="submit">Create integration</button></form></section>`;
    return sendPage(reply, page(chrome(req, kit, 'Integrations', 'integrations'), body));
  });

  app.post<{ Body: Form }>('/console/integrations', async (req, reply) => {
    const a = await kit.api(req, 'POST', '/v1/integrations', integrationBody(req.body, true));
    if (!report(req, a, `Integration ${String(a.json?.integrationId)} created.`)) return back(reply, '/console/integrations');
    return back(reply, `/console/integrations/${enc(String(a.json.integrationId))}`);
  });

  app.get<{ Params: { id: string } }>('/console/integrations/:id', async (req, reply) => {
    const id = req.params.id;
    const got = await kit.api(req, 'GET', `/v1/integrations/${enc(id)}`);
    if (got.status !== 200) {
      kit.flash(req, { kind: 'error', text: kit.problem(got) });
      return back(reply, '/console/integrations');
    }
    const i = got.json as View;
    const records = ((await kit.api(req, 'GET', `/v1/integrations/${enc(id)}/auth`)).json?.data ?? []) as View[];
    const csrf = (req.consoleSession as Session).csrf;
    const types = consoleAuthTypes();
    const body = html`
<p class="muted">Proxy: <code>http://PROXY_ADDR/${id}/…</code> (path mode), or header <code>X-Latchkey-Integration: ${id}</code>. See docs/tagging.md.</p>
<section class="card" aria-labelledby="edit-h"><h2 id="edit-h">Settings</h2>
<form method="post" action="/console/integrations/${enc(id)}">${csrfField(csrf)}${integrationFields(i)}<button type="submit">Save changes</button></form>
${actionButton(`/console/integrations/${enc(id)}/delete`, csrf, 'Delete integration', `Delete integration ${id} and all its auth records?`)}</section>
<section aria-labelledby="auth-h"><h2 id="auth-h">Auth records</h2>
<p class="hint">The most recently created record is used unless a call names one with X-Latchkey-Auth-Id. Rotation: create the new record, then delete the old one, or save a new secret on the record. Secret fields are write-only.</p>
${records.length === 0 ? html`<p class="muted">No auth record: calls to this integration are refused (NO_AUTH_RECORD) until one exists.</p>` : records.map((r) => recordCard(id, r, csrf))}
</section>
<section class="card" aria-labelledby="newauth-h"><h2 id="newauth-h">New auth record</h2>
<form method="post" action="/console/integrations/${enc(id)}/auth" class="authform">${csrfField(csrf)}
<label for="authType">Auth type</label><select id="authType" name="authType" data-switch="authtype">${types.map((t) => html`<option${t === 'BEARER_TOKEN' ? html` selected` : ''}>${t}</option>`)}</select>
${types.map((t) => html`<fieldset data-authtype="${t}"><legend>${t}</legend>${typeFields(`f.${t}.`, t, null)}</fieldset>`)}
<label>Static headers <span class="muted">(one "Name: value" per line)</span><textarea name="headers" rows="2"></textarea></label>
<button type="submit">Create auth record</button></form></section>`;
    return sendPage(reply, page(chrome(req, kit, `Integration ${String(i.name)}`, 'integrations'), body));
  });

  app.post<{ Params: { id: string }; Body: Form }>('/console/integrations/:id', async (req, reply) => {
    const a = await kit.api(req, 'PATCH', `/v1/integrations/${enc(req.params.id)}`, integrationBody(req.body, false));
    report(req, a, 'Saved.');
    return back(reply, `/console/integrations/${enc(req.params.id)}`);
  });

  app.post<{ Params: { id: string } }>('/console/integrations/:id/delete', async (req, reply) => {
    const a = await kit.api(req, 'DELETE', `/v1/integrations/${enc(req.params.id)}`);
    report(req, a, `Integration ${req.params.id} deleted.`);
    return back(reply, '/console/integrations');
  });

  app.post<{ Params: { id: string }; Body: Form }>('/console/integrations/:id/auth', async (req, reply) => {
    const type = req.body.get('authType') ?? '';
    const to = `/console/integrations/${enc(req.params.id)}`;
    const body = authBody(req.body, `f.${type}.`, type, false);
    if (typeof body === 'string') {
      kit.flash(req, { kind: 'error', text: body });
      return back(reply, to);
    }
    const a = await kit.api(req, 'POST', `/v1/integrations/${enc(req.params.id)}/auth`, { authType: type, ...body });
    report(req, a, `Auth record ${String(a.json?.authId)} created.`);
    return back(reply, to);
  });

  app.post<{ Params: { id: string; authId: string }; Body: Form }>('/console/integrations/:id/auth/:authId', async (req, reply) => {
    const { id, authId } = req.params;
    const to = `/console/integrations/${enc(id)}`;
    const current = await kit.api(req, 'GET', `/v1/integrations/${enc(id)}/auth/${enc(authId)}`);
    if (current.status !== 200) {
      kit.flash(req, { kind: 'error', text: kit.problem(current) });
      return back(reply, to);
    }
    const rec = current.json as View;
    const body = rec.provider ? { headers: parseHeaderLines(req.body.get('headers')) } : authBody(req.body, '', String(rec.authType), true);
    if (typeof body === 'string') {
      kit.flash(req, { kind: 'error', text: body });
      return back(reply, to);
    }
    const a = await kit.api(req, 'PATCH', `/v1/integrations/${enc(id)}/auth/${enc(authId)}`, body);
    report(req, a, `Auth record ${authId} saved.`);
    return back(reply, to);
  });

  app.post<{ Params: { id: string; authId: string } }>('/console/integrations/:id/auth/:authId/delete', async (req, reply) => {
    const { id, authId } = req.params;
    const a = await kit.api(req, 'DELETE', `/v1/integrations/${enc(id)}/auth/${enc(authId)}`);
    report(req, a, `Auth record ${authId} deleted.`);
    return back(reply, `/console/integrations/${enc(id)}`);
  });
}
