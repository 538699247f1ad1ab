/**
 * AWS_SIGV4 end to end: an unmodified AWS SDK v3 S3 client with dummy
 * credentials, pointed at latchkey, against an S3-like server that checks
 * every signature with botocore and the REAL secret (test/helpers/sigv4_verifier.py).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startVerifier, type SigV4Verifier } from '../helpers/sigv4-verifier.js';
import { request } from 'undici';
import WebSocket from 'ws';
import { basic, call, viaForwardProxy } from '../helpers/http.js';
import { tmpDir } from '../helpers/tmp.js';

const REAL = { accessKeyId: 'AKIALEAKCHECK7F3A9C2E', secretAccessKey: 'realSecret/LEAKCHECK+9d8c7b6a5f4e3d2c1b0a' };
const TOKEN = 'sessionToken//LEAKCHECK//FwoGZXIvYXdzEKn+token==';
const LIMIT = 1024 * 1024;

let lk: TestLatchkey;
let s3up: SigV4Verifier;
let tokenUp: SigV4Verifier;

const s3Client = (integration: string, region = 'us-east-1', extra: Partial<S3ClientConfig> = {}) =>
  new S3Client({
    ...extra,
    endpoint: `${lk.proxyUrl}/${integration}`,
    forcePathStyle: true,
    region,
    // The latchkey key is the access key id: the SDK signs with it, latchkey finds it and re-signs with the real keys.
    credentials: { accessKeyId: lk.adminKey, secretAccessKey: 'dummy-secret-the-sdk-signs-with' },
    maxAttempts: 1,
  });

/** Forces the SDK's payload hash to UNSIGNED-PAYLOAD, as S3 clients do for large streamed uploads. */
function unsignedPayload(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      const req = args.request as { headers: Record<string, string> };
      req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'finalizeRequest', name: 'unsignedPayload', priority: 'high' },
  );
  return client;
}

beforeAll(async () => {
  const dir = tmpDir().path;
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({ proxy: { signing: { maxBodyBytes: LIMIT } } }));
  lk = await startLatchkey({ LATCHKEY_CONFIG: cfg, LATCHKEY_LOG_LEVEL: 'trace' }, dir);
  s3up = await startVerifier(REAL);
  tokenUp = await startVerifier({ ...REAL, sessionToken: TOKEN });
  const integration = async (id: string, url: string, aws: object) => {
    expect((await lk.admin.post('/v1/integrations', { integrationId: id, baseUrl: url })).status).toBe(201);
    const r = await lk.admin.post(`/v1/integrations/${id}/auth`, { authType: 'aws_sigv4', aws });
    expect(r.status, r.text).toBe(201);
    return r;
  };
  await integration('s3', s3up.url, { ...REAL, region: 'us-east-1', service: 's3' });
  await integration('s3-scope', s3up.url, REAL);
  await integration('s3-token', tokenUp.url, { ...REAL, sessionToken: TOKEN, region: 'eu-west-1', service: 's3' });
  await integration('dynamo', s3up.url, { ...REAL, region: 'us-east-1', service: 'dynamodb' });
}, 60_000);

afterAll(async () => {
  await Promise.all([s3up?.close(), tokenUp?.close()]);
  await lk?.close();
});

