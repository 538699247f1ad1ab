/**
 * Preloaded into Node programs under `latchkey run` (NODE_OPTIONS=--import)
 * on Node versions whose fetch and http(s) modules ignore the proxy
 * variables. It routes, through the proxy in HTTPS_PROXY / HTTP_PROXY:
 * - fetch: the global undici dispatcher becomes an EnvHttpProxyAgent (Node's
 *   own fetch reads the same global slot, Symbol.for('undici.globalDispatcher.1'));
 * - http.request: absolute-form requests to the proxy (plain forward proxy);
 * - https.request: a CONNECT tunnel per connection, TLS inside it.
 * Clients built on them (axios, got, node-fetch) follow. NO_PROXY is honoured.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { EnvHttpProxyAgent, setGlobalDispatcher } from 'undici';

const env = process.env;
const proxyValue = env.https_proxy ?? env.HTTPS_PROXY ?? env.http_proxy ?? env.HTTP_PROXY;
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
// These versions honour the variables natively once NODE_USE_ENV_PROXY=1 (set by latchkey run).
const native = env.NODE_USE_ENV_PROXY === '1' && (major >= 25 || (major === 24 && minor >= 5) || (major === 22 && minor >= 21));

interface Proxy {
  host: string;
  port: number;
  authorization: string | null;
}

function parseProxy(value: string): Proxy | null {
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:') return null;
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    return {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: Number(u.port || 80),
      authorization: user || pass ? `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` : null,
    };
  } catch {
    return null;
  }
}

const noProxy = (env.no_proxy ?? env.NO_PROXY ?? '')
  .split(',')
  .map((s) => s.trim().toLowerCase())
  .filter(Boolean);

/** NO_PROXY as undici reads it: `*`, an exact host (optionally host:port), or a domain suffix. */
function bypass(host: string, port: number): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return noProxy.some((entry) => {
    if (entry === '*') return true;
    const [name = '', p] = entry.replace(/^\[|\]$/g, '').split(/:(?=\d+$)/);
    if (p !== undefined && Number(p) !== port) return false;
    const bare = name.replace(/^\*?\./, '');
    return h === bare || h.endsWith(`.${bare}`);
  });
}

const authority = (host: string, port: number): string => `${net.isIP(host) === 6 ? `[${host}]` : host}:${port}`;

type AgentOptions = { host?: string | null; hostname?: string | null; port?: number | string | null; servername?: string };

function install(proxy: Proxy): void {
  setGlobalDispatcher(new EnvHttpProxyAgent());
  const isProxy = (host: string, port: number): boolean => host === proxy.host && port === proxy.port;

  // Patched on instances: the methods are node's documented extension points, loosely typed in @types/node.
  const httpAgent = new http.Agent({ keepAlive: true }) as unknown as { addRequest: (req: http.ClientRequest, o: AgentOptions) => void };
  const addRequest = httpAgent.addRequest.bind(httpAgent);
  httpAgent.addRequest = (req, options) => {
    const host = String(options.hostname ?? options.host ?? 'localhost').replace(/^\[|\]$/g, '');
    const port = Number(options.port ?? 80);
    // Already proxied (axios speaks to the proxy itself), or not to be proxied.
    if (!isProxy(host, port) && !bypass(host, port) && !/^https?:\/\//i.test(req.path)) {
      req.path = `http://${authority(host, port)}${req.path}`;
      if (proxy.authorization && !req.getHeader('proxy-authorization')) req.setHeader('proxy-authorization', proxy.authorization);
      options = { ...options, host: proxy.host, hostname: proxy.host, port: proxy.port };
    }
    addRequest(req, options);
  };

  type Created = (err: Error | null, socket?: net.Socket) => void;
  const httpsAgent = new https.Agent({ keepAlive: true }) as unknown as {
    createConnection: (o: tls.ConnectionOptions & AgentOptions, cb: Created) => net.Socket | undefined;
  };
  const direct = httpsAgent.createConnection.bind(httpsAgent);
  httpsAgent.createConnection = (options, callback) => {
    const host = String(options.hostname ?? options.host ?? 'localhost').replace(/^\[|\]$/g, '');
    const port = Number(options.port ?? 443);
    if (bypass(host, port) || isProxy(host, port)) return direct(options, callback);
    const target = authority(host, port);
    const raw = net.connect(proxy.port, proxy.host);
    const fail = (err: Error): void => {
      raw.destroy();
      callback(err);
    };
    raw.once('error', fail);
    raw.once('connect', () => {
      const auth = proxy.authorization ? `Proxy-Authorization: ${proxy.authorization}\r\n` : '';
      raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    });
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      raw.removeListener('data', onData);
      raw.removeListener('error', fail);
      const head = buffered.subarray(0, end).toString('latin1');
      if (Number(head.split(' ')[1]) !== 200) {
        const code = /\r\nx-latchkey-error: *([A-Z_]+)/i.exec(head)?.[1];
        const why = `${head.split('\r\n')[0] ?? ''}${code ? ` (${code})` : ''}`;
        fail(Object.assign(new Error(`proxy refused CONNECT ${target}: ${why}`), { code: 'EPROXYREFUSED' }));
        return;
      }
      const rest = buffered.subarray(end + 4);
      if (rest.length > 0) raw.unshift(rest);
      const servername = options.servername ?? (net.isIP(host) ? undefined : host);
      callback(null, tls.connect({ ...options, socket: raw, servername }));
    };
    raw.on('data', onData);
    // Nothing returned: node's agent waits for the callback.
    return undefined;
  };

  http.globalAgent = httpAgent as unknown as http.Agent;
  https.globalAgent = httpsAgent as unknown as https.Agent;
}

const proxy = proxyValue ? parseProxy(proxyValue) : null;
if (proxy && !native) install(proxy);
