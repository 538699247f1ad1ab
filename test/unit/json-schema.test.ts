import AjvModule from 'ajv';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA } from '../../src/config/schema.js';
import { PROVIDER_SCHEMA } from '../../src/catalog/catalog.js';
import { HMAC_TEMPLATE_SCHEMA } from '../../src/credentials/hmac-template.js';
import { lazyValidator } from '../../src/json-schema.js';

const Ajv = AjvModule.default;

describe('latchkey’s own JSON schemas', () => {
  // The runtime compiles them without checking them against the meta-schema (start time): this test does it.
  it.each([
    ['config', CONFIG_SCHEMA],
    ['catalog entry', PROVIDER_SCHEMA],
    ['HMAC template', HMAC_TEMPLATE_SCHEMA],
  ])('the %s schema is a valid draft-07 schema', (_name, schema) => {
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema(schema), JSON.stringify(ajv.errors)).toBe(true);
  });

  it('a lazy validator compiles at its first call and reports the errors of the last call', () => {
    const check = lazyValidator({ type: 'object', required: ['a'], properties: { a: { type: 'integer' } } });
    expect(check.errors).toBeNull();
    expect(check({ a: 'x' })).toBe(false);
    expect(check.errors?.[0]).toMatchObject({ instancePath: '/a', keyword: 'type' });
    expect(check({ a: 1 })).toBe(true);
    expect(check.errors).toBeNull();
  });
});
