/**
 * Worker thread that writes batches of audit rows on its own connection, so
 * SQLite's work (and its WAL checkpoints) never holds up the proxy's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './store/db.js';
import { AuditRepo } from './store/audit.js';

/** A batch travels as the JSON string it is stored as: nothing is parsed or cloned on the way. */
export type WriterMessage =
  | {
      type: 'rows';
      json: string;
      first: string;
      last: string;
      count: number;
      /** The distinct integrations of the batch's rows, for its filter: the writer does not parse the batch. */
      ids: string[];
      /** From a proxy-only cluster worker: its keyless refusals (time, tuple JSON) and how many it counted without keeping, sampled by the owner. */
      refusals?: Array<[string, string]>;
      refused?: number;
    }
  | { type: 'sync'; id: number }
  | { type: 'close' };
export type WriterReply = { type: 'synced'; id: number } | { type: 'failed'; code: string; rows: number };

const port = parentPort;
if (port) {
  const db = openDatabase((workerData as { dbPath: string }).dbPath);
  const repo = new AuditRepo(db);
  port.on('message', (msg: WriterMessage) => {
    if (msg.type === 'rows') {
      try {
        repo.insertCallBatch(msg.json, msg.first, msg.last, msg.ids);
      } catch (err) {
        const reply: WriterReply = { type: 'failed', code: (err as { code?: string }).code ?? 'ERROR', rows: msg.count };
        port.postMessage(reply);
      }
    } else if (msg.type === 'sync') {
      const reply: WriterReply = { type: 'synced', id: msg.id };
      port.postMessage(reply);
    } else {
      db.close();
      port.close();
    }
  });
}
