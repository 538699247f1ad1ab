import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';

export interface VerifiedRequest {
  method: string;
  path: string;
  ok: boolean;
  reason: string | null;
  bodyBytes: number;
  headers: Record<string, string>;
}

export interface SigV4Verifier {
  url: string;
  port: number;
  /** Every request that reached it, with botocore's verdict. */
  log: () => Promise<VerifiedRequest[]>;
  close: () => Promise<void>;
}

/** Debian's python3-botocore lives under the system interpreter. */
const PYTHON = process.env.LATCHKEY_TEST_PYTHON ?? '/usr/bin/python3';

/** Starts test/helpers/sigv4_verifier.py: an S3-like server checking SigV4 with botocore and the real keys. */
export async function startVerifier(keys: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): Promise<SigV4Verifier> {
  const child = spawn(PYTHON, [join(import.meta.dirname, 'sigv4_verifier.py')], {
    env: {
      PATH: process.env.PATH ?? '',
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
      AWS_SESSION_TOKEN: keys.sessionToken ?? '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`sigv4_verifier.py exited ${code}: ${stderr}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    log: async () => (await (await fetch(`${url}/__log`)).json()) as VerifiedRequest[],
    close: async () => {
      child.kill();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}
