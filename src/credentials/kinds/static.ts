/**
 * The seed kinds (NO_AUTH, BASIC_AUTH, BEARER_TOKEN, API_KEY) and catalog
 * API-key providers: a template rendered once per plan, no per-call work.
 */
import { templateFor, type AuthType } from '../auth-types.js';
import { render, templateFields } from '../template.js';
import type { CredentialKind, KindInput } from '../kind.js';

const templateOf = (input: KindInput) => input.template ?? templateFor(input.authType, input.apiKey);

export function staticKind(type: AuthType): CredentialKind {
  return {
    type,
    secretsOf(input) {
      const t = templateOf(input);
      // Only fields the template injects: a catalog url field (a shop name) is in the host, not a secret.
      const out = [...templateFields(t)].flatMap((name) => {
        const v = input.fields[name];
        return v ? [v] : [];
      });
      if (t.basic) {
        const user = render(t.basic.username, input.fields);
        const pass = render(t.basic.password, input.fields);
        if (user !== null && pass !== null) out.push(`${user}:${pass}`);
      }
      return out;
    },
    prepare: (input) => ({ template: templateOf(input), injector: null }),
  };
}
