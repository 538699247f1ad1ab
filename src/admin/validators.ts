/**
 * The admin listener's request validators, compiled at each route's first
 * request instead of when the listener starts: compiling every route's
 * schemas was about a tenth of a start, and most routes are never called in
 * a process's life. The compiler is fastify's own (@fastify/ajv-compiler,
 * given the same ajv options), so every answer and error is the one fastify
 * would give; the first request of a route pays its compile once (about a
 * millisecond).
 */
import { createRequire } from 'node:module';
import type { ValidatorFactory } from '@fastify/ajv-compiler';

type Compile = ReturnType<ValidatorFactory>;
type Route = Parameters<Compile>[0];
type Validate = ReturnType<Compile>;
type Check = ((data: unknown, dataCxt?: unknown) => unknown) & { errors?: unknown; schema: unknown; schemaEnv: unknown };

const require = createRequire(import.meta.url);

export const lazyValidatorFactory: ValidatorFactory = (externalSchemas, options) => {
  let compile: Compile | undefined;
  return (route: Route) => {
    // fastify lower-cases a headers schema only for its own compiler: with this one it would not.
    if (route.httpPart === 'headers') throw new Error(`${route.method} ${route.url}: headers schemas are not supported (src/admin/validators.ts)`);
    let validate: Check | undefined;
    const check = ((data: unknown, dataCxt?: unknown) => {
      if (!validate) {
        // Loaded (with ajv-formats) at the first request that validates anything.
        compile ??= (require('@fastify/ajv-compiler') as () => ValidatorFactory)()(externalSchemas, options);
        validate = compile(route) as unknown as Check;
      }
      const result = validate(data, dataCxt);
      check.errors = validate.errors;
      return result;
    }) as Check;
    // fastify hands an ajv function (one with schemaEnv) its parent data too: so does this one.
    check.schema = route.schema;
    check.schemaEnv = {};
    return check as unknown as Validate;
  };
};
