/**
 * The JWT-based token kinds against local endpoints that verify what
 * latchkey signs with the public half of a key pair made here: a Google
 * service account's RS256 assertion (RFC 7523), and a GitHub App's JWT
 * exchanged for an installation token.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call } from '../helpers/http.js';
import { tokenId } from '../helpers/tokens.js';
import { expectNoLeak } from '../helpers/leaks.js';

const SA_EMAIL = 'robot@project-1.iam.gserviceaccount.com';
const SCOPES = ['https://www.googleapis.com/auth/drive.readonly', 'https://www.googleapis.com/auth/calendar'];
const APP_ID = '424242';
const INSTALLATION = '9001';

let lk: TestLatchkey;
let google: Upstream;
let github: Upstream;
const googleKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const githubKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** What each endpoint verified, for the assertions below. */
const googleAssertions: Array<{ payload: JWTPayload; kid: string | undefined }> = [];
const githubJwts: JWTPayload[] = [];
const issued = new Set<string>();
let counter = 0;

const form = (req: IncomingMessage): Promise<URLSearchParams> =>
  new Promise((resolve) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolve(new URLSearchParams(body)));
  });

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

async function verify(jwt: string, key: KeyObject, options: { issuer: string; audience?: string }): Promise<JWTPayload | null> {
  try {
    const { payload } = await jwtVerify(jwt, key, { algorithms: ['RS256'], ...options });
    return payload;
  } catch {
    return null;
  }
}

/** An API that accepts only tokens the token endpoints issued. */
function resource(req: IncomingMessage, res: ServerResponse): boolean {
  const auth = req.headers.authorization ?? '';
  if (!req.url?.startsWith('/api/')) return false;
  const token = auth.replace(/^Bearer /, '');
  json(res, issued.has(token) ? 200 : 401, { token: tokenId(token), kind: token.slice(0, 8) });
  return true;
}

beforeAll(async () => {
  lk = await startLatchkey({ LATCHKEY_LOG_LEVEL: 'trace' });
  google = await startUpstream(async (req, res) => {
    if (resource(req, res)) return;
    const params = await form(req);
    const assertion = params.get('assertion') ?? '';
    const payload =
      params.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer'
        ? await verify(assertion, googleKeys.publicKey, { issuer: SA_EMAIL, audience: `${google.url}/token` })
        : null;
    const lifetime = payload ? (payload.exp ?? 0) - (payload.iat ?? 0) : Infinity;
    if (!payload || payload.scope !== SCOPES.join(' ') || lifetime > 3600 || (payload.exp ?? 0) > Date.now() / 1000 + 3600) {
      return json(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    }
    googleAssertions.push({ payload, kid: decodeProtectedHeader(assertion).kid });
    const token = `ya29.test-${++counter}-${randomBytes(12).toString("hex")}`;
    issued.add(token);
    json(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
  });
  github = await startUpstream(async (req, res) => {
    if (resource(req, res)) return;
    await form(req);
    const m = /^\/app\/installations\/([^/]+)\/access_tokens$/.exec(req.url ?? '');
    const jwt = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const payload = await verify(jwt, githubKeys.publicKey, { issuer: APP_ID });
    if (req.method !== 'POST' || !m || !payload || (payload.exp ?? 0) - Date.now() / 1000 > 600) return json(res, 401, { message: 'A JSON web token could not be decoded' });
    if (m[1] !== INSTALLATION) return json(res, 404, { message: 'Not Found' });
    githubJwts.push(payload);
    const token = `ghs_test${++counter}${randomBytes(12).toString("hex")}`;
    issued.add(token);
    json(res, 201, { token, expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: { contents: 'read' } });
  });
});
afterAll(async () => {
  await lk.close();
  await google.close();
  await github.close();
});

const serviceAccountKey = () => ({
  type: 'service_account',
  project_id: 'project-1',
  private_key_id: 'kid-0123456789abcdef',
  private_key: googleKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  client_email: SA_EMAIL,
  client_id: '1234567890',
  token_uri: `${google.url}/token`,
});

describe('GOOGLE_SERVICE_ACCOUNT', () => {
  it('signs an RS256 assertion the token endpoint verifies (issuer, audience, scope, exp within 1 h) and injects the token', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'gdrive', baseUrl: `${google.url}/api` });
    const rec = await lk.admin.post('/v1/integrations/gdrive/auth', {
      authType: 'GOOGLE_SERVICE_ACCOUNT',
      googleServiceAccount: { key: serviceAccountKey(), scopes: SCOPES },
    });
    expect(rec.status).toBe(201);
    expect(rec.json.googleServiceAccount).toEqual({ client_email: SA_EMAIL, token_uri: `${google.url}/token`, scopes: SCOPES });
    expect(rec.text).not.toContain('PRIVATE KEY');
    const r = await call(`${lk.proxyUrl}/gdrive/files`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(r.status).toBe(200);
    expect(r.json.kind).toBe('ya29.tes');
    expect(googleAssertions).toHaveLength(1);
    expect(googleAssertions[0]!.kid).toBe('kid-0123456789abcdef');
    expect(googleAssertions[0]!.payload.sub).toBeUndefined();
    // Reused, not re-signed.
    expect((await call(`${lk.proxyUrl}/gdrive/files`, { headers: { 'x-latchkey-key': lk.adminKey } })).json.token).toBe(r.json.token);
    expect(googleAssertions).toHaveLength(1);
  });

  it('a subject (domain-wide delegation) becomes the assertion sub; a bad key is a 400 naming the field', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'gmail', baseUrl: `${google.url}/api` });
    await lk.admin.post('/v1/integrations/gmail/auth', {
      authType: 'GOOGLE_SERVICE_ACCOUNT',
      googleServiceAccount: { key: serviceAccountKey(), scopes: SCOPES, subject: 'ceo@example.com' },
    });
    expect((await call(`${lk.proxyUrl}/gmail/x`, { headers: { 'x-latchkey-key': lk.adminKey } })).status).toBe(200);
    expect(googleAssertions.at(-1)!.payload.sub).toBe('ceo@example.com');
    const bad = await lk.admin.post('/v1/integrations/gmail/auth', {
      authType: 'GOOGLE_SERVICE_ACCOUNT',
      googleServiceAccount: { key: { ...serviceAccountKey(), private_key: 'not a key' }, scopes: [] },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'googleServiceAccount.key.private_key',
      'googleServiceAccount.scopes',
    ]);
  });
});

