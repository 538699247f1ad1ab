import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLatchkey, type TestLatchkey } from './latchkey.js';
import { startUpstream, type Handler, type Upstream } from './upstream.js';
import { makePki, type TestPki } from './certs.js';
import { ensureLoopbackNames } from './hosts.js';
import { tmpDir } from './tmp.js';
import { call } from './http.js';

export interface ConnectFixture {
  lk: TestLatchkey;
  pki: TestPki;
  up: Upstream;
  /** The upstream's host name (a loopback name from /etc/hosts) and port: the CONNECT target. */
  host: string;
  target: string;
  /** latchkey's CA certificate, and a file holding it. */
  caPem: string;
  caFile: string;
  proxyHostPort: string;
  close: () => Promise<void>;
}

export const UPSTREAM_TOKEN = 'upstream-token-7f3a9c';

/**
 * A latchkey trusting a test CA for its upstreams, a real HTTPS upstream
 * under a loopback name, and integration `api` (bearer token) for it.
 */
export async function startConnectFixture(
  names: string[],
  options: { handler?: Handler; config?: object; env?: Record<string, string>; redact?: boolean } = {},
): Promise<ConnectFixture> {
  const [host] = names;
  if (!host) throw new Error('at least one name');
  ensureLoopbackNames(names);
  const pki = makePki(names);
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { caFile: pki.caFile, ...(options.config ?? {}) } }));
  const lk = await startLatchkey({ LATCHKEY_CONFIG: cfg, ...(options.env ?? {}) }, dir);
  const up = await startUpstream(options.handler, pki);
  const target = `${host}:${up.port}`;
  // Most tunnel tests read the upstream's view from its echo, which redaction would hide;
  // connect-stream.test.ts turns it on and checks it inside a tunnel.
  await lk.admin.post('/v1/integrations', { integrationId: 'api', baseUrl: `https://${target}`, redactResponses: options.redact ?? false });
  await lk.admin.post('/v1/integrations/api/auth', { authType: 'BEARER_TOKEN', token: UPSTREAM_TOKEN });
  const caPem = (await call(`${lk.adminUrl}/ca.pem`)).text;
  const caFile = join(dir, 'latchkey-ca.pem');
  writeFileSync(caFile, caPem);
  return {
    lk,
    pki,
    up,
    host,
    target,
    caPem,
    caFile,
    proxyHostPort: new URL(lk.proxyUrl).host,
    close: async () => {
      await up.close();
      await lk.close();
    },
  };
}

/** An agent key scoped to `integrations`. */
export async function agentKey(lk: TestLatchkey, integrations: string[] = ['*']): Promise<string> {
  const r = await lk.admin.post('/v1/api-keys', { name: 'agent', role: 'agent', integrations });
  return r.json.key as string;
}

/** A counter's value from /metrics (0 when absent). */
export async function metric(lk: TestLatchkey, name: string, labels = ''): Promise<number> {
  const text = (await call(`${lk.adminUrl}/metrics`)).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line ? Number(line.split(' ').pop()) : 0;
}