/** A body of `size` bytes made 1 MiB at a time, never held whole. */
function stream(size: number): Readable {
  const chunk = Buffer.alloc(1024 * 1024, 'z');
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

const lastSeen = async (up: SigV4Verifier) => (await up.log()).at(-1);

describe('an unmodified AWS SDK v3 S3 client through latchkey', () => {
  it('PutObject then GetObject: botocore accepts the signatures made with the real secret', async () => {
    const s3 = s3Client('s3');
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'dir/hello world.txt', Body: 'hello, signed world', ContentType: 'text/plain' }));
    const put = await lastSeen(s3up);
    expect(put).toMatchObject({ method: 'PUT', path: '/bkt/dir/hello%20world.txt?x-id=PutObject', ok: true });
    // Latchkey's signature, not the SDK's: the real access key id, and no trace of the latchkey key.
    expect(put?.headers.authorization).toContain(`Credential=${REAL.accessKeyId}/`);
    expect(JSON.stringify(put?.headers)).not.toContain(lk.adminKey);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'dir/hello world.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello, signed world');
    expect((await lastSeen(s3up))?.ok).toBe(true);
  });

  it('a hashed body is signed with its real hash', async () => {
    await s3Client('s3').send(new PutObjectCommand({ Bucket: 'bkt', Key: 'hashed', Body: 'payload bytes' }));
    const seen = await lastSeen(s3up);
    expect(seen?.ok).toBe(true);
    expect(seen?.headers['x-amz-content-sha256']).toBe(createHash('sha256').update('payload bytes').digest('hex'));
  });

  it('takes region and service from the SDK\'s own Credential scope when the record has none', async () => {
    const s3 = s3Client('s3-scope', 'ap-southeast-2');
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'scoped', Body: 'x' }));
    const seen = await lastSeen(s3up);
    expect(seen?.ok).toBe(true);
    expect(seen?.headers.authorization).toContain('/ap-southeast-2/s3/aws4_request');
  });

  it('sets the record\'s session token and signs it', async () => {
    const s3 = s3Client('s3-token', 'eu-west-1');
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'with-token', Body: 'tokened' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'with-token' }));
    expect(await got.Body?.transformToString()).toBe('tokened');
    const seen = await lastSeen(tokenUp);
    expect(seen?.ok).toBe(true);
    expect(seen?.headers['x-amz-security-token']).toBe(TOKEN);
  });

  it('streams a 32 MiB UNSIGNED-PAYLOAD upload (32 times the body limit) without buffering it', async () => {
    const size = 32 * 1024 * 1024;
    // Without a checksum trailer, so the body goes as plain bytes under UNSIGNED-PAYLOAD.
    const s3 = unsignedPayload(s3Client('s3', 'us-east-1', { requestChecksumCalculation: 'WHEN_REQUIRED' }));
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'big', Body: stream(size), ContentLength: size }));
    const seen = await lastSeen(s3up);
    expect(seen).toMatchObject({ method: 'PUT', path: '/bkt/big?x-id=PutObject', ok: true });
    expect(seen?.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(seen?.bodyBytes).toBe(size);
  }, 120_000);

  it("the SDK's default for a stream (STREAMING-UNSIGNED-PAYLOAD-TRAILER, aws-chunked) passes through as it is", async () => {
    const size = 4 * LIMIT;
    await s3Client('s3').send(new PutObjectCommand({ Bucket: 'bkt', Key: 'trailer', Body: stream(size), ContentLength: size }));
    const seen = await lastSeen(s3up);
    expect(seen).toMatchObject({ method: 'PUT', ok: true, bodyBytes: size });
    expect(seen?.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(seen?.headers['content-encoding']).toContain('aws-chunked');
  }, 60_000);
});

describe('Python botocore as the client (what boto3 and the AWS CLI run on)', () => {
  it('put_object and get_object through latchkey with dummy credentials and path-style addressing', async () => {
    const script = `
import os, botocore.session
from botocore.config import Config
s = botocore.session.get_session()
c = s.create_client('s3', region_name='us-east-1', endpoint_url=os.environ['ENDPOINT'],
    aws_access_key_id=os.environ['LK_KEY'], aws_secret_access_key='dummy',
    config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))
c.put_object(Bucket='py', Key='from python.txt', Body=b'hello from botocore')
print(c.get_object(Bucket='py', Key='from python.txt')['Body'].read().decode())
`;
    // Asynchronously: latchkey runs in this process and must keep serving while Python waits.
    const { execFile } = await import('node:child_process');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        '/usr/bin/python3',
        ['-c', script],
        { env: { PATH: process.env.PATH ?? '', ENDPOINT: `${lk.proxyUrl}/s3`, LK_KEY: lk.adminKey }, encoding: 'utf8' },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    expect(out.trim()).toBe('hello from botocore');
    const seen = (await s3up.log()).slice(-2);
    expect(seen.map((e) => [e.method, e.path.split('?')[0], e.ok])).toEqual([
      ['PUT', '/py/from%20python.txt', true],
      ['GET', '/py/from%20python.txt', true],
    ]);
  });
});

