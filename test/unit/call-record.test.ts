import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { serializeCall, type SubjectSlot } from '../../src/call-record.js';
import { callLineTarget, createLogger } from '../../src/log.js';
import { auditTuple } from '../../src/store/audit.js';
import type { CallRecord } from '../../src/proxy/server.js';

/** A destination that keeps every line written to it. */
function sink(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

const TIME = '2026-12-01T00:00:00.123456Z';

/** A call as src/proxy/server.ts records it (same fields, same order). */
const aCall = (over: Partial<CallRecord> = {}): CallRecord => ({
  requestId: 'req_1',
  integrationId: 'gh "quoted" \\ \u2028 é',
  keyId: 'key_1',
  keyName: 'agent "one"',
  authId: null,
  method: 'GET',
  host: 'api.example.test',
  path: '/a?x=[redacted]',
  status: 200,
  ms: 1.5,
  mode: 'path',
  rule: null,
  redactions: 0,
  error: undefined,
  subjectSlot: null,
  ...over,
});

/** The line pino writes for the record, with the logger's bindings. */
async function viaPino(rec: CallRecord): Promise<{ line: string; chindings: string }> {
  const a = sink();
  const log = pino({ base: { service: 'latchkey' }, timestamp: () => `,"time":"${TIME.slice(0, 23)}Z"` }, a.stream).child({ worker: 2, pid: 7 });
  // The subject slot is where the records keep their text between calls, not a field of the line.
  const { subjectSlot: _slot, ...fields } = rec;
  log.info(fields, 'proxy call');
  await new Promise((r) => setImmediate(r));
  return { line: a.lines[0] as string, chindings: (callLineTarget(log) as { chindings: string }).chindings };
}

/** The audit row of the call, as an AuditEntry (the form every other row is queued in). */
const entryOf = (rec: CallRecord) => ({
  time: TIME,
  requestId: rec.requestId,
  keyId: rec.keyId,
  action: rec.action ?? 'proxy.call',
  integrationId: rec.integrationId,
  authId: rec.authId,
  method: rec.method,
  host: rec.host,
  path: rec.path,
  status: rec.status,
  durationMs: rec.ms,
  error: rec.error ?? null,
  mode: rec.mode,
  rule: rec.rule,
  redactions: rec.redactions,
});

describe('serializeCall: the per-call log line and audit tuple, escaped once', () => {
  it.each([
    ['a plain call', {}],
    ['no key name, an error, a rule and redactions', { keyName: undefined, error: 'UPSTREAM_TIMEOUT', rule: 'rules[2]', redactions: 3, status: 504 }],
    ['a rule and no redactions', { rule: 'none', error: 'REQUEST_NOT_ALLOWED', status: 403 }],
    ['redactions and no rule', { redactions: 1 }],
    ['a refusal with no key, no integration, no host', { keyId: null, keyName: undefined, integrationId: null, host: null, error: 'INVALID_API_KEY', status: 401, mode: 'header' }],
  ] as Array<[string, Partial<CallRecord>]>)('the line is what pino writes and the tuple what auditTuple makes: %s', async (_name, over) => {
    const rec = aCall(over);
    const pinoLine = await viaPino(rec);
    const { line, tuple } = serializeCall(rec, TIME, pinoLine.chindings);
    expect(line).toBe(`${pinoLine.line}\n`);
    expect(tuple).toBe(JSON.stringify(auditTuple(entryOf(rec))));
  });

  it('calls of one integration that differ in key, key name, auth record, method, host or action each get their own fields', async () => {
    const variants: Array<Partial<CallRecord>> = [
      {},
      { keyId: 'key_2' },
      { keyName: undefined },
      { keyName: 'other' },
      { authId: 'auth_1' },
      { method: 'POST' },
      { host: 'eu.example.test' },
      { host: null },
      { keyId: null, keyName: undefined, error: 'INVALID_API_KEY', status: 401 },
      {},
    ];
    // One slot for all, as one auth plan's: each call whose subject differs from the last one's gets its own text.
    const slot: SubjectSlot = { recordSubject: null };
    // Twice over, so each variant follows a different one the second time.
    for (const over of [...variants, ...[...variants].reverse()]) {
      const rec = aCall({ ...over, requestId: `req_${Math.random().toString(36).slice(2)}`, subjectSlot: slot });
      const pinoLine = await viaPino(rec);
      const { line, tuple } = serializeCall(rec, TIME, pinoLine.chindings);
      expect(line).toBe(`${pinoLine.line}\n`);
      expect(tuple).toBe(JSON.stringify(auditTuple(entryOf(rec))));
    }
    const tunnel = serializeCall(aCall({ action: 'proxy.tunnel' }), TIME, null);
    expect(JSON.parse(tunnel.tuple)[3]).toBe('proxy.tunnel');
    expect(JSON.parse(serializeCall(aCall(), TIME, null).tuple)[3]).toBe('proxy.call');
  });

  it('a subject is made once and kept while the calls keep it (and the text stays the same with or without it)', async () => {
    const slot: SubjectSlot = { recordSubject: null };
    const first = serializeCall(aCall({ subjectSlot: slot, path: '/one' }), TIME, ',"service":"latchkey"');
    const kept = slot.recordSubject;
    expect(kept).not.toBeNull();
    const second = serializeCall(aCall({ subjectSlot: slot, path: '/two', status: 404, method: 'BREW' }), TIME, ',"service":"latchkey"');
    expect(slot.recordSubject).toBe(kept);
    expect(second).toEqual(serializeCall(aCall({ path: '/two', status: 404, method: 'BREW' }), TIME, ',"service":"latchkey"'));
    expect(first).toEqual(serializeCall(aCall({ path: '/one' }), TIME, ',"service":"latchkey"'));
    serializeCall(aCall({ subjectSlot: slot, host: 'other.example.test' }), TIME, null);
    expect(slot.recordSubject).not.toBe(kept);
    const rec = aCall({ requestId: 'odd"id\\', subjectSlot: slot, status: 1200, ms: Number.NaN });
    const pinoLine = await viaPino(rec);
    expect(serializeCall(rec, TIME, pinoLine.chindings)).toEqual({ line: `${pinoLine.line}\n`, tuple: JSON.stringify(auditTuple(entryOf(rec))) });
  });

  it('no line when info is not written, nor for a tunnel (it logs its own when it closes); the tuple all the same', () => {
    const rec = aCall();
    expect(serializeCall(rec, TIME, null)).toEqual({ line: null, tuple: JSON.stringify(auditTuple(entryOf(rec))) });
    const tunnel = aCall({ action: 'proxy.tunnel' });
    const both = serializeCall(tunnel, TIME, ',"service":"latchkey"');
    expect(both.line).toBeNull();
    expect(JSON.parse(both.tuple)[3]).toBe('proxy.tunnel');
  });

  it('callLineTarget is null below info', () => {
    const a = sink();
    expect(callLineTarget(createLogger('warn', a.stream as unknown as pino.DestinationStream))).toBeNull();
    expect(callLineTarget(createLogger('info', a.stream as unknown as pino.DestinationStream))?.chindings).toBe(',"service":"latchkey"');
  });
});
