/** The admin API reference, rendered from the same OpenAPI document as GET /openapi.json. */
import type { FastifyInstance } from 'fastify';
import { html, page, type Html } from './html.js';
import { sendPage, type ConsoleKit } from './server.js';
import { chrome } from './pages-integrations.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function fields(schema: Json | undefined): Html {
  if (!schema) return html``;
  if (schema.$ref) return html`<code>${String(schema.$ref).split('/').pop()}</code>`;
  const required = new Set<string>((schema.required as string[] | undefined) ?? []);
  return html`${Object.entries((schema.properties ?? {}) as Record<string, Json>).map(
    ([name, p]) => html`<code>${name}${required.has(name) ? '' : '?'}</code> <span class="muted">${p.enum ? (p.enum as unknown[]).join(' | ') : Array.isArray(p.type) ? p.type.join(' | ') : (p.type ?? 'any')}</span> `,
  )}`;
}

export function apiPages(app: FastifyInstance, kit: ConsoleKit): void {
  app.get('/console/api', async (req, reply) => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as Json;
    const ops = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
      Object.entries(item as Record<string, Json>).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
    );
    const body = html`<p class="hint">${doc.info?.description ?? ''} Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${doc.openapi}).</p>
<table><thead><tr><th scope="col">Route</th><th scope="col">What</th><th scope="col">Body</th><th scope="col">Answers</th></tr></thead><tbody>
${ops.map(({ path, method, op }) => {
  const media = op.requestBody?.content?.['application/json'];
  const example = media?.example ?? Object.values((media?.examples ?? {}) as Record<string, Json>)[0]?.value;
  return html`<tr><td><code>${method} ${path}</code></td><td>${op.summary}</td>
<td>${fields(media?.schema as Json | undefined)}${example !== undefined ? html`<br><span class="muted">e.g.</span> <code>${JSON.stringify(example)}</code>` : ''}</td>
<td>${Object.entries(op.responses as Record<string, Json>).map(([status, r]) => html`<div><strong>${status}</strong> <span class="muted">${Number(status) >= 400 ? String(r.description).replace('Error codes: ', '') : ''}</span></div>`)}</td></tr>`;
})}</tbody></table>`;
    return sendPage(reply, page(chrome(req, kit, 'Admin API reference', 'api'), body));
  });
}
