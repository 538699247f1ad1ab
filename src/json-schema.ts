/**
 * Validators for latchkey's own JSON schemas (the config, catalog entries,
 * HMAC templates): one ajv instance for all of them, each schema compiled at
 * its first use rather than when its module is imported, so a start pays only
 * for the schemas it really checks.
 *
 * `validateSchema: false`: ajv would otherwise compile the draft-07
 * meta-schema in every instance to check our own constant schemas, about a
 * third of the compile time; test/unit/json-schema.test.ts checks each schema
 * against the meta-schema instead.
 */
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';

// ajv ships CommonJS; under NodeNext its default export is the module object.
const Ajv = AjvModule.default;

export const AJV_OPTIONS = { allErrors: true, strict: false, validateSchema: false } as const;

let shared: InstanceType<typeof Ajv> | undefined;

export interface Validator {
  (data: unknown): boolean;
  /** The errors of the last call that failed (ajv's own objects). */
  errors: ErrorObject[] | null | undefined;
}

export function lazyValidator(schema: object): Validator {
  let compiled: ValidateFunction | undefined;
  const check = ((data: unknown): boolean => {
    compiled ??= (shared ??= new Ajv(AJV_OPTIONS)).compile(schema);
    const ok = compiled(data);
    check.errors = compiled.errors;
    return ok;
  }) as Validator;
  check.errors = null;
  return check;
}
