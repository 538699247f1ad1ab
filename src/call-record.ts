/**
 * A proxied call's two records, made together: its "proxy call" log line and
 * its audit tuple (the JSON the audit trail stores).
 *
 * They are built from few pieces, as plain string concatenation: the part
 * that only changes with the call's integration, key, auth record and host
 * (its "subject") is escaped and joined once and kept with the auth plan,
 * the fixed text around the method, the status and the mode comes from
 * tables, and per call only the path is escaped. Made field by field (nine
 * JSON.stringify calls, about seventy pieces, flattened again when written),
 * the same records were the largest part of what latchkey's main thread does
 * for a call on top of forwarding it (README "Scaling", the records).
 */
import type { CallRecord } from './proxy/server.js';

/** The parts of the records fixed by a call's integration, key, auth record and host, with what they were made from. */
export interface RecordSubject {
  integrationId: string | null;
  keyId: string | null;
  keyName: string | undefined;
  authId: string | null;
  host: string | null;
  /** `","integrationId":…,"keyId":…[,"keyName":…],"authId":…` (after the request id). */
  line: string;
  /** `,"host":…,"path":` */
  lineHost: string;
  /** `",KEY,"` (after the request id, before the action). */
  tupleKey: string;
  /** `",INTEGRATION,AUTH,` (after the action). */
  tupleIds: string;
  /** `HOST,` */
  tupleHost: string;
}

/** Where a record's subject is kept between calls (an auth plan's slot); one subject, replaced when the call's differs. */
export interface SubjectSlot {
  recordSubject: RecordSubject | null;
}

const str = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

function subjectOf(rec: CallRecord): RecordSubject {
  const slot = rec.subjectSlot;
  const kept = slot?.recordSubject;
  if (
    kept != null &&
    kept.integrationId === rec.integrationId &&
    kept.keyId === rec.keyId &&
    kept.keyName === rec.keyName &&
    kept.authId === rec.authId &&
    kept.host === rec.host
  ) {
    return kept;
  }
  const keyId = str(rec.keyId);
  const integrationId = str(rec.integrationId);
  const authId = str(rec.authId);
  const host = str(rec.host);
  const keyName = rec.keyName === undefined ? '' : `,"keyName":${JSON.stringify(rec.keyName)}`;
  const made: RecordSubject = {
    integrationId: rec.integrationId,
    keyId: rec.keyId,
    keyName: rec.keyName,
    authId: rec.authId,
    host: rec.host,
    line: `","integrationId":${integrationId},"keyId":${keyId}${keyName},"authId":${authId}`,
    lineHost: `,"host":${host},"path":`,
    tupleKey: `",${keyId},"`,
    tupleIds: `",${integrationId},${authId},`,
    tupleHost: `${host},`,
  };
  if (slot) slot.recordSubject = made;
  return made;
}

/** A request id is requestIdFrom's (src/ids.ts): [\w.:@/+=-] only, none of which JSON escapes. Checked all the same. */
const PLAIN_ID = /^[\w.:@/+=-]*$/;

/** Fixed text by method: the line's `,"method":"GET"` and the tuple's `"GET",`. */
const METHOD_LINE = new Map<string, string>();
const METHOD_TUPLE = new Map<string, string>();
for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']) {
  METHOD_LINE.set(m, `,"method":"${m}"`);
  METHOD_TUPLE.set(m, `"${m}",`);
}

/** `,"status":200,"ms":` and `,200,` for each status seen (at most 1000 of each). */
const STATUS_LINE: Array<string | undefined> = [];
const STATUS_TUPLE: Array<string | undefined> = [];
const statusLine = (s: number): string => (Number.isInteger(s) && s >= 0 && s < 1000 ? (STATUS_LINE[s] ??= `,"status":${s},"ms":`) : `,"status":${s},"ms":`);
const statusTuple = (s: number): string => (Number.isInteger(s) && s >= 0 && s < 1000 ? (STATUS_TUPLE[s] ??= `,${s},`) : `,${s},`);

