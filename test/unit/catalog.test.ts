import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtInCatalogPath, buildCatalog, providerProblems, type ProviderEntry } from '../../src/catalog/catalog.js';
import { placeholders } from '../../src/credentials/template.js';
import { runCli } from '../helpers/child.js';
import { tmpDir } from '../helpers/tmp.js';

const builtIn = JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[];

const REQUIRED = [
  'github', 'gitlab', 'openai', 'anthropic', 'mistral', 'groq', 'stripe', 'slack', 'datadog', 'sentry', 'pagerduty',
  'linear', 'notion', 'airtable', 'hubspot', 'sendgrid', 'mailgun', 'twilio', 'jira-cloud', 'cloudflare', 'vercel',
  'algolia', 'google-maps', 'shopify-admin', 'postmark',
];

describe('the built-in catalog', () => {
  it('has at least 25 providers, the required ones among them, each id once', () => {
    const ids = builtIn.map((p) => p.provider);
    expect(ids.length).toBeGreaterThanOrEqual(25);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of REQUIRED) expect(ids).toContain(id);
  });

  it('every entry validates against the schema and its own field lists', () => {
    builtIn.forEach((entry, i) => expect(providerProblems(entry, `[${i}]`), entry.provider).toEqual([]));
    expect(Array.isArray(buildCatalog([]))).toBe(false);
  });

  it('every entry has a kind; signing ones sign, the others inject', () => {
    for (const p of builtIn) {
      expect(['api_key', 'signing', 'oauth2'], p.provider).toContain(p.kind);
      expect(p.kind === 'signing' ? p.sign : p.kind === 'oauth2' ? p.oauth2 : p.inject, p.provider).toBeTruthy();
    }
    const signing = builtIn.filter((p) => p.kind === 'signing').map((p) => p.provider);
    expect(signing.sort()).toEqual(['aws', 'binance', 'coinbase-exchange', 'kraken', 'okx']);
  });

  it('every template references only declared fields', () => {
    for (const p of builtIn.filter((e) => e.kind === 'api_key')) {
      const declared = new Set([...p.requiredFields, ...p.optionalFields]);
      const inject = p.inject ?? {};
      const templates = [
        ...Object.values(inject.headers ?? {}),
        ...Object.values(inject.query ?? {}),
        ...(inject.basic ? [inject.basic.username, inject.basic.password] : []),
        p.probe?.path ?? '',
      ];
      for (const t of templates) for (const f of placeholders(t)) expect(declared.has(f), `${p.provider}: {{${f}}}`).toBe(true);
      for (const t of [p.baseUrl, ...p.allowedHosts]) for (const f of placeholders(t)) expect(p.urlFields ?? []).toContain(f);
      // Each provider injects something, and has a probe.
      expect(templates.some((t) => placeholders(t).length > 0), p.provider).toBe(true);
      expect(p.probe, p.provider).toBeTruthy();
    }
  });
});

describe('broken catalog entries are refused', () => {
  const good = builtIn.find((p) => p.provider === 'datadog') as ProviderEntry;
  it.each([
    [{ ...good, inject: { headers: { 'DD-API-KEY': '{{apikey}}' } } }, /\{\{apikey\}\} is not a declared field/],
    [{ ...good, inject: { headers: { 'Bad Header': '{{api_key}}' } } }, /inject\.headers/],
    [{ ...good, inject: { headers: { Host: '{{api_key}}' } } }, /cannot be set/],
    [{ ...good, provider: 'Data Dog' }, /provider/],
    [{ ...good, baseUrl: 'https://{{region}}.datadoghq.com' }, /not a declared url field/],
    [{ ...good, allowedHosts: ['elsewhere.example.com'] }, /must include the host of baseUrl/],
    [{ ...good, headers: { 'X-Key': '{{api_key}}' } }, /fixed headers hold no fields/],
    [{ ...good, surprise: true }, /surprise/],
  ])('%#: %s', (entry, problem) => {
    expect(providerProblems(entry, 'providers[0]').join('\n')).toMatch(problem);
  });

  it('check-config names the broken provider in the config file', async () => {
    const dir = tmpDir();
    const cfg = join(dir.path, 'config.json');
    writeFileSync(cfg, JSON.stringify({ providers: [{ ...good, inject: { query: { key: '{{nope}}' } } }] }));
    const res = await runCli(['check-config'], { LATCHKEY_CONFIG: cfg });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/providers\[0\]\.inject\.query\.key: \{\{nope\}\} is not a declared field/);
    dir.cleanup();
  });
});

describe('the README', () => {
  it('carries the table `latchkey catalog` prints', async () => {
    const { catalogTable } = await import('../../src/catalog/table.js');
    const catalog = buildCatalog([]);
    if (Array.isArray(catalog)) throw new Error(catalog.join('\n'));
    const readme = readFileSync(join(builtInCatalogPath(), '..', '..', 'README.md'), 'utf8');
    const inReadme = /<!-- catalog:start -->\n([\s\S]*?)\n<!-- catalog:end -->/.exec(readme)?.[1];
    expect(inReadme).toBe(catalogTable(catalog.list()));
  });
});
