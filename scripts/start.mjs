#!/usr/bin/env node
/**
 * `npm start`: compiles if a source changed since the last build
 * (scripts/build.mjs), then runs `latchkey serve` in this same process, so a
 * start pays for one Node.js process, not two. Arguments after `npm start --`
 * go to `latchkey serve`.
 */
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from './build.mjs';

await build();
// Node.js 22.1+ keeps compiled code between starts; Node.js 20 has no such cache.
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();
process.argv = [process.argv[0], fileURLToPath(new URL('../dist/src/cli.js', import.meta.url)), 'serve', ...process.argv.slice(2)];
await import('../dist/src/cli.js');
