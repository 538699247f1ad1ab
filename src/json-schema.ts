/**
 * Validators for latchkey's own JSON schemas (the config, catalog entries,
 * HMAC templates).
 *
 * Compiling them with ajv took about a tenth of a start, ajv's import as
 * much again. So the build (scripts/build.mjs, src/json-schema-build.ts)
 * writes every registered schema's validator as ajv standalone code next to
 * this module, with a fingerprint of the schema, the options and ajv's
 * version; a start uses that code when the fingerprint matches and needs no
 * ajv at all. Anything else (no build output, a schema changed since the
 * build, a new ajv) compiles with ajv at the validator's first call, so an
 * out-of-date build can never validate with an old schema.
 *
 * `validateSchema: false`: ajv would otherwise compile the draft-07
 * meta-schema to check our own constant schemas; test/unit/json-schema.test.ts
 * checks each schema against the meta-schema instead.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';

type AjvClass = typeof import('ajv').default;

const require = createRequire(import.meta.url);

export const AJV_OPTIONS = { allErrors: true, strict: false, validateSchema: false } as const;
export const PRECOMPILED_FILE = 'json-schema.precompiled.cjs';

export interface Validator {
  (data: unknown): boolean;
  /** The errors of the last call that failed (ajv's own objects). */
  errors: ErrorObject[] | null | undefined;
}

const registry = new Map<string, object>();
let shared: InstanceType<AjvClass> | undefined;
let precompiled: Record<string, unknown> | null | undefined;

function newAjv(extra: object = {}): InstanceType<AjvClass> {
  // ajv ships CommonJS: its class is the module's default export.
  const Ajv = (require('ajv') as { default: AjvClass }).default;
  return new Ajv({ ...AJV_OPTIONS, ...extra });
}

/** What a validator was made from: the schema, the options and the ajv release. */
function fingerprint(schema: object): string {
  const { version } = require('ajv/package.json') as { version: string };
  return createHash('sha256').update(JSON.stringify([schema, AJV_OPTIONS, version])).digest('base64url');
}

function compile(name: string, schema: object): ValidateFunction {
  if (precompiled === undefined) {
    try {
      precompiled = require(`./${PRECOMPILED_FILE}`) as Record<string, unknown>;
    } catch {
      precompiled = null;
    }
  }
  const built = precompiled?.[name];
  const prints = precompiled?.fingerprints as Record<string, string> | undefined;
  if (typeof built === 'function' && prints?.[name] === fingerprint(schema)) return built as ValidateFunction;
  return (shared ??= newAjv()).compile(schema);
}

/** A validator for `schema`, made at its first call; `name` is its key in the build's output. */
export function lazyValidator(name: string, schema: object): Validator {
  if (registry.has(name)) throw new Error(`schema ${name} is registered twice`);
  registry.set(name, schema);
  let compiled: ValidateFunction | undefined;
  const check = ((data: unknown): boolean => {
    compiled ??= compile(name, schema);
    const ok = compiled(data);
    check.errors = compiled.errors;
    return ok;
  }) as Validator;
  check.errors = null;
  return check;
}

/** The build's output: a CommonJS module exporting every registered schema's validator and their fingerprints. */
export function precompiledSource(): string {
  const ajv = newAjv({ code: { source: true } });
  const refs: Record<string, string> = {};
  for (const [name, schema] of registry) {
    ajv.addSchema(schema, name);
    refs[name] = name;
  }
  const standaloneCode = (require('ajv/dist/standalone') as { default: (a: unknown, r: Record<string, string>) => string }).default;
  const prints = Object.fromEntries([...registry].map(([name, schema]) => [name, fingerprint(schema)]));
  return `// Written by the build (src/json-schema-build.ts): do not edit.\n${standaloneCode(ajv, refs)}\nexports.fingerprints = ${JSON.stringify(prints)};\n`;
}
