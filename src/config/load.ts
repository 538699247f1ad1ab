import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { CONFIG_SCHEMA, DEFAULTS, ENV_OVERRIDES, type FileConfig } from './schema.js';
import { buildCatalog, type Catalog } from '../catalog/catalog.js';
import { checkAllowedHosts, isLinkLocal } from '../hosts.js';
import { lazyValidator } from '../json-schema.js';

export interface Address {
  host: string;
  port: number;
}

export interface Config extends FileConfig {
  /** config/providers.json with the config's providers, validated. */
  providerCatalog: Catalog;
  proxyAddress: Address;
  adminAddress: Address;
  /** Secrets come from the environment only, never from a config file. */
  masterKey: string | undefined;
  adminKey: string | undefined;
  jwtSecret: string | undefined;
  /** The config files that were read, in order. */
  sources: string[];
  /** `workers` resolved: "auto" is the number of cores. */
  workerCount: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;
type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? merge(b, v) : v;
  }
  return out;
}

function readJsonFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: invalid JSON (${(err as Error).message})`);
  }
  if (!isObject(parsed)) throw new ConfigError(`config file ${path}: must hold a JSON object`);
  return parsed;
}

function configFiles(env: Env): string[] {
  if (env.LATCHKEY_CONFIG) return [env.LATCHKEY_CONFIG];
  return ['config/default.json', 'config/local.json'].filter((p) => existsSync(p));
}

export function parseAddress(addr: string, key: string): Address {
  const i = addr.lastIndexOf(':');
  let host = addr.slice(0, i);
  const port = Number(addr.slice(i + 1));
  if (host.startsWith('[')) host = host.slice(1, -1);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${key}: port must be between 0 and 65535, got "${addr}"`);
  }
  if (host.includes(':') && isIP(host) !== 6) throw new ConfigError(`${key}: invalid IPv6 address "${addr}"`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const validate = lazyValidator('config', CONFIG_SCHEMA);

/**
 * Defaults < config file(s) < environment, validated once. Every problem is
 * reported by the dotted key that holds it, so `check-config` can point at it.
 */
export function loadConfig(env: Env = process.env): Config {
  const sources = configFiles(env);
  let raw: Json = structuredClone(DEFAULTS) as unknown as Json;
  for (const file of sources) raw = merge(raw, readJsonFile(file));
  for (const { env: name, path, numeric } of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let node = raw;
    for (const part of path.slice(0, -1)) node = node[part] as Json;
    // A number given as text (LATCHKEY_WORKERS=2) is that number; schema validation judges the rest.
    node[path[path.length - 1] as string] = numeric && /^\d{1,9}$/.test(value) ? Number(value) : value;
  }

  if (!validate(raw)) {
    const problems = (validate.errors ?? []).map((e) => {
      const key = e.instancePath.slice(1).replaceAll('/', '.') || '(root)';
      const extra = e.keyword === 'additionalProperties' ? ` "${String(e.params.additionalProperty)}"` : '';
      return `${key}: ${e.message ?? 'invalid'}${extra}`;
    });
    throw new ConfigError(`invalid config: ${problems.join('; ')}`);
  }
  const file = raw as unknown as FileConfig;
  const proxyAddress = parseAddress(file.proxy.addr, 'proxy.addr');
  const adminAddress = parseAddress(file.admin.addr, 'admin.addr');
  if (file.proxy.clientAuth === 'none' && !isLoopback(proxyAddress.host)) {
    // Without client auth anyone who reaches the listener spends the stored credentials.
    throw new ConfigError('proxy.clientAuth: "none" is allowed only when proxy.addr is a loopback address');
  }
  if (file.proxy.caFile && !existsSync(file.proxy.caFile)) {
    throw new ConfigError(`proxy.caFile: file ${file.proxy.caFile} does not exist`);
  }
  const badPassthrough = checkAllowedHosts(file.proxy.passthroughHosts).map(
    (d) => `proxy.passthroughHosts${d.field.slice('allowedHosts'.length)}: ${d.problem}`,
  );
  for (const entry of file.proxy.passthroughHosts) {
    // A blind tunnel to a metadata service would be the one hole the proxy leaves open.
    if (isLinkLocal(entry.replace(/:\d+$/, ''))) badPassthrough.push(`proxy.passthroughHosts: ${entry} is link-local`);
  }
  if (badPassthrough.length > 0) throw new ConfigError(`invalid config: ${badPassthrough.join('; ')}`);

  const providerCatalog = buildCatalog(file.providers);
  if (Array.isArray(providerCatalog)) throw new ConfigError(`invalid provider catalog: ${providerCatalog.join('; ')}`);

  const adminKey = env.LATCHKEY_ADMIN_KEY || undefined;
  if (adminKey !== undefined && (!adminKey.startsWith('lk_') || adminKey.length < 32)) {
    throw new ConfigError('LATCHKEY_ADMIN_KEY: must start with "lk_" and be at least 32 characters');
  }
  const jwtSecret = env.LATCHKEY_JWT_SECRET || undefined;
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32) {
    throw new ConfigError('LATCHKEY_JWT_SECRET: must be at least 32 bytes');
  }

  return Object.freeze({
    ...file,
    proxyAddress,
    adminAddress,
    providerCatalog,
    masterKey: env.LATCHKEY_MASTER_KEY || undefined,
    adminKey,
    jwtSecret,
    sources,
    workerCount: file.workers === 'auto' ? availableParallelism() : file.workers,
  });
}
