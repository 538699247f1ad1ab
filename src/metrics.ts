/**
 * Prometheus metrics (prom-client), all prefixed latchkey_. One registry per
 * running app, so tests and several instances in one process stay apart.
 *
 * The two series updated on every proxied call are plain numbers that
 * prom-client formats only when /metrics is scraped: updating prom-client's
 * own labelled metrics cost about 7 µs a call in the proxy (measured), against
 * well under one for a Map lookup and an add.
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** The shape prom-client's registry formats: what its own metrics return from get(). */
interface Exported {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

class CallCounter {
  readonly type = 'counter';
  private readonly series = new Map<string, MetricValue>();

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(key: string, labels: () => Labels, by = 1): void {
    const s = this.series.get(key);
    if (s) s.value += by;
    else this.series.set(key, { labels: labels(), value: by });
  }

  /** Every series, forgotten here (a worker's report of what it counted since the last one). */
  drain(): MetricValue[] {
    const out = [...this.series.values()];
    this.series.clear();
    return out;
  }

  entries(): MetricValue[] {
    return [...this.series.values()];
  }

  get(): Exported {
    return { name: this.name, help: this.help, type: 'counter', values: [...this.series.values()].map((v) => ({ ...v })), aggregator: 'sum' };
  }
}

class LatencyHistogram {
  readonly type = 'histogram';
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[],
  ) {}

  observe(key: string, labels: () => Labels, seconds: number): void {
    let s = this.series.get(key);
    if (!s) {
      s = { labels: labels(), counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    const i = this.buckets.findIndex((b) => seconds <= b);
    if (i >= 0) s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += seconds;
    s.count++;
  }

  drain(): Array<{ labels: Labels; counts: number[]; sum: number; count: number }> {
    const out = [...this.series.values()];
    this.series.clear();
    return out;
  }

  /** Adds another process's counts of one series (same buckets: the same code made them). */
  merge(key: string, labels: Labels, counts: number[], sum: number, count: number): void {
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    counts.forEach((c, i) => ((s as { counts: number[] }).counts[i] = ((s as { counts: number[] }).counts[i] ?? 0) + c));
    s.sum += sum;
    s.count += count;
  }

  /** Per-bucket (not cumulative) counts of one series, with the bucket bounds. */
  series1(key: string): { bounds: number[]; counts: number[]; count: number; sum: number } | null {
    const s = this.series.get(key);
    return s ? { bounds: this.buckets, counts: [...s.counts], count: s.count, sum: s.sum } : null;
  }

  get(): Exported {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] ?? 0;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: String(le) }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }
}

/**
 * What a proxy-only cluster worker counted since its last report: sent to the
 * owner (which serves /metrics and the console) about once a second and at
 * shutdown, so the owner's figures cover every worker's calls.
 */
