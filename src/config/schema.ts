/**
 * The config schema: the single source of truth for every setting, its type
 * and its default. Files and the environment are merged onto DEFAULTS and the
 * result is validated once against CONFIG_SCHEMA.
 */
export interface FileConfig {
  proxy: {
    addr: string;
    clientAuth: 'required' | 'none';
    connectTimeoutMs: number;
    headersTimeoutMs: number;
    bodyTimeoutMs: number;
    caFile: string | null;
    /** Request signers (SigV4, HMAC) buffer a body to hash it: at most this many bytes. */
    signing: { maxBodyBytes: number };
    /** CONNECT targets tunnelled untouched (no interception, no credential) when no integration allows them. */
    passthroughHosts: string[];
  };
  admin: { addr: string };
  db: string;
  masterKeyFile: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  shutdownGraceMs: number;
  audit: { retentionDays: number };
  /** Catalog entries added to (or replacing) config/providers.json; checked by the catalog's own schema. */
  providers: unknown[];
  catalog: { probeTimeoutMs: number };
  /** `auto`: readable lines when stdout is a terminal, JSON lines otherwise. */
  logFormat: 'auto' | 'json' | 'pretty';
  console: {
    /** A console session ends this long after sign-in (or when its key is revoked or expires). */
    sessionMinutes: number;
    /** Origins besides the admin listener's own (e.g. behind a reverse proxy) that may send console forms. */
    origins: string[];
  };
  oauth: {
    /** Seconds before expiry that an access token is renewed. */
    refreshMarginSeconds: number;
    /** Where providers send a person back after the connect flow; null: http://{admin addr}/oauth/callback. */
    redirectUri: string | null;
    /** Token endpoint requests give up after this. */
    tokenTimeoutMs: number;
  };
  /** Processes serving the proxy listener: a number, or "auto" for one per core. */
  workers: number | 'auto';
  /** Bounds of the in-memory caches, per process (entries; the least recently used goes first). */
  cache: { plans: number; keys: number };
}

export const DEFAULTS: FileConfig = {
  proxy: {
    addr: '127.0.0.1:7480',
    clientAuth: 'required',
    connectTimeoutMs: 10_000,
    // LLM APIs can think for minutes before the first byte or between tokens.
    headersTimeoutMs: 300_000,
    bodyTimeoutMs: 300_000,
    caFile: null,
    signing: { maxBodyBytes: 16 * 1024 * 1024 },
    passthroughHosts: [],
  },
  admin: { addr: '127.0.0.1:7481' },
  db: './data/latchkey.db',
  masterKeyFile: './data/master.key',
  logLevel: 'info',
  shutdownGraceMs: 10_000,
  audit: { retentionDays: 30 },
  providers: [],
  catalog: { probeTimeoutMs: 5000 },
  logFormat: 'auto',
  console: { sessionMinutes: 60, origins: [] },
  oauth: { refreshMarginSeconds: 60, redirectUri: null, tokenTimeoutMs: 10_000 },
  workers: 1,
  // About 2 KiB per plan measured with bearer tokens: 100,000 plans cost some 200 MiB at most.
  cache: { plans: 100_000, keys: 10_000 },
};

const ADDR = { type: 'string', pattern: '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$' };
const MS = { type: 'integer', minimum: 1, maximum: 86_400_000 };

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['proxy', 'admin', 'db', 'masterKeyFile', 'logLevel', 'shutdownGraceMs', 'audit', 'providers', 'catalog', 'logFormat', 'console', 'oauth', 'workers', 'cache'],
  properties: {
    proxy: {
      type: 'object',
      additionalProperties: false,
      required: ['addr', 'clientAuth', 'connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs', 'caFile', 'signing', 'passthroughHosts'],
      properties: {
        addr: ADDR,
        clientAuth: { enum: ['required', 'none'] },
        connectTimeoutMs: MS,
        headersTimeoutMs: MS,
        bodyTimeoutMs: MS,
        caFile: { type: ['string', 'null'], minLength: 1 },
        signing: {
          type: 'object',
          additionalProperties: false,
          required: ['maxBodyBytes'],
          properties: { maxBodyBytes: { type: 'integer', minimum: 0, maximum: 1024 * 1024 * 1024 } },
        },
        passthroughHosts: { type: 'array', maxItems: 500, items: { type: 'string', minLength: 1, maxLength: 260 } },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      required: ['addr'],
      properties: { addr: ADDR },
    },
    db: { type: 'string', minLength: 1 },
    masterKeyFile: { type: 'string', minLength: 1 },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    shutdownGraceMs: { type: 'integer', minimum: 0, maximum: 600_000 },
    audit: {
      type: 'object',
      additionalProperties: false,
      required: ['retentionDays'],
      properties: { retentionDays: { type: 'integer', minimum: 1, maximum: 3650 } },
    },
    providers: { type: 'array', maxItems: 500 },
    catalog: {
      type: 'object',
      additionalProperties: false,
      required: ['probeTimeoutMs'],
      properties: { probeTimeoutMs: MS },
    },
    logFormat: { enum: ['auto', 'json', 'pretty'] },
    console: {
      type: 'object',
      additionalProperties: false,
      required: ['sessionMinutes', 'origins'],
      properties: {
        sessionMinutes: { type: 'integer', minimum: 1, maximum: 10_080 },
        origins: { type: 'array', maxItems: 20, items: { type: 'string', pattern: '^https?://[^/?#]+$' } },
      },
    },
    oauth: {
      type: 'object',
      additionalProperties: false,
      required: ['refreshMarginSeconds', 'redirectUri', 'tokenTimeoutMs'],
      properties: {
        refreshMarginSeconds: { type: 'integer', minimum: 0, maximum: 86_400 },
        redirectUri: { type: ['string', 'null'], pattern: '^https?://', maxLength: 2048 },
        tokenTimeoutMs: MS,
      },
    },
    workers: { oneOf: [{ type: 'integer', minimum: 1, maximum: 256 }, { const: 'auto' }] },
    cache: {
      type: 'object',
      additionalProperties: false,
      required: ['plans', 'keys'],
      properties: {
        plans: { type: 'integer', minimum: 1, maximum: 10_000_000 },
        keys: { type: 'integer', minimum: 1, maximum: 10_000_000 },
      },
    },
  },
} as const;

/** Environment variables that override one config key each. */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; path: string[]; numeric?: boolean }> = [
  { env: 'LATCHKEY_PROXY_ADDR', path: ['proxy', 'addr'] },
  { env: 'LATCHKEY_ADMIN_ADDR', path: ['admin', 'addr'] },
  { env: 'LATCHKEY_DB', path: ['db'] },
  { env: 'LATCHKEY_MASTER_KEY_FILE', path: ['masterKeyFile'] },
  { env: 'LATCHKEY_LOG_LEVEL', path: ['logLevel'] },
  { env: 'LATCHKEY_LOG_FORMAT', path: ['logFormat'] },
  { env: 'LATCHKEY_WORKERS', path: ['workers'], numeric: true },
];
