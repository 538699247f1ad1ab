/**
 * The console in a real headless Chromium (Debian's chromium, driven by
 * playwright-core): sign-in, an integration and a bearer record, a proxied
 * call in the audit view (and its live tail), an API key created, used and
 * revoked, sign-out. Screenshots go to test-artifacts/ (ignored by git).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call } from '../helpers/http.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const TOKEN = 'tok_BROWSERLEAK_5c1d9e7f3a2b';
const BASIC_PASSWORD = 'pw_BROWSERLEAK_0f9e8d7c';

let lk: TestLatchkey;
let up: Upstream;
let context: BrowserContext;
let page: Page;
let profile: string;
const problems: string[] = [];
/** Every HTML page and every response body the browser received from latchkey. */
const bodies: string[] = [];

beforeAll(async () => {
  lk = await startLatchkey({ LATCHKEY_JWT_SECRET: 'j'.repeat(40) });
  up = await startUpstream();
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), 'latchkey-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 860 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: lk.adminUrl });
  // Runs before any page script; CSP does not apply to it. Reports violations the page would otherwise swallow.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => void d.accept());
  page.on('request', (r) => {
    if (!r.url().startsWith(lk.adminUrl)) problems.push(`request outside latchkey: ${r.url()}`);
  });
  page.on('response', async (r) => {
    try {
      bodies.push(await r.text());
    } catch {
      // redirects have no body
    }
  });
}, 60_000);

afterAll(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
  await lk?.close();
  await up?.close();
});

/** Each screenshot also checks the page's form controls all have a label (accessible names). */
async function shot(name: string): Promise<void> {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
      .filter((el) => {
        const labels = (el as HTMLInputElement).labels;
        const named = (labels && labels.length > 0) || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent?.trim());
        return !named;
      })
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  expect(unlabelled, `unlabelled controls on ${name}`).toEqual([]);
  await page.screenshot({ path: join(ARTIFACTS, `console-${name}.png`), fullPage: true });
}

