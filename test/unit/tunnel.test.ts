import { describe, expect, it } from 'vitest';
import { parseConnectTarget, sameAuthority } from '../../src/proxy/tunnel.js';
import { parseTtl, runEnvironment, CA_BUNDLE_VARIABLES } from '../../src/run/env.js';

describe('CONNECT targets', () => {
  it('host:port, IPv6 in brackets, canonical IP spellings', () => {
    expect(parseConnectTarget('API.Example.com.:443')).toEqual({ target: 'api.example.com:443', hostname: 'api.example.com', port: 443 });
    expect(parseConnectTarget('[0:0::1]:8443')).toEqual({ target: '[::1]:8443', hostname: '::1', port: 8443 });
    expect(parseConnectTarget('0x7f.1:443')?.hostname).toBe('127.0.0.1');
  });
  it('anything else is refused', () => {
    for (const bad of ['api.example.com', 'https://a:443', 'a@b:443', 'a:0', 'a:65536', '[1.2.3.4]:443', '::1:443', 'a b:1', '', 'x/y:1']) {
      expect(parseConnectTarget(bad), bad).toBeNull();
    }
  });
  it('Host inside a tunnel: same host and port, no port meaning 443', () => {
    const t = parseConnectTarget('api.example.com:443')!;
    expect(sameAuthority('api.example.com', t)).toBe(true);
    expect(sameAuthority('API.example.com:443', t)).toBe(true);
    expect(sameAuthority('api.example.com:8443', t)).toBe(false);
    expect(sameAuthority('other.example.com', t)).toBe(false);
    expect(sameAuthority(undefined, t)).toBe(false);
    const v6 = parseConnectTarget('[::1]:8443')!;
    expect(sameAuthority('[0::1]:8443', v6)).toBe(true);
  });
});

describe('latchkey run environment', () => {
  const r = { proxyUrl: 'http://auto:lk_x@127.0.0.1:7480', caBundleFile: '/tmp/b.pem', preloadUrl: 'file:///p/preload.js' };
  it('sets every variable and keeps the caller’s NO_PROXY and NODE_OPTIONS', () => {
    const env = runEnvironment({ NO_PROXY: 'internal.example,localhost', NODE_OPTIONS: '--max-old-space-size=512' }, r);
    for (const v of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) expect(env[v]).toBe(r.proxyUrl);
    expect(env.NO_PROXY).toBe('internal.example,localhost,127.0.0.1,::1');
    expect(env.no_proxy).toBe(env.NO_PROXY);
    for (const v of CA_BUNDLE_VARIABLES) expect(env[v]).toBe('/tmp/b.pem');
    expect(env.NODE_USE_ENV_PROXY).toBe('1');
    expect(env.NODE_OPTIONS).toBe('--max-old-space-size=512 --import file:///p/preload.js');
    expect(runEnvironment(env, r).NODE_OPTIONS).toBe(env.NODE_OPTIONS);
  });
  it('ttl units', () => {
    expect(parseTtl('30s')).toBe(30_000);
    expect(parseTtl('12h')).toBe(43_200_000);
    expect(parseTtl('7d')).toBe(604_800_000);
    for (const bad of ['0h', '12', 'h', '1w', '-1h']) expect(parseTtl(bad), bad).toBeNull();
  });
});
