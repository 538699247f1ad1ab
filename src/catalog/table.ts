import type { ProviderEntry } from './catalog.js';

/** Where each field goes, in words: "header DD-API-KEY", "query key", "Basic password". */
function placements(p: ProviderEntry): string {
  if (p.kind === 'oauth2') return `OAuth 2 access token (connect flow${p.oauth2?.clientCredentials ? ', or client id and secret: client credentials' : ''})`;
  const out: string[] = [];
  if (p.sign?.aws) out.push('AWS Signature V4');
  if (p.sign?.hmac) {
    const t = p.sign.hmac;
    const where = (w: { header?: string; query?: string }) => (w.header ? `header \`${w.header}\`` : `query \`${w.query}\``);
    out.push(`HMAC-${t.algorithm.toUpperCase()} in ${where(t.signature)}`);
  }
  const inject = p.inject ?? {};
  for (const name of Object.keys(inject.headers ?? {})) out.push(`header \`${name}\``);
  for (const name of Object.keys(inject.query ?? {})) out.push(`query \`${name}\``);
  if (inject.basic) out.push('Basic auth');
  return out.join(', ');
}

const fieldList = (p: ProviderEntry): string =>
  [...p.requiredFields.map((f) => `\`${f}\``), ...p.optionalFields.map((f) => `\`${f}\` (optional)`)].join(', ');

/** The README's catalog table, generated from the catalog (`latchkey catalog`). */
export function catalogTable(entries: ProviderEntry[]): string {
  const rows = entries.map(
    (p) =>
      `| \`${p.provider}\` | ${p.displayName} | \`${p.baseUrl}\` | ${fieldList(p)} | ${placements(p)} | ${
        p.probe ? `\`${p.probe.method} ${p.probe.path}\`` : '-'
      } |`,
  );
  return ['| provider | name | base URL | fields | injected as | probe |', '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}
