import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { applyInjector } from '../../src/proxy/apply.js';
import type { AuthPlan } from '../../src/proxy/plans.js';
import type { UpstreamRequest } from '../../src/proxy/forward.js';
import type { Injector, OutgoingRequest } from '../../src/credentials/kind.js';
import { LatchkeyError } from '../../src/errors.js';

const plan = (injector: Injector | null): AuthPlan => ({
  authId: 'a',
  authType: 'API_KEY',
  credentialHeaders: [],
  credentialQuery: [],
  headers: [],
  query: [],
  injector,
  secrets: ['plan-secret'],
  redactor: null,
  recordSubject: null,
});

const upstream = (): UpstreamRequest => ({
  origin: 'https://api.example.com:8443',
  path: '/x?a=1',
  method: 'POST',
  headers: { 'content-type': 'text/plain' },
  hostname: 'api.example.com',
  injectedQuery: [],
  redactor: null,
});

/** A client body stream that records whether anyone read it. */
function clientBody(body: Buffer, headers: Record<string, string>): IncomingMessage & { readFrom: () => boolean } {
  const s = new PassThrough() as unknown as IncomingMessage & { readFrom: () => boolean };
  s.headers = headers;
  // Never put in flowing mode and never read: nobody touched it.
  s.readFrom = () => (s as unknown as PassThrough).readableFlowing !== null || (s as unknown as PassThrough).readableEnded;
  (s as unknown as PassThrough).end(body);
  return s;
}

describe('applyInjector', () => {
  it('leaves a static plan alone and returns its secrets', async () => {
    const up = upstream();
    expect(await applyInjector(plan(null), up, null)).toEqual(['plan-secret']);
    expect(up.body).toBeUndefined();
  });

  it('runs apply last with the built request, latchkey time, and buffers the body it needs', async () => {
    let seen: { host: string; body: string | null; now: number } | null = null;
    const injector: Injector = {
      needsBody: { maxBytes: 100 },
      apply(req: OutgoingRequest) {
        seen = { host: req.host, body: req.body?.toString() ?? null, now: req.now };
        req.headers['x-sig'] = 'signed';
        req.path += '&sig=1';
        req.addSecret('per-call-token');
      },
    };
    const up = upstream();
    const secrets = await applyInjector(plan(injector), up, clientBody(Buffer.from('hello'), { 'content-length': '5' }), 1234);
    expect(seen).toEqual({ host: 'api.example.com:8443', body: 'hello', now: 1234 });
    expect(up.body?.toString()).toBe('hello');
    expect(up.headers['x-sig']).toBe('signed');
    expect(up.path).toBe('/x?a=1&sig=1');
    expect(secrets).toEqual(['plan-secret', 'per-call-token']);
  });

  it('answers 413 above maxBytes, declared or streamed, before apply runs', async () => {
    let applied = false;
    const injector: Injector = { needsBody: { maxBytes: 4 }, apply: () => void (applied = true) };
    for (const headers of [{ 'content-length': '5' }, { 'transfer-encoding': 'chunked' }] as Array<Record<string, string>>) {
      // A plan with an injector always answers with a promise.
      const err = await (applyInjector(plan(injector), upstream(), clientBody(Buffer.from('hello'), headers)) as Promise<string[]>).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LatchkeyError);
      expect((err as LatchkeyError).code).toBe('PAYLOAD_TOO_LARGE');
      expect((err as LatchkeyError).status).toBe(413);
    }
    expect(applied).toBe(false);
  });

  it('does not read the body when needsBody.when declines the call: it streams', async () => {
    const injector: Injector = { needsBody: { maxBytes: 4, when: (req) => req.headers['x-stream'] !== '1' }, apply: () => undefined };
    const up = upstream();
    up.headers['x-stream'] = '1';
    const body = clientBody(Buffer.from('a long body that would be over the limit'), { 'content-length': '40' });
    await applyInjector(plan(injector), up, body);
    expect(up.body).toBeUndefined();
    expect(body.readFrom()).toBe(false);
  });

  it('gives an injector that needs the body an empty one when the call has none', async () => {
    let body: Buffer | null = null;
    const injector: Injector = { needsBody: { maxBytes: 4 }, apply: (req) => void (body = req.body) };
    await applyInjector(plan(injector), upstream(), clientBody(Buffer.alloc(0), {}));
    expect(body).toEqual(Buffer.alloc(0));
  });
});
