/**
 * Prometheus metrics, all prefixed latchkey_. One set per running app, so
 * tests and several instances in one process stay apart.
 *
 * latchkey's own series are plain numbers that prom-client only formats when
 * /metrics is scraped: updating prom-client's labelled metrics cost about 7 µs
 * a call in the proxy (measured), against well under one for a Map lookup and
 * an add. prom-client itself (its registry, and the process and Node.js
 * metrics it collects) is loaded once the listeners serve, not before: its
 * import is ~35 ms of a start.
 */
import type { Registry } from 'prom-client';
import { lazyModule, once } from './lazy.js';

const promClient = lazyModule('the metrics library', () => import('prom-client'));

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

/** What prom-client's registry takes: a name, help, type and values made at scrape time. */
interface RegisteredMetric {
  name: string;
  help: string;
  type: Exported['type'];
  get: () => Exported;
}

const registered = (name: string, help: string, type: Exported['type'], values: () => MetricValue[]): RegisteredMetric => ({
  name,
  help,
  type,
  get: () => ({ name, help, type, values: values(), aggregator: 'sum' }),
});

/** A counter with fixed label names, in prom-client's shape (what its Counter offers latchkey: inc, get, reset). */
class LabelCounter<L extends string = never> {
  readonly type = 'counter';
  private values = new Map<string, MetricValue>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[] = [],
  ) {}

  inc(labels: { readonly [K in L]?: string } & object = {}, by = 1): void {
    if (typeof labels !== 'object') throw new TypeError(`${this.name}: labels first, then the amount`);
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    const v = this.values.get(key);
    if (v) v.value += by;
    else this.values.set(key, { labels: { ...(labels as Labels) }, value: by });
  }

  reset(): void {
    this.values = new Map();
  }

  entries(): MetricValue[] {
    return [...this.values.values()];
  }

  get(): Exported {
    const values = this.entries().map((v) => ({ labels: { ...v.labels }, value: v.value }));
    // Without labels, the one series exists from the start (0), as prom-client's own counters do.
    if (this.labelNames.length === 0 && values.length === 0) values.push({ labels: {}, value: 0 });
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }
}

/** Status classes 1xx..5xx by index 1..5; anything else (0: no status) is counted under index 0 as "0xx". */
const CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * Everything the hot path counts for one integration, in one record: one Map
 * lookup a call. With 100,000 integrations used at random each lookup is a
 * cache miss, and two maps (calls by class, latency) cost two.
 */
class IntegrationSeries {
  readonly calls = [0, 0, 0, 0, 0, 0];
  /** Per-bucket (not cumulative) latency counts; null until a forwarded call is timed. */
  latency: number[] | null = null;
  sum = 0;
  count = 0;
  constructor(readonly integration: string) {}
}

const classIndex = (status: number): number => {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 0;
};

/** The per-call series of every integration, and the two metrics prom-client formats from them. */
class CallSeries {
  private series = new Map<string, IntegrationSeries>();

  constructor(readonly buckets: number[]) {}

  of(integration: string): IntegrationSeries {
    let s = this.series.get(integration);
    if (s === undefined) {
      s = new IntegrationSeries(integration);
      this.series.set(integration, s);
    }
    return s;
  }

  count(integration: string, status: number, seconds: number | null): void {
    const s = this.of(integration);
    const c = classIndex(status);
    s.calls[c] = (s.calls[c] as number) + 1;
    if (seconds !== null) this.observe(s, seconds);
  }

