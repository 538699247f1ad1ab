/**
 * A signed call through an intercepted CONNECT tunnel: the HMAC signer runs
 * in the same inject stage there, and the upstream recomputes the signature
 * the provider's way (OKX) from the bytes it received over TLS.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { agentKey, startConnectFixture, type ConnectFixture } from '../helpers/connect-fixture.js';
import { basic } from '../helpers/http.js';
import { builtInCatalogPath, type ProviderEntry } from '../../src/catalog/catalog.js';

const HOST = 'api.signing-connect.example';
const FIELDS = { api_key: 'okx-key-TUNNEL', secret_key: 'okx-secret-TUNNEL', passphrase: 'okx-pass-TUNNEL' };
const okx = (JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[]).find((p) => p.provider === 'okx');

let fx: ConnectFixture;
let dispatcher: ProxyAgent;
const verdicts: boolean[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const ts = String(req.headers['ok-access-timestamp']);
    const expected = createHmac('sha256', FIELDS.secret_key).update(`${ts}${req.method}${req.url}${Buffer.concat(chunks).toString()}`).digest('base64');
    const ok = req.headers['ok-access-sign'] === expected && req.headers['ok-access-key'] === FIELDS.api_key && !JSON.stringify(req.headers).includes('lk_');
    verdicts.push(ok);
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok }));
  });
}

beforeAll(async () => {
  fx = await startConnectFixture([HOST], { handler });
  // The newest record of integration `api` is used: an HMAC signer instead of the fixture's bearer token.
  const r = await fx.lk.admin.post('/v1/integrations/api/auth', { authType: 'HMAC', hmac: { fields: FIELDS, template: okx?.sign?.hmac } });
  expect(r.status, r.text).toBe(201);
  const key = await agentKey(fx.lk, ['api']);
  dispatcher = new ProxyAgent({ uri: `http://${fx.proxyHostPort}`, token: basic('auto', key), requestTls: { ca: fx.caPem } });
});
afterAll(async () => {
  await dispatcher?.close();
  await fx?.close();
});

it('GET and POST with a body inside the tunnel are signed over the bytes sent', async () => {
  const get = await request(`https://${fx.target}/api/v5/account/balance?ccy=BTC`, { dispatcher });
  expect(get.statusCode, await get.body.text()).toBe(200);
  const post = await request(`https://${fx.target}/api/v5/trade/order`, {
    dispatcher,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"instId":"BTC-USDT","sz":"1"}',
  });
  expect(post.statusCode, await post.body.text()).toBe(200);
  expect(verdicts).toEqual([true, true]);
});
