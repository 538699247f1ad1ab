/**
 * A secret too short to redact safely is named when it is stored: replacing
 * every short string in responses would garble them, and staying silent would
 * let a caller believe it is protected. Works for every kind, from the
 * values its secretsOf says the record injects.
 */
import { kindOf } from './kinds/index.js';
import { MIN_SECRET_LENGTH } from './template.js';
import type { KindInput } from './kind.js';

const FIELD_NAMES: Record<string, string> = { apiKeyValue: 'apiKey.value' };

export function shortSecretWarnings(input: KindInput): string[] {
  const short = new Set(kindOf(input.authType).secretsOf(input).filter((v) => v.length > 0 && v.length < MIN_SECRET_LENGTH));
  if (short.size === 0) return [];
  return Object.entries(input.fields)
    .filter(([, v]) => v !== undefined && short.has(v))
    .map(([field]) => `${FIELD_NAMES[field] ?? field} is shorter than ${MIN_SECRET_LENGTH} characters: it is not redacted from responses`);
}
