/**
 * The seam of the one injection engine. Every credential kind compiles to a
 * Prepared credential once per plan (cached, not per call):
 *
 * - static kinds (bearer, basic, API key, catalog API-key providers) are only
 *   a template, rendered once into headers and query parameters;
 * - dynamic kinds (request signers, token kinds) also carry an Injector whose
 *   apply() runs on every call at send time, after every other edit, in every
 *   mode (path, header, forward proxy, WebSocket upgrade).
 *
 * A new kind implements CredentialKind and registers in kinds/index.ts; it
 * never touches the pipeline.
 */
import type { ErrorDetail } from '../errors.js';
import type { InjectionTemplate } from './template.js';
import type { ApiKeyPlacement, AuthType } from './auth-types.js';

/** Opened secret fields of a record (all sealed together). */
export type Fields = Readonly<Record<string, string | undefined>>;

/** The request about to be sent upstream, as the injector sees and edits it. */
export interface OutgoingRequest {
  readonly method: string;
  /** `scheme://host[:port]` the request is sent to. */
  readonly origin: string;
  /** The Host header the upstream receives (the origin's host; the port only when not the scheme's default). */
  readonly host: string;
  /** Path and query exactly as sent (raw, still percent-encoded). The injector may change the query. */
  path: string;
  /** Lower-case names; the injector may set, replace or delete. */
  headers: Record<string, string | string[]>;
  /**
   * The headers the client sent, before latchkey removed its key and hop-by-hop
   * headers (read-only): e.g. the region in an SDK's own dummy signature.
   * Never copy a value from here into the request without checking it.
   */
  readonly clientHeaders: Readonly<Record<string, string | string[] | undefined>>;
  /**
   * The exact body bytes sent, when the injector's needsBody applied to this
   * call; an empty buffer when the call has no body. Null when the body
   * streams through unread.
   */
  readonly body: Buffer | null;
  /** Latchkey's clock for this call (ms since the epoch): signers never trust the client's. */
  readonly now: number;
  /** A secret value put into this call at apply time (a fresh access token, a signature key): redaction must know it. */
  addSecret(value: string): void;
}

export interface Injector {
  /**
   * Only for injectors that read the body (signers hashing it): the body is
   * then buffered, at most maxBytes (above: 413 PAYLOAD_TOO_LARGE, nothing
   * sent). `when`, if given, decides per call (a client-declared unsigned
   * payload streams instead).
   */
  needsBody?: { maxBytes: number; when?: (req: OutgoingRequest) => boolean };
  /** Runs last, at send time. A failure throws a LatchkeyError (e.g. SIGNING_FAILED): nothing is sent. */
  apply(req: OutgoingRequest): void | Promise<void>;
  /**
   * Token kinds: the upstream answered 401 to `req` (as applied). Renews the
   * credential and re-applies it to `req`; true means: send it once more. Only
   * called when the body can be sent again (buffered, or none).
   */
  onUnauthorized?(req: OutgoingRequest): Promise<boolean>;
}

/** Access tokens of the token kinds (src/credentials/tokens): obtained, kept and renewed by latchkey. */
export interface TokenSource {
  /** `version` changes when the record is edited; `refused`: a token the upstream just answered 401 to. */
  accessToken(integrationId: string, authId: string, version: string, refused?: string | null): Promise<string>;
}

/** What a record holds, as the kind sees it when preparing. */
export interface KindInput {
  authType: AuthType;
  fields: Fields;
  /** Non-secret settings of the kind (region, a signing template...), stored as JSON beside the sealed blob. */
  config: Readonly<Record<string, unknown>> | null;
  /** A catalog provider's static template, if any. */
  template: InjectionTemplate | null;
  apiKey: ApiKeyPlacement | null;
  /** The stored record this plan is for (absent for a catalog probe): token kinds key their cache on it. */
  record?: { integrationId: string; authId: string; updatedAt: string };
}

export interface Prepared {
  /** Rendered once into the plan's headers and query (may be empty). */
  template: InjectionTemplate;
  /** Runs per call at send time; null for static kinds. */
  injector: Injector | null;
  /** Where a client's own `lk_` key may sit besides the template's places (e.g. `authorization` for signers). */
  clientKeyHeaders?: string[];
}

/** What a kind's parse() gives back for storage. */
export interface ParsedCredential {
  /** Sealed together; every value here is secret. */
  secrets: Record<string, string>;
  /** Non-secret settings, shown (through view) in admin responses. */
  config: Record<string, unknown> | null;
}

/** Settings every kind may depend on, created in app.ts and passed in (no module-level state). */
export interface KindDeps {
  /** `proxy.signing.maxBodyBytes`: the most a signer buffers to hash a body. */
  maxBodyBytes: number;
  /** The token cache (token kinds); absent where no token kind can occur. */
  tokens?: TokenSource;
}

export interface CredentialKind {
  readonly type: AuthType;
  /**
   * Kinds beyond the seed four keep their credential under one request-body
   * property (`aws`, `hmac`, `oauth2`...), parsed and patched by the kind itself.
   */
  readonly field?: string;
  /** JSON Schema of that property for the admin API description; the kind's parse() does the real checking. */
  readonly bodySchema?: Record<string, unknown>;
  /** Create: the body's `field` value; a problem is a detail naming the field (400 VALIDATION_ERROR). */
  parse?(input: unknown, problems: ErrorDetail[]): ParsedCredential;
  /** PATCH: given keys change, the rest stay. */
  patch?(current: ParsedCredential, input: unknown, problems: ErrorDetail[]): ParsedCredential;
  /** The non-secret view merged into admin responses under `field`. */
  view?(config: Readonly<Record<string, unknown>> | null): Record<string, unknown>;
  /** Every secret value this record may inject: what redaction must never let back out. */
  secretsOf(input: KindInput): string[];
  prepare(input: KindInput, deps: KindDeps): Prepared;
}
