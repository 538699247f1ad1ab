/**
 * The token kinds as credential kinds of the one engine: their template only
 * names the place (Authorization), and their injector sets
 * `Authorization: Bearer {access token}` at send time from the token cache,
 * reporting the token as a secret of the call so responses are redacted.
 */
import type { CredentialKind, OutgoingRequest, ParsedCredential } from '../kind.js';
import type { ErrorDetail } from '../../errors.js';
import { parseTokenCredential, tokenConfigView, TOKEN_FIELD, type TokenConfig, type TokenKind, type TokenSecrets } from './token-kinds.js';

/** A 401 is replayed only for bodies latchkey could hold: at most this many bytes, with a declared length. */
export const REPLAY_MAX_BYTES = 1024 * 1024;

const toParsed = (c: { tokenConfig: TokenConfig; secrets: TokenSecrets }): ParsedCredential => ({
  secrets: { ...c.secrets } as Record<string, string>,
  config: c.tokenConfig as unknown as Record<string, unknown>,
});

/** Bodies with a known, small Content-Length are buffered (for a replay); others stream as always. */
function replayable(req: OutgoingRequest): boolean {
  const raw = req.headers['content-length'];
  if (raw === undefined) return false;
  const n = Number(Array.isArray(raw) ? raw[0] : raw);
  return Number.isInteger(n) && n >= 0 && n <= REPLAY_MAX_BYTES;
}

const bearerOf = (req: OutgoingRequest): string | null => {
  const v = req.headers.authorization;
  const s = Array.isArray(v) ? v[0] : v;
  return s?.startsWith('Bearer ') ? s.slice(7) : null;
};

export function tokenKind(type: TokenKind): CredentialKind {
  return {
    type,
    field: TOKEN_FIELD[type],
    parse: (input: unknown, problems: ErrorDetail[]) => toParsed(parseTokenCredential(type, input, problems)),
    patch: (current, input, problems) =>
      toParsed(
        parseTokenCredential(type, input, problems, {
          tokenConfig: current.config as unknown as TokenConfig,
          secrets: current.secrets as TokenSecrets,
        }),
      ),
    view: (config) => {
      if (!config) return {};
      const view = tokenConfigView(config as unknown as TokenConfig);
      return view[TOKEN_FIELD[type]] as Record<string, unknown>;
    },
    secretsOf: (input) => [input.fields.clientSecret, input.fields.refreshToken, input.fields.privateKey].filter((v): v is string => !!v),
    prepare: (input, deps) => {
      const rec = input.record;
      const tokens = deps.tokens;
      const set = async (req: OutgoingRequest, refused: string | null): Promise<void> => {
        if (!rec || !tokens) throw new Error(`${type}: a token credential needs its stored record and the token cache`);
        const token = await tokens.accessToken(rec.integrationId, rec.authId, rec.updatedAt, refused);
        req.headers.authorization = `Bearer ${token}`;
        req.addSecret(token);
      };
      return {
        // Never rendered (no such field): it says where the credential goes, so a client's lk_ key there is removed.
        template: { headers: [['Authorization', 'Bearer {{accessToken}}']], query: [], basic: null },
        injector: {
          needsBody: { maxBytes: REPLAY_MAX_BYTES, when: replayable },
          apply: (req) => set(req, null),
          onUnauthorized: async (req) => {
            await set(req, bearerOf(req));
            return true;
          },
        },
      };
    },
  };
}
