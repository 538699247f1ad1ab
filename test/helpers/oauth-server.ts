/**
 * A real, standards-conformant authorization server for tests: oidc-provider
 * in this process on 127.0.0.1, port 0, with client credentials,
 * authorization code + PKCE, refresh-token rotation and revocation. Its
 * development login and consent pages are driven with plain HTTP requests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata } from 'oidc-provider';
import { request } from 'undici';

export interface OAuthServer {
  issuer: string;
  tokenUrl: string;
  authorizeUrl: string;
  revocationUrl: string;
  provider: Provider;
  /** Token-endpoint requests seen, by grant_type. */
  tokenRequests: Record<string, number>;
  /** Lifetimes in seconds the next tokens get; tests change them. */
  ttl: { accessToken: number; clientCredentials: number };
  /** Whether a bearer value is a live access token of this server. */
  isLiveToken: (value: string) => Promise<boolean>;
  close: () => Promise<void>;
}

export interface OAuthClient {
  client_id: string;
  client_secret?: string;
  grant_types: string[];
  redirect_uris?: string[];
  response_types?: string[];
  scope?: string;
  token_endpoint_auth_method?: string;
}

export const SCOPE = 'api:read';

export async function startOAuthServer(clients: OAuthClient[]): Promise<OAuthServer> {
  const tokenRequests: Record<string, number> = {};
  const ttl = { accessToken: 3600, clientCredentials: 3600 };
  let handler: http.RequestListener = (_req, res) => res.end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({ response_types: [], redirect_uris: [], ...c }) as ClientMetadata),
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      revocation: { enabled: true },
    },
    scopes: ['openid', 'offline_access', SCOPE],
    // Every client allowed the refresh_token grant gets one; no offline_access consent dance.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => ttl.accessToken,
      ClientCredentials: () => ttl.clientCredentials,
      RefreshToken: 86_400,
      AuthorizationCode: 60,
      Grant: 86_400,
      Interaction: 600,
      Session: 86_400,
    },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  });
  // oidc-provider's own warnings (devInteractions, in-memory adapter) are expected here.
  provider.on('server_error', () => undefined);
  // Every answered token request, granted or refused, counted by grant type at the server.
  const count = (ctx: { oidc?: { params?: { grant_type?: unknown } } }): void => {
    const grant = String(ctx.oidc?.params?.grant_type ?? 'unknown');
    tokenRequests[grant] = (tokenRequests[grant] ?? 0) + 1;
  };
  provider.on('grant.success', count);
  provider.on('grant.error', count);
  handler = provider.callback();
  const tokenUrl = `${issuer}/token`;
  return {
    issuer,
    tokenUrl,
    authorizeUrl: `${issuer}/auth`,
    revocationUrl: `${issuer}/token/revocation`,
    provider,
    tokenRequests,
    ttl,
    isLiveToken: async (value) => {
      const found = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
      return found !== undefined && !found.isExpired;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A minimal cookie jar: the dev interactions keep their state in cookies. */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(setCookie: string | string[] | undefined): void {
    for (const c of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair] = c.split(';');
      const eq = (pair ?? '').indexOf('=');
      if (eq > 0) this.cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * What a person does at the provider: open the authorize URL, sign in on the
 * login form, approve the consent form. Returns the URL the browser is sent
 * to at the end (latchkey's callback, with code and state).
 */
export async function loginAndConsent(authorizeUrl: string, login = 'alice'): Promise<string> {
  const jar = new Jar();
  let url = authorizeUrl;
  let form: Record<string, string> | null = null;
  for (let step = 0; step < 12; step++) {
    const res: Awaited<ReturnType<typeof request>> = await request(url, {
      method: form ? 'POST' : 'GET',
      headers: { cookie: jar.header(), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    jar.take(res.headers['set-cookie']);
    const text: string = await res.body.text();
    form = null;
    const location = res.headers.location;
    if (res.statusCode >= 300 && res.statusCode < 400 && typeof location === 'string') {
      const next = new URL(location, url).toString();
      if (!next.startsWith(new URL(authorizeUrl).origin)) return next;
      url = next;
      continue;
    }
    const action = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(text)?.[1];
    const prompt: string | undefined = /name="prompt" value="([^"]+)"/.exec(text)?.[1];
    if (res.statusCode !== 200 || !action || !prompt) throw new Error(`unexpected page at ${url}: ${res.statusCode} ${text.slice(0, 300)}`);
    url = new URL(action.replaceAll('&amp;', '&'), url).toString();
    form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
  }
  throw new Error('the provider never redirected back');
}