  private observe(s: IntegrationSeries, seconds: number): void {
    const counts = (s.latency ??= new Array<number>(this.buckets.length).fill(0));
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= (b[i] as number)) {
        counts[i] = (counts[i] as number) + 1;
        break;
      }
    }
    s.sum += seconds;
    s.count++;
  }

  all(): IterableIterator<IntegrationSeries> {
    return this.series.values();
  }

  /** Adds another process's counts of one integration (same buckets: the same code made them). */
  merge(w: { integration: string; calls: number[]; latency: number[] | null; sum: number; count: number }): void {
    const s = this.of(w.integration);
    w.calls.forEach((v, c) => (s.calls[c] = (s.calls[c] ?? 0) + v));
    if (w.latency) {
      const counts = (s.latency ??= new Array<number>(this.buckets.length).fill(0));
      w.latency.forEach((v, i) => (counts[i] = (counts[i] ?? 0) + v));
    }
    s.sum += w.sum;
    s.count += w.count;
  }

  /** Every series, forgotten here (a worker's report of what it counted since the last one). */
  drain(): IntegrationSeries[] {
    const out = [...this.series.values()];
    this.series = new Map();
    return out;
  }

  /** The calls counter, in prom-client's shape. */
  callsMetric(name: string, help: string): RegisteredMetric {
    return registered(name, help, 'counter', () => {
      const values: MetricValue[] = [];
      for (const s of this.series.values()) {
        s.calls.forEach((v, c) => {
          if (v > 0) values.push({ labels: { integration: s.integration, status_class: CLASSES[c] as string }, value: v });
        });
      }
      return values;
    });
  }

  /** The upstream latency histogram, in prom-client's shape. */
  latencyMetric(name: string, help: string): RegisteredMetric {
    return registered(name, help, 'histogram', () => {
      const values: MetricValue[] = [];
      for (const s of this.series.values()) {
        if (s.latency === null) continue;
        const labels = { integration: s.integration };
        let cumulative = 0;
        this.buckets.forEach((le, i) => {
          cumulative += (s.latency as number[])[i] ?? 0;
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: s.count });
        values.push({ metricName: `${name}_sum`, labels, value: s.sum });
        values.push({ metricName: `${name}_count`, labels, value: s.count });
      }
      return values;
    });
  }
}

/**
 * What a proxy-only cluster worker counted since its last report: sent to the
 * owner (which serves /metrics and the console) about once a second and at
 * shutdown, so the owner's figures cover every worker's calls.
 */
export interface MetricsDelta {
  /** Per integration: calls by status class (index 0: no status, 1-5: 1xx-5xx) and latency bucket counts. */
  series: Array<{ integration: string; calls: number[]; latency: number[] | null; sum: number; count: number }>;
  counters: Array<{ name: string; labels: Labels; value: number }>;
}

export class Metrics {
  private readonly perIntegration = new CallSeries([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]);
  readonly injectionFailures = new LabelCounter('latchkey_injection_failures_total', 'Calls the proxy answered itself instead of forwarding, by error code', ['code']);
  readonly adminRequests = new LabelCounter('latchkey_admin_requests_total', 'Admin API requests by method, route and status class', [
    'method',
    'route',
    'status_class',
  ]);
  readonly tokenRefreshFailures = new LabelCounter(
    'latchkey_token_refresh_failures_total',
    'Failed access-token renewals by integration and reason (refused: reauthorization required; unreachable)',
    ['integration', 'reason'],
  );
  readonly tunnels = new LabelCounter(
    'latchkey_tunnels_total',
    'CONNECT tunnels opened, by kind (intercept: TLS terminated with a leaf of the local CA; passthrough: untouched)',
    ['kind'],
  );
  readonly leafMints = new LabelCounter('latchkey_leaf_certificates_minted_total', 'Leaf certificates signed by the local CA (cache misses)');
  readonly leafMintSeconds = new LabelCounter('latchkey_leaf_certificate_mint_seconds_total', 'Time spent minting leaf certificates');
  /** Updated only for calls whose response held a secret: nothing on the common path. */
  readonly redactions = new LabelCounter('latchkey_redactions_total', 'Injected secrets replaced by [REDACTED] in upstream responses, by integration', [
    'integration',
  ]);

