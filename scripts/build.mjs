#!/usr/bin/env node
/**
 * Compiles the TypeScript into dist/ when a source is newer than the last
 * build (or with --force), so `npm start` on an installed checkout starts the
 * server at once instead of running tsc every time. `npm install` builds
 * through the "prepare" script; `npm test` and `npm run bench` always compile.
 * After tsc it writes the precompiled validators of latchkey's own JSON
 * schemas (src/json-schema-build.ts).
 *
 * The staleness check is a walk of file times only (a few milliseconds): no
 * TypeScript is loaded unless something must be compiled.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');

/** The newest modification time among the compiler's inputs. */
function newestInput() {
  let newest = 0;
  const visit = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (/\.(ts|json)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const d of ['src', 'test', 'bench']) if (existsSync(join(root, d))) visit(join(root, d));
  for (const f of ['tsconfig.json', 'package.json']) newest = Math.max(newest, statSync(join(root, f)).mtimeMs);
  return newest;
}

/** Compiles when forced or stale; true when it compiled. */
export async function build({ force = false } = {}) {
  const stale = force || !existsSync(stamp) || statSync(stamp).mtimeMs < newestInput();
  if (!stale) return false;
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  const { writePrecompiledValidators } = await import(pathToFileURL(join(root, 'dist', 'src', 'json-schema-build.js')).href);
  writePrecompiledValidators();
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return true;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await build({ force: process.argv.includes('--force') });
}
