/**
 * The one connector: every socket latchkey opens towards an upstream (undici
 * for HTTP, node's agents for WebSocket upgrades, raw TCP for anything else)
 * is dialled here, under one address policy. Cloud metadata services live on
 * link-local addresses, so such an address is never dialled: not as a literal
 * in any notation, and not when a name resolves there.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net, { isIP, type LookupFunction } from 'node:net';
import { createRequire } from 'node:module';
import type * as Undici from 'undici';
import type { buildConnector as BuildConnector } from 'undici';
import { isLinkLocal } from '../hosts.js';

/**
 * Only undici's Agent and connector, not its index: the index loads fetch,
 * WebSocket, caches and mocks too (about 65 ms of every start here). Falls
 * back to the index if a future undici moves these files.
 */
const require = createRequire(import.meta.url);
function undiciPart<K extends keyof typeof Undici>(file: string, name: K): (typeof Undici)[K] {
  try {
    return require(`undici/lib/${file}`) as (typeof Undici)[K];
  } catch {
    return (require('undici') as typeof Undici)[name];
  }
}
const Agent = undiciPart('dispatcher/agent.js', 'Agent');
const buildConnector = undiciPart('core/connect.js', 'buildConnector');

export type Resolver = (
  hostname: string,
  options: dns.LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void,
) => void;

export interface ConnectorOptions {
  connectTimeoutMs: number;
  ca: string[];
  /** Name resolution; dns.lookup unless a test stands in for it. */
  resolve?: Resolver;
  /**
   * Where an address that passed the policy is really dialled. Identity in
   * production; a test maps every address to loopback so that, even if the
   * policy were broken, nothing would leave the machine.
   */
  dialAddress?: (address: string) => string;
}

export interface AgentTimeouts {
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

const linkLocalError = (host: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${host} is a link-local address and is never dialled`), { code: 'ELINKLOCAL' });

type ConnectionCallback = (err: Error | null, socket?: net.Socket) => void;

export class Connector {
  /** The lookup every dial uses: resolves, drops link-local answers, then maps the address (tests). */
  readonly lookup: LookupFunction;
  private readonly dialAddress: (address: string) => string;

  constructor(private readonly o: ConnectorOptions) {
    const resolve: Resolver = o.resolve ?? (dns.lookup as unknown as Resolver);
    this.dialAddress = o.dialAddress ?? ((a) => a);
    const map = this.dialAddress;
    this.lookup = (hostname, options, callback) => {
      resolve(hostname, options, (err, address, family) => {
        if (err) return callback(err, '', 0);
        if (Array.isArray(address)) {
          const ok = address.filter((a) => !isLinkLocal(a.address)).map((a) => ({ ...a, address: map(a.address) }));
          if (ok.length === 0) return callback(linkLocalError(hostname), '', 0);
          return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, ok);
        }
        if (isLinkLocal(address)) return callback(linkLocalError(hostname), '', 0);
        callback(null, map(address), family ?? (isIP(address) === 6 ? 6 : 4));
      });
    };
  }

  /**
   * The policy for a host as written in a request: an IP literal never goes
   * through a lookup, so it is checked here; a name is checked by `lookup`.
   * Returns the host to dial (mapped for tests) or throws.
   */
  private literal(host: string): string {
    const bare = host.replace(/^\[|\]$/g, '');
    if (isLinkLocal(bare)) throw linkLocalError(host);
    return isIP(bare) ? this.dialAddress(bare) : host;
  }

  /** undici's agent for HTTP(S) calls, token endpoints and probes. */
  undiciAgent(t: AgentTimeouts): Undici.Agent {
    const base = buildConnector({ timeout: this.o.connectTimeoutMs, ca: this.o.ca, lookup: this.lookup });
    const connect: BuildConnector.connector = (opts, callback) => {
      let hostname: string;
      try {
        hostname = this.literal(opts.hostname);
      } catch (err) {
        callback(err as Error, null);
        return;
      }
      // An IP target has no SNI; a mapped literal keeps verifying against the name it was given.
      base(hostname === opts.hostname ? opts : { ...opts, hostname, servername: opts.servername ?? opts.hostname }, callback);
    };
    return new Agent({ connect, headersTimeout: t.headersTimeoutMs, bodyTimeout: t.bodyTimeoutMs, keepAliveTimeout: 30_000 });
  }

  /** node:http(s) agents (http-proxy-3's WebSocket upgrades) dialling through the same policy. */
  nodeAgent(protocol: 'http:' | 'https:'): http.Agent {
    const agent =
      protocol === 'https:'
        ? new https.Agent({ keepAlive: false, ca: this.o.ca, lookup: this.lookup, timeout: this.o.connectTimeoutMs })
        : new http.Agent({ keepAlive: false, lookup: this.lookup, timeout: this.o.connectTimeoutMs });
    const withCreate = agent as unknown as {
      createConnection: (options: net.NetConnectOpts & { host?: string; servername?: string }, cb: ConnectionCallback) => net.Socket | undefined;
    };
    const create = withCreate.createConnection.bind(agent);
    withCreate.createConnection = (options, cb) => {
      let host: string;
      try {
        host = this.literal(options.host ?? 'localhost');
      } catch (err) {
        // node's agent takes a connection error through the callback when nothing is returned.
        process.nextTick(() => cb(err as Error));
        return undefined;
      }
      return create(host === options.host ? options : { ...options, host, servername: options.servername ?? options.host }, cb);
    };
    return agent;
  }

  /** A plain TCP connection (blind tunnels) under the same policy. */
  connect(host: string, port: number): net.Socket {
    const target = this.literal(host);
    const socket = net.connect({ host: target, port, lookup: this.lookup });
    // A connect timeout only: an established tunnel may stay quiet for as long as its ends like.
    socket.setTimeout(this.o.connectTimeoutMs, () => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })));
    socket.once('connect', () => socket.setTimeout(0));
    return socket;
  }
}
