import { describe, expect, it } from 'vitest';
import { injectQuery, normalizeUpstreamPath, upstreamHeaders } from '../../src/proxy/inject.js';
import { mergeHeaders } from '../../src/proxy/plans.js';
import { canonicalHostPort, checkBaseUrl, checkHostEntry, hostAllowed, isLinkLocal, parseBaseUrl } from '../../src/hosts.js';
import { scrubLocation } from '../../src/proxy/forward.js';
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

describe('normalizeUpstreamPath', () => {
  it.each([
    ['/a/b/../c', '/a/c'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/%2e%2e/%2E%2e/x', '/x'],
    ['/./a/.', '/a/'],
    ['//evil.example/x', '//evil.example/x'],
    // Encoded slashes and backslashes separate segments for an upstream that decodes them first.
    ['/a/..%2f..%2fb', '/b'],
    ['/..%2f..%2fx', '/x'],
    ['/a/..%5C..%5Cb', '/b'],
    ['/a\\..\\..\\b', '/b'],
    ['/a/%2e%2e%2f%2e%2e%2fb', '/b'],
    ['/a%2f..', '/'],
    // Not dot segments: bytes and separators are kept as sent.
    ['/projects/group%2Fproject/issues', '/projects/group%2Fproject/issues'],
    ['/v1/a.b%2Fc.d', '/v1/a.b%2Fc.d'],
    ['/a/...', '/a/...'],
  ])('%s -> %s', (input, output) => {
    expect(normalizeUpstreamPath(input)).toBe(output);
  });
});

describe('upstreamHeaders', () => {
  const plan = { authId: 'a', authType: 'BEARER_TOKEN' as const, credentialHeaders: ['authorization'], credentialQuery: [], query: [], injector: null, secrets: ['real'], redactor: null, recordSubject: null, headers: mergeHeaders([['X-A', '1'], ['Authorization', 'static']], [['authorization', 'Bearer real']]) };
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
  it.each([
    '[::ffff:a9fe:a9fe]',
    '::ffff:a9fe:a9fe',
    '0:0:0:0:0:ffff:a9fe:a9fe',
    '::a9fe:a9fe',
    '::169.254.169.254',
    '64:ff9b::a9fe:a9fe',
    '0xa9fea9fe',
    '2852039166',
    '0251.0376.0251.0376',
    '169.254.43518',
    '0xa9.0xfe.0xa9.0xfe',
    '169.254.169.254.',
    'FE80::1',
    '[fe80::1%25eth0]',
    'febf:ffff::1',
  ])('recognises %s as link-local', (address) => {
    expect(isLinkLocal(address)).toBe(true);
  });
  it.each(['127.0.0.1', '::1', '[::ffff:7f00:1]', 'fec0::1', '169.253.255.255', '169.255.0.1', 'api.example.com', '1password.com', 'abc'])(
    'does not take %s for link-local',
    (address) => {
      expect(isLinkLocal(address)).toBe(false);
    },
  );
  it('writes IP literals one way before comparing hosts', () => {
    expect(canonicalHostPort('0x7F000001:8080')).toBe('127.0.0.1:8080');
    expect(canonicalHostPort('[0:0:0:0:0:0:0:1]')).toBe('[::1]');
    expect(canonicalHostPort('API.Example.com:443')).toBe('api.example.com:443');
    expect(checkHostEntry('0xa9fea9fe')).toMatch(/link-local/);
    expect(checkHostEntry('[::ffff:a9fe:a9fe]:80')).toMatch(/link-local/);
    expect(checkHostEntry('api.example.com:8443')).toBeNull();
    expect(checkBaseUrl('http://[::ffff:169.254.169.254]/')).toMatch(/link-local/);
    expect(checkBaseUrl('http://2852039166/')).toMatch(/link-local/);
  });
  it('takes injected query credentials out of a redirect Location', () => {
    const injected: Array<[string, string]> = [['key', 's3cr&t']];
    expect(scrubLocation('/sub/?x=1&key=s3cr%26t', injected)).toBe('/sub/?x=1');
    expect(scrubLocation('https://h/sub/?key=s3cr%26t#frag', injected)).toBe('https://h/sub/#frag');
    expect(scrubLocation('/sub/?copy=s3cr%26t&y=2', injected)).toBe('/sub/?y=2');
    expect(scrubLocation('/sub/?x=1', injected)).toBe('/sub/?x=1');
    expect(scrubLocation('/sub/?x=1&key=s3cr%26t', [])).toBe('/sub/?x=1&key=s3cr%26t');
  });
  it('redacts query values in logged paths', () => {
    expect(redactQuery('/x?api_key=secret&b=2')).toBe('/x?api_key=[redacted]&b=[redacted]');
  });
});
