import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { KEY_BYTES } from './seal.js';

export class MasterKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

/** A master key is written and read as base64 of exactly 32 bytes. */
export function parseMasterKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== trimmed) {
    throw new MasterKeyError(`${source}: must be base64 of exactly ${KEY_BYTES} bytes`);
  }
  return key;
}

export function readMasterKeyFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MasterKeyError(`master key file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  return parseMasterKey(text, `master key file ${path}`);
}

/** Writes a new key with mode 0600; refuses to overwrite an existing file. */
export function generateMasterKeyFile(path: string): Buffer {
  const key = randomBytes(KEY_BYTES);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  return key;
}

export type MasterKeySource = 'env' | 'file' | 'generated';

export interface ResolvedMasterKey {
  key: Buffer;
  source: MasterKeySource;
}

/**
 * LATCHKEY_MASTER_KEY wins over the key file. A key is generated only when the
 * database has never been sealed under one: generating a key for a database
 * that holds records would make every record unreadable.
 */
export function resolveMasterKey(
  envKey: string | undefined,
  file: string,
  databaseInitialised: boolean,
): ResolvedMasterKey {
  if (envKey !== undefined) return { key: parseMasterKey(envKey, 'LATCHKEY_MASTER_KEY'), source: 'env' };
  if (existsSync(file)) return { key: readMasterKeyFile(file), source: 'file' };
  if (databaseInitialised) {
    throw new MasterKeyError(
      `no master key: ${file} does not exist and LATCHKEY_MASTER_KEY is unset, but the database already holds sealed data`,
    );
  }
  return { key: generateMasterKeyFile(file), source: 'generated' };
}
