/**
 * AWS_SIGV4: every call is re-signed at send time with the record's keys.
 * The client (an AWS SDK given dummy credentials) may sign with anything: its
 * Authorization, X-Amz-Date and X-Amz-Security-Token are dropped and the
 * request is signed again over exactly what latchkey sends.
 */
import { LatchkeyError, type ErrorDetail } from '../../errors.js';
import type { CredentialKind, Injector, KindDeps, OutgoingRequest, ParsedCredential } from '../kind.js';
import { HEADER_VALUE_PATTERN } from '../headers.js';
import {
  EMPTY_SHA256,
  UNSIGNED_PAYLOADS,
  amzDate,
  authorizationHeader,
  canonicalRequest,
  clientScope,
  sha256Hex,
  Signer,
  signingKey,
  stringToSign,
  type Scope,
} from '../sigv4.js';

const SECRET_FIELDS = ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const;
const PUBLIC_FIELDS = ['region', 'service'] as const;
const LIMITS: Record<string, number> = { accessKeyId: 128, secretAccessKey: 256, sessionToken: 8192, region: 64, service: 64 };
/** Region and service become part of the signing scope: plain names only, so a scope can never be forged. */
const SCOPE_NAME = /^[a-z0-9-]+$/;
const VALUE = new RegExp(HEADER_VALUE_PATTERN);

function check(input: Record<string, unknown>, problems: ErrorDetail[], required: boolean): void {
  const known = new Set<string>([...SECRET_FIELDS, ...PUBLIC_FIELDS]);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) problems.push({ field: `aws.${key}`, problem: 'is not a field of AWS_SIGV4' });
  }
  for (const key of ['accessKeyId', 'secretAccessKey']) {
    if (required && input[key] === undefined) problems.push({ field: `aws.${key}`, problem: 'is required for authType AWS_SIGV4' });
  }
  for (const key of [...SECRET_FIELDS, ...PUBLIC_FIELDS]) {
    const v = input[key];
    if (v === undefined || (v === null && (key === 'region' || key === 'service' || key === 'sessionToken'))) continue;
    const field = `aws.${key}`;
    if (typeof v !== 'string' || v.length === 0) problems.push({ field, problem: 'must be a non-empty string' });
    else if (v.length > (LIMITS[key] as number)) problems.push({ field, problem: `must be at most ${LIMITS[key]} characters` });
    else if (!VALUE.test(v)) problems.push({ field, problem: 'must not contain control characters' });
    else if ((key === 'region' || key === 'service') && !SCOPE_NAME.test(v)) {
      problems.push({ field, problem: 'must be lower-case letters, digits and "-"' });
    } else if (key === 'accessKeyId' && /[/,\s]/.test(v)) problems.push({ field, problem: 'must not contain "/", "," or spaces' });
  }
}

function asObject(input: unknown, problems: ErrorDetail[]): Record<string, unknown> | null {
  if (input && typeof input === 'object' && !Array.isArray(input)) return input as Record<string, unknown>;
  problems.push({ field: 'aws', problem: 'must be an object' });
  return null;
}

