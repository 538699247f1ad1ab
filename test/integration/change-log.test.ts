import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initSodium } from '../../src/crypto/seal.js';
import { Store } from '../../src/store/store.js';
import { CHANGE_LOG_KEEP } from '../../src/store/db.js';
import { PlanCache } from '../../src/proxy/plans.js';
import { KeyVerifier } from '../../src/access/principal.js';
import { auditTime } from '../../src/store/audit.js';
import { tmpDir } from '../helpers/tmp.js';

/** Two connections to one file, as two latchkey processes would hold. */
function pair(): { here: Store; other: Store; close: () => void } {
  const dir = tmpDir();
  const opts = { dbPath: join(dir.path, 'latchkey.db'), masterKey: undefined, masterKeyFile: join(dir.path, 'master.key') };
  const here = Store.open(opts);
  const other = Store.open(opts);
  return {
    here,
    other,
    close: () => {
      here.close();
      other.close();
      dir.cleanup();
    },
  };
}

/** The store reads PRAGMA data_version once per event-loop turn: the next call is in a later one. */
const KIND_DEPS = { maxBodyBytes: 1024 * 1024 };

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

const bearer = (token: string) => ({ secrets: { token }, apiKey: null });
const integration = (id: string) => ({ integrationId: id, name: id, baseUrl: `https://${id}.example.com`, allowedHosts: null, headers: [] });

let open: { close: () => void } | undefined;
beforeAll(async () => {
  await initSodium();
});
afterEach(() => {
  open?.close();
  open = undefined;
});

describe('plan cache and the change log', () => {
  it('keeps every plan across audit batches and lastUsedAt flushes written by another connection', async () => {
    const { here, other, close } = pair();
    open = { close };
    here.integrations.create(integration('a'));
    here.authRecords.create('a', 'BEARER_TOKEN', [], bearer('one'));
    const { record } = here.apiKeys.create({ name: 'k', role: 'agent', integrations: ['*'], expiresAt: null });
    const plans = new PlanCache(here, KIND_DEPS);
    const first = plans.get('a');
    await nextTurn();
    other.audit.insertCallBatch(JSON.stringify([[auditTime(), 'r', null, 'proxy.call', 'a', null, 'GET', 'h', '/', 200, 1]]), auditTime(), auditTime());
    other.apiKeys.touchMany(new Map([[record.keyId, new Date().toISOString()]]));
    await nextTurn();
    // The very same object: nothing was reloaded.
    expect(plans.get('a')).toBe(first);
  });

  it('drops only the integration another connection changed, and the next read sees the change', async () => {
    const { here, other, close } = pair();
    open = { close };
    for (const id of ['a', 'b']) {
      here.integrations.create(integration(id));
      here.authRecords.create(id, 'BEARER_TOKEN', [], bearer(`${id}-one`));
    }
    const plans = new PlanCache(here, KIND_DEPS);
    const a = plans.get('a');
    const b = plans.get('b');
    await nextTurn();
    const rec = other.authRecords.latest('a');
    other.authRecords.update('a', rec!.authId, [], null, { token: 'a-two' });
    await nextTurn();
    const a2 = plans.get('a');
    expect(a2).not.toBe(a);
    expect(a2?.latest?.headers).toContainEqual(['authorization', 'Bearer a-two']);
    expect(plans.get('b')).toBe(b);

    // A deleted integration is gone for the next call; a new one appears for it.
    other.integrations.delete('b');
    other.integrations.create(integration('c'));
    await nextTurn();
    expect(plans.get('b')).toBeNull();
    expect(plans.get('c')?.integrationId).toBe('c');
  });

  it('forgets everything when the log was pruned past what the cache saw', async () => {
    const { here, other, close } = pair();
    open = { close };
    for (const id of ['a', 'b']) {
      here.integrations.create(integration(id));
      here.authRecords.create(id, 'BEARER_TOKEN', [], bearer('t'));
    }
    const plans = new PlanCache(here, KIND_DEPS);
    const b = plans.get('b');
    await nextTurn();
    // More changes than the log keeps, none of them naming b.
    const ins = other.db.prepare("INSERT INTO changes (entity, id) VALUES ('integration', 'zz')");
    other.db.transaction(() => {
      for (let i = 0; i < CHANGE_LOG_KEEP + 5; i++) ins.run();
    })();
    expect((other.db.prepare('SELECT count(*) AS n FROM changes').get() as { n: number }).n).toBe(CHANGE_LOG_KEEP);
    await nextTurn();
    expect(plans.get('b')).not.toBe(b);
  });

  it('holds at most its bound, dropping the least recently used plan', async () => {
    const { here, close } = pair();
    open = { close };
    for (const id of ['a', 'b', 'c']) here.integrations.create(integration(id));
    const plans = new PlanCache(here, KIND_DEPS, 2);
    const a = plans.get('a');
    plans.get('b');
    plans.get('a');
    plans.get('c');
    expect(plans.size).toBe(2);
    expect(plans.get('a')).toBe(a);
  });
});

describe('key cache and the change log', () => {
  it('a key revoked through another connection is refused by the next call; other keys stay cached', async () => {
    const { here, other, close } = pair();
    open = { close };
    const one = here.apiKeys.create({ name: 'one', role: 'agent', integrations: ['*'], expiresAt: null });
    const two = here.apiKeys.create({ name: 'two', role: 'agent', integrations: ['*'], expiresAt: null });
    const keys = new KeyVerifier(here, undefined);
    keys.verify(one.key);
    const p2 = keys.verify(two.key);
    await nextTurn();
    other.apiKeys.revoke(one.record.keyId);
    await nextTurn();
    expect(() => keys.verify(one.key)).toThrow(/invalid, expired or revoked/);
    expect(keys.verify(two.key)).toBe(p2);
    // lastUsedAt flushes write the keys table but change no answer.
    keys.flushLastUsed();
    await nextTurn();
    expect(keys.verify(two.key)).toBe(p2);
  });
});
