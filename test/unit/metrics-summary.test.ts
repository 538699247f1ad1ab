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

  it('formats the per-integration series for Prometheus, and a worker delta adds up on the owner', async () => {
    const worker = new Metrics();
    worker.countCall('a', 200, 0.02);
    worker.countCall('a', 200, 0.003);
    worker.countCall('a', 503, null);
    const delta = await worker.takeDelta();
    expect(await worker.takeDelta()).toBeNull();
    const owner = new Metrics();
    owner.countCall('a', 200, 0.02);
    owner.mergeDelta(JSON.parse(JSON.stringify(delta)));
    const { text } = await owner.exposition();
    expect(text).toContain('latchkey_proxy_calls_total{integration="a",status_class="2xx"} 3');
    expect(text).toContain('latchkey_proxy_calls_total{integration="a",status_class="5xx"} 1');
    expect(text).not.toContain('status_class="4xx"');
    expect(text).toContain('latchkey_upstream_latency_seconds_bucket{integration="a",le="0.005"} 1');
    expect(text).toContain('latchkey_upstream_latency_seconds_bucket{integration="a",le="0.025"} 3');
    expect(text).toContain('latchkey_upstream_latency_seconds_bucket{integration="a",le="+Inf"} 3');
    expect(text).toContain('latchkey_upstream_latency_seconds_count{integration="a"} 3');
    expect(text).toMatch(/latchkey_upstream_latency_seconds_sum\{integration="a"\} 0\.043/);
  });
});
