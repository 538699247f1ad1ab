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
 * The part of a call's line and tuple that only depends on who called which
 * integration how (ids, key name, method, host, action), escaped once and
 * kept per integration: calls of one integration by one key repeat it, and
 * six escapes and a dozen joins fewer a call were worth it on the hot path.
 */
interface Fragments {
  keyId: string | null;
  keyName: string | undefined;
  authId: string | null;
  method: string;
  host: string | null;
  action: string;
  /** The tuple from its key id to its host, with the commas around it. */
  tuple: string;
  /** The line from its integration id to its host, with the comma before it. */
  line: string;
}

/** Kept per integration id (null: calls refused before one was known); emptied past this many. */
const MAX_FRAGMENTS = 4096;
const fragments = new Map<string | null, Fragments>();

function fragmentsOf(rec: CallRecord): Fragments {
  const action = rec.action ?? 'proxy.call';
  const seen = fragments.get(rec.integrationId);
  if (
    seen !== undefined &&
    seen.keyId === rec.keyId &&
    seen.keyName === rec.keyName &&
    seen.authId === rec.authId &&
    seen.method === rec.method &&
    seen.host === rec.host &&
    seen.action === action
  ) {
    return seen;
  }
  const integrationId = str(rec.integrationId);
  const keyId = str(rec.keyId);
  const authId = str(rec.authId);
  const method = JSON.stringify(rec.method);
  const host = str(rec.host);
  const keyName = rec.keyName === undefined ? '' : `,"keyName":${JSON.stringify(rec.keyName)}`;
  const made: Fragments = {
    keyId: rec.keyId,
    keyName: rec.keyName,
    authId: rec.authId,
    method: rec.method,
    host: rec.host,
    action,
    tuple: `,${keyId},"${action}",${integrationId},${authId},${method},${host},`,
    line: `,"integrationId":${integrationId},"keyId":${keyId}${keyName},"authId":${authId},"method":${method},"host":${host}`,
  };
  if (fragments.size >= MAX_FRAGMENTS) fragments.clear();
  fragments.set(rec.integrationId, made);
  return made;
}

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
  const common = fragmentsOf(rec);
  const requestId = JSON.stringify(rec.requestId);
  const path = JSON.stringify(rec.path);
  const mode = JSON.stringify(rec.mode);
  const rule = str(rec.rule);
  const error = rec.error ? JSON.stringify(rec.error) : null;
  const ms = Number.isFinite(rec.ms) ? String(rec.ms) : 'null';
  // The tuple's extras (error, count, mode, rule, redactions) end at the last one set; mode always is.
  let tuple = `["${time}",${requestId}${common.tuple}${path},${rec.status},${ms},${error ?? 'null'},null,${mode}`;
  if (rec.redactions > 0) tuple += `,${rule},${rec.redactions}`;
  else if (rec.rule !== null) tuple += `,${rule}`;
  tuple += ']';
  if (chindings === null || rec.action !== undefined) return { line: null, tuple };
  let line = `{"level":30,"time":"${time.slice(0, 23)}Z"${chindings},"requestId":${requestId}${common.line},"path":${path},"status":${rec.status},"ms":${ms},"mode":${mode},"rule":${rule},"redactions":${rec.redactions}`;
  if (error !== null) line += `,"error":${error}`;
  return { line: `${line},"msg":"proxy call"}\n`, tuple };
}
