import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { endpointProblem, parseTokenCredential, tokenConfigView, type TokenConfig } from '../../src/credentials/kinds/token-kinds.js';
import { kindOf } from '../../src/credentials/kinds/index.js';
import type { ErrorDetail } from '../../src/errors.js';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const parse = (kind: Parameters<typeof parseTokenCredential>[0], input: unknown) => {
  const problems: ErrorDetail[] = [];
  const out = parseTokenCredential(kind, input, problems);
  return { out, fields: problems.map((p) => p.field).sort() };
};

describe('token endpoints', () => {
  it('https anywhere, http only on loopback hosts', () => {
    expect(endpointProblem('https://auth.example.com/token')).toBeNull();
    expect(endpointProblem('http://127.0.0.1:8080/token')).toBeNull();
    expect(endpointProblem('http://localhost/token')).toBeNull();
    expect(endpointProblem('http://[::1]:9/token')).toBeNull();
    expect(endpointProblem('http://auth.example.com/token')).toMatch(/https/);
    expect(endpointProblem('http://10.0.0.1/token')).toMatch(/https/);
    expect(endpointProblem('https://user:pw@auth.example.com/token')).toMatch(/userinfo/);
    expect(endpointProblem('ftp://x/y')).toMatch(/https/);
    expect(endpointProblem('not a url')).toMatch(/absolute/);
  });
});

describe('parsing', () => {
  it('client credentials: defaults to Basic client auth; every missing field named', () => {
    const ok = parse('OAUTH2_CLIENT_CREDENTIALS', { tokenUrl: 'https://a.example/t', clientId: 'id', clientSecret: 's', scope: 'x y' });
    expect(ok.fields).toEqual([]);
    expect(ok.out.tokenConfig).toEqual({ kind: 'OAUTH2_CLIENT_CREDENTIALS', tokenUrl: 'https://a.example/t', clientId: 'id', clientAuth: 'basic', scope: 'x y' });
    expect(ok.out.secrets).toEqual({ clientSecret: 's' });
    expect(parse('OAUTH2_CLIENT_CREDENTIALS', {}).fields).toEqual(['oauth2.clientId', 'oauth2.clientSecret', 'oauth2.tokenUrl']);
    expect(parse('OAUTH2_CLIENT_CREDENTIALS', { tokenUrl: 'https://a/t', clientId: 'i', clientSecret: 's', clientAuth: 'jwt' }).fields).toEqual(['oauth2.clientAuth']);
    expect(parse('OAUTH2_CLIENT_CREDENTIALS', 'nope').fields).toContain('oauth2');
  });

  it('refresh token: a record without a client secret is a public client', () => {
    const pub = parse('OAUTH2_REFRESH_TOKEN', { tokenUrl: 'https://a/t', clientId: 'i', refreshToken: 'r' });
    expect(pub.fields).toEqual([]);
    expect(pub.out.tokenConfig).toMatchObject({ clientAuth: 'none' });
    expect(parse('OAUTH2_REFRESH_TOKEN', { tokenUrl: 'https://a/t', clientId: 'i', refreshToken: 'r', clientAuth: 'post' }).fields).toEqual([
      'oauth2.clientAuth',
    ]);
    expect(parse('OAUTH2_REFRESH_TOKEN', { tokenUrl: 'https://a/t', clientId: 'i', refreshToken: 'r\nx' }).fields).toEqual(['oauth2.refreshToken']);
  });

  it('a PATCH keeps what it does not name and re-checks the whole', () => {
    const kind = kindOf('OAUTH2_REFRESH_TOKEN');
    const problems: ErrorDetail[] = [];
    const created = kind.parse!({ tokenUrl: 'https://a/t', clientId: 'i', clientSecret: 's', refreshToken: 'r1' }, problems);
    const patched = kind.patch!(created, { refreshToken: 'r2' }, problems);
    expect(problems).toEqual([]);
    expect(patched.secrets).toEqual({ clientSecret: 's', refreshToken: 'r2' });
    expect(patched.config).toMatchObject({ tokenUrl: 'https://a/t', clientId: 'i', clientAuth: 'basic' });
    kind.patch!(created, { tokenUrl: 'http://evil.example/t' }, problems);
    expect(problems.map((p) => p.field)).toEqual(['oauth2.tokenUrl']);
  });

  it('Google: the key file checked, RSA only; GitHub: numeric ids, PEM key', () => {
    const key = { type: 'service_account', client_email: 'a@b.iam.gserviceaccount.com', private_key: pem, private_key_id: 'k1' };
    const g = parse('GOOGLE_SERVICE_ACCOUNT', { key, scopes: ['s1', 's2'] });
    expect(g.fields).toEqual([]);
    expect(g.out.tokenConfig).toMatchObject({ tokenUri: 'https://oauth2.googleapis.com/token', scopes: ['s1', 's2'], privateKeyId: 'k1' });
    expect(parse('GOOGLE_SERVICE_ACCOUNT', { key: { ...key, private_key: ec }, scopes: ['s'] }).fields).toEqual(['googleServiceAccount.key.private_key']);
    expect(parse('GOOGLE_SERVICE_ACCOUNT', { key: { ...key, type: 'user' }, scopes: ['a b'] }).fields).toEqual([
      'googleServiceAccount.key.type',
      'googleServiceAccount.scopes[0]',
    ]);
    const gh = parse('GITHUB_APP', { appId: 12, installationId: '34', privateKey: pem });
    expect(gh.fields).toEqual([]);
    expect(gh.out.tokenConfig).toEqual({ kind: 'GITHUB_APP', appId: '12', installationId: '34', apiUrl: 'https://api.github.com' });
    expect(parse('GITHUB_APP', { appId: 'x', installationId: -1, privateKey: 'nope' }).fields).toEqual([
      'githubApp.appId',
      'githubApp.installationId',
      'githubApp.privateKey',
    ]);
  });
});