export interface MetricsDelta {
  calls: Array<{ labels: Labels; value: number }>;
  latency: Array<{ labels: Labels; counts: number[]; sum: number; count: number }>;
  counters: Array<{ name: string; labels: Labels; value: number }>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly calls = new CallCounter('latchkey_proxy_calls_total', 'Proxied calls by integration and response status class');
  private readonly upstreamLatency = new LatencyHistogram(
    'latchkey_upstream_latency_seconds',
    'Time from receiving a call to the end of its upstream response',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  );
  readonly injectionFailures: Counter<'code'>;
  readonly adminRequests: Counter<'method' | 'route' | 'status_class'>;
  readonly tokenRefreshFailures: Counter<'integration' | 'reason'>;
  readonly tunnels: Counter<'kind'>;
  readonly leafMints: Counter;
  readonly leafMintSeconds: Counter;
  /** Updated only for calls whose response held a secret: nothing on the common path. */
  readonly redactions: Counter<'integration'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
    this.registry.registerMetric(this.calls as never);
    this.registry.registerMetric(this.upstreamLatency as never);
    this.injectionFailures = new Counter({
      name: 'latchkey_injection_failures_total',
      help: 'Calls the proxy answered itself instead of forwarding, by error code',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.redactions = new Counter({
      name: 'latchkey_redactions_total',
      help: 'Injected secrets replaced by [REDACTED] in upstream responses, by integration',
      labelNames: ['integration'],
      registers: [this.registry],
    });
    this.adminRequests = new Counter({
      name: 'latchkey_admin_requests_total',
      help: 'Admin API requests by method, route and status class',
      labelNames: ['method', 'route', 'status_class'],
      registers: [this.registry],
    });
    this.tokenRefreshFailures = new Counter({
      name: 'latchkey_token_refresh_failures_total',
      help: 'Failed access-token renewals by integration and reason (refused: reauthorization required; unreachable)',
      labelNames: ['integration', 'reason'],
      registers: [this.registry],
    });
    this.tunnels = new Counter({
      name: 'latchkey_tunnels_total',
      help: 'CONNECT tunnels opened, by kind (intercept: TLS terminated with a leaf of the local CA; passthrough: untouched)',
      labelNames: ['kind'],
      registers: [this.registry],
    });
    this.leafMints = new Counter({
      name: 'latchkey_leaf_certificates_minted_total',
      help: 'Leaf certificates signed by the local CA (cache misses)',
      registers: [this.registry],
    });
    this.leafMintSeconds = new Counter({
      name: 'latchkey_leaf_certificate_mint_seconds_total',
      help: 'Time spent minting leaf certificates',
      registers: [this.registry],
    });
  }

  tunnelOpened(kind: 'intercept' | 'passthrough'): void {
    this.tunnels.inc({ kind });
  }

  leafMinted(ms: number): void {
    this.leafMints.inc();
    this.leafMintSeconds.inc(ms / 1000);
  }

  /** Calls, error rate and latency percentiles per integration, for the console. */
  callSummary(): IntegrationCalls[] {
    const byIntegration = new Map<string, Record<string, number>>();
    for (const v of this.calls.entries()) {
      const name = v.labels.integration ?? 'unknown';
      const classes = byIntegration.get(name) ?? {};
      classes[v.labels.status_class ?? '?'] = (classes[v.labels.status_class ?? '?'] ?? 0) + v.value;
      byIntegration.set(name, classes);
    }
    return [...byIntegration]
      .map(([integration, byClass]) => {
        const total = Object.values(byClass).reduce((a, b) => a + b, 0);
        const errors = (byClass['4xx'] ?? 0) + (byClass['5xx'] ?? 0);
        const h = this.upstreamLatency.series1(integration);
        const q = (p: number) => (h ? quantile(p, h.bounds, h.counts, h.count) : null);
        return {
          integration,
          total,
          byClass,
          errorRate: total === 0 ? 0 : errors / total,
          latency: {
            count: h?.count ?? 0,
            bounds: h?.bounds ?? [],
            counts: h?.counts ?? [],
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            mean: h && h.count > 0 ? h.sum / h.count : null,
          },
        };
      })
      .sort((a, b) => b.total - a.total);
  }

  /** The data-plane counters a worker reports (admin requests and process metrics stay each process's own). */
  private dataPlaneCounters(): Array<Counter<string>> {
    return [this.injectionFailures, this.redactions, this.tokenRefreshFailures, this.tunnels, this.leafMints, this.leafMintSeconds] as Array<Counter<string>>;
  }

  /** What this process counted since the last call, then forgotten here; null when nothing was. */
  async takeDelta(): Promise<MetricsDelta | null> {
    // Each get() reads its values before its first await: reset at once, nothing counted in between is lost.
    const pending = this.dataPlaneCounters().map((c) => {
      const got = c.get();
      c.reset();
      return got;
    });
    const delta: MetricsDelta = { calls: this.calls.drain(), latency: this.upstreamLatency.drain(), counters: [] };
    for (const got of await Promise.all(pending)) {
      for (const v of got.values) if (v.value !== 0) delta.counters.push({ name: got.name, labels: v.labels as Labels, value: v.value });
    }
    return delta.calls.length + delta.latency.length + delta.counters.length === 0 ? null : delta;
  }

  /** Adds a worker's report to this process's figures. */
  mergeDelta(d: MetricsDelta): void {
    for (const c of d.calls) {
      const { integration = 'unknown', status_class: cls = '?' } = c.labels;
      this.calls.inc(`${integration}\u0000${cls}`, () => ({ integration, status_class: cls }), c.value);
    }
    for (const h of d.latency) this.upstreamLatency.merge(h.labels.integration ?? 'unknown', h.labels, h.counts, h.sum, h.count);
    const byName = new Map(this.dataPlaneCounters().map((c) => [(c as unknown as { name: string }).name, c]));
    for (const c of d.counters) byName.get(c.name)?.inc(c.labels, c.value);
  }

  /** The hot path: one proxied call, with its upstream latency when it was forwarded. */
  countCall(integration: string, status: number, seconds: number | null): void {
    const cls = statusClass(status);
    this.calls.inc(`${integration}\u0000${cls}`, () => ({ integration, status_class: cls }));
    if (seconds !== null) this.upstreamLatency.observe(integration, () => ({ integration }), seconds);
  }
}

export interface IntegrationCalls {
  integration: string;
  total: number;
  byClass: Record<string, number>;
  /** Share of calls answered 4xx or 5xx (by the upstream or by latchkey). */
  errorRate: number;
  latency: { count: number; bounds: number[]; counts: number[]; p50: number | null; p90: number | null; p99: number | null; mean: number | null };
}

/**
 * A quantile from bucket counts, interpolated linearly inside its bucket (as
 * Prometheus' histogram_quantile does). Beyond the last bound: that bound.
 */
export function quantile(q: number, bounds: number[], counts: number[], total: number): number | null {
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const c = counts[i] ?? 0;
    if (below + c >= rank && c > 0) {
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      return lower + ((bounds[i] as number) - lower) * ((rank - below) / c);
    }
    below += c;
  }
  return bounds[bounds.length - 1] ?? null;
}

export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;
