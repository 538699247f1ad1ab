import { describe, expect, it } from 'vitest';
import { RateLimiter, RemoteLimiter, type RateAsk } from '../../src/access/rate-limit.js';

describe('RemoteLimiter (a cluster worker asking the primary)', () => {
  it('answers with the decision of the one window the primary holds', async () => {
    const primary = new RateLimiter();
    const asked: RateAsk[] = [];
    const remote = new RemoteLimiter((q) => {
      asked.push(q);
      // The primary's answer arrives later, as over IPC.
      setImmediate(() => remote.answer({ id: q.id, decision: primary.take(q.bucket, q.limit) }));
    });
    const limit = { requests: 2, perSeconds: 60 };
    const decisions = [await remote.take('k', limit), await remote.take('k', limit), await remote.take('k', limit)];
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(decisions[2]?.retryAfter).toBeGreaterThanOrEqual(1);
    expect(new Set(asked.map((q) => q.id)).size).toBe(3);
  });

  it('refuses the call (SERVICE_UNAVAILABLE) when the primary does not answer, and ignores a late answer', async () => {
    let id = 0;
    const remote = new RemoteLimiter((q) => (id = q.id), 30);
    await expect(remote.take('k', { requests: 1, perSeconds: 1 })).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(() => remote.answer({ id, decision: { allowed: true, retryAfter: 0 } })).not.toThrow();
  });
});
