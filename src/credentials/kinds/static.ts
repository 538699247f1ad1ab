/**
 * The seed kinds (NO_AUTH, BASIC_AUTH, BEARER_TOKEN, API_KEY) and catalog
 * API-key providers: a template rendered once per plan, no per-call work.
 */
import { templateFor, type AuthType } from '../auth-types.js';
import { injectedSecrets } from '../template.js';
import type { CredentialKind, KindInput } from '../kind.js';

const templateOf = (input: KindInput) => input.template ?? templateFor(input.authType, input.apiKey);

export function staticKind(type: AuthType): CredentialKind {
  return {
    type,
    // Only what the template injects (a catalog url field, a shop name, is in the host, not a secret);
    // the Basic user name only when the password is empty (README, "Response redaction").
    secretsOf: (input) => injectedSecrets(templateOf(input), input.fields),
    prepare: (input) => ({ template: templateOf(input), injector: null }),
  };
}
