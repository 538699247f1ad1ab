/**
 * The admin listener's schema compilers, each compiling at a route's first
 * request instead of when the listener starts: compiling every route's
 * request schemas was about a tenth of a start, and most routes are never
 * called in a process's life. The compilers are fastify's own
 * (@fastify/ajv-compiler, @fastify/fast-json-stringify-compiler) given the
 * same options, so every answer and error is the one fastify would give; the
 * first request of a route pays its compile once (about a millisecond), the
 * very first one also the compiler's import.
 */
import { createRequire } from 'node:module';
import type { ValidatorFactory } from '@fastify/ajv-compiler';
import type { SerializerFactory } from '@fastify/fast-json-stringify-compiler';

type Compile = ReturnType<ValidatorFactory>;
type Validate = ReturnType<Compile>;
type Check = ((data: unknown, dataCxt?: unknown) => unknown) & { errors?: unknown; schema: unknown; schemaEnv: unknown };
type SerializerCompiler = ReturnType<SerializerFactory>;

const require = createRequire(import.meta.url);

export const lazyValidatorFactory: ValidatorFactory = (externalSchemas, options) => {
  let compile: Compile | undefined;
  return (route) => {
    // fastify lower-cases a headers schema only for its own compiler: with this one it would not.
    if (route.httpPart === 'headers') throw new Error(`${route.method} ${route.url}: headers schemas are not supported (src/admin/compilers.ts)`);
    let validate: Check | undefined;
    const check = ((data: unknown, dataCxt?: unknown) => {
      if (!validate) {
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

/** No route has a response schema today; should one get one, it is compiled at its first answer. */
export const lazySerializerFactory: SerializerFactory = (externalSchemas, options) => {
  let compile: SerializerCompiler | undefined;
  return (route) => {
    let serialize: ((doc: unknown) => string) | undefined;
    return (doc) => {
      compile ??= (require('@fastify/fast-json-stringify-compiler') as () => SerializerFactory)()(externalSchemas, options);
      serialize ??= compile(route);
      return serialize(doc);
    };
  };
};
