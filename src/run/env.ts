/**
 * The environment `latchkey run` gives its command: every common HTTP client
 * finds the proxy and trusts latchkey's CA from these variables alone.
 */
export const CA_BUNDLE_VARIABLES = [
  'SSL_CERT_FILE', // OpenSSL-based clients, Python httpx, Ruby, Go (on Linux)
  'REQUESTS_CA_BUNDLE', // Python requests (ignores SSL_CERT_FILE)
  'CURL_CA_BUNDLE', // curl
  'GIT_SSL_CAINFO', // git over https
  'AWS_CA_BUNDLE', // AWS SDKs and the AWS CLI
  'NODE_EXTRA_CA_CERTS', // Node.js (added to its own roots)
] as const;

/** Never proxied: the machine itself (latchkey's own path mode stays reachable directly). */
const LOCAL = ['localhost', '127.0.0.1', '::1'];

export interface RunEnvironment {
  /** `http://auto:{key}@host:port` */
  proxyUrl: string;
  caBundleFile: string;
  /** file:// URL of the preload module for Node versions that ignore proxy variables. */
  preloadUrl: string;
}

function mergeList(...values: Array<string | undefined>): string {
  const out: string[] = [];
  for (const v of values) for (const item of (v ?? '').split(',').map((s) => s.trim())) if (item && !out.includes(item)) out.push(item);
  return out.join(',');
}

export function runEnvironment(base: NodeJS.ProcessEnv, r: RunEnvironment): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) env[name] = r.proxyUrl;
  const noProxy = mergeList(base.NO_PROXY, base.no_proxy, LOCAL.join(','));
  env.NO_PROXY = noProxy;
  env.no_proxy = noProxy;
  for (const name of CA_BUNDLE_VARIABLES) env[name] = r.caBundleFile;
  // Node 22.21+ and 24.5+ route fetch and http(s) through the proxy variables themselves with this.
  env.NODE_USE_ENV_PROXY = '1';
  const preload = `--import ${r.preloadUrl}`;
  env.NODE_OPTIONS = base.NODE_OPTIONS?.includes(preload) ? base.NODE_OPTIONS : `${base.NODE_OPTIONS ?? ''} ${preload}`.trim();
  return env;
}

/** `30s`, `15m`, `12h`, `7d` to milliseconds; null when it is none of those. */
export function parseTtl(value: string): number | null {
  const m = /^(\d{1,6})([smhd])$/.exec(value.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  return n > 0 ? n * unit : null;
}
