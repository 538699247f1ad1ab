import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtInCatalogPath, type ProviderEntry } from '../../src/catalog/catalog.js';
import { hmacInjector, sign } from '../../src/credentials/kinds/hmac.js';
import { hmacTemplateProblems, type HmacTemplate } from '../../src/credentials/hmac-template.js';
import type { OutgoingRequest } from '../../src/credentials/kind.js';

const catalog = JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as ProviderEntry[];
const templateOf = (provider: string): HmacTemplate => catalog.find((p) => p.provider === provider)?.sign?.hmac as HmacTemplate;
const deps = { maxBodyBytes: 1024 };

function outgoing(method: string, path: string, body: string, now: number): OutgoingRequest {
  return { method, origin: 'https://api.example.com', host: 'api.example.com', path, headers: {}, clientHeaders: {}, body: Buffer.from(body), now, addSecret: () => undefined };
}

describe('published worked examples, signed with the catalog templates', () => {
  // https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type (SIGNED endpoint examples)
  const binanceSecret = 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j';

  it('Binance, parameters in the query: latchkey adds timestamp and signature', async () => {
    const t = templateOf('binance');
    const req = outgoing('POST', '/api/v3/order?symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000', '', 1499827319559);
    await hmacInjector(t, { secret_key: binanceSecret }, deps).apply(req);
    expect(req.path).toBe(
      '/api/v3/order?symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559' +
        '&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71',
    );
  });

  it('Binance, query and body mixed: the query then the body, unseparated', () => {
    const sig = sign(templateOf('binance'), binanceSecret, {
      method: 'POST',
      path: '/api/v3/order',
      query: 'symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC',
      headers: {},
      body: Buffer.from('quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559'),
      timestamp: '',
    });
    expect(sig).toBe('0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77');
  });

  it("Binance: a client's own timestamp and signature are replaced, not doubled", async () => {
    const req = outgoing('GET', '/api/v3/account?timestamp=1&signature=dummy&recvWindow=5000', '', 1499827319559);
    await hmacInjector(templateOf('binance'), { secret_key: binanceSecret }, deps).apply(req);
    expect(req.path).toMatch(/^\/api\/v3\/account\?recvWindow=5000&timestamp=1499827319559&signature=[0-9a-f]{64}$/);
  });

  it('Kraken: API-Sign of the documented AddOrder example', async () => {
    // https://docs.kraken.com/api/docs/guides/spot-rest-auth (the worked example)
    const req = outgoing('POST', '/0/private/AddOrder', 'nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25', 0);
    const privateKey = 'kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==';
    await hmacInjector(templateOf('kraken'), { private_key: privateKey }, deps).apply(req);
    expect(req.headers['api-sign']).toBe('4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==');
  });

  it('OKX: timestamp + method + path with query + body, ISO milliseconds', async () => {
    // OKX documents the prehash string (no expected signature): 2020-12-08T09:08:57.715Z + GET + /api/v5/account/balance?ccy=BTC
    const req = outgoing('GET', '/api/v5/account/balance?ccy=BTC', '', Date.parse('2020-12-08T09:08:57.715Z'));
    await hmacInjector(templateOf('okx'), { secret_key: 'okx-secret' }, deps).apply(req);
    expect(req.headers['ok-access-timestamp']).toBe('2020-12-08T09:08:57.715Z');
    const { createHmac } = await import('node:crypto');
    const expected = createHmac('sha256', 'okx-secret').update('2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC').digest('base64');
    expect(req.headers['ok-access-sign']).toBe(expected);
  });
});

describe('HMAC templates are checked', () => {
  const good = templateOf('okx');
  const fields = new Set(['api_key', 'secret_key', 'passphrase']);
  it('the catalog templates are sound', () => {
    for (const p of catalog.filter((e) => e.sign?.hmac)) {
      expect(hmacTemplateProblems(p.sign?.hmac, new Set([...p.requiredFields, ...p.optionalFields]), 'x'), p.provider).toEqual([]);
    }
  });
  it.each([
    [{ ...good, algorithm: 'md5' }, 'hmac.template.algorithm', /sha256, sha512/],
    [{ ...good, secretEncoding: 'latin1' }, 'hmac.template.secretEncoding', /utf8, base64, hex/],
    [{ ...good, timestampFormat: 'rfc2822' }, 'hmac.template.timestampFormat', /unix_s/],
    [{ ...good, output: 'base32' }, 'hmac.template.output', /hex, base64/],
    [{ ...good, message: [{ type: 'timestamp' }, { type: 'cookie' }] }, 'hmac.template.message[1].type', /must be one of/],
    [{ ...good, message: [{ type: 'header' }] }, 'hmac.template.message[0]', /"name"/],
    [{ ...good, message: [{ type: 'hash', algorithm: 'sha1', parts: [{ type: 'body' }] }] }, 'hmac.template.message[0].algorithm', /sha256/],
    [{ ...good, signature: { header: 'A', query: 'b' } }, 'hmac.template.signature', /exactly one/],
    [{ ...good, secretField: 'nope' }, 'hmac.template.secretField', /names no credential field/],
    [{ ...good, keyId: { header: 'K', field: 'nope' } }, 'hmac.template.keyId.field', /names no credential field/],
    [{ ...good, headers: { Host: '{{api_key}}' } }, 'hmac.template.headers.Host', /cannot be set/],
    [{ ...good, surprise: 1 }, 'hmac.template', /surprise/],
  ])('%#', (template, field, problem) => {
    const found = hmacTemplateProblems(template, fields, 'hmac.template');
    const hit = found.find((d) => d.field === field);
    expect(hit, JSON.stringify(found)).toBeTruthy();
    expect(hit?.problem).toMatch(problem);
  });
});
