/**
 * Header facts in one place: which headers are hop-by-hop, which may never be
 * set as static headers, and which hold client or upstream credentials.
 */

/** RFC 9110 token: the only shape a header name (or a header-placed API key name) may have. */
export const TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/**
 * What a header value may hold: HTAB, visible ASCII, space and Latin-1 (RFC
 * 9110 field-vchar and obs-text). CR, LF, NUL and other controls would split
 * or corrupt the request; anything above U+00FF cannot be sent at all.
 */
export const HEADER_VALUE_PATTERN = '^[\\t\\u0020-\\u007E\\u0080-\\u00FF]*$';
export const HEADER_VALUE_PROBLEM = 'must be visible ASCII or Latin-1 text (no CR, LF, NUL or other control characters)';
/** Values that travel URL-encoded (query parameters) only need to be free of control characters. */
export const CONTROL_CHARACTERS = /[\u0000-\u001F\u007F]/;

export const MAX_STATIC_HEADERS = 50;

/** RFC 9110 section 7.6.1 connection-specific headers, plus the proxy ones. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Static headers may not touch framing or routing: a Host or Content-Length
 * set from a record could smuggle a request or send it somewhere else.
 */
export function isForbiddenStaticHeader(name: string): boolean {
  const n = name.toLowerCase();
  return (
    n === 'host' ||
    n === 'content-length' ||
    n === 'transfer-encoding' ||
    n === 'connection' ||
    n === 'keep-alive' ||
    n === 'upgrade' ||
    n === 'te' ||
    n === 'trailer' ||
    n.startsWith('proxy-')
  );
}

/** Headers whose values never reach a log line. */
export const REDACTED_HEADERS = [
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'x-latchkey-key',
  'cookie',
  'set-cookie',
] as const;

export interface StaticHeader {
  key: string;
  value: string;
}

/** Rules a schema cannot say: no forbidden names, no name twice (case-insensitive). */
export function staticHeaderProblems(headers: StaticHeader[], field = 'headers'): Array<{ field: string; problem: string }> {
  const seen = new Set<string>();
  const details: Array<{ field: string; problem: string }> = [];
  headers.forEach((h, i) => {
    const name = h.key.toLowerCase();
    if (isForbiddenStaticHeader(name) || name.startsWith('x-latchkey-')) {
      details.push({ field: `${field}[${i}].key`, problem: `${h.key} cannot be a static header` });
    } else if (seen.has(name)) {
      details.push({ field: `${field}[${i}].key`, problem: `${h.key} is given twice` });
    }
    seen.add(name);
  });
  return details;
}
