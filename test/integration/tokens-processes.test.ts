/**
 * Renewal across process boundaries: latchkey runs as real child processes
 * sharing one database, against an in-process oidc-provider that rotates
 * refresh tokens on every use (reusing an old one revokes the whole grant).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import * as oauth from 'oauth4webapi';
import { loginAndConsent, startOAuthServer, SCOPE, type OAuthServer } from '../helpers/oauth-server.js';
import { startResourceServer, sleep, tokenConfig } from '../helpers/tokens.js';
import { serverEnv, startServer, type ServerProcess } from '../helpers/child.js';
import { adminClient, call } from '../helpers/http.js';
import { newAdminKey } from '../helpers/latchkey.js';
import { tmpDir } from '../helpers/tmp.js';
import type { Upstream } from '../helpers/upstream.js';

const CLIENT = { id: 'rt-client', secret: 'rt-secret-LEAKCHECK-a1b2c3d4e5f6', redirect: 'http://127.0.0.1:9/cb' };

let as: OAuthServer;
let api: Upstream;
const running: ServerProcess[] = [];
const refreshCount = (): number => as.tokenRequests.refresh_token ?? 0;

beforeAll(async () => {
  as = await startOAuthServer([
    {
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [CLIENT.redirect],
      scope: SCOPE,
    },
  ]);
  api = await startResourceServer((token) => as.isLiveToken(token));
});
afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await api.close();
  await as.close();
});

/** A refresh token issued to the client by the provider (as another tool would have obtained it). */
async function issueRefreshToken(): Promise<string> {
  const verifier = oauth.generateRandomCodeVerifier();
  const u = new URL(as.authorizeUrl);
  u.search = new URLSearchParams({
    client_id: CLIENT.id,
    response_type: 'code',
    redirect_uri: CLIENT.redirect,
    scope: SCOPE,
    state: 's',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).toString();
  const code = new URL(await loginAndConsent(u.toString())).searchParams.get('code') as string;
  const res = await request(as.tokenUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CLIENT.redirect, code_verifier: verifier }).toString(),
  });
  const body = (await res.body.json()) as { refresh_token: string };
  return body.refresh_token;
}

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const p = await startServer(env);
  running.push(p);
  return p;
}

async function createRecord(server: ServerProcess, adminKey: string, id: string): Promise<string> {
  const admin = adminClient(server.adminUrl, adminKey);
  expect((await admin.post('/v1/integrations', { integrationId: id, baseUrl: api.url })).status).toBe(201);
  const rec = await admin.post(`/v1/integrations/${id}/auth`, {
    authType: 'OAUTH2_REFRESH_TOKEN',
    oauth2: { tokenUrl: as.tokenUrl, clientId: CLIENT.id, clientSecret: CLIENT.secret, refreshToken: await issueRefreshToken() },
  });
  expect(rec.status).toBe(201);
  return rec.json.authId as string;
}

const proxied = (server: ServerProcess, adminKey: string, id: string) =>
  call(`${server.proxyUrl}/${id}/data`, { headers: { 'x-latchkey-key': adminKey } });

describe('refresh-token rotation across processes', () => {
  it('the rotated refresh token survives a kill -9 right after renewal: the restarted process renews with it', async () => {
    const dir = tmpDir().path;
    const adminKey = newAdminKey();
    const env = serverEnv(dir, { LATCHKEY_ADMIN_KEY: adminKey, LATCHKEY_CONFIG: tokenConfig(dir, { refreshMarginSeconds: 1 }) });
    const first = await start(env);
    await createRecord(first, adminKey, 'crash');
    as.ttl.accessToken = 2;
    const before = refreshCount();
    const r1 = await proxied(first, adminKey, 'crash');
    expect(r1.status).toBe(200);
    // The renewal rotated the refresh token; the process dies the moment the call was answered.
    expect(refreshCount()).toBe(before + 1);
    first.child.kill('SIGKILL');
    await first.exited;

    const again = await start(env);
    // Past the renewal point of the two-second token: the next call must renew, with the rotated refresh token.
    await sleep(1200);
    as.ttl.accessToken = 3600;
    const r2 = await proxied(again, adminKey, 'crash');
    expect(r2.status).toBe(200);
    expect(refreshCount()).toBe(before + 2);
    expect(r2.json.token).not.toBe(r1.json.token);
    const list = await adminClient(again.adminUrl, adminKey).get('/v1/integrations/crash/auth');
    expect(list.json.data[0].status).toBe('active');
    again.child.kill('SIGTERM');
    await again.exited;
  });

  it('two latchkey processes on one database renew once between them', async () => {
    const dir = tmpDir().path;
    const adminKey = newAdminKey();
    const env = serverEnv(dir, { LATCHKEY_ADMIN_KEY: adminKey, LATCHKEY_CONFIG: tokenConfig(dir, { refreshMarginSeconds: 1 }) });
    const a = await start(env);
    const b = await start(env);
    await createRecord(a, adminKey, 'shared');
    as.ttl.accessToken = 3600;
    const before = refreshCount();
    // Neither process holds a token yet: both want one at the same moment.
    const all = await Promise.all([
      ...Array.from({ length: 10 }, () => proxied(a, adminKey, 'shared')),
      ...Array.from({ length: 10 }, () => proxied(b, adminKey, 'shared')),
    ]);
    expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(refreshCount()).toBe(before + 1);
    expect(new Set(all.map((r) => r.json.token as string)).size).toBe(1);
    a.child.kill('SIGTERM');
    b.child.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);
  });
});
