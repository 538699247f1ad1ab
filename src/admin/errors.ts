import type { FastifyError } from 'fastify';
import { LatchkeyError, type ErrorDetail } from '../errors.js';

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
  parentSchema?: { description?: string };
}

/** "/headers/0/key" -> "headers[0].key" */
function fieldName(path: string, extra?: unknown): string {
  const parts = path.split('/').slice(1);
  if (extra !== undefined) parts.push(String(extra));
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');
}

function detail(e: AjvError): ErrorDetail {
  switch (e.keyword) {
    case 'required':
      return { field: fieldName(e.instancePath, e.params.missingProperty), problem: 'is required' };
    case 'additionalProperties':
      return { field: fieldName(e.instancePath, e.params.additionalProperty), problem: 'is not a known field' };
    case 'maxLength':
      return { field: fieldName(e.instancePath), problem: `must be at most ${String(e.params.limit)} characters` };
    case 'minLength':
      return { field: fieldName(e.instancePath), problem: e.params.limit === 1 ? 'must not be empty' : `must be at least ${String(e.params.limit)} characters` };
    case 'maxItems':
      return { field: fieldName(e.instancePath), problem: `must have at most ${String(e.params.limit)} items` };
    case 'pattern':
      return { field: fieldName(e.instancePath), problem: e.parentSchema?.description ?? 'has an invalid format' };
    case 'enum':
      return { field: fieldName(e.instancePath), problem: `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` };
    default:
      return { field: fieldName(e.instancePath), problem: e.message ?? 'is invalid' };
  }
}

/** Maps fastify's own failures (parsing, limits, schema) to latchkey codes. */
export function fromFastifyError(err: FastifyError & { validation?: AjvError[]; validationContext?: string }): LatchkeyError {
  if (err instanceof LatchkeyError) return err;
  if (err.validation) {
    const details = err.validation.map(detail);
    const message = details.map((d) => (d.field ? `${d.field}: ${d.problem}` : d.problem)).join('; ');
    return new LatchkeyError('VALIDATION_ERROR', `${err.validationContext === 'body' ? '' : `${err.validationContext ?? 'request'}: `}${message}`, details);
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new LatchkeyError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new LatchkeyError('PAYLOAD_TOO_LARGE', 'the body must be at most 64 KiB');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new LatchkeyError('INVALID_JSON', 'the body is not valid JSON');
  }
  if (err instanceof SyntaxError || err.statusCode === 400) return new LatchkeyError('INVALID_JSON', 'the body is not valid JSON');
  if (err.statusCode === 413) return new LatchkeyError('PAYLOAD_TOO_LARGE', 'the body must be at most 64 KiB');
  return new LatchkeyError('INTERNAL_ERROR', 'internal error');
}
