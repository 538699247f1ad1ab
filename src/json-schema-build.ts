/**
 * Writes the precompiled validators of latchkey's own schemas next to
 * src/json-schema.js; scripts/build.mjs runs it after every compile. The
 * imports register each schema.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRECOMPILED_FILE, precompiledSource } from './json-schema.js';
import './config/load.js';
import './catalog/catalog.js';
import './credentials/hmac-template.js';

export function writePrecompiledValidators(): string {
  const file = join(dirname(fileURLToPath(import.meta.url)), PRECOMPILED_FILE);
  writeFileSync(file, precompiledSource());
  return file;
}
