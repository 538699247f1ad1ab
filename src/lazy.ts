/**
 * Modules a start does not need (the CA's X.509 code, the WebSocket proxy,
 * JWT, OAuth, the OpenAPI generator) are imported at their first use, so
 * `latchkey serve` is ready sooner; the first call that needs one waits for
 * the import once (a few milliseconds), every later call finds it loaded.
 *
 * A failed import (a broken or missing install) answers the call that needed
 * it with a coded 503 instead of crashing the process, and is tried again at
 * the next call.
 */
import { LatchkeyError } from './errors.js';

/**
 * `load` run at the first call and its promise shared by every caller; a
 * failure is not kept, so the next call tries again (the database may be
 * back, the install repaired).
 */
export function once<T>(load: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () =>
    (pending ??= load().catch((err: unknown) => {
      pending = undefined;
      throw err;
    }));
}

export function lazyModule<T>(what: string, load: () => Promise<T>): () => Promise<T> {
  return once(() =>
    load().catch((err: unknown) => {
      // The code only (e.g. ERR_MODULE_NOT_FOUND): the message names files of this host.
      const code = (err as { code?: unknown }).code;
      throw new LatchkeyError('SERVICE_UNAVAILABLE', `${what} could not be loaded${typeof code === 'string' ? ` (${code})` : ''}`);
    }),
  );
}
