#!/usr/bin/env node
/**
 * Compiles the TypeScript into dist/ when a source is newer than the last
 * build (or with --force), so `npm start` on an installed checkout starts the
 * server at once instead of running tsc every time. `npm install` builds
 * through the "prepare" script; `npm test` and `npm run bench` always compile.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');

/** The newest modification time among the compiler's inputs. */
function newestInput() {
  let newest = 0;
  const visit = (path) => {
    if (!existsSync(path)) return;
    const st = statSync(path);
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) visit(join(path, name));
    } else if (/\.(ts|json)$/.test(path)) {
      newest = Math.max(newest, st.mtimeMs);
    }
  };
  for (const p of ['src', 'test', 'bench', 'tsconfig.json', 'package.json']) visit(join(root, p));
  return newest;
}

const force = process.argv.includes('--force');
const stale = force || !existsSync(stamp) || statSync(stamp).mtimeMs < newestInput();
if (stale) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
