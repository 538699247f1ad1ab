import { describe, expect, it } from 'vitest';
import { injectQuery, removeDotSegments, upstreamHeaders } from '../../src/proxy/inject.js';
import { mergeHeaders } from '../../src/proxy/plans.js';
import { hostAllowed, isLinkLocal, parseBaseUrl } from '../../src/hosts.js';
import { redactQuery } from '../../src/log.js';

describe('injectQuery', () => {
  it('replaces a same-named parameter in place and keeps the others as they were', () => {
    expect(injectQuery('z=%2F&key=client&a=1+2', [['key', 's3cr&t']], [])).toBe('z=%2F&key=s3cr%26t&a=1+2');
  });
  it('appends when absent, drops duplicates and the client key parameter', () => {
    expect(injectQuery('a=1', [['key', 'v']], [])).toBe('a=1&key=v');
    expect(injectQuery('key=1&b=2&key=3', [['key', 'v']], [])).toBe('key=v&b=2');
    expect(injectQuery('lk=lk_abc&b=2', [], ['lk'])).toBe('b=2');
  });
  it('matches encoded parameter names', () => {
    expect(injectQuery('api%5Fkey=x&b=1', [['api_key', 'v']], [])).toBe('api_key=v&b=1');
  });
});

describe('removeDotSegments', () => {
  it.each([
    ['/a/b/../c', '/a/c'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/%2e%2e/%2E%2e/x', '/x'],
    ['/./a/.', '/a/'],
    ['//evil.example/x', '//evil.example/x'],
    ['/a/..%2f..%2fb', '/a/..%2f..%2fb'],
  ])('%s -> %s', (input, output) => {
    expect(removeDotSegments(input)).toBe(output);
  });
});

describe('upstreamHeaders', () => {
  const plan = { authId: 'a', authType: 'BEARER_TOKEN' as const, credentialHeaders: ['authorization'], credentialQuery: [], query: [], headers: mergeHeaders([['X-A', '1'], ['Authorization', 'static']], [['authorization', 'Bearer real']]) };
  it('strips hop-by-hop, Connection-named, proxy, latchkey and host headers and injects once', () => {
    const out = upstreamHeaders(
      {
        host: 'proxy',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': '1',
        'keep-alive': 'timeout=5',
        'proxy-authorization': 'Basic x',
        'x-latchkey-key': 'lk_x',
        'x-latchkey-integration': 'i',
        authorization: 'Bearer client',
        accept: 'application/json',
      },
      plan,
      [],
    );
    expect(out).toEqual({ accept: 'application/json', 'x-a': '1', authorization: 'Bearer real' });
  });
});

describe('hosts', () => {
  const base = parseBaseUrl('https://api.example.com/v1/');
  it('normalises the base URL', () => {
    expect(base).toMatchObject({ href: 'https://api.example.com/v1', host: 'api.example.com', port: 443, pathPrefix: '/v1' });
  });
  it('wildcards match subdomains, never the apex; ports must match', () => {
    const allowed = ['*.example.com', 'api.example.com', 'files.example.com:8443'];
    expect(hostAllowed(allowed, 'a.b.example.com', 443)).toBe(true);
    expect(hostAllowed(allowed, 'example.com', 443)).toBe(false);
    expect(hostAllowed(allowed, 'api.example.com:443', 443)).toBe(true);
    expect(hostAllowed(allowed, 'api.example.com:8080', 443)).toBe(false);
    expect(hostAllowed(allowed, 'files.example.com:8443', 443)).toBe(true);
    expect(hostAllowed(['files.example.com:8443'], 'files.example.com', 443)).toBe(false);
    expect(hostAllowed(allowed, 'evil-example.com', 443)).toBe(false);
  });
  it('knows link-local addresses', () => {
    expect(isLinkLocal('169.254.169.254')).toBe(true);
    expect(isLinkLocal('fe80::1')).toBe(true);
    expect(isLinkLocal('::ffff:169.254.1.1')).toBe(true);
    expect(isLinkLocal('127.0.0.1')).toBe(false);
  });
  it('redacts query values in logged paths', () => {
    expect(redactQuery('/x?api_key=secret&b=2')).toBe('/x?api_key=[redacted]&b=[redacted]');
  });
});
