#!/usr/bin/env -S node --max-semi-space-size=64
// A young generation of up to 64 MiB per semi-space: a busy proxy's per-call garbage then dies young
// (V8's 16 MiB default promoted it, and scavenges of 4-5 ms set the p99 latency). See README "Performance".
// The compiled CLI; `npm install` builds it (the "prepare" script).
import '../dist/src/cli.js';
