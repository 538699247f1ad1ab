import { describe, expect, it } from 'vitest';
import { LatchkeyError } from '../../src/errors.js';
import { lazyModule } from '../../src/lazy.js';

describe('lazyModule', () => {
  it('imports once, however many callers wait for it at the same time', async () => {
    let imports = 0;
    const load = lazyModule('a module', async () => {
      imports++;
      return { value: 42 };
    });
    const got = await Promise.all([load(), load(), load()]);
    expect(got.map((m) => m.value)).toEqual([42, 42, 42]);
    expect(await load()).toBe(got[0]);
    expect(imports).toBe(1);
  });

  it('a failed import is a coded 503 naming what could not be loaded (not the file), and is tried again next time', async () => {
    let attempts = 0;
    const load = lazyModule('the WebSocket proxy', () => {
      attempts++;
      // A module that is not there, as a broken install would have it.
      const missing = './no-such-module-for-this-test.js';
      if (attempts === 1) return import(missing) as Promise<unknown>;
      return Promise.resolve('loaded');
    });
    const err = await load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LatchkeyError);
    expect((err as LatchkeyError).code).toBe('SERVICE_UNAVAILABLE');
    expect((err as LatchkeyError).status).toBe(503);
    expect((err as LatchkeyError).message).toMatch(/^the WebSocket proxy could not be loaded/);
    expect((err as LatchkeyError).message).not.toContain('no-such-module');
    expect(await load()).toBe('loaded');
    expect(attempts).toBe(2);
  });
});