describe('GITHUB_APP', () => {
  it('signs an app JWT (iss = app id, at most 10 minutes), exchanges it for an installation token and injects that', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'gh', baseUrl: `${github.url}/api` });
    const rec = await lk.admin.post('/v1/integrations/gh/auth', {
      authType: 'GITHUB_APP',
      // GitHub hands out PKCS#1 keys ("BEGIN RSA PRIVATE KEY"): accepted as they are.
      githubApp: {
        appId: Number(APP_ID),
        installationId: INSTALLATION,
        privateKey: githubKeys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
        apiUrl: github.url,
      },
    });
    expect(rec.status).toBe(201);
    expect(rec.json.githubApp).toEqual({ appId: APP_ID, installationId: INSTALLATION, apiUrl: github.url });
    expect(rec.json.status).toBe('active');
    const r = await call(`${lk.proxyUrl}/gh/repos/o/r`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(r.status).toBe(200);
    expect(r.json.kind).toBe('ghs_test');
    expect(githubJwts).toHaveLength(1);
    const jwt = githubJwts[0]!;
    expect((jwt.exp ?? 0) - (jwt.iat ?? 0)).toBeLessThanOrEqual(600);
    const view = await lk.admin.get(`/v1/integrations/gh/auth/${rec.json.authId as string}`);
    expect(Date.parse(view.json.tokenExpiresAt as string)).toBeGreaterThan(Date.now() + 3000_000);
  });

  it('an installation that is gone: reauthorization_required and 502 TOKEN_REFRESH_FAILED', async () => {
    await lk.admin.post('/v1/integrations', { integrationId: 'gh-gone', baseUrl: `${github.url}/api` });
    const rec = await lk.admin.post('/v1/integrations/gh-gone/auth', {
      authType: 'GITHUB_APP',
      githubApp: { appId: APP_ID, installationId: '1', privateKey: githubKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), apiUrl: github.url },
    });
    const r = await call(`${lk.proxyUrl}/gh-gone/repos`, { headers: { 'x-latchkey-key': lk.adminKey } });
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe('TOKEN_REFRESH_FAILED');
    expect((await lk.admin.get(`/v1/integrations/gh-gone/auth/${rec.json.authId as string}`)).json.status).toBe('reauthorization_required');
  });
});

describe('secrets of the JWT kinds', () => {
  it('no private key or access token in the database, WAL, trace logs, audit rows or admin responses', async () => {
    const pemBody = (k: KeyObject, type: 'pkcs1' | 'pkcs8') => k.export({ type, format: 'pem' }).toString().split('\n')[5] as string;
    const values: Record<string, string> = {
      googleKey: pemBody(googleKeys.privateKey, 'pkcs8'),
      githubKeyPkcs1: pemBody(githubKeys.privateKey, 'pkcs1'),
      githubKeyPkcs8: pemBody(githubKeys.privateKey, 'pkcs8'),
    };
    expect(issued.size).toBeGreaterThanOrEqual(2);
    [...issued].forEach((t, i) => (values[`accessToken${i}`] = t));
    await expectNoLeak(lk, values, ['gdrive', 'gmail', 'gh', 'gh-gone']);
  });
});
