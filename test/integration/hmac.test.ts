/**
 * HMAC-signed providers end to end: the catalog entries, pointed at a local
 * upstream that recomputes each signature the provider's own documented way
 * (written out here, independent of latchkey's template engine) from the
 * bytes it received.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { basic, call, viaForwardProxy } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';
import { builtInCatalogPath, type ProviderEntry } from '../../src/catalog/catalog.js';

const KEYS = {
  okx: { api_key: 'okx-key-LEAKCHECK-1', secret_key: 'okx-secret-LEAKCHECK-2', passphrase: 'okx-pass-LEAKCHECK-3' },
  binance: { api_key: 'bnb-key-LEAKCHECK-4', secret_key: 'bnb-secret-LEAKCHECK-5' },
  'coinbase-exchange': {
    api_key: 'cb-key-LEAKCHECK-6',
    secret: Buffer.from('cb-secret-bytes-LEAKCHECK-7').toString('base64'),
    passphrase: 'cb-pass-LEAKCHECK-8',
  },
  kraken: { api_key: 'kr-key-LEAKCHECK-9', private_key: Buffer.from('kraken-private-LEAKCHECK-10').toString('base64') },
} as const;
type Provider = keyof typeof KEYS;
const PROVIDERS = Object.keys(KEYS) as Provider[];

const builtIn = JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[];
const entry = (id: string) => builtIn.find((p) => p.provider === id) as ProviderEntry;

interface Verdict {
  provider: string;
  ok: boolean;
  why: string;
  signature: string;
  timestamp: string;
}
const verdicts: Verdict[] = [];

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
const recent = (ms: number) => Math.abs(Date.now() - ms) < 60_000;

/** Each provider's documented check, from the received method, path, query, headers and body bytes. */
const CHECKS: Record<Provider, (req: IncomingMessage, body: Buffer) => Omit<Verdict, 'provider'>> = {
  okx(req, body) {
    const h = req.headers;
    const ts = String(h['ok-access-timestamp']);
    const expected = createHmac('sha256', KEYS.okx.secret_key).update(`${ts}${req.method}${req.url}${body.toString()}`).digest('base64');
    const sig = String(h['ok-access-sign']);
    const ok = same(sig, expected) && h['ok-access-key'] === KEYS.okx.api_key && h['ok-access-passphrase'] === KEYS.okx.passphrase;
    return { ok: ok && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(ts) && recent(Date.parse(ts)), why: 'okx', signature: sig, timestamp: ts };
  },
  binance(req, body) {
    const url = req.url ?? '';
    const m = /^([^?]*)\?(.*)&signature=([0-9a-f]{64})$/.exec(url);
    if (!m) return { ok: false, why: 'no trailing signature parameter', signature: '', timestamp: '' };
    const total = `${m[2]}${body.toString()}`;
    const expected = createHmac('sha256', KEYS.binance.secret_key).update(total).digest('hex');
    const ts = new URLSearchParams(m[2]).get('timestamp') ?? '';
    const ok = same(m[3] as string, expected) && req.headers['x-mbx-apikey'] === KEYS.binance.api_key && recent(Number(ts));
    return { ok, why: 'binance', signature: m[3] as string, timestamp: ts };
  },
  'coinbase-exchange'(req, body) {
    const h = req.headers;
    const ts = String(h['cb-access-timestamp']);
    const key = Buffer.from(KEYS['coinbase-exchange'].secret, 'base64');
    const expected = createHmac('sha256', key).update(`${ts}${req.method}${req.url}${body.toString()}`).digest('base64');
    const sig = String(h['cb-access-sign']);
    const ok =
      same(sig, expected) && h['cb-access-key'] === KEYS['coinbase-exchange'].api_key && h['cb-access-passphrase'] === KEYS['coinbase-exchange'].passphrase;
    return { ok: ok && /^\d{10}$/.test(ts) && recent(Number(ts) * 1000), why: 'coinbase', signature: sig, timestamp: ts };
  },
  kraken(req, body) {
    const nonce = new URLSearchParams(body.toString()).get('nonce') ?? '';
    const path = (req.url ?? '').split('?')[0] as string;
    const inner = createHash('sha256').update(nonce + body.toString()).digest();
    const expected = createHmac('sha512', Buffer.from(KEYS.kraken.private_key, 'base64'))
      .update(Buffer.concat([Buffer.from(path), inner]))
      .digest('base64');
    const sig = String(req.headers['api-sign']);
    return { ok: same(sig, expected) && req.headers['api-key'] === KEYS.kraken.api_key, why: 'kraken', signature: sig, timestamp: nonce };
  },
};

