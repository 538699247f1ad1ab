import net from 'node:net';
import tls from 'node:tls';

export interface ConnectReply {
  status: number;
  /** Response head, lower-case names. */
  headers: Record<string, string>;
  body: string;
  socket: net.Socket;
}

/** Sends `CONNECT target` to the proxy and reads the response head (and, for an error, its body). */
export function rawConnect(proxyUrl: string, target: string, headers: Record<string, string> = {}): Promise<ConnectReply> {
  const proxy = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(proxy.port), proxy.hostname);
    let buf = Buffer.alloc(0);
    socket.on('error', reject);
    socket.once('connect', () => {
      const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number((head[0] ?? '').split(' ')[1]);
      const parsed: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        parsed[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const rest = buf.subarray(end + 4);
      if (status === 200) {
        socket.removeListener('data', onData);
        socket.removeListener('error', reject);
        if (rest.length > 0) socket.unshift(rest);
        resolve({ status, headers: parsed, body: '', socket });
        return;
      }
      const length = Number(parsed['content-length'] ?? 0);
      if (rest.length >= length) {
        socket.removeListener('data', onData);
        resolve({ status, headers: parsed, body: rest.subarray(0, length).toString(), socket });
      }
    };
    socket.on('data', onData);
  });
}

/** TLS over an established tunnel; rejects if the handshake fails. */
export function tlsOver(
  socket: net.Socket,
  servername: string | undefined,
  ca: string | string[],
  extra: tls.ConnectionOptions = {},
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, servername, ca, ALPNProtocols: ['http/1.1'], ...extra });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  });
}

/** The body of a chunked message if it is complete in `data`, else null. */
function dechunk(data: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (Number.isNaN(size)) throw new Error('bad chunk');
    if (size === 0) return data.length >= eol + 4 ? Buffer.concat(parts) : null;
    if (data.length < eol + 2 + size + 2) return null;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * One HTTP/1.1 request written by hand on a (TLS) socket, so a test controls
 * every byte (a wrong Host, several requests on one connection); resolves with
 * the status, the response head and the body (content-length or chunked).
 */
export function rawRequest(socket: tls.TLSSocket, lines: string[], body = ''): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (result: { status: number; head: string; body: string } | Error): void => {
      socket.removeListener('data', onData);
      socket.removeListener('error', done);
      socket.removeListener('close', onClose);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onClose = (): void => done(new Error('connection closed before the response ended'));
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      const status = Number(head.split(' ')[1]);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length) {
        if (rest.length >= Number(length[1])) done({ status, head, body: rest.subarray(0, Number(length[1])).toString() });
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        const complete = dechunk(rest);
        if (complete) done({ status, head, body: complete.toString() });
      } else if (status === 204 || status === 304) {
        done({ status, head, body: '' });
      }
    };
    socket.on('data', onData);
    socket.on('error', done);
    socket.on('close', onClose);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}