function split(input: Record<string, unknown>, base: ParsedCredential): ParsedCredential {
  const secrets = { ...base.secrets };
  const config: Record<string, unknown> = { ...(base.config ?? {}) };
  for (const key of SECRET_FIELDS) {
    const v = input[key];
    if (v === null) delete secrets[key];
    else if (typeof v === 'string') secrets[key] = v;
  }
  for (const key of PUBLIC_FIELDS) {
    const v = input[key];
    if (v === null) delete config[key];
    else if (typeof v === 'string') config[key] = v;
  }
  return { secrets, config };
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** Scope keys are derived once per day, region and service, not per call. */
class KeyCache {
  private signer: Signer | null = null;
  private at = '';

  constructor(private readonly secret: string) {}

  get(scope: Scope): Signer {
    const id = `${scope.date}/${scope.region}/${scope.service}`;
    if (this.signer === null || this.at !== id) {
      this.signer = new Signer(signingKey(this.secret, scope));
      this.at = id;
    }
    return this.signer;
  }
}

/** X-Amz-Date changes once a second: formatted once a second. */
class Clock {
  private second = -1;
  private text = '';

  at(ms: number): string {
    const s = Math.floor(ms / 1000);
    if (s !== this.second) {
      this.second = s;
      this.text = amzDate(ms);
    }
    return this.text;
  }
}

export function sigv4Injector(
  fields: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined },
  config: { region?: string | undefined; service?: string | undefined },
  deps: KindDeps,
): Injector {
  const keys = new KeyCache(fields.secretAccessKey);
  const clock = new Clock();
  const streams = (req: OutgoingRequest): boolean => UNSIGNED_PAYLOADS.has(first(req.headers['x-amz-content-sha256']) ?? '');
  return {
    needsBody: { maxBytes: deps.maxBodyBytes, when: (req) => !streams(req) },
    apply(req) {
      const h = req.headers;
      // The SDK's own signature was removed with the latchkey key it carried; its scope is still worth reading.
      const fromClient = clientScope(first(h.authorization) ?? first(req.clientHeaders.authorization));
      const region = config.region ?? fromClient?.region;
      const service = config.service ?? fromClient?.service;
      if (!region || !service) {
        throw new LatchkeyError(
          'SIGNING_FAILED',
          'cannot sign: the auth record has no region/service and the request carries no SigV4 Credential scope to take them from',
        );
      }
      // The client's own signature and its (dummy) session are never forwarded: only latchkey's signature goes out.
      delete h.authorization;
      delete h['x-amz-date'];
      delete h['x-amz-security-token'];
      const declared = first(h['x-amz-content-sha256']);
      let payloadHash: string;
      if (declared !== undefined && UNSIGNED_PAYLOADS.has(declared)) {
        payloadHash = declared;
      } else if (declared !== undefined && declared.startsWith('STREAMING-')) {
        // Signed aws-chunked bodies chain a signature per chunk from the client's seed signature, made with the dummy key.
        throw new LatchkeyError(
          'SIGNING_FAILED',
          `cannot re-sign a ${declared} body: send UNSIGNED-PAYLOAD (or STREAMING-UNSIGNED-PAYLOAD-TRAILER) or a plain body`,
        );
      } else {
        payloadHash = req.body && req.body.length > 0 ? sha256Hex(req.body) : EMPTY_SHA256;
        // S3 requires the header; other services take the hash from the canonical request alone.
        if (declared !== undefined || service === 's3') h['x-amz-content-sha256'] = payloadHash;
      }
      const time = clock.at(req.now);
      h['x-amz-date'] = time;
      if (fields.sessionToken) h['x-amz-security-token'] = fields.sessionToken;
      h.host = req.host;
      const q = req.path.indexOf('?');
      const scope: Scope = { date: time.slice(0, 8), region, service };
      const { text, signedHeaders } = canonicalRequest(
        { method: req.method, path: q < 0 ? req.path : req.path.slice(0, q), query: q < 0 ? '' : req.path.slice(q + 1), headers: h, payloadHash },
        service,
      );
      // undici sets Host from the origin, and refuses a second one: it was signed, now it goes.
      delete h.host;
      const sig = keys.get(scope).sign(stringToSign(time, scope, text));
      h.authorization = authorizationHeader(fields.accessKeyId, scope, signedHeaders, sig);
    },
  };
}

export const awsSigV4Kind: CredentialKind = {
  type: 'AWS_SIGV4',
  field: 'aws',
  bodySchema: {
    type: 'object',
    description: 'AWS_SIGV4 credential: keys and token are sealed; region and service are shown. null removes an optional field (PATCH).',
    properties: {
      accessKeyId: { type: 'string' },
      secretAccessKey: { type: 'string' },
      sessionToken: { type: ['string', 'null'] },
      region: { type: ['string', 'null'] },
      service: { type: ['string', 'null'] },
    },
  },
  parse(input, problems) {
    const obj = asObject(input, problems);
    if (!obj) return { secrets: {}, config: null };
    check(obj, problems, true);
    return split(obj, { secrets: {}, config: {} });
  },
  patch(current, input, problems) {
    const obj = asObject(input, problems);
    if (!obj) return current;
    check(obj, problems, false);
    for (const key of ['accessKeyId', 'secretAccessKey']) {
      if (obj[key] === null) problems.push({ field: `aws.${key}`, problem: 'cannot be removed' });
    }
    return split(obj, current);
  },
  view: (config) => ({ region: (config?.region as string | undefined) ?? null, service: (config?.service as string | undefined) ?? null }),
  secretsOf: (input) => SECRET_FIELDS.flatMap((k) => (input.fields[k] ? [input.fields[k] as string] : [])),
  prepare(input, deps) {
    const f = input.fields;
    const injector = sigv4Injector(
      { accessKeyId: f.accessKeyId ?? '', secretAccessKey: f.secretAccessKey ?? '', sessionToken: f.sessionToken },
      { region: input.config?.region as string | undefined, service: input.config?.service as string | undefined },
      deps,
    );
    return { template: { headers: [], query: [], basic: null }, injector };
  },
};