function upstreamFor(provider: Provider) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const v = { provider, ...CHECKS[provider](req, Buffer.concat(chunks)) };
      verdicts.push(v);
      res.writeHead(v.ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: v.ok }));
    });
  };
}

let lk: TestLatchkey;
const ups = new Map<Provider, Upstream>();

beforeAll(async () => {
  for (const p of PROVIDERS) ups.set(p, await startUpstream(upstreamFor(p)));
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  const providers = PROVIDERS.map((p) => ({ ...entry(p), baseUrl: (ups.get(p) as Upstream).url, allowedHosts: [(ups.get(p) as Upstream).host] }));
  writeFileSync(cfg, JSON.stringify({ providers, catalog: { probeTimeoutMs: 2000 } }));
  lk = await startLatchkey({ LATCHKEY_CONFIG: cfg, LATCHKEY_LOG_LEVEL: 'trace' }, dir);
});
afterAll(async () => {
  await Promise.all([...ups.values()].map((u) => u.close()));
  await lk?.close();
});

const proxied = (provider: Provider, path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
  call(`${lk.proxyUrl}/${provider}${path}`, {
    method: init.method ?? 'GET',
    body: init.body,
    headers: { 'x-latchkey-key': lk.adminKey, ...(init.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...init.headers },
  });

/** A call each provider accepts: Kraken's private API is POST with a nonce in the body. */
const sample = (p: Provider, variant: string) =>
  p === 'kraken'
    ? { path: '/0/private/Balance', method: 'POST', body: `nonce=${Date.now()}${variant.length}&asset=${variant}` }
    : { path: `/api/v1/things?filter=${variant}`, method: 'POST', body: `{"v":"${variant}"}` };

describe('catalog signing providers', () => {
  it('store: validated by a signed probe where the provider has one', async () => {
    for (const p of PROVIDERS) {
      const r = await lk.admin.post(`/v1/integrations/${p}/credentials`, { credentials: KEYS[p] });
      expect(r.status, r.text).toBe(201);
      expect(r.json).toMatchObject({ integrationId: p, provider: p, status: p === 'kraken' ? 'unverified' : 'validated' });
    }
    expect(verdicts.filter((v) => !v.ok)).toEqual([]);
    const auth = await lk.admin.get('/v1/integrations/okx/auth');
    expect(auth.json.data[0]).toMatchObject({ authType: 'HMAC', provider: 'okx' });
    expect(auth.json.data[0].hmac.template.signature).toEqual({ header: 'OK-ACCESS-SIGN' });
  });

  it('a wrong secret is refused by the probe: 422 and nothing stored', async () => {
    const r = await lk.admin.post('/v1/integrations/okx/credentials', {
      credentials: { ...KEYS.okx, secret_key: 'wrong' },
      integrationId: 'okx-wrong',
    });
    expect(r.status).toBe(422);
    expect(r.json.error.code).toBe('CREDENTIAL_VALIDATION_FAILED');
    expect((await lk.admin.get('/v1/integrations/okx-wrong')).status).toBe(404);
  });

  it('a coinbase secret that is not base64 is a 400 naming the field', async () => {
    const r = await lk.admin.post('/v1/integrations/coinbase-exchange/credentials', {
      credentials: { ...KEYS['coinbase-exchange'], secret: 'not base64!' },
      integrationId: 'cb-bad',
    });
    expect(r.status).toBe(400);
    expect(r.json.error.details).toEqual([{ field: 'credentials.secret', problem: 'is not valid base64' }]);
  });

  for (const p of PROVIDERS) {
    it(`${p}: the upstream accepts proxied calls; body, query and time each change the signature`, async () => {
      const a = sample(p, 'alpha');
      const first = await proxied(p, a.path, a);
      expect(first.status, first.text).toBe(200);
      const base = verdicts.at(-1) as Verdict;
      expect(base).toMatchObject({ provider: p, ok: true });

      // Another body, same path and query.
      const otherBody = p === 'kraken' ? { ...a, body: `${a.body}&extra=1` } : { ...a, body: '{"v":"beta"}' };
      expect((await proxied(p, otherBody.path, otherBody)).status).toBe(200);
      const byBody = verdicts.at(-1) as Verdict;
      expect(byBody.ok).toBe(true);
      expect(byBody.signature).not.toBe(base.signature);

      // Another query, same body.
      expect((await proxied(p, `${a.path}${a.path.includes('?') ? '&' : '?'}page=2`, a)).status).toBe(200);
      const byQuery = verdicts.at(-1) as Verdict;
      expect(byQuery.ok).toBe(true);
      if (p !== 'kraken') expect(byQuery.signature).not.toBe(base.signature);

      // The same request later: latchkey's clock moves the timestamp and so the signature (Kraken's nonce is the caller's).
      if (p !== 'kraken') {
        await new Promise((r) => setTimeout(r, p === 'coinbase-exchange' ? 1100 : 5));
        expect((await proxied(p, a.path, a)).status).toBe(200);
        const later = verdicts.at(-1) as Verdict;
        expect(later.ok).toBe(true);
        expect(later.timestamp).not.toBe(base.timestamp);
        expect(later.signature).not.toBe(base.signature);
      }
    });
  }

  it('Kraken: the query is not part of the message, and a changed nonce changes the signature', async () => {
    const body = 'nonce=1700000000001&asset=XBT';
    await proxied('kraken', '/0/private/Balance', { method: 'POST', body });
    await proxied('kraken', '/0/private/Balance?x=1', { method: 'POST', body });
    const [a, b] = verdicts.slice(-2) as [Verdict, Verdict];
    expect(a.ok && b.ok).toBe(true);
    expect(b.signature).toBe(a.signature);
    await proxied('kraken', '/0/private/Balance', { method: 'POST', body: body.replace('1700000000001', '1700000000002') });
    expect((verdicts.at(-1) as Verdict).signature).not.toBe(a.signature);
  });

  it('header mode and forward-proxy mode are signed the same way', async () => {
    const viaHeader = await call(`${lk.proxyUrl}/api/v5/account/balance?ccy=ETH`, {
      headers: { 'x-latchkey-integration': 'okx', 'x-latchkey-key': lk.adminKey },
    });
    expect(viaHeader.status, viaHeader.text).toBe(200);
    expect(verdicts.at(-1)).toMatchObject({ provider: 'okx', ok: true });
    const okx = ups.get('okx') as Upstream;
    const forward = await viaForwardProxy(lk.proxyUrl, `${okx.url}/api/v5/account/balance?ccy=SOL`, {
      method: 'POST',
      body: '{"x":1}',
      headers: { 'proxy-authorization': basic('okx', lk.adminKey), 'content-type': 'application/json' },
    });
    expect(forward.status, forward.text).toBe(200);
    expect(verdicts.at(-1)).toMatchObject({ provider: 'okx', ok: true });
    expect(okx.seen.at(-1)?.url).toBe('/api/v5/account/balance?ccy=SOL');
  });

  it("a client's dummy signature and timestamp are replaced; its latchkey key may sit in the API-key header", async () => {
    const r = await call(`${lk.proxyUrl}/binance/api/v3/account?recvWindow=5000&timestamp=1&signature=${'0'.repeat(64)}`, {
      headers: { 'x-mbx-apikey': lk.adminKey },
    });
    expect(r.status, r.text).toBe(200);
    const seen = ups.get('binance')?.seen.at(-1);
    expect(seen?.url).toMatch(/^\/api\/v3\/account\?recvWindow=5000&timestamp=\d{13}&signature=[0-9a-f]{64}$/);
    expect(seen?.headers['x-mbx-apikey']).toBe(KEYS.binance.api_key);
  });
});

describe('generic HMAC auth records', () => {
  const template = entry('okx').sign?.hmac;
  it('are stored with the template shown and the fields sealed', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'generic', baseUrl: (ups.get('okx') as Upstream).url });
    const r = await lk.admin.post('/v1/integrations/generic/auth', { authType: 'hmac', hmac: { fields: KEYS.okx, template } });
    expect(r.status, r.text).toBe(201);
    expect(r.json.hmac).toEqual({ template });
    expect(r.text).not.toContain(KEYS.okx.secret_key);
    const viaGeneric = await call(`${lk.proxyUrl}/generic/api/v5/account/balance?ccy=BTC`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(viaGeneric.status, viaGeneric.text).toBe(200);
    expect(verdicts.at(-1)).toMatchObject({ provider: 'okx', ok: true });
  });

  it.each([
    [{ fields: KEYS.okx, template: { ...template, algorithm: 'md5' } }, 'hmac.template.algorithm'],
    [{ fields: KEYS.okx, template: { ...template, message: [{ type: 'cookie' }] } }, 'hmac.template.message[0].type'],
    [{ fields: KEYS.okx, template: { ...template, secretEncoding: 'hex' } }, 'hmac.fields.secret_key'],
    [{ fields: KEYS.okx, template: { ...template, secretField: 'other' } }, 'hmac.template.secretField'],
    [{ fields: { ...KEYS.okx, api_key: '' }, template }, 'hmac.fields.api_key'],
    [{ template }, 'hmac.fields'],
    [{ fields: KEYS.okx }, 'hmac.template'],
  ])('a bad template or field is a 400 naming it (%#)', async (hmac, field) => {
    const before = (await lk.admin.get('/v1/integrations/generic/auth')).json.data.length;
    const r = await lk.admin.post('/v1/integrations/generic/auth', { authType: 'HMAC', hmac });
    expect(r.status, r.text).toBe(400);
    expect(r.json.error.code).toBe('VALIDATION_ERROR');
    expect(r.json.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect((await lk.admin.get('/v1/integrations/generic/auth')).json.data.length).toBe(before);
  });

  it('PATCH rotates the fields; aws on an HMAC record is refused', async () => {
    const id = (await lk.admin.get('/v1/integrations/generic/auth')).json.data.at(-1).authId as string;
    const bad = await lk.admin.patch(`/v1/integrations/generic/auth/${id}`, { aws: { region: 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details[0].field).toBe('aws');
    const rotated = await lk.admin.patch(`/v1/integrations/generic/auth/${id}`, { hmac: { fields: { ...KEYS.okx, secret_key: 'rotated-LEAKCHECK-11' } } });
    expect(rotated.status, rotated.text).toBe(200);
    const r = await call(`${lk.proxyUrl}/generic/api/v5/account/balance`, { headers: { 'x-latchkey-key': lk.adminKey } });
    // The upstream knows only the old secret: the very next call is signed with the new one.
    expect(r.status).toBe(401);
  });
});

describe('no HMAC secret anywhere', () => {
  const secrets = [...PROVIDERS.flatMap((p) => Object.values(KEYS[p])), 'rotated-LEAKCHECK-11'];
  const expectNone = (bytes: Buffer | string, where: string) => {
    for (const s of secrets) expect(Buffer.from(bytes).includes(Buffer.from(s)), `${s} in ${where}`).toBe(false);
  };
  it('not in the database file, its WAL, trace logs, audit rows or admin responses', async () => {
    expectNone(readFileSync(`${lk.dbPath}-wal`), 'the WAL');
    lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
    expectNone(readFileSync(lk.dbPath), 'the database');
    expect(lk.logs()).toContain('proxy call');
    expectNone(lk.logs(), 'the logs');
    // Proxied calls reach the audit log in batches: wait until they are there.
    let audit = await lk.admin.get('/v1/audit?limit=200');
    for (let i = 0; i < 100 && audit.json.data.length <= 10; i++) {
      await new Promise((r) => setTimeout(r, 100));
      audit = await lk.admin.get('/v1/audit?limit=200');
    }
    expect(audit.json.data.length).toBeGreaterThan(10);
    expectNone(audit.text, 'the audit log');
    for (const id of [...PROVIDERS, 'generic']) expectNone((await lk.admin.get(`/v1/integrations/${id}/auth`)).text, 'admin');
  });
});
