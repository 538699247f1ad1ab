import { describe, expect, it } from 'vitest';
import { RuleSet, compilePathPattern, parseRateLimit, parseRules } from '../../src/access/rules.js';
import { RateLimiter } from '../../src/access/rate-limit.js';
import { normalizeUpstreamPath } from '../../src/proxy/inject.js';
import { LatchkeyError } from '../../src/errors.js';

const fields = (f: () => unknown): string[] => {
  try {
    f();
  } catch (err) {
    return ((err as LatchkeyError).details ?? []).map((d) => d.field);
  }
  return [];
};

describe('path patterns', () => {
  it.each([
    ['/repos/*/issues', '/repos/acme/issues', true],
    ['/repos/*/issues', '/repos/acme/x/issues', false],
    ['/repos/*/issues', '/repos//issues', false],
    ['/repos/**', '/repos', true],
    ['/repos/**', '/repos/a/b/c', true],
    ['/repos/**', '/reposx', false],
    ['/**/issues', '/a/b/issues', true],
    ['/**/issues', '/issues', true],
    ['/chat.*', '/chat.postMessage', true],
    ['/chat.*', '/chatXpostMessage', false],
    ['/v1/charges', '/v1/charges/', false],
    ['/a%2Fb', '/a/b', true],
  ])('%s ~ %s: %s', (pattern, path, expected) => {
    expect(compilePathPattern(pattern).test(path)).toBe(expected);
  });
});

describe('RuleSet', () => {
  const rules = new RuleSet([
    { integration: 'github', methods: ['GET'], paths: ['/repos/acme/**'] },
    { integration: '*', methods: ['POST'], paths: ['/chat.postMessage'] },
  ]);

  it('matches integration, method (any case) and path, and names the rule', () => {
    expect(rules.match('github', 'get', '/repos/acme/x')).toEqual({ allowed: true, index: 0 });
    expect(rules.match('slack', 'POST', '/chat.postMessage')).toEqual({ allowed: true, index: 1 });
    expect(rules.match('github', 'DELETE', '/repos/acme/x').allowed).toBe(false);
    expect(rules.match('gitlab', 'GET', '/repos/acme/x').allowed).toBe(false);
    expect(rules.match('github', 'GET', null).allowed).toBe(false);
  });

  it('an empty rule list allows nothing', () => {
    expect(new RuleSet(parseRules([]) ?? []).match('github', 'GET', '/').allowed).toBe(false);
  });

  it('treats encoded slashes as segment boundaries', () => {
    expect(rules.match('github', 'GET', '/repos/acme%2Fx').allowed).toBe(true);
    expect(rules.match('github', 'GET', '/repos%2Facme/x').allowed).toBe(true);
    expect(rules.match('github', 'GET', '/repos%2Fother/x').allowed).toBe(false);
  });
});

describe('normalizeUpstreamPath', () => {
  it.each([
    ['/repos/acme/../../admin', '/admin'],
    ['/repos/acme/%2e%2e/%2E%2E/admin', '/admin'],
    ['/repos/acme/..%2f..%2fadmin', '/admin'],
    ['/repos/acme/..%5c..%5cadmin', '/admin'],
    ['/repos/acme\\..\\..\\admin', '/admin'],
    ['/projects/group%2Fproject/issues', '/projects/group%2Fproject/issues'],
    ['/a/./b/.', '/a/b/'],
    ['/..', '/'],
  ])('%s -> %s', (input, output) => {
    expect(normalizeUpstreamPath(input)).toBe(output);
  });
});

describe('parsing', () => {
  it('names the offending field', () => {
    expect(fields(() => parseRules([{ integration: 'gh', paths: ['/ok', 'no-slash'] }]))).toEqual(['rules[0].paths[1]']);
    expect(fields(() => parseRules([{ integration: 'gh' }, { integration: 'bad id!', methods: ['GE T'], extra: 1 }]))).toEqual([
      'rules[1].extra',
      'rules[1].integration',
      'rules[1].methods[0]',
    ]);
    expect(fields(() => parseRules([{ integration: 'gh', paths: ['/a/**b'] }]))).toEqual(['rules[0].paths[0]']);
    expect(fields(() => parseRules('x'))).toEqual(['rules']);
    expect(fields(() => parseRateLimit({ requests: 0, perSeconds: 1.5 }))).toEqual(['rateLimit.requests', 'rateLimit.perSeconds']);
  });

  it('upper-cases methods, keeps null as "no rules"', () => {
    expect(parseRules([{ integration: '*', methods: ['get', 'GET'] }])).toEqual([{ integration: '*', methods: ['GET'] }]);
    expect(parseRules(null)).toBeNull();
    expect(parseRateLimit({ requests: 5, perSeconds: 60 })).toEqual({ requests: 5, perSeconds: 60 });
  });
});

describe('RateLimiter', () => {
  it('allows N calls in any window, refuses the next with the wait, recovers, and keeps keys apart', () => {
    let now = 0;
    const limiter = new RateLimiter(() => now);
    const limit = { requests: 3, perSeconds: 10 };
    for (let i = 0; i < 3; i++) expect(limiter.take('k1', limit).allowed).toBe(true);
    now = 2500;
    expect(limiter.take('k1', limit)).toEqual({ allowed: false, retryAfter: 8 });
    expect(limiter.take('k2', limit).allowed).toBe(true);
    // The window slides: at 10 s the three calls of t=0 have left it.
    now = 10_000;
    for (let i = 0; i < 3; i++) expect(limiter.take('k1', limit).allowed).toBe(true);
    expect(limiter.take('k1', limit).allowed).toBe(false);
    // A changed limit starts afresh.
    expect(limiter.take('k1', { requests: 4, perSeconds: 10 }).allowed).toBe(true);
  });
});