  /**
   * prom-client's registry with every latchkey metric and its default process
   * and Node.js metrics (collected from the moment it is made). Made at the
   * first scrape, or earlier by `prepare()` (the app calls it once it serves).
   */
  readonly prepare: () => Promise<Registry> = once(async () => {
    const { Registry: Reg, collectDefaultMetrics } = await promClient();
    const registry = new Reg();
    collectDefaultMetrics({ register: registry, prefix: 'latchkey_' });
    registry.registerMetric(this.perIntegration.callsMetric('latchkey_proxy_calls_total', 'Proxied calls by integration and response status class') as never);
    registry.registerMetric(
      this.perIntegration.latencyMetric('latchkey_upstream_latency_seconds', 'Time from receiving a call to the end of its upstream response') as never,
    );
    for (const c of [this.injectionFailures, this.redactions, this.adminRequests, this.tokenRefreshFailures, this.tunnels, this.leafMints, this.leafMintSeconds]) {
      registry.registerMetric(c as never);
    }
    return registry;
  });

  /** The text exposition of every metric, and its content type (GET /metrics). */
  async exposition(): Promise<{ text: string; contentType: string }> {
    const registry = await this.prepare();
    return { text: await registry.metrics(), contentType: registry.contentType };
  }

  tunnelOpened(kind: 'intercept' | 'passthrough'): void {
    this.tunnels.inc({ kind });
  }

  leafMinted(ms: number): void {
    this.leafMints.inc();
    this.leafMintSeconds.inc({}, ms / 1000);
  }

  /** Calls, error rate and latency percentiles per integration, for the console. */
  callSummary(): IntegrationCalls[] {
    const bounds = this.perIntegration.buckets;
    return [...this.perIntegration.all()]
      .map((s) => {
        const byClass: Record<string, number> = {};
        s.calls.forEach((v, c) => {
          if (v > 0) byClass[CLASSES[c] as string] = v;
        });
        const total = s.calls.reduce((a, b) => a + b, 0);
        const errors = (s.calls[4] as number) + (s.calls[5] as number);
        const counts = s.latency ?? [];
        const q = (p: number) => (s.latency ? quantile(p, bounds, counts, s.count) : null);
        return {
          integration: s.integration,
          total,
          byClass,
          errorRate: total === 0 ? 0 : errors / total,
          latency: {
            count: s.count,
            bounds: s.latency ? bounds : [],
            counts: [...counts],
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            mean: s.count > 0 ? s.sum / s.count : null,
          },
        };
      })
      .filter((c) => c.total > 0)
      .sort((a, b) => b.total - a.total);
  }

  /** The data-plane counters a worker reports (admin requests and process metrics stay each process's own). */
  private dataPlaneCounters(): Array<LabelCounter<string>> {
    return [this.injectionFailures, this.redactions, this.tokenRefreshFailures, this.tunnels, this.leafMints, this.leafMintSeconds] as Array<LabelCounter<string>>;
  }

  /** What this process counted since the last call, then forgotten here; null when nothing was. */
  async takeDelta(): Promise<MetricsDelta | null> {
    const counters: MetricsDelta['counters'] = [];
    for (const c of this.dataPlaneCounters()) {
      for (const v of c.entries()) if (v.value !== 0) counters.push({ name: c.name, labels: v.labels, value: v.value });
      c.reset();
    }
    const series = this.perIntegration.drain().map((s) => ({ integration: s.integration, calls: s.calls, latency: s.latency, sum: s.sum, count: s.count }));
    return series.length + counters.length === 0 ? null : { series, counters };
  }

  /** Adds a worker's report to this process's figures. */
  mergeDelta(d: MetricsDelta): void {
    for (const w of d.series) this.perIntegration.merge(w);
    const byName = new Map(this.dataPlaneCounters().map((c) => [c.name, c]));
    for (const c of d.counters) byName.get(c.name)?.inc(c.labels, c.value);
  }

  /** The hot path: one proxied call, with its upstream latency when it was forwarded. */
  countCall(integration: string, status: number, seconds: number | null): void {
    this.perIntegration.count(integration, status, seconds);
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
