import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createLogger, infoFlat } from '../../src/log.js';

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

const record = {
  requestId: 'req_1',
  integrationId: 'gh "quoted" \\ \u2028',
  keyId: null,
  method: 'GET',
  path: '/a?x=[redacted]',
  status: 200,
  ms: 1.5,
  redactions: 0,
  ok: true,
  skipped: undefined,
  bad: Number.NaN,
};

describe('infoFlat: the per-call log line formatted by hand', () => {
  it('writes the line pino writes for the same record, bindings and all', async () => {
    const a = sink();
    const b = sink();
    const fixed = () => ',"time":"2026-12-01T00:00:00.000Z"';
    const viaPino = pino({ base: { service: 'latchkey' }, timestamp: fixed }, a.stream).child({ worker: 2 });
    const viaFlat = pino({ base: { service: 'latchkey' }, timestamp: fixed }, b.stream).child({ worker: 2 });
    viaPino.info(record, 'proxy call');
    infoFlat(viaFlat, record, 'proxy call');
    await new Promise((r) => setImmediate(r));
    expect(b.lines).toHaveLength(1);
    expect(b.lines[0]).toBe(a.lines[0]);
    expect(JSON.parse(b.lines[0] as string)).toMatchObject({ level: 30, service: 'latchkey', worker: 2, integrationId: record.integrationId, keyId: null, bad: null, msg: 'proxy call' });
  });

  it('writes nothing when info is below the level', async () => {
    const a = sink();
    const log = createLogger('warn', a.stream as unknown as pino.DestinationStream);
    infoFlat(log, record, 'proxy call');
    log.warn('a warning');
    await new Promise((r) => setImmediate(r));
    expect(a.lines).toHaveLength(1);
    expect(a.lines[0]).toContain('a warning');
  });
});
