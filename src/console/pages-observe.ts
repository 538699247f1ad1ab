/** The audit log (filters, paging, live tail) and call metrics drawn as inline SVG. */
import type { FastifyInstance } from 'fastify';
import { html, page, when, type Html } from './html.js';
import { sendPage, type ConsoleKit } from './server.js';
import { chrome } from './pages-integrations.js';
import type { IntegrationCalls } from '../metrics.js';

type View = Record<string, unknown>;

interface AuditQuery {
  integrationId?: string;
  since?: string;
  limit?: string;
  cursor?: string;
}

/** The admin API's query string from the page's filters (empty ones dropped; since as UTC). */
function auditUrl(q: AuditQuery): string {
  const p = new URLSearchParams();
  if (q.integrationId) p.set('integrationId', q.integrationId);
  if (q.since) p.set('since', /Z$|[+-]\d\d:\d\d$/.test(q.since) ? q.since : `${q.since}Z`);
  p.set('limit', q.limit && /^\d{1,3}$/.test(q.limit) ? q.limit : '100');
  if (q.cursor) p.set('cursor', q.cursor);
  return `/v1/audit?${p.toString()}`;
}

const statusClassName = (s: unknown): string =>
  typeof s !== 'number' ? '' : s >= 500 ? 's5' : s >= 400 ? 's4' : s >= 300 ? 's3' : 's2';

export const auditRow = (r: View, names: Map<string, string>): Html =>
  html`<tr data-row="${`${String(r.time)}|${String(r.requestId)}|${String(r.action)}`}"><td>${when(r.time as string)}</td><td>${r.action}</td><td>${r.integrationId ?? ''}</td><td>${r.keyId ? html`<span title="${r.keyId}">${names.get(String(r.keyId)) ?? r.keyId}</span>` : ''}</td><td>${r.method ?? ''}</td>
<td>${r.host ?? ''}</td><td><code>${r.path ?? ''}</code></td><td class="${statusClassName(r.status)}">${r.status ?? ''}</td><td class="num">${r.durationMs ?? ''}</td></tr>`;

const ms = (seconds: number | null): string =>
  seconds === null ? '–' : seconds < 1 ? `${Math.round(seconds * 1000 * 10) / 10} ms` : `${Math.round(seconds * 100) / 100} s`;
const pct = (r: number): string => `${Math.round(r * 1000) / 10}%`;

/** Error rate per integration: one horizontal bar each. */
function errorRateChart(rows: IntegrationCalls[]): Html {
  const h = 26;
  const width = 520;
  const label = 150;
  return html`<svg class="chart" role="img" aria-labelledby="er-t" viewBox="0 0 ${width} ${rows.length * h + 10}" width="${width}" height="${rows.length * h + 10}">
<title id="er-t">Error rate (4xx and 5xx answers) per integration</title>
${rows.map((r, i) => {
  const w = Math.max(r.errorRate > 0 ? 2 : 0, Math.round(r.errorRate * (width - label - 70)));
  return html`<text x="0" y="${i * h + 18}" class="lbl">${r.integration.slice(0, 22)}</text>
<rect x="${label}" y="${i * h + 5}" width="${width - label - 70}" height="16" class="track"/>
<rect x="${label}" y="${i * h + 5}" width="${w}" height="16" class="${r.errorRate > 0.05 ? 'bad' : 'bar'}"/>
<text x="${width - 62}" y="${i * h + 18}" class="val">${pct(r.errorRate)}</text>`;
})}</svg>`;
}

/** One integration's upstream latency: a column per histogram bucket, with p50/p90/p99 printed. */
function latencyChart(r: IntegrationCalls): Html {
  const { counts, bounds } = r.latency;
  const width = 660;
  const height = 140;
  const n = bounds.length;
  const colW = (width - 20) / Math.max(n, 1);
  const max = Math.max(1, ...counts);
  return html`<svg class="chart" role="img" aria-labelledby="lat-${r.integration}" viewBox="0 0 ${width} ${height + 34}" width="${width}" height="${height + 34}">
<title id="lat-${r.integration}">Upstream latency of ${r.integration}: p50 ${ms(r.latency.p50)}, p90 ${ms(r.latency.p90)}, p99 ${ms(r.latency.p99)}</title>
${counts.map((c, i) => {
  const barH = Math.round((c / max) * height);
  return html`<rect x="${10 + i * colW + 2}" y="${height - barH}" width="${Math.max(1, colW - 4)}" height="${barH}" class="bar"><title>≤ ${ms(bounds[i] ?? 0)}: ${c} calls</title></rect>
<text x="${10 + i * colW + colW / 2}" y="${height + 14}" class="tick">${ms(bounds[i] ?? 0).replace(' ', '')}</text>`;
})}
<line x1="10" y1="${height}" x2="${width - 10}" y2="${height}" class="axis"/>
<text x="10" y="${height + 30}" class="lbl">calls per latency bucket (upper bound)</text></svg>`;
}

function statusBar(r: IntegrationCalls): Html {
  const width = 660;
  let x = 0;
  const parts = ['2xx', '3xx', '4xx', '5xx'].map((cls) => {
    const c = r.byClass[cls] ?? 0;
    const w = r.total === 0 ? 0 : (c / r.total) * width;
    const part = html`<rect x="${x}" y="0" width="${w}" height="18" class="c${cls[0]}"><title>${cls}: ${c}</title></rect>`;
    x += w;
    return part;
  });
  const legend = ['2xx', '3xx', '4xx', '5xx'].map((cls) => html`<span class="key k${cls[0]}">${cls} ${r.byClass[cls] ?? 0}</span>`);
  return html`<svg class="chart" role="img" aria-label="Answers of ${r.integration} by status class" viewBox="0 0 ${width} 18" width="${width}" height="18">${parts}</svg><p class="legend">${legend}</p>`;
}

