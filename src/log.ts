import { fstatSync } from 'node:fs';
import pino, { type DestinationStream, type Logger } from 'pino';
import { REDACTED_HEADERS } from './credentials/headers.js';
import { prettyStream } from './log-pretty.js';

export type { Logger };

/**
 * Belt and braces: latchkey never logs header objects or bodies, but if a
 * headers object ever reaches a log line, these paths are censored. pino's
 * paths are case-sensitive, which is why header names are logged lower-case.
 */
const REDACT_PATHS = REDACTED_HEADERS.flatMap((h) => [
  `headers["${h}"]`,
  `req.headers["${h}"]`,
  `res.headers["${h}"]`,
]);

let lastMs = 0;
let lastIso = '';
/** pino's isoTime, formatting the date once per millisecond rather than once per line. */
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastIso;
}

export type LogFormat = 'auto' | 'json' | 'pretty';

/** `auto` is pretty only for a person at a terminal; pipes and files get JSON lines. */
export const resolveLogFormat = (format: LogFormat, isTty: boolean): 'json' | 'pretty' =>
  format === 'auto' ? (isTty ? 'pretty' : 'json') : format;

export interface LogOptions {
  format?: 'json' | 'pretty';
  /** ANSI colours in pretty lines (default: only when writing to a terminal). */
  color?: boolean;
  /** Cluster workers writing to one stdout (see bufferedStdout). */
  shared?: boolean;
}

export function createLogger(level: string, destination?: DestinationStream, options: LogOptions = {}): Logger {
  const out = destination ?? bufferedStdout(options.shared ?? false);
  const dest = options.format === 'pretty' ? prettyStream(out, options.color ?? (destination === undefined && process.stdout.isTTY === true)) : out;
  return pino(
    {
      level,
      base: { service: 'latchkey' },
      timestamp: isoTimeCached,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    dest,
  );
}

/** stdout is a pipe or a socket, where only writes of at most PIPE_BUF bytes are atomic (unknown: assume so). */
function stdoutIsStream(): boolean {
  try {
    const st = fstatSync(1);
    return st.isFIFO() || st.isSocket();
  } catch {
    return true;
  }
}

/**
 * stdout, written in blocks instead of one write per line (one per proxied
 * call cost a fifth of the throughput): each asynchronous write is a round
 * trip to libuv's thread pool, ~20 µs of this thread's time whatever its size
 * (waking a pool thread), so alone the blocks are 60-64 KiB (about 180 call
 * lines a write; 16 KiB blocks cost ~2 µs a call); flushed every 250 ms so a
 * quiet server's lines still appear promptly. Asynchronous on purpose: with
 * synchronous writes a log reader that stops draining the pipe freezes the
 * proxy (seen in the benchmark). If the reader stalls, at most 16 MiB are held
 * and further lines are dropped; the audit log remains the durable record.
 * `shared` (cluster workers writing to one stdout) and stdout a pipe or a
 * socket: each write holds whole lines and at most 4096 bytes (PIPE_BUF), so
 * the workers' lines never interleave. A regular file, /dev/null or a terminal
 * takes each write() whole against the other processes' (the shared file
 * offset is locked around a write; a tty write holds its write lock), so
 * there the workers write large blocks too.
 */
function bufferedStdout(shared: boolean): DestinationStream {
  const small = shared && stdoutIsStream();
  const { minLength, maxWrite } = small ? { minLength: 3072, maxWrite: 4096 } : { minLength: 60 * 1024, maxWrite: 64 * 1024 };
  // Lines are encoded into a block as they come, while their strings are still in the CPU's caches,
  // and sonic-boom writes whole blocks. (Given strings, it flattened and measured each block three
  // times over when writing it, by then cold: about 1 µs a call.)
  const boom = pino.destination({ fd: 1, sync: false, minLength: 0, maxWrite, maxLength: 16 * 1024 * 1024, contentMode: 'buffer' });
  // In buffer mode sonic-boom takes Buffers (its types know only strings).
  const writeBytes = (b: Buffer): void => void (boom as unknown as { write(b: Buffer): boolean }).write(b);
  let block = Buffer.allocUnsafe(maxWrite);
  let bytes = 0;
  const push = (): void => {
    if (bytes === 0) return;
    writeBytes(block.subarray(0, bytes));
    block = Buffer.allocUnsafe(maxWrite);
    bytes = 0;
  };
  setInterval(push, 250).unref();
  // sonic-boom writes what it holds at exit; the block gathered here goes to it first.
  process.once('exit', () => {
    push();
    try {
      boom.flushSync();
    } catch {
      // stdout is gone: nothing more can be said
    }
  });
  return {
    write(line: string) {
      // At most 3 bytes per UTF-16 unit: only a line that might not fit is measured.
      if (bytes + line.length * 3 > maxWrite) {
        const n = Buffer.byteLength(line);
        if (bytes + n > maxWrite) push();
        // Longer than a block (never a call line): written on its own.
        if (n > maxWrite) return writeBytes(Buffer.from(line));
      }
      bytes += block.write(line, bytes);
      if (bytes >= minLength) push();
    },
    flush(cb?: (err?: Error) => void) {
      push();
      boom.flush(cb);
    },
  } as DestinationStream;
}

const LEVEL_INFO = 30;
const { chindingsSym, streamSym } = pino.symbols;
type PinoInternals = Record<symbol, unknown>;

/** Where the per-call lines (src/call-record.ts, formatted by hand) go. */
export interface CallLineTarget {
  /** The logger's bindings as pino renders them in a line (`,"service":"latchkey"`). */
  chindings: string;
  /** The logger's destination. */
  write: (line: string) => void;
}

/**
 * The hottest lines latchkey writes are formatted by hand (the same JSON
 * pino writes, at a fraction of the cost) and handed to the logger's own
 * destination; null when info lines are not written at the logger's level.
 * They hold no header or body, so pino's redaction paths have nothing to
 * censor in them.
 */
export function callLineTarget(log: Logger): CallLineTarget | null {
  if (log.levelVal > LEVEL_INFO) return null;
  const internals = log as unknown as PinoInternals;
  const stream = internals[streamSym] as DestinationStream;
  return { chindings: (internals[chindingsSym] as string | undefined) ?? '', write: (line) => void stream.write(line) };
}

/** A path with every query value replaced, for logs and the audit trail. */
export function redactQuery(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  if (q < 0) return pathAndQuery;
  const names = pathAndQuery
    .slice(q + 1)
    .split('&')
    .filter((p) => p.length > 0)
    .map((p) => `${p.split('=')[0]}=[redacted]`);
  return `${pathAndQuery.slice(0, q)}?${names.join('&')}`;
}
