/**
 * Tunnel rows of `npm run bench`: calls inside kept-alive CONNECT tunnels
 * against plain forward-proxy calls to the same HTTPS upstream, both driven
 * by the same undici load loop in this process (wrk and autocannon speak no
 * CONNECT), and the time latchkey takes to mint a leaf certificate.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';

export interface TunnelBenchSetup {
  dir: string;
  seconds: number;
  connections: number;
}

/** A CA and an upstream certificate for 127.0.0.1 (openssl), and a config file trusting that CA. */
export function makeBenchPki(dir: string): { key: string; cert: string; config: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-days', '2', '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  run(['req', ...ec, '-keyout', 'up.key', '-out', 'up.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'up.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'up.crt', '-extfile', 'ext.cnf']);
  const config = join(dir, 'bench-config.json');
  writeFileSync(config, JSON.stringify({ proxy: { caFile: join(dir, 'ca.crt') } }));
  return { key: join(dir, 'up.key'), cert: join(dir, 'up.crt'), config };
}

export interface LoopResult {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** `connections` concurrent loops of one request after another for `seconds`. */
async function loop(name: string, seconds: number, connections: number, once: () => Promise<number>): Promise<LoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) {
        const t = performance.now();
        try {
          if ((await once()) !== 200) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((x, y) => x - y);
  const at = (p: number) => Math.round((latencies[Math.floor((latencies.length - 1) * p)] ?? 0) * 100) / 100;
  return { name, rps: latencies.length / seconds, p50: at(0.5), p99: at(0.99), errors };
}

async function call(dispatcher: Dispatcher, url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { dispatcher, headers });
  await res.body.dump();
  return res.statusCode;
}

/**
 * (e) forward proxy: `GET http://127.0.0.1:port/...` to latchkey, which sends it upstream over TLS;
 * (f) CONNECT: the same calls inside kept-alive tunnels (one per connection), TLS terminated by latchkey.
 */
export async function tunnelRows(s: TunnelBenchSetup, proxyUrl: string, adminKey: string, upstreamPort: number, caPem: string): Promise<LoopResult[]> {
  const auth = `Basic ${Buffer.from(`tls:${adminKey}`).toString('base64')}`;
  const plain = new Agent({ connections: s.connections, keepAliveTimeout: 60_000 });
  const tunnel = new ProxyAgent({ uri: proxyUrl, token: auth, requestTls: { ca: caPem }, connections: s.connections });
  // An absolute-form path: what an HTTP_PROXY client sends.
  const absolute = async (): Promise<number> => {
    const r = await plain.request({ origin: proxyUrl, path: `http://127.0.0.1:${upstreamPort}/v1/items`, method: 'GET', headers: { 'proxy-authorization': auth } });
    await r.body.dump();
    return r.statusCode;
  };
  const tunnelled = () => call(tunnel, `https://127.0.0.1:${upstreamPort}/v1/items`);
  for (const warm of [absolute, tunnelled]) await loop('warm-up', 2, s.connections, warm);
  const rows = [
    await loop('(e) forward proxy, https upstream', s.seconds, s.connections, absolute),
    await loop('(f) inside kept-alive tunnels', s.seconds, s.connections, tunnelled),
  ];
  await plain.close();
  await tunnel.close();
  return rows;
}

/** CONNECTs to `count` new host names (no TLS needed: the leaf is minted before the 200); mean ms per mint from /metrics. */
export async function leafMintMs(proxyUrl: string, adminUrl: string, adminKey: string, count: number): Promise<number> {
  const proxy = new URL(proxyUrl);
  const auth = `Basic ${Buffer.from(`mint:${adminKey}`).toString('base64')}`;
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(Number(proxy.port), proxy.hostname, () => {
        socket.write(`CONNECT h${i}.mint.bench.example:443 HTTP/1.1\r\nHost: h${i}.mint.bench.example:443\r\nProxy-Authorization: ${auth}\r\n\r\n`);
      });
      socket.once('data', (d: Buffer) => {
        socket.destroy();
        if (d.toString('latin1').startsWith('HTTP/1.1 200')) resolve();
        else reject(new Error(d.toString('latin1').split('\r\n')[0]));
      });
      socket.once('error', reject);
    });
  }
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  return (value('latchkey_leaf_certificate_mint_seconds_total') * 1000) / value('latchkey_leaf_certificates_minted_total');
}
