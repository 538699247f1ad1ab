/**
 * Per-key rate limits: at most `requests` calls in any `perSeconds` window
 * (a sliding window, exact). Each key keeps the times of its last `requests`
 * allowed calls in a ring; a call is allowed when the oldest of them is older
 * than the window. O(1) per call, 8 bytes per allowed call of memory.
 *
 * One process holds the windows: a single `serve`, or with `workers` > 1 the
 * cluster primary, which every worker asks over IPC (RemoteLimiter), so the
 * limit holds across workers. Separate latchkey processes sharing one
 * database each enforce it on their own (README, "Rate limits").
 */
import { LatchkeyError } from '../errors.js';
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

/** What the pipeline asks: answered at once in one process, over IPC from a cluster worker. */
export interface Limiter {
  take(bucket: string, limit: RateLimit): RateDecision | Promise<RateDecision>;
}

export class RateLimiter implements Limiter {
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

/** A rate question from a cluster worker to the primary, and its answer. */
export interface RateAsk {
  id: number;
  bucket: string;
  limit: RateLimit;
}
export interface RateAnswer {
  id: number;
  decision: RateDecision;
}

/** How long a worker waits for the primary's answer before refusing the call. */
const ANSWER_MS = 5000;

/**
 * A cluster worker's limiter: each call of a rate-limited key asks the
 * primary, which holds the one window per key (one IPC round trip, only for
 * keys that have a limit). No answer in time: the call is refused (503), not
 * let through uncounted.
 */
export class RemoteLimiter implements Limiter {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (d: RateDecision) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly ask: (q: RateAsk) => void,
    private readonly answerMs = ANSWER_MS,
  ) {}

  take(bucket: string, limit: RateLimit): Promise<RateDecision> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new LatchkeyError('SERVICE_UNAVAILABLE', 'the rate limit could not be checked (the cluster primary did not answer)'));
      }, this.answerMs);
      this.waiting.set(id, { resolve, reject, timer });
      this.ask({ id, bucket, limit });
    });
  }

  answer(a: RateAnswer): void {
    const w = this.waiting.get(a.id);
    if (!w) return;
    this.waiting.delete(a.id);
    clearTimeout(w.timer);
    w.resolve(a.decision);
  }
}
