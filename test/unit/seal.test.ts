import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { initSodium, openRecord, sealRecord, rewrapKey, makeCheckValue, checkMasterKey, OpenError } from '../../src/crypto/seal.js';

beforeAll(async () => {
  await initSodium();
});

describe('envelope sealing', () => {
  const master = randomBytes(32);
  const secrets = { token: 'abc' };

  it('opens what it sealed', () => {
    const rec = sealRecord(master, 'intg', 'auth_1', secrets);
    expect(openRecord(master, 'intg', 'auth_1', rec)).toEqual(secrets);
    expect(rec.sealed.includes(Buffer.from('abc'))).toBe(false);
  });

  it('a blob moved to another record, or another integration, fails to open', () => {
    const rec = sealRecord(master, 'intg', 'auth_1', secrets);
    expect(() => openRecord(master, 'intg', 'auth_2', rec)).toThrow(OpenError);
    expect(() => openRecord(master, 'other', 'auth_1', rec)).toThrow(OpenError);
  });

  it('a wrong master key fails; a re-wrapped key opens under the new one only', () => {
    const rec = sealRecord(master, 'intg', 'auth_1', secrets);
    expect(() => openRecord(randomBytes(32), 'intg', 'auth_1', rec)).toThrow(OpenError);
    const next = randomBytes(32);
    const rewrapped = { ...rec, wrappedKey: rewrapKey(master, next, 'auth_1', rec.wrappedKey) };
    expect(openRecord(next, 'intg', 'auth_1', rewrapped)).toEqual(secrets);
    expect(() => openRecord(master, 'intg', 'auth_1', rewrapped)).toThrow(OpenError);
  });

  it('the check value tells the right key from a wrong one', () => {
    const check = makeCheckValue(master);
    expect(checkMasterKey(master, check)).toBe(true);
    expect(checkMasterKey(randomBytes(32), check)).toBe(false);
  });
});