/** The ends of a call with no error, no rule and no redaction, by mode. */
const PLAIN_LINE_END = new Map<string, string>();
const PLAIN_TUPLE_END = new Map<string, string>();
for (const mode of ['path', 'header', 'forward', 'connect']) {
  PLAIN_LINE_END.set(mode, `,"mode":"${mode}","rule":null,"redactions":0,"msg":"proxy call"}\n`);
  PLAIN_TUPLE_END.set(mode, `,null,null,"${mode}"]`);
}

/** After `,"ms":…` in the line. */
function lineEnd(rec: CallRecord): string {
  const plain = !rec.error && rec.rule === null && rec.redactions === 0 ? PLAIN_LINE_END.get(rec.mode) : undefined;
  if (plain !== undefined) return plain;
  const error = rec.error ? `,"error":${JSON.stringify(rec.error)}` : '';
  return `,"mode":${JSON.stringify(rec.mode)},"rule":${str(rec.rule)},"redactions":${rec.redactions}${error},"msg":"proxy call"}\n`;
}

/** After the duration in the tuple: the extras (error, count, mode, rule, redactions) end at the last one set; mode always is. */
function tupleEnd(rec: CallRecord): string {
  const plain = !rec.error && rec.rule === null && rec.redactions <= 0 ? PLAIN_TUPLE_END.get(rec.mode) : undefined;
  if (plain !== undefined) return plain;
  const head = `,${rec.error ? JSON.stringify(rec.error) : 'null'},null,${JSON.stringify(rec.mode)}`;
  if (rec.redactions > 0) return `${head},${str(rec.rule)},${rec.redactions}]`;
  if (rec.rule !== null) return `${head},${JSON.stringify(rec.rule)}]`;
  return `${head}]`;
}

let lastChindings: string | null = null;
let lastAfterTime = '';
/** `Z"` + the logger's bindings + `,"requestId":"`: made again only when the bindings differ from the last call's. */
function afterTime(chindings: string): string {
  if (chindings !== lastChindings) {
    lastChindings = chindings;
    lastAfterTime = `Z"${chindings},"requestId":"`;
  }
  return lastAfterTime;
}

/**
 * `time`: the call's audit time (microseconds, "…00.123456Z"); the line has it
 * to the millisecond, as pino writes times. `chindings`: the logger's
 * bindings as pino renders them (`,"service":"latchkey"`), null when info
 * lines are not written. The line is the one pino writes for
 * `log.info(record, 'proxy call')` (fields in the record's order, undefined
 * ones left out; the subject slot is not a field); the tuple is
 * `auditTuple()`'s for the same call (src/store/audit.ts), byte for byte. A
 * tunnel's record (action set) gets no line: it is logged when the tunnel
 * closes.
 */
export function serializeCall(rec: CallRecord, time: string, chindings: string | null): { line: string | null; tuple: string } {
  const requestId = rec.requestId.length <= 128 && PLAIN_ID.test(rec.requestId) ? rec.requestId : JSON.stringify(rec.requestId).slice(1, -1);
  const path = JSON.stringify(rec.path);
  const ms = Number.isFinite(rec.ms) ? String(rec.ms) : 'null';
  const subject = subjectOf(rec);
  const methodTuple = METHOD_TUPLE.get(rec.method) ?? `${JSON.stringify(rec.method)},`;
  const tuple = `["${time}","${requestId}${subject.tupleKey}${rec.action ?? 'proxy.call'}${subject.tupleIds}${methodTuple}${subject.tupleHost}${path}${statusTuple(rec.status)}${ms}${tupleEnd(rec)}`;
  // A tunnel (action set) is logged when it closes.
  if (chindings === null || rec.action !== undefined) return { line: null, tuple };
  const methodLine = METHOD_LINE.get(rec.method) ?? `,"method":${JSON.stringify(rec.method)}`;
  const line = `{"level":30,"time":"${time.slice(0, 23)}${afterTime(chindings)}${requestId}${subject.line}${methodLine}${subject.lineHost}${path}${statusLine(rec.status)}${ms}${lineEnd(rec)}`;
  return { line, tuple };
}
