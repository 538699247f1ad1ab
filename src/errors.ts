/**
 * The one error class of latchkey. Every failure a caller can see carries a
 * stable code from this table; each listener has a single function that turns
 * a LatchkeyError (or anything unexpected) into an HTTP answer.
 */
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  INVALID_JSON: 400,
  MISSING_INTEGRATION: 400,
  INVALID_TARGET: 400,
  INVALID_STATE: 400,
  AUTH_REQUIRED: 401,
  INVALID_AUTH_FORMAT: 401,
  INVALID_API_KEY: 401,
  INVALID_TOKEN: 401,
  PROXY_AUTH_REQUIRED: 401,
  FORBIDDEN: 403,
  HOST_NOT_ALLOWED: 403,
  INTEGRATION_NOT_ALLOWED: 403,
  ORIGIN_NOT_ALLOWED: 403,
  REQUEST_NOT_ALLOWED: 403,
  NOT_FOUND: 404,
  UNKNOWN_INTEGRATION: 404,
  UNKNOWN_PROVIDER: 404,
  CONFLICT: 409,
  NO_AUTH_RECORD: 409,
  AMBIGUOUS_INTEGRATION: 409,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MISDIRECTED_REQUEST: 421,
  CREDENTIAL_VALIDATION_FAILED: 422,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  JWT_NOT_CONFIGURED: 501,
  UPSTREAM_UNREACHABLE: 502,
  SIGNING_FAILED: 502,
  TOKEN_REFRESH_FAILED: 502,
  /** The upstream answered in a Content-Encoding latchkey cannot decode, so it cannot be redacted. */
  RESPONSE_NOT_REDACTABLE: 502,
  SERVICE_UNAVAILABLE: 503,
  UPSTREAM_TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetail {
  field: string;
  problem: string;
}

export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;
  /** RATE_LIMITED: sent as Retry-After by whichever listener answers. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetail[], extra?: { retryAfterSeconds?: number }) {
    super(message);
    this.name = 'LatchkeyError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = details;
    this.retryAfterSeconds = extra?.retryAfterSeconds;
  }
}

/** Headers that belong to an error answer, on either listener. */
export function errorHeaders(err: LatchkeyError): Record<string, string> {
  return err.retryAfterSeconds === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(err.retryAfterSeconds))) };
}

/** A VALIDATION_ERROR whose message lists every problem, field first. */
export function validationError(details: ErrorDetail[]): LatchkeyError {
  const message = details.map((d) => (d.field ? `${d.field}: ${d.problem}` : d.problem)).join('; ');
  return new LatchkeyError('VALIDATION_ERROR', message, details);
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[] };
  requestId: string;
}

export function errorBody(err: LatchkeyError, requestId: string): ErrorBody {
  const error: ErrorBody['error'] = { code: err.code, message: err.message };
  if (err.details) error.details = err.details;
  return { error, requestId };
}

/** Anything that is not a LatchkeyError is answered without its internals. */
export function asLatchkeyError(err: unknown): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  return new LatchkeyError('INTERNAL_ERROR', 'internal error');
}
