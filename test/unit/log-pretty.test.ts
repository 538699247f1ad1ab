import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, resolveLogFormat } from '../../src/log.js';
import { formatPretty } from '../../src/log-pretty.js';

function capture(format: 'json' | 'pretty', color = false) {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { log: createLogger('debug', sink, { format, color }), text: () => chunks.join('') };
}

const CALL = {
  requestId: 'req_1',
  integrationId: 'github',
  keyId: 'key_1',
  keyName: 'ci-agent',
  authId: 'auth_1',
  method: 'GET',
  host: 'api.github.com',
  path: '/repos/x?access_token=[redacted]',
  status: 502,
  ms: 12.3,
  mode: 'path',
  error: 'UPSTREAM_UNREACHABLE',
};

describe('logFormat', () => {
  it('auto is pretty on a terminal and JSON otherwise', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });

  it('pretty: one scannable line per call with time, status, method, integration, host, path, ms and key name', () => {
    const { log, text } = capture('pretty');
    log.info(CALL, 'proxy call');
    const lines = text().split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}502 {2}GET {5}github {2}api\.github\.com\/repos\/x\?access_token=\[redacted\] {2}12\.3ms {2}ci-agent {2}UPSTREAM_UNREACHABLE {2}req_1$/);
    expect(lines[0]).not.toContain('{');
  });

  it('pretty keeps every redaction of the JSON form', () => {
    const secret = 'ghp_supersecretvalue';
    for (const format of ['json', 'pretty'] as const) {
      const { log, text } = capture(format);
      log.info({ headers: { authorization: `Bearer ${secret}`, 'x-api-key': secret, cookie: secret, 'proxy-authorization': secret } }, 'oops');
      expect(text()).toContain('[redacted]');
      expect(text()).not.toContain(secret);
    }
  });

  it('pretty escapes control characters, so a key name cannot forge a line or recolour the terminal', () => {
    const line = formatPretty(JSON.stringify({ ...CALL, time: '2026-01-01T00:00:00.000Z', level: 30, msg: 'proxy call', keyName: 'x\n12:00 200 GET \u001b[31mfake' }), true);
    expect(line.split('\n')).toHaveLength(2);
    expect(line).toContain('x\\x0a12:00');
    expect(line).toContain('\\x1b[31mfake');
  });

  it('pretty lays out other lines as time, level, message and fields; colours only when asked', () => {
    const { log, text } = capture('pretty', true);
    log.warn({ file: '/data/admin.key' }, 'bootstrap key written');
    expect(text()).toContain('\u001b[33mWARN \u001b[0m bootstrap key written  file=/data/admin.key');
    const plain = capture('pretty');
    plain.log.info({ proxy: 'http://127.0.0.1:1', admin: 'http://127.0.0.1:2' }, 'listening');
    expect(plain.text()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO  listening {2}proxy=http:\/\/127\.0\.0\.1:1 {2}admin=http:\/\/127\.0\.0\.1:2\n$/);
  });
});
