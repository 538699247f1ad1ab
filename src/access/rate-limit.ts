/**
 * Per-key rate limits: at most `requests` calls in any `perSeconds` window
 * (a sliding window, exact). Each key keeps the times of its last `requests`
 * allowed calls in a ring; a call is allowed when the oldest of them is older
 * than the window. O(1) per call, 8 bytes per allowed call of memory.
 *
 * The window lives in this process: several latchkey processes sharing one
 * database each enforce the limit on their own (README, "Rate limits").
 */
import type { RateLimit } from './rules.js';

interface Window {
  requests: number;
  perMs: number;
  times: Float64Array;
  /** Next slot to write: once the ring is full, also the oldest entry. */
  next: number;
  count: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Seconds until a call would be allowed again (only when refused): at least 1. */
  retryAfter: number;
}

const ALLOWED: RateDecision = { allowed: true, retryAfter: 0 };
/** Keys whose window has been idle this long are forgotten (their ring is empty by then anyway). */
const SWEEP_MS = 60_000;

export class RateLimiter {
  private readonly windows = new Map<string, Window>();
  private lastSweep = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Counts the call when it is allowed; a refused call does not use the budget. */
  take(bucket: string, limit: RateLimit): RateDecision {
    const t = this.now();
    let w = this.windows.get(bucket);
    const perMs = limit.perSeconds * 1000;
    // A PATCHed limit starts a fresh window rather than reinterpreting the old one.
    if (!w || w.requests !== limit.requests || w.perMs !== perMs) {
      w = { requests: limit.requests, perMs, times: new Float64Array(limit.requests), next: 0, count: 0 };
      this.windows.set(bucket, w);
    }
    if (w.count === w.requests) {
      const oldest = w.times[w.next] as number;
      const wait = oldest + w.perMs - t;
      if (wait > 0) return { allowed: false, retryAfter: Math.max(1, Math.ceil(wait / 1000)) };
    } else {
      w.count++;
    }
    w.times[w.next] = t;
    w.next = (w.next + 1) % w.requests;
    if (t - this.lastSweep > SWEEP_MS) this.sweep(t);
    return ALLOWED;
  }

  private sweep(t: number): void {
    this.lastSweep = t;
    for (const [bucket, w] of this.windows) {
      const newest = w.times[(w.next + w.requests - 1) % w.requests] as number;
      if (t - newest > w.perMs) this.windows.delete(bucket);
    }
  }
}
