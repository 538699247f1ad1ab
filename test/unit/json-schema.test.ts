import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import AjvModule from 'ajv';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, DEFAULTS } from '../../src/config/schema.js';
import { PROVIDER_SCHEMA, builtInCatalogPath } from '../../src/catalog/catalog.js';
import { HMAC_TEMPLATE_SCHEMA } from '../../src/credentials/hmac-template.js';
import { AJV_OPTIONS, lazyValidator, precompiledSource } from '../../src/json-schema.js';

const Ajv = AjvModule.default;
const SCHEMAS = [
  ['config', CONFIG_SCHEMA],
  ['catalogEntry', PROVIDER_SCHEMA],
  ['hmacTemplate', HMAC_TEMPLATE_SCHEMA],
] as const;

const builtIn = JSON.parse(readFileSync(builtInCatalogPath(), 'utf8')) as Array<Record<string, unknown>>;
/** Sound and broken inputs for each schema: every answer and error must be the same either way. */
const SAMPLES: Record<string, unknown[]> = {
  config: [DEFAULTS, {}, { proxy: { addr: 7 } }, { ...DEFAULTS, typo: true }, { ...DEFAULTS, workers: 'many' }, null],
  catalogEntry: [...builtIn, {}, { ...builtIn[0], kind: 'nope' }, { ...builtIn[0], allowedHosts: [] }, { ...builtIn[0], extra: 1 }],
  hmacTemplate: [
    ...builtIn.flatMap((p) => ((p.sign as { hmac?: unknown } | undefined)?.hmac ? [(p.sign as { hmac: unknown }).hmac] : [])),
    {},
    { algorithm: 'md5' },
    { algorithm: 'sha256', message: [{ type: 'nope' }] },
  ],
};

describe('latchkey’s own JSON schemas', () => {
  // The runtime compiles them without checking them against the meta-schema (start time): this test does it.
  it.each(SCHEMAS)('the %s schema is a valid draft-07 schema', (_name, schema) => {
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
  });

  it('the build’s precompiled validators answer exactly as ajv compiling the schema at run time', () => {
    // Run as CommonJS with this repository's require, as the build's output resolves ajv's runtime helpers from dist/.
    const pre: Record<string, ((d: unknown) => boolean) & { errors: unknown }> = {};
    new Function('exports', 'require', precompiledSource())(pre, createRequire(import.meta.url));
    expect(Object.keys(pre.fingerprints ?? {}).sort()).toEqual(SCHEMAS.map(([n]) => n).sort());
    for (const [name, schema] of SCHEMAS) {
      const runtime = new Ajv(AJV_OPTIONS).compile(schema);
      const built = pre[name];
      expect(built, name).toBeTypeOf('function');
      const samples = SAMPLES[name] ?? [];
      expect(samples.length).toBeGreaterThan(3);
      let failures = 0;
      for (const sample of samples) {
        const ok = runtime(sample);
        expect((built as (d: unknown) => boolean)(sample), `${name}: ${JSON.stringify(sample)}`).toBe(ok);
        expect(built?.errors).toEqual(runtime.errors);
        if (!ok) failures++;
      }
      expect(failures, `${name}: broken samples`).toBeGreaterThan(0);
    }
  });

  it('a lazy validator compiles at its first call and reports the errors of the last call', () => {
    const check = lazyValidator('unitTest', { type: 'object', required: ['a'], properties: { a: { type: 'integer' } } });
    expect(check.errors).toBeNull();
    expect(check({ a: 'x' })).toBe(false);
    expect(check.errors?.[0]).toMatchObject({ instancePath: '/a', keyword: 'type' });
    expect(check({ a: 1 })).toBe(true);
    expect(check.errors).toBeNull();
  });
});
