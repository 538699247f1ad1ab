/**
 * HTML for the console, from template literals. Every interpolated value is
 * escaped unless it is already Html (built by this same tag), so markup only
 * ever comes from this source code, never from stored data.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export const escapeHtml = (text: string): string => text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);

function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Html(out);
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface PageChrome {
  title: string;
  /** Which nav entry is current. */
  nav: string;
  csrf: string;
  who: string;
  flash?: Flash | null;
}

const NAV: Array<[string, string]> = [
  ['integrations', 'Integrations'],
  ['catalog', 'Catalog'],
  ['keys', 'API keys'],
  ['tokens', 'Widget tokens'],
  ['audit', 'Audit log'],
  ['metrics', 'Metrics'],
  ['ca', 'Local CA'],
  ['api', 'API reference'],
];

export const csrfField = (csrf: string): Html => html`<input type="hidden" name="_csrf" value="${csrf}">`;

export function flashBox(flash: Flash | null | undefined): Html {
  if (!flash) return html``;
  return html`<div class="flash flash-${flash.kind}" role="${flash.kind === 'error' ? 'alert' : 'status'}">${flash.text}</div>`;
}

export function document(title: string, body: Html, header: Html = html``): string {
  return `<!doctype html>${html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · latchkey</title><link rel="icon" href="/console/assets/favicon.svg" type="image/svg+xml"><link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head>
<body>${header}<main id="main" tabindex="-1">${body}</main></body></html>`.value}`;
}

export function page(chrome: PageChrome, body: Html): string {
  const header = html`<a class="skip" href="#main">Skip to content</a><header class="top"><a class="brand" href="/console">latchkey</a>
<nav aria-label="Console"><ul>${NAV.map(
    ([id, label]) => html`<li><a href="/console/${id}"${chrome.nav === id ? html` aria-current="page"` : ''}>${label}</a></li>`,
  )}</ul></nav>
<form method="post" action="/console/sign-out" class="signout">${csrfField(chrome.csrf)}<span class="who">${chrome.who}</span><button type="submit">Sign out</button></form></header>`;
  return document(chrome.title, html`<h1>${chrome.title}</h1>${flashBox(chrome.flash)}${body}`, header);
}

/** A small POST form with one button (delete, revoke): confirmed by console.js when it runs. */
export const actionButton = (action: string, csrf: string, label: string, confirm: string, what?: string): Html =>
  html`<form method="post" action="${action}" class="inline" data-confirm="${confirm}">${csrfField(csrf)}<button type="submit" class="danger"${what ? html` aria-label="${label} ${what}"` : ''}>${label}</button></form>`;

export const when = (iso: string | null | undefined): Html =>
  iso ? html`<time datetime="${iso}">${iso.replace('T', ' ').slice(0, 19)}</time>` : html`<span class="muted">never</span>`;