describe('the console in Chromium', () => {
  it('signs in with an admin key; the key is not kept by the browser', async () => {
    await page.goto(`${lk.adminUrl}/console`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
    // Keyboard: the key field has focus, Enter submits.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('key');
    await shot('sign-in');
    await page.keyboard.type(lk.adminKey);
    await page.keyboard.press('Enter');
    await page.waitForURL('**/console/integrations');
    // The first Tab reaches the skip link, which leads to the content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Integrations');
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'latchkey_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
    expect(JSON.stringify(cookies)).not.toContain(lk.adminKey);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    expect(stored).not.toContain(lk.adminKey);
  });

  it('creates an integration and a bearer record; the secret input is write-only', async () => {
    await page.getByLabel('Integration id (optional)').fill('echo');
    await page.getByLabel('Name', { exact: true }).fill('Echo service');
    await page.getByLabel('Base URL', { exact: true }).fill(up.url);
    await page.getByLabel('Static headers (one "Name: value" per line)').fill('X-Team: console');
    await page.getByRole('button', { name: 'Create integration' }).click();
    await page.waitForURL('**/console/integrations/echo');
    await expect(page.getByRole('status').textContent()).resolves.toContain('Integration echo created');
    // console.js shows only the chosen type's fields.
    await page.getByLabel('Auth type').selectOption('BASIC_AUTH');
    expect(await page.locator('fieldset[data-authtype="BEARER_TOKEN"]').isHidden()).toBe(true);
    await page.locator('fieldset[data-authtype="BASIC_AUTH"]').getByLabel('User name').fill('someone');
    await page.locator('fieldset[data-authtype="BASIC_AUTH"]').getByLabel('Password').fill(BASIC_PASSWORD);
    await page.getByRole('button', { name: 'Create auth record' }).click();
    await page.waitForURL('**/console/integrations/echo');
    await page.getByLabel('Auth type').selectOption('BEARER_TOKEN');
    const token = page.locator('fieldset[data-authtype="BEARER_TOKEN"]').getByLabel('Token');
    expect(await token.getAttribute('type')).toBe('password');
    await token.fill(TOKEN);
    await page.getByRole('button', { name: 'Create auth record' }).click();
    await page.waitForURL('**/console/integrations/echo');
    expect(await page.locator('article.record').count()).toBe(2);
    await expect(page.getByRole('status').textContent()).resolves.toMatch(/Auth record auth_\w+ created/);
    expect(await page.content()).not.toContain(TOKEN);
    await shot('integration');
  });

  it('a proxied call appears in the audit view, and the live tail adds the next one', async () => {
    const res = await call(`${lk.proxyUrl}/echo/first?q=1`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(res.status).toBe(200);
    // What the upstream got (the echo itself comes back redacted).
    expect(up.seen.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(res.json.headers.authorization).toBe('Bearer [REDACTED]');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL('**/console/audit');
    const first = page.locator('#audit tbody tr', { hasText: '/first?q=[redacted]' });
    await expect(first.count()).resolves.toBe(1);
    expect(await first.textContent()).toContain('proxy.call');
    await page.getByLabel('Live tail (new rows appear at the top)').check();
    await page.getByText(/Live: updated/).waitFor();
    await call(`${lk.proxyUrl}/echo/second`, { headers: { 'x-latchkey-key': lk.adminKey } });
    await page.locator('#audit tbody tr.fresh', { hasText: '/second' }).waitFor({ timeout: 20_000 });
    await page.getByLabel('Live tail (new rows appear at the top)').uncheck();
    // Rows already on the page are not added again by the tail.
    expect(await first.count()).toBe(1);
    await shot('audit');
  });

  it('shows call metrics as charts', async () => {
    await call(`${lk.proxyUrl}/nope/x`, { headers: { 'x-latchkey-key': lk.adminKey } });
    await page.getByRole('link', { name: 'Metrics' }).click();
    await page.waitForURL('**/console/metrics');
    expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(3);
    expect(await page.locator('table').textContent()).toContain('echo');
    await shot('metrics');
  });

  it('creates an API key shown once with a copy button, then revokes it', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByLabel('Name', { exact: true }).fill('browser-agent');
    await page.getByLabel('Role').selectOption('agent');
    await page.getByLabel('Integrations (ids, comma separated; * for all)').fill('echo');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = (await page.locator('#once-value').textContent())?.trim() ?? '';
    expect(shown).toMatch(/^lk_/);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.getByRole('button', { name: /Copied|Selected/ }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(shown);
    await shot('api-key-created');
    const used = await call(`${lk.proxyUrl}/echo/by-agent`, { headers: { 'x-latchkey-key': shown } });
    expect(used.status).toBe(200);
    // Shown once: the list page never holds it again.
    await page.getByRole('link', { name: 'API keys' }).click();
    expect(await page.content()).not.toContain(shown);
    const row = page.locator('tr', { hasText: 'browser-agent' });
    await row.getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('status').filter({ hasText: 'revoked' }).waitFor();
    expect(await page.locator('tr', { hasText: 'browser-agent' }).count()).toBe(0);
    const refused = await call(`${lk.proxyUrl}/echo/by-agent`, { headers: { 'x-latchkey-key': shown } });
    expect(refused.status).toBe(401);
    await shot('api-keys');
  });

  it('renders the catalog, widget-token and API reference pages', async () => {
    await page.getByRole('link', { name: 'Catalog' }).click();
    expect(await page.locator('tbody tr').count()).toBeGreaterThan(10);
    await shot('catalog');
    await page.getByRole('link', { name: 'Widget tokens' }).click();
    await page.getByLabel('Integrations (ids, comma separated)').fill('echo');
    await page.getByLabel('Origins (one per line, e.g. https://app.example.com)').fill('https://app.example.com');
    await page.getByRole('button', { name: 'Mint token' }).click();
    expect((await page.locator('#once-value').textContent())?.trim()).toMatch(/^eyJ/);
    await shot('tokens');
    await page.getByRole('link', { name: 'API reference' }).click();
    expect(await page.locator('tbody').textContent()).toContain('POST /v1/integrations/{integrationId}/auth');
    await shot('api-reference');
  });

  it('shows the local CA: its fingerprint is that of the certificate /ca.pem serves, with how to trust it', async () => {
    await page.getByRole('link', { name: 'Local CA' }).click();
    await page.waitForURL('**/console/ca');
    const pem = await (await fetch(`${lk.adminUrl}/ca.pem`)).text();
    const { X509Certificate } = await import('node:crypto');
    expect((await page.locator('#ca-fingerprint').textContent())?.trim()).toBe(new X509Certificate(pem).fingerprint256);
    expect(await page.getByRole('link', { name: 'Download latchkey-ca.pem' }).getAttribute('href')).toBe('/ca.pem');
    expect(await page.locator('table').textContent()).toContain('NODE_EXTRA_CA_CERTS=latchkey-ca.pem');
    // The page shows the certificate, never the CA's key.
    expect(await page.content()).not.toContain('PRIVATE KEY');
    await shot('local-ca');
  });

  it('forms for the signing and token kinds: AWS SigV4, a GitHub App key (PEM, several lines), OAuth 2 client credentials', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const secrets = { aws: 'AWSSECRET_BROWSERLEAK_1a2b3c4d5e', cc: 'ccsecret_BROWSERLEAK_9z8y7x' };
    await lk.admin.post('/v1/integrations', { integrationId: 'kinds', baseUrl: up.url });
    await page.goto(`${lk.adminUrl}/console/integrations/kinds`);
    const form = (type: string) => page.locator(`fieldset[data-authtype="${type}"]`);
    const create = async (type: string, fill: (f: ReturnType<typeof form>) => Promise<void>) => {
      await page.getByLabel('Auth type').selectOption(type);
      await fill(form(type));
      await page.getByRole('button', { name: 'Create auth record' }).click();
      await page.waitForURL('**/console/integrations/kinds');
      await expect(page.getByRole('status').textContent()).resolves.toMatch(/Auth record auth_\w+ created/);
    };
    await create('AWS_SIGV4', async (f) => {
      await f.getByLabel('Access key id').fill('AKIAIOSFODNN7EXAMPLE');
      await f.getByLabel('Secret access key').fill(secrets.aws);
      await f.getByLabel('Region').fill('eu-west-1');
      await f.getByLabel('Service').fill('s3');
    });
    await create('GITHUB_APP', async (f) => {
      await f.getByLabel('App id').fill('12345');
      await f.getByLabel('Installation id').fill('67890');
      await f.getByLabel('Private key (PEM)').fill(pem);
    });
    await create('OAUTH2_CLIENT_CREDENTIALS', async (f) => {
      await f.getByLabel('Token URL').fill('https://auth.example.test/oauth/token');
      await f.getByLabel('Client id').fill('browser-client');
      await f.getByLabel('Client secret').fill(secrets.cc);
      await f.getByLabel('Scope').fill('read write');
    });
    const records = (await lk.admin.get('/v1/integrations/kinds/auth')).json.data as Array<Record<string, unknown>>;
    const byType = Object.fromEntries(records.map((r) => [r.authType, r]));
    expect(byType.AWS_SIGV4).toMatchObject({ aws: { region: 'eu-west-1', service: 's3' } });
    expect(byType.GITHUB_APP).toMatchObject({ githubApp: { appId: '12345', installationId: '67890', apiUrl: 'https://api.github.com' } });
    expect(byType.OAUTH2_CLIENT_CREDENTIALS).toMatchObject({ oauth2: { tokenUrl: 'https://auth.example.test/oauth/token', clientId: 'browser-client', scope: 'read write', clientAuth: 'basic' } });
    // The page shows the non-secret settings and none of the secrets.
    const content = await page.content();
    expect(content).toContain('eu-west-1');
    expect(content).toContain('browser-client');
    for (const secret of [secrets.aws, secrets.cc, pem.split('\n')[1] as string]) expect(content).not.toContain(secret);
    await shot('auth-kinds');
  });

  it('signs out: the session is gone, pages lead back to sign-in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/console/sign-in?ended=1');
    await page.goto(`${lk.adminUrl}/console/keys`);
    expect(new URL(page.url()).pathname).toBe('/console/sign-in');
  });

  it('ran with the CSP: no violation, no script error, nothing fetched from elsewhere, no secret in any response', () => {
    expect(problems).toEqual([]);
    const all = bodies.join('\n');
    expect(all.length).toBeGreaterThan(10_000);
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain(BASIC_PASSWORD);
    expect(all).not.toContain(lk.adminKey);
  });
});
