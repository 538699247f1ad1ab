/**
 * Sealing: pure functions over buffers, no I/O.
 *
 * Each auth record's secret fields are sealed with XChaCha20-Poly1305 under a
 * fresh 32-byte data key; the data key is itself sealed ("wrapped") under the
 * master key. Both seals carry associated data naming the record, so a blob
 * copied into another row (or a wrapped key swapped between rows) fails to open.
 */
import { randomFillSync } from 'node:crypto';
import sodium from 'libsodium-wrappers';

export const KEY_BYTES = 32;
const NONCE_BYTES = 24;

let ready = false;

/** libsodium must finish loading its WebAssembly before the first seal. */
export async function initSodium(): Promise<void> {
  await sodium.ready;
  ready = true;
}

function assertReady(): void {
  if (!ready) throw new Error('initSodium() was not awaited');
}

export class OpenError extends Error {
  constructor(what: string) {
    super(`cannot open ${what}: wrong key, or the blob does not belong here`);
    this.name = 'OpenError';
  }
}

/** nonce || ciphertext+tag. Nonces come from node:crypto (libsodium's are slow here). */
export function seal(key: Uint8Array, plaintext: Uint8Array, ad: string): Buffer {
  assertReady();
  const nonce = randomFillSync(Buffer.alloc(NONCE_BYTES));
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
  return Buffer.concat([nonce, ct]);
}

export function open(key: Uint8Array, blob: Uint8Array, ad: string, what: string): Buffer {
  assertReady();
  if (blob.length < NONCE_BYTES + sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES) throw new OpenError(what);
  try {
    const pt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      blob.subarray(NONCE_BYTES),
      ad,
      blob.subarray(0, NONCE_BYTES),
      key,
    );
    return Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength);
  } catch {
    throw new OpenError(what);
  }
}

const wrapAd = (authId: string): string => `latchkey/v1/data-key/${authId}`;
const secretAd = (integrationId: string, authId: string): string =>
  `latchkey/v1/secret/${integrationId}/${authId}`;
const CHECK_AD = 'latchkey/v1/master-check';
const CHECK_PLAINTEXT = Buffer.from('latchkey master key check v1');

export interface SealedRecord {
  wrappedKey: Buffer;
  sealed: Buffer;
}

export function sealRecord(master: Uint8Array, integrationId: string, authId: string, secrets: object): SealedRecord {
  const dataKey = randomFillSync(Buffer.alloc(KEY_BYTES));
  const plaintext = Buffer.from(JSON.stringify(secrets));
  try {
    return {
      wrappedKey: seal(master, dataKey, wrapAd(authId)),
      sealed: seal(dataKey, plaintext, secretAd(integrationId, authId)),
    };
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

export function openRecord(master: Uint8Array, integrationId: string, authId: string, rec: SealedRecord): unknown {
  const dataKey = open(master, rec.wrappedKey, wrapAd(authId), `data key of ${authId}`);
  try {
    const plaintext = open(dataKey, rec.sealed, secretAd(integrationId, authId), `secrets of ${authId}`);
    try {
      return JSON.parse(plaintext.toString('utf8'));
    } finally {
      plaintext.fill(0);
    }
  } finally {
    dataKey.fill(0);
  }
}

/** Re-wrap one data key under a new master key; the sealed secrets stay as they are. */
export function rewrapKey(oldMaster: Uint8Array, newMaster: Uint8Array, authId: string, wrappedKey: Buffer): Buffer {
  const dataKey = open(oldMaster, wrappedKey, wrapAd(authId), `data key of ${authId}`);
  try {
    return seal(newMaster, dataKey, wrapAd(authId));
  } finally {
    dataKey.fill(0);
  }
}

/*
 * The local CA's private key is sealed the same way (a data key of its own,
 * wrapped under the master key), with associated data naming the CA, so it
 * cannot be mistaken for, or swapped with, an auth record's blob.
 */
const caWrapAd = (caId: string): string => `latchkey/v1/ca-data-key/${caId}`;
const caKeyAd = (caId: string): string => `latchkey/v1/ca-key/${caId}`;

export function sealCaKey(master: Uint8Array, caId: string, pkcs8: Uint8Array): SealedRecord {
  const dataKey = randomFillSync(Buffer.alloc(KEY_BYTES));
  try {
    return { wrappedKey: seal(master, dataKey, caWrapAd(caId)), sealed: seal(dataKey, pkcs8, caKeyAd(caId)) };
  } finally {
    dataKey.fill(0);
  }
}

/** The CA's PKCS#8 private key; the caller zeroes it once imported. */
export function openCaKey(master: Uint8Array, caId: string, rec: SealedRecord): Buffer {
  const dataKey = open(master, rec.wrappedKey, caWrapAd(caId), `data key of CA ${caId}`);
  try {
    return open(dataKey, rec.sealed, caKeyAd(caId), `private key of CA ${caId}`);
  } finally {
    dataKey.fill(0);
  }
}

export function rewrapCaKey(oldMaster: Uint8Array, newMaster: Uint8Array, caId: string, wrappedKey: Buffer): Buffer {
  const dataKey = open(oldMaster, wrappedKey, caWrapAd(caId), `data key of CA ${caId}`);
  try {
    return seal(newMaster, dataKey, caWrapAd(caId));
  } finally {
    dataKey.fill(0);
  }
}

export const makeCheckValue = (master: Uint8Array): Buffer => seal(master, CHECK_PLAINTEXT, CHECK_AD);

export function checkMasterKey(master: Uint8Array, check: Buffer): boolean {
  try {
    return open(master, check, CHECK_AD, 'check value').equals(CHECK_PLAINTEXT);
  } catch {
    return false;
  }
}