export function observePages(app: FastifyInstance, kit: ConsoleKit): void {
  app.get<{ Querystring: AuditQuery }>('/console/audit', async (req, reply) => {
    const q = req.query;
    const a = await kit.api(req, 'GET', auditUrl(q));
    const integrations = ((await kit.api(req, 'GET', '/v1/integrations?limit=200')).json?.data ?? []) as View[];
    const rows = (a.json?.data ?? []) as View[];
    // Key names for people; the id stays in the title (revoked keys show their id).
    const keys = ((await kit.api(req, 'GET', '/v1/api-keys?limit=200')).json?.data ?? []) as View[];
    const names = new Map(keys.map((k) => [String(k.keyId), String(k.name)]));
    const next = a.json?.nextCursor as string | null | undefined;
    const older = next ? `/console/audit?${new URLSearchParams({ ...(q.integrationId ? { integrationId: q.integrationId } : {}), ...(q.since ? { since: q.since } : {}), cursor: next }).toString()}` : null;
    const body = html`
${a.status === 200 ? '' : html`<p class="flash flash-error" role="alert">${kit.problem(a)}</p>`}
<form method="get" action="/console/audit" class="filters card"><div class="grid">
<label>Integration<select name="integrationId"><option value="">all</option>${integrations.map((i) => html`<option${q.integrationId === i.integrationId ? html` selected` : ''}>${i.integrationId}</option>`)}</select></label>
<label>Since <span class="muted">(UTC)</span><input name="since" type="datetime-local" step="1" value="${q.since ?? ''}"></label>
<label>Rows<input name="limit" type="number" min="1" max="200" value="${q.limit ?? '100'}"></label></div>
<button type="submit">Filter</button>
<label class="check"><input type="checkbox" id="live" data-tail="/console/audit.json?${new URLSearchParams(q.integrationId ? { integrationId: q.integrationId } : {}).toString()}"> Live tail (new rows appear at the top)</label>
<span id="tail-status" class="muted" role="status" aria-live="polite"></span></form>
<table id="audit"><caption class="sr-only">Audit log, newest first</caption><thead><tr><th scope="col">Time</th><th scope="col">Action</th><th scope="col">Integration</th><th scope="col">Key</th><th scope="col">Method</th><th scope="col">Host</th><th scope="col">Path</th><th scope="col">Status</th><th scope="col">ms</th></tr></thead>
<tbody>${rows.map((r) => auditRow(r, names))}</tbody></table>
${rows.length === 0 ? html`<p class="muted">No rows.</p>` : ''}${older ? html`<p><a href="${older}">Older rows →</a></p>` : ''}`;
    return sendPage(reply, page(chrome(req, kit, 'Audit log', 'audit'), body));
  });

  // What the live tail polls: the admin API's own answer, nothing added.
  app.get<{ Querystring: AuditQuery }>('/console/audit.json', async (req, reply) => {
    const a = await kit.api(req, 'GET', auditUrl({ ...req.query, limit: '50' }));
    return reply.code(a.status).send(a.json);
  });

  app.get('/console/metrics', async (req, reply) => {
    const rows = kit.ctx.metrics.callSummary();
    const body = html`<p class="hint">Since this process started (the same counters as <a href="/metrics">/metrics</a>). Latency: from receiving a call to the end of its upstream response; percentiles interpolated within histogram buckets.</p>
${rows.length === 0 ? html`<p class="muted">No proxied call yet.</p>` : html`
<section class="card" aria-labelledby="er-h"><h2 id="er-h">Error rate per integration</h2>${errorRateChart(rows)}</section>
<table><thead><tr><th scope="col">Integration</th><th scope="col" class="num">Calls</th><th scope="col" class="num">2xx</th><th scope="col" class="num">3xx</th><th scope="col" class="num">4xx</th><th scope="col" class="num">5xx</th><th scope="col" class="num">Errors</th><th scope="col" class="num">p50</th><th scope="col" class="num">p90</th><th scope="col" class="num">p99</th></tr></thead><tbody>
${rows.map((r) => html`<tr><td>${r.integration}</td><td class="num">${r.total}</td>${['2xx', '3xx', '4xx', '5xx'].map((c) => html`<td class="num">${r.byClass[c] ?? 0}</td>`)}<td class="num">${pct(r.errorRate)}</td><td class="num">${ms(r.latency.p50)}</td><td class="num">${ms(r.latency.p90)}</td><td class="num">${ms(r.latency.p99)}</td></tr>`)}
</tbody></table>
${rows.map((r) => html`<section class="card" aria-labelledby="m-${r.integration}"><h2 id="m-${r.integration}">${r.integration}</h2>
<p>${r.total} ${r.total === 1 ? 'call' : 'calls'} · errors ${pct(r.errorRate)} · p50 ${ms(r.latency.p50)} · p90 ${ms(r.latency.p90)} · p99 ${ms(r.latency.p99)}</p>
${statusBar(r)}${r.latency.count > 0 ? latencyChart(r) : html`<p class="muted">No forwarded call (every call was answered by latchkey itself).</p>`}</section>`)}`}`;
    return sendPage(reply, page(chrome(req, kit, 'Call metrics', 'metrics'), body));
  });
}
