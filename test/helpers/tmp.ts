import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tmpDir(): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}
