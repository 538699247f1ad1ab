/**
 * Prometheus metrics (prom-client), all prefixed latchkey_. One registry per
 * running app, so tests and several instances in one process stay apart.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly calls: Counter<'integration' | 'status_class'>;
  readonly upstreamLatency: Histogram<'integration'>;
  readonly injectionFailures: Counter<'code'>;
  readonly adminRequests: Counter<'method' | 'route' | 'status_class'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'latchkey_' });
    this.calls = new Counter({
      name: 'latchkey_proxy_calls_total',
      help: 'Proxied calls by integration and response status class',
      labelNames: ['integration', 'status_class'],
      registers: [this.registry],
    });
    this.upstreamLatency = new Histogram({
      name: 'latchkey_upstream_latency_seconds',
      help: 'Time from receiving a call to the end of its upstream response',
      labelNames: ['integration'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    this.injectionFailures = new Counter({
      name: 'latchkey_injection_failures_total',
      help: 'Calls the proxy answered itself instead of forwarding, by error code',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.adminRequests = new Counter({
      name: 'latchkey_admin_requests_total',
      help: 'Admin API requests by method, route and status class',
      labelNames: ['method', 'route', 'status_class'],
      registers: [this.registry],
    });
  }

  private readonly callSeries = new Map<string, { inc: () => void }>();
  private readonly latencySeries = new Map<string, { observe: (v: number) => void }>();

  /** Hot path: label children are looked up once per series, not hashed per call. */
  countCall(integration: string, status: number, seconds: number | null): void {
    const cls = statusClass(status);
    const key = `${integration}\u0000${cls}`;
    let counter = this.callSeries.get(key);
    if (!counter) {
      counter = this.calls.labels(integration, cls);
      this.callSeries.set(key, counter);
    }
    counter.inc();
    if (seconds === null) return;
    let histogram = this.latencySeries.get(integration);
    if (!histogram) {
      histogram = this.upstreamLatency.labels(integration);
      this.latencySeries.set(integration, histogram);
    }
    histogram.observe(seconds);
  }
}

export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;
