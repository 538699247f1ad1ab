import { describe, expect, it } from 'vitest';
import { Metrics, quantile } from '../../src/metrics.js';

describe('latency percentiles for the console', () => {
  it('interpolates within the bucket that holds the rank', () => {
    // 10 calls in (0, 0.1], 10 in (0.1, 0.2].
    expect(quantile(0.5, [0.1, 0.2], [10, 10], 20)).toBeCloseTo(0.1);
    expect(quantile(0.75, [0.1, 0.2], [10, 10], 20)).toBeCloseTo(0.15);
    expect(quantile(0.25, [0.1, 0.2], [10, 10], 20)).toBeCloseTo(0.05);
    expect(quantile(0.5, [0.1, 0.2], [0, 0], 0)).toBeNull();
    // Calls slower than the last bound report that bound.
    expect(quantile(0.99, [0.1, 0.2], [1, 0], 5)).toBe(0.2);
  });

  it('summarises calls, error rate and percentiles per integration', () => {
    const m = new Metrics();
    for (let i = 0; i < 8; i++) m.countCall('a', 200, 0.02);
    m.countCall('a', 502, null);
    m.countCall('a', 404, 0.004);
    m.countCall('b', 200, 1.5);
    const [a, b] = m.callSummary();
    expect(a).toMatchObject({ integration: 'a', total: 10, byClass: { '2xx': 8, '5xx': 1, '4xx': 1 } });
    expect(a?.errorRate).toBeCloseTo(0.2);
    expect(a?.latency.count).toBe(9);
    expect(a?.latency.p50).toBeGreaterThan(0.01);
    expect(a?.latency.p50).toBeLessThanOrEqual(0.025);
    expect(b).toMatchObject({ integration: 'b', total: 1, errorRate: 0 });
    expect(b?.latency.p99).toBeGreaterThan(1);
    expect(b?.latency.p99).toBeLessThanOrEqual(2.5);
  });
});
