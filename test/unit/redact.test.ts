import { describe, expect, it } from 'vitest';
import { REDACTED, Redactor, secretForms } from '../../src/proxy/redact.js';
import { injectedSecrets } from '../../src/credentials/template.js';
import { shortSecretWarnings } from '../../src/credentials/redaction-warnings.js';
import { templateFor } from '../../src/credentials/auth-types.js';

const SECRET = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc/+ü"x';

/** Every encoding the contract names, of `s`, as it would appear in a response. */
function encodings(s: string): string[] {
  const b = Buffer.from(s);
  return [
    s,
    b.toString('base64'),
    b.toString('base64url'),
    encodeURIComponent(s),
    JSON.stringify(s).slice(1, -1),
    // Inside larger base64 blobs, at each alignment.
    Buffer.concat([Buffer.from('a'), b, Buffer.from('tail')]).toString('base64'),
    Buffer.concat([Buffer.from('ab'), b, Buffer.from('tail')]).toString('base64'),
    Buffer.concat([Buffer.from('abc'), b, Buffer.from('tail')]).toString('base64url'),
  ];
}

/** Runs `body` through a stream redactor in pieces of `size` bytes and returns the output. */
function streamed(r: Redactor, body: Buffer, size: number): { out: string; count: number } {
  const s = r.stream();
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) parts.push(...s.push(body.subarray(i, i + size)));
  parts.push(...s.end());
  return { out: Buffer.concat(parts).toString(), count: s.count };
}

describe('secretForms', () => {
  it('covers raw, base64 at any alignment, base64url, percent-encoded and JSON-escaped', () => {
    const forms = secretForms(SECRET);
    for (const enc of encodings(SECRET)) {
      expect(forms.some((f) => enc.includes(f)), enc).toBe(true);
    }
  });

  it('skips forms shorter than 8 characters', () => {
    expect(Redactor.of(['short'])).toBeNull();
    expect(Redactor.of([])).toBeNull();
  });
});

describe('StreamRedactor', () => {
  const r = new Redactor([SECRET]);
  const body = Buffer.from(encodings(SECRET).map((e, i) => `{"field${i}":"${e}"}`).join('\n'));

  it.each([1, 2, 3, 7, 64, 100_000])('finds every encoding split into %i-byte pieces', (size) => {
    const { out, count } = streamed(r, body, size);
    for (const enc of encodings(SECRET).slice(0, 5)) expect(out).not.toContain(enc);
    expect(out).not.toContain('4eC39HqLyjWDarjtT1zdp7dc');
    expect(count).toBe(encodings(SECRET).length);
    expect(out).toContain(`{"field0":"${REDACTED}"}`);
  });

  it('passes a body without secrets through unchanged, as the same buffer', () => {
    const plain = Buffer.from('{"ok":true,"items":[1,2,3]}\n');
    const s = r.stream();
    const out = s.push(plain);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(plain);
    expect(s.end()).toEqual([]);
    expect(s.count).toBe(0);
  });

  it('holds back only a tail that could start a secret, and gives it back when it does not', () => {
    const s = r.stream();
    const first = Buffer.concat(s.push(Buffer.from('data: event one\n\nsk_live_4e')));
    expect(first.toString()).toBe('data: event one\n\n');
    const second = Buffer.concat(s.push(Buffer.from('nd not a secret\n\n')));
    expect(second.toString()).toBe('sk_live_4end not a secret\n\n');
    expect(s.end()).toEqual([]);
  });

  it('overlapping and adjacent secrets are replaced once each', () => {
    const two = new Redactor(['abcdefgh1234', 'gh1234zzzzzz']);
    const { out } = streamed(two, Buffer.from('<abcdefgh1234zzzzzz><abcdefgh1234abcdefgh1234>'), 1);
    expect(out).toBe(`<${REDACTED}><${REDACTED}${REDACTED}>`);
  });

  it('a whole body at once: a secret at its very end is replaced, nothing is held back, a clean body is the same buffer', () => {
    const r = Redactor.of([SECRET]) as Redactor;
    const clean = Buffer.from('{"ok":true,"s":"sk_live_4eC"}');
    const whole = r.buffer(clean);
    expect(whole.data).toBe(clean);
    expect(whole.count).toBe(0);
    for (const body of [`x${SECRET}`, `${SECRET}`, `a ${SECRET} b ${Buffer.from(SECRET).toString('base64')}`]) {
      const out = r.buffer(Buffer.from(body));
      expect(out.data.toString()).not.toContain('4eC39HqLyjWDarjtT1zdp7dc');
      expect(out.data.toString()).toContain(REDACTED);
      expect(out.count).toBe(body.startsWith('a ') ? 2 : 1);
    }
    expect(r.buffer(Buffer.alloc(0)).data.length).toBe(0);
  });

  it('small bodies: every encoding is found at the start, the end and alone', () => {
    const r = Redactor.of([SECRET]) as Redactor;
    for (const enc of encodings(SECRET)) {
      for (const body of [enc, `${enc}!`, `!${enc}`, `{"k":"${enc}"}`]) {
        const out = r.buffer(Buffer.from(body)).data.toString();
        expect(out, body).toContain(REDACTED);
        expect(out, body).not.toContain(enc);
      }
    }
  });

  it('redacts header values', () => {
    expect(r.text(`Bearer ${SECRET}`)).toEqual({ value: `Bearer ${REDACTED}`, count: 1 });
    expect(r.text('nothing here')).toEqual({ value: 'nothing here', count: 0 });
  });
});

describe('injected secrets of a plan', () => {
  it('Basic: password and the pair, not the user name', () => {
    const t = templateFor('BASIC_AUTH', null);
    expect(injectedSecrets(t, { username: 'AC1234567890', password: 'pass-word-1' }).sort()).toEqual(['AC1234567890:pass-word-1', 'pass-word-1']);
  });

  it('Basic with an empty password (Stripe): the user name is the secret', () => {
    const t = templateFor('BASIC_AUTH', null);
    expect(injectedSecrets(t, { username: 'sk_test_123456789', password: '' }).sort()).toEqual(['sk_test_123456789', 'sk_test_123456789:']);
  });

  it('warns about secrets too short to redact, naming the field', () => {
    const warn = (authType: 'BEARER_TOKEN' | 'API_KEY', fields: Record<string, string>) =>
      shortSecretWarnings({ authType, fields, config: null, template: null, apiKey: authType === 'API_KEY' ? { key: 'k', position: 'query' } : null });
    expect(warn('BEARER_TOKEN', { token: 'abc' })).toEqual(['token is shorter than 8 characters: it is not redacted from responses']);
    expect(warn('API_KEY', { apiKeyValue: 'long-enough-1' })).toEqual([]);
    expect(warn('API_KEY', { apiKeyValue: 'short' })[0]).toMatch(/^apiKey\.value /);
  });
});

describe('redactorForCall', () => {
  it('adds secrets a kind injected at send time, and reuses the compiled redactor', async () => {
    const { redactorForCall } = await import('../../src/proxy/plans.js');
    const auth = { secrets: ['static-secret-1'], redactor: Redactor.of(['static-secret-1']) } as unknown as Parameters<typeof redactorForCall>[0];
    expect(redactorForCall(auth, [])).toBe(auth.redactor);
    const r = redactorForCall(auth, ['fresh-access-token-1'])!;
    expect(r.text('static-secret-1 fresh-access-token-1').value).toBe(`${REDACTED} ${REDACTED}`);
    expect(redactorForCall(auth, ['fresh-access-token-1'])).toBe(r);
    expect(redactorForCall(auth, ['fresh-access-token-2'])).not.toBe(r);
  });
});
