/**
 * Request rules: least privilege for agent keys. A key with rules may only
 * make calls that match at least one of them (integration, method, path below
 * the base URL). Rules are parsed once (coded 400 naming the field), compiled
 * to regular expressions once per key, and matched on every call against the
 * path that is actually sent upstream.
 */
import { validationError, type ErrorDetail } from '../errors.js';
import { TOKEN_PATTERN } from '../credentials/headers.js';
import { isScopeEntry } from '../admin/schemas.js';

export interface RequestRule {
  integration: string;
  /** Upper case; absent: every method. */
  methods?: string[];
  /** Glob patterns over the path below the base URL; absent: every path. */
  paths?: string[];
}

export interface RateLimit {
  requests: number;
  perSeconds: number;
}

export const RULE_LIMITS = { rules: 100, methods: 20, paths: 100, pathLength: 1024, requests: 10_000, perSeconds: 86_400 } as const;

const METHOD = new RegExp(TOKEN_PATTERN);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function pathProblem(p: unknown): string | null {
  if (typeof p !== 'string') return 'must be a string';
  if (!p.startsWith('/')) return 'must start with "/"';
  if (p.length > RULE_LIMITS.pathLength) return `must be at most ${RULE_LIMITS.pathLength} characters`;
  // A pattern is matched against a path only: no query, fragment or control characters.
  if (/[?#\s\u0000-\u001f\u007f]/.test(p)) return 'must not contain "?", "#", spaces or control characters';
  const segments = splitSegments(p);
  if (segments.some((s) => s.includes('**') && s !== '**')) return '"**" must be a whole segment';
  return null;
}

/** `rules`: a list of {integration, methods?, paths?}, or null (no rules: the key's scope alone decides). */
export function parseRules(input: unknown, field = 'rules'): RequestRule[] | null {
  if (input === null || input === undefined) return null;
  const details: ErrorDetail[] = [];
  if (!Array.isArray(input)) throw validationError([{ field, problem: 'must be a list of rules, or null' }]);
  if (input.length > RULE_LIMITS.rules) throw validationError([{ field, problem: `must have at most ${RULE_LIMITS.rules} rules` }]);
  const rules: RequestRule[] = [];
  input.forEach((raw: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(raw)) {
      details.push({ field: at, problem: 'must be an object {integration, methods?, paths?}' });
      return;
    }
    for (const k of Object.keys(raw)) {
      if (!['integration', 'methods', 'paths'].includes(k)) details.push({ field: `${at}.${k}`, problem: 'is not a known field' });
    }
    const rule: RequestRule = { integration: '' };
    if (!isScopeEntry(raw.integration)) details.push({ field: `${at}.integration`, problem: 'must be an integration id or "*"' });
    else rule.integration = raw.integration;
    if (raw.methods !== undefined) {
      const m = raw.methods;
      if (!Array.isArray(m) || m.length === 0 || m.length > RULE_LIMITS.methods) {
        details.push({ field: `${at}.methods`, problem: `must be a non-empty list of at most ${RULE_LIMITS.methods} HTTP methods` });
      } else {
        m.forEach((v: unknown, j) => {
          if (typeof v !== 'string' || !METHOD.test(v)) details.push({ field: `${at}.methods[${j}]`, problem: 'must be an HTTP method' });
        });
        // Methods are compared upper-cased: "delete" in a rule and "DELETE" on the wire are one method.
        rule.methods = [...new Set(m.map((v) => String(v).toUpperCase()))];
      }
    }
    if (raw.paths !== undefined) {
      const p = raw.paths;
      if (!Array.isArray(p) || p.length === 0 || p.length > RULE_LIMITS.paths) {
        details.push({ field: `${at}.paths`, problem: `must be a non-empty list of at most ${RULE_LIMITS.paths} path patterns` });
      } else {
        p.forEach((v: unknown, j) => {
          const problem = pathProblem(v);
          if (problem) details.push({ field: `${at}.paths[${j}]`, problem });
        });
        rule.paths = p as string[];
      }
    }
    rules.push(rule);
  });
  if (details.length > 0) throw validationError(details);
  return rules;
}

/** `rateLimit`: {requests, perSeconds}, or null (no limit). */
export function parseRateLimit(input: unknown, field = 'rateLimit'): RateLimit | null {
  if (input === null || input === undefined) return null;
  if (!isObject(input)) throw validationError([{ field, problem: 'must be {requests, perSeconds}, or null' }]);
  const details: ErrorDetail[] = [];
  for (const k of Object.keys(input)) {
    if (k !== 'requests' && k !== 'perSeconds') details.push({ field: `${field}.${k}`, problem: 'is not a known field' });
  }
  const int = (name: 'requests' | 'perSeconds', max: number): number => {
    const v = input[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
      details.push({ field: `${field}.${name}`, problem: `must be an integer from 1 to ${max}` });
      return 0;
    }
    return v;
  };
  const limit = { requests: int('requests', RULE_LIMITS.requests), perSeconds: int('perSeconds', RULE_LIMITS.perSeconds) };
  if (details.length > 0) throw validationError(details);
  return limit;
}

/**
 * Path segments as a rule sees them: "/" and the encoded separators (%2F,
 * %5C, "\") all split, and each segment is percent-decoded, so a pattern
 * written as "/a%2Fb" and one written as "/a/b" mean the same, and an encoded
 * slash cannot hide a segment from a rule.
 */
export function splitSegments(path: string): string[] {
  const parts = path.split(/\/|%2f|%5c|\\/i).slice(1);
  return parts.map((s) => {
    if (!s.includes('%')) return s;
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}

const escapeRegex = (s: string): string => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

/**
 * One pattern as a regular expression over the segments joined by "/":
 * "*" matches within one segment (a whole-segment "*" needs at least one
 * character, so "//" never stands in for a segment), "**" any number of
 * segments, zero included.
 */
export function compilePathPattern(pattern: string): RegExp {
  const segments = splitSegments(pattern);
  let re = '^';
  segments.forEach((seg, i) => {
    if (seg === '**') {
      // "/a/**" matches "/a" and everything below it; "/**/b" any depth before "b".
      re += i === segments.length - 1 ? '(?:/.*)?' : '(?:/[^/]*)*?';
    } else if (seg === '*') {
      re += '/[^/]+';
    } else {
      re += `/${seg.split('*').map(escapeRegex).join('[^/]*')}`;
    }
  });
  return new RegExp(`${re}$`, 's');
}

interface CompiledRule {
  integration: string;
  methods: Set<string> | null;
  paths: RegExp[] | null;
}

export interface RuleOutcome {
  allowed: boolean;
  /** Index of the first matching rule, or -1. */
  index: number;
}

/** A key's rules, compiled once; `match` is what the proxy runs per call. */
export class RuleSet {
  private readonly compiled: CompiledRule[];

  constructor(readonly rules: RequestRule[]) {
    this.compiled = rules.map((r) => ({
      integration: r.integration,
      methods: r.methods ? new Set(r.methods) : null,
      paths: r.paths ? r.paths.map(compilePathPattern) : null,
    }));
  }

  /**
   * `path` is the normalised path below the base URL, or null when the call
   * goes outside it (forward mode): then only rules without `paths` match.
   */
  match(integrationId: string, method: string, path: string | null): RuleOutcome {
    const upper = method.toUpperCase();
    let view: string | null = null;
    for (let i = 0; i < this.compiled.length; i++) {
      const r = this.compiled[i] as CompiledRule;
      if (r.integration !== '*' && r.integration !== integrationId) continue;
      if (r.methods && !r.methods.has(upper)) continue;
      if (r.paths) {
        if (path === null) continue;
        view ??= `/${splitSegments(path).join('/')}`;
        const v = view;
        if (!r.paths.some((re) => re.test(v))) continue;
      }
      return { allowed: true, index: i };
    }
    return { allowed: false, index: -1 };
  }
}
