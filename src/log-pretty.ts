/**
 * Readable log lines for a person at a terminal. pino has already serialised
 * (and redacted) each line as JSON; this only re-lays it out, so every
 * redaction of the JSON form holds here too. Writes go to the same buffered,
 * asynchronous destination as JSON lines: a stalled terminal never blocks.
 *
 *   12:00:01.234 200 GET  github  api.github.com /repos/x  12.3ms  ci-agent  req_abc
 */
import type { DestinationStream } from 'pino';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOR: Record<number, string> = { 10: '90', 20: '90', 30: '36', 40: '33', 50: '31', 60: '35' };
/** Fields shown in the fixed part of a line, or never (service is always latchkey). */
const SHOWN = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);
const CALL_FIELDS = new Set(['requestId', 'integrationId', 'keyId', 'keyName', 'authId', 'method', 'host', 'path', 'status', 'ms', 'mode', 'error']);

/** Control characters (ANSI escapes, newlines) in a value could forge a line or recolour the terminal. */
const clean = (v: unknown): string =>
  (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const statusColor = (status: number): string => (status >= 500 ? '31' : status >= 400 ? '33' : status >= 300 ? '36' : '32');

export function formatPretty(line: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const paint = (code: string, text: string): string => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const level = typeof o.level === 'number' ? o.level : 30;
  if (o.msg === 'proxy call' && typeof o.status === 'number') {
    const parts = [
      paint('90', time),
      paint(statusColor(o.status), String(o.status)),
      clean(o.method ?? '-').padEnd(6),
      clean(o.integrationId ?? '-'),
      `${clean(o.host ?? '-')}${clean(o.path ?? '')}`,
      `${clean(o.ms ?? '-')}ms`,
      clean(o.keyName ?? o.keyId ?? '-'),
    ];
    if (o.error) parts.push(paint(statusColor(o.status), clean(o.error)));
    parts.push(paint('90', clean(o.requestId ?? '')));
    const rest = Object.entries(o).filter(([k]) => !SHOWN.has(k) && !CALL_FIELDS.has(k));
    return `${parts.join('  ')}${rest.map(([k, v]) => `  ${k}=${clean(v)}`).join('')}\n`;
  }
  const rest = Object.entries(o).filter(([k]) => !SHOWN.has(k));
  const label = paint(LEVEL_COLOR[level] ?? '0', (LEVELS[level] ?? String(level)).padEnd(5));
  return `${paint('90', time)} ${label} ${clean(o.msg ?? '')}${rest.map(([k, v]) => `  ${k}=${clean(v)}`).join('')}\n`;
}

type Flushable = DestinationStream & { flush?: (cb?: (err?: Error) => void) => void };

export function prettyStream(out: Flushable, color: boolean): Flushable {
  return {
    write: (line: string) => out.write(formatPretty(line, color)),
    // logger.flush() at shutdown must reach the real destination.
    flush: (cb?: (err?: Error) => void) => (out.flush ? out.flush(cb) : cb?.()),
  };
}
