/**
 * A proxied call's two records, made together: its "proxy call" log line and
 * its audit tuple (the JSON the audit trail stores). Every string is escaped
 * once and used in both (they hold the same ids, method, host and path), which
 * costs the hot path one pass instead of two: a generic line formatter walking
 * the record and `JSON.stringify` of a tuple array each escaped them again.
 */
import type { CallRecord } from './proxy/server.js';

const str = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

/**
 * `time`: the call's audit time (microseconds, "…00.123456Z"); the line has it
 * to the millisecond, as pino writes times. `chindings`: the logger's
 * bindings as pino renders them (`,"service":"latchkey"`), null when info
 * lines are not written. The line is the one pino writes for
 * `log.info(record, 'proxy call')` (fields in the record's order, undefined
 * ones left out); the tuple is `auditTuple()`'s for the same call
 * (src/store/audit.ts), byte for byte. A tunnel's record (action set) gets no
 * line: it is logged when the tunnel closes.
 */
export function serializeCall(rec: CallRecord, time: string, chindings: string | null): { line: string | null; tuple: string } {
  const requestId = JSON.stringify(rec.requestId);
  const integrationId = str(rec.integrationId);
  const keyId = str(rec.keyId);
  const authId = str(rec.authId);
  const method = JSON.stringify(rec.method);
  const host = str(rec.host);
  const path = JSON.stringify(rec.path);
  const mode = JSON.stringify(rec.mode);
  const rule = str(rec.rule);
  const error = rec.error ? JSON.stringify(rec.error) : null;
  const ms = Number.isFinite(rec.ms) ? String(rec.ms) : 'null';
  // The tuple's extras (error, count, mode, rule, redactions) end at the last one set; mode always is.
  let tuple = `["${time}",${requestId},${keyId},"${rec.action ?? 'proxy.call'}",${integrationId},${authId},${method},${host},${path},${rec.status},${ms},${error ?? 'null'},null,${mode}`;
  if (rec.redactions > 0) tuple += `,${rule},${rec.redactions}`;
  else if (rec.rule !== null) tuple += `,${rule}`;
  tuple += ']';
  if (chindings === null || rec.action !== undefined) return { line: null, tuple };
  let line = `{"level":30,"time":"${time.slice(0, 23)}Z"${chindings},"requestId":${requestId},"integrationId":${integrationId},"keyId":${keyId}`;
  if (rec.keyName !== undefined) line += `,"keyName":${JSON.stringify(rec.keyName)}`;
  line += `,"authId":${authId},"method":${method},"host":${host},"path":${path},"status":${rec.status},"ms":${ms},"mode":${mode},"rule":${rule},"redactions":${rec.redactions}`;
  if (error !== null) line += `,"error":${error}`;
  return { line: `${line},"msg":"proxy call"}\n`, tuple };
}
