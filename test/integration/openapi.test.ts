import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020Module from 'ajv/dist/2020.js';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { call } from '../helpers/http.js';
import { ROUTE_DOCS } from '../../src/admin/api-docs.js';
import { isDocumentedRoute, openApiPath } from '../../src/admin/openapi.js';
import { ERROR_STATUS } from '../../src/errors.js';

const Ajv2020 = Ajv2020Module.default;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let lk: TestLatchkey;
let doc: Json;

beforeAll(async () => {
  lk = await startLatchkey();
  const res = await call(`${lk.adminUrl}/openapi.json`);
  expect(res.status).toBe(200);
  doc = res.json;
});
afterAll(async () => lk.close());

const operations = (): Array<{ key: string; op: Json }> =>
  Object.entries(doc.paths as Record<string, Json>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op: op as Json })),
  );

/** A media object's examples: `example`, or `examples: { name: { value } }` (OpenAPI 3.1). */
const mediaExamples = (media: Json): unknown[] =>
  media.example !== undefined ? [media.example] : Object.values((media.examples ?? {}) as Record<string, Json>).map((e) => e.value);

describe('GET /openapi.json', () => {
  it('needs no credential and is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every route the admin listener registered, and nothing else', () => {
    const registered = lk
      .adminRoutes()
      .filter((r) => isDocumentedRoute(r.method, r.url))
      .map((r) => `${r.method} ${openApiPath(r.url)}`);
    expect(registered.length).toBeGreaterThan(15);
    const documented = operations().map((o) => o.key);
    expect([...documented].sort()).toEqual([...new Set(registered)].sort());
  });

  it('gives every route a written summary, its success response and its error codes', () => {
    for (const { key, op } of operations()) {
      const routeDoc = ROUTE_DOCS[key];
      expect(routeDoc, `api-docs.ts has no entry for ${key}`).toBeDefined();
      expect(op.summary).toBe(routeDoc?.summary);
      expect(Object.keys(op.responses)).toContain(String(routeDoc?.status));
      if (key.includes(' /v1/')) {
        expect(op.responses['401'].description).toContain('INVALID_API_KEY');
        expect(op.security.length).toBeGreaterThan(0);
      } else {
        expect(op.security).toEqual([]);
      }
      for (const code of routeDoc?.errors ?? []) {
        expect(op.responses[String(ERROR_STATUS[code])].description, `${key} ${code}`).toContain(code);
      }
      for (const [status, r] of Object.entries(op.responses as Record<string, Json>)) {
        if (Number(status) >= 400) expect(r.content['application/json'].schema.$ref).toBe('#/components/schemas/Error');
      }
    }
  });

  it('carries the request schemas the routes validate with, each with an example that validates', async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const withBody = operations().filter((o) => o.op.requestBody);
    expect(withBody.map((o) => o.key)).toEqual(expect.arrayContaining(['POST /v1/integrations', 'POST /v1/api-keys', 'PATCH /v1/integrations/{integrationId}/auth/{authId}']));
    for (const { key, op } of withBody) {
      const media = op.requestBody.content['application/json'] as Json;
      const examples = mediaExamples(media);
      expect(examples.length, `${key} has no example`).toBeGreaterThan(0);
      const validate = ajv.compile(media.schema as Json);
      for (const example of examples) {
        expect(validate(example), `${key}: ${JSON.stringify(validate.errors)}`).toBe(true);
      }
      // The schema is the route's own: something it forbids is refused by the route as well.
      expect(validate({ notAField: 1 })).toBe(false);
    }
  });

  it('documents exactly what the routes enforce: the integration example is accepted by the server', async () => {
    const create = operations().find((o) => o.key === 'POST /v1/integrations')?.op as Json;
    const example = mediaExamples(create.requestBody.content['application/json'])[0];
    const res = await lk.admin.post('/v1/integrations', example);
    expect(res.status).toBe(201);
    const refused = await lk.admin.post('/v1/integrations', { notAField: 1, baseUrl: 'https://x.example' });
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBe('VALIDATION_ERROR');
  });
});