describe('views and secrets', () => {
  it('a view holds no secret; secretsOf lists every stored one', () => {
    const configs: TokenConfig[] = [
      { kind: 'OAUTH2_CLIENT_CREDENTIALS', tokenUrl: 'https://a/t', clientId: 'i', clientAuth: 'post', audience: 'aud' },
      { kind: 'GITHUB_APP', appId: '1', installationId: '2', apiUrl: 'https://api.github.com' },
    ];
    expect(tokenConfigView(configs[0]!)).toEqual({ oauth2: { tokenUrl: 'https://a/t', clientId: 'i', clientAuth: 'post', audience: 'aud' } });
    expect(tokenConfigView(configs[1]!)).toEqual({ githubApp: { appId: '1', installationId: '2', apiUrl: 'https://api.github.com' } });
    const fields = { clientSecret: 'cs-1', refreshToken: 'rt-1', privateKey: pem };
    const input = { authType: 'OAUTH2_REFRESH_TOKEN' as const, fields, config: null, template: null, apiKey: null };
    expect(kindOf('OAUTH2_REFRESH_TOKEN').secretsOf(input).sort()).toEqual(['cs-1', pem, 'rt-1'].sort());
  });
});

describe('issued tokens', () => {
  it('a token that could not be one header value is refused before anything keeps it', async () => {
    const { checkIssued } = await import('../../src/credentials/tokens/grants.js');
    expect(() => checkIssued('ya29.a0AfB_byC-token_~+/=')).not.toThrow();
    expect(() => checkIssued('abc', 'refresh-1')).not.toThrow();
    for (const bad of ['', 'has space', 'crlf\r\nX-Evil: 1', 'x'.repeat(20_000), 42, undefined]) {
      expect(() => checkIssued(bad), String(bad).slice(0, 20)).toThrow(/unusable access token/);
    }
    expect(() => checkIssued('ok', 'bad\nrefresh')).toThrow(/unusable refresh token/);
  });
});