describe('other shapes and failures', () => {
  it('a JSON POST to a non-S3 service: the body is hashed into the signature', async () => {
    const body = JSON.stringify({ TableName: 'things' });
    const r = await call(`${lk.proxyUrl}/dynamo/`, {
      method: 'POST',
      headers: {
        'x-latchkey-key': lk.adminKey,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.DescribeTable',
      },
      body,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ ok: true, target: 'DynamoDB_20120810.DescribeTable', body });
    const seen = await lastSeen(s3up);
    expect(seen?.ok).toBe(true);
    expect(seen?.headers.authorization).toContain('/us-east-1/dynamodb/aws4_request');
    // A non-S3 service gets no x-amz-content-sha256: the hash is only in the canonical request.
    expect(seen?.headers['x-amz-content-sha256']).toBeUndefined();
  });

  it('the same body with another byte fails botocore: the signature covers it', async () => {
    // Control: a signature made over one body does not verify for another (the verifier is not a rubber stamp).
    const r = await call(`${s3up.url}/bkt/tamper`, {
      method: 'PUT',
      headers: { authorization: (await lastSeen(s3up))?.headers.authorization ?? '', 'x-amz-date': '20260101T000000Z', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      body: 'tampered',
    });
    expect(r.status).toBe(403);
  });

  it('no region or service anywhere: 502 SIGNING_FAILED and nothing sent', async () => {
    const before = (await s3up.log()).length;
    const r = await call(`${lk.proxyUrl}/s3-scope/bkt/x`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(r.status).toBe(502);
    expect(r.headers['x-latchkey-error']).toBe('SIGNING_FAILED');
    expect(r.json.error.code).toBe('SIGNING_FAILED');
    expect((await s3up.log()).length).toBe(before);
  });

  it('a hashed body over proxy.signing.maxBodyBytes: 413 and nothing sent', async () => {
    const before = (await s3up.log()).length;
    const big = Buffer.alloc(LIMIT + 1, 'a');
    // Declared by Content-Length, and chunked (a stream of unknown length): both refused.
    for (const body of [big, () => Readable.from([big.subarray(0, LIMIT), big.subarray(LIMIT)])]) {
      const res = await request(`${lk.proxyUrl}/s3/bkt/too-big`, {
        method: 'PUT',
        headers: { 'x-latchkey-key': lk.adminKey },
        body: typeof body === 'function' ? body() : body,
      });
      const r = { status: res.statusCode, headers: res.headers, text: await res.body.text() };
      expect(r.status).toBe(413);
      expect(r.headers['x-latchkey-error']).toBe('PAYLOAD_TOO_LARGE');
    }
    expect((await s3up.log()).length).toBe(before);
  });

  it('a signed-chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) body cannot be re-signed: 502 SIGNING_FAILED', async () => {
    const r = await call(`${lk.proxyUrl}/s3/bkt/chunked`, {
      method: 'PUT',
      headers: { 'x-latchkey-key': lk.adminKey, 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' },
      body: 'x',
    });
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('SIGNING_FAILED');
  });

  it('header mode and forward-proxy mode are signed the same way', async () => {
    const viaHeader = await call(`${lk.proxyUrl}/bkt/dir/hello%20world.txt`, {
      headers: { 'x-latchkey-integration': 's3', 'x-latchkey-key': lk.adminKey },
    });
    expect(viaHeader.status, viaHeader.text).toBe(200);
    expect(viaHeader.text).toBe('hello, signed world');
    const forward = await viaForwardProxy(lk.proxyUrl, `http://127.0.0.1:${s3up.port}/bkt/dir/hello%20world.txt`, {
      headers: { 'proxy-authorization': basic('s3', lk.adminKey) },
    });
    expect(forward.status, forward.text).toBe(200);
    expect(forward.text).toBe('hello, signed world');
    expect((await lastSeen(s3up))?.ok).toBe(true);
  });

  it('a WebSocket upgrade is signed too', async () => {
    const ws = new WebSocket(`${lk.proxyUrl.replace('http', 'ws')}/s3/socket`, { headers: { 'x-latchkey-key': lk.adminKey } });
    const message = await new Promise<string>((resolve, reject) => {
      ws.once('message', (data: Buffer) => resolve(data.toString()));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
    });
    ws.terminate();
    expect(message).toBe('signed');
    expect(await lastSeen(s3up)).toMatchObject({ method: 'GET', path: '/socket', ok: true });
  });

  it('responses show aws: {region, service} and no secret', async () => {
    const list = await lk.admin.get('/v1/integrations/s3-token/auth');
    expect(list.json.data[0].aws).toEqual({ region: 'eu-west-1', service: 's3' });
    for (const secret of [REAL.accessKeyId, REAL.secretAccessKey, TOKEN]) expect(list.text).not.toContain(secret);
    const none = await lk.admin.get('/v1/integrations/s3-scope/auth');
    expect(none.json.data[0].aws).toEqual({ region: null, service: null });
  });
});

describe('no AWS secret anywhere', () => {
  const secrets = [REAL.accessKeyId, REAL.secretAccessKey, TOKEN];
  const expectNone = (bytes: Buffer | string, where: string) => {
    for (const s of secrets) expect(Buffer.from(bytes).includes(Buffer.from(s)), `${s} in ${where}`).toBe(false);
  };

  it('the records open to the real keys (so the search is not vacuous)', () => {
    const r = lk.store.authRecords.list('s3-token')[0];
    expect(JSON.stringify(lk.store.authRecords.openSecrets('s3-token', r?.authId ?? ''))).toContain(TOKEN);
  });

  it('not in the database file, its WAL, trace logs, audit rows or admin responses', async () => {
    expectNone(readFileSync(`${lk.dbPath}-wal`), 'the WAL');
    lk.store.db.pragma('wal_checkpoint(TRUNCATE)');
    expectNone(readFileSync(lk.dbPath), 'the database');
    const logs = lk.logs();
    expect(logs).toContain('proxy call');
    expectNone(logs, 'the logs');
    // Proxied calls reach the audit log in batches: wait until they are there.
    let audit = await lk.admin.get('/v1/audit?integrationId=s3&limit=200');
    for (let i = 0; i < 100 && audit.json.data.length <= 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      audit = await lk.admin.get('/v1/audit?integrationId=s3&limit=200');
    }
    expect(audit.json.data.length).toBeGreaterThan(3);
    expectNone(audit.text, 'the audit log');
    for (const id of ['s3', 's3-scope', 's3-token', 'dynamo']) expectNone((await lk.admin.get(`/v1/integrations/${id}/auth`)).text, 'admin');
  });
});
