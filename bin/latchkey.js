#!/usr/bin/env -S node --max-semi-space-size=64
// A young generation of up to 64 MiB per semi-space: a busy proxy's per-call garbage then dies young
// (V8's 16 MiB default promoted it, and scavenges of 4-5 ms set the p99 latency). See README "Performance".
// The compiled CLI; `npm install` builds it (the "prepare" script).
import module from 'node:module';

// Node.js 22.1+ keeps compiled code between starts (set before the CLI's modules are loaded); Node.js 20 has no such cache.
if (typeof module.enableCompileCache === 'function') module.enableCompileCache();
await import('../dist/src/cli.js');
