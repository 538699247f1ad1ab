import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLatchkey, type TestLatchkey } from '../helpers/latchkey.js';
import { call } from '../helpers/http.js';
import { compiledCli } from '../helpers/child.js';
import { openApiMarkdown } from '../../src/admin/openapi-markdown.js';
import { COMMAND_HELP } from '../../src/cli-help.js';
import { DEFAULTS, ENV_OVERRIDES } from '../../src/config/schema.js';

const root = process.cwd();
const docFiles = (): string[] => ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (f: string): string => readFileSync(join(root, f), 'utf8');
const cli = async (args: string[]): Promise<string> =>
  (await promisify(execFile)(process.execPath, [compiledCli(), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })).stdout;

let lk: TestLatchkey;
beforeAll(async () => {
  lk = await startLatchkey();
});
afterAll(async () => lk.close());

describe('documentation in the repository', () => {
  it('docs/api.md is GET /openapi.json rendered (regenerate: UPDATE_DOCS=1 npx vitest run test/integration/docs.test.ts)', async () => {
    const doc = (await call(`${lk.adminUrl}/openapi.json`)).json;
    const rendered = openApiMarkdown(doc);
    if (process.env.UPDATE_DOCS === '1') writeFileSync(join(root, 'docs/api.md'), rendered);
    expect(read('docs/api.md')).toBe(rendered);
    for (const path of Object.keys(doc.paths)) expect(rendered).toContain(path);
  });

  it('every command answers --help with its own usage, quoted in docs/cli.md and listed by latchkey --help', async () => {
    const cliDoc = read('docs/cli.md');
    const commands = Object.entries(COMMAND_HELP);
    // The children run side by side: each is a whole Node start.
    const [main, ...outs] = await Promise.all([cli(['--help']), ...commands.map(([command]) => cli([command, '--help']))]);
    for (const [i, [command, text]] of commands.entries()) {
      const out = outs[i] ?? '';
      expect(out.trim()).toBe(text);
      expect(main).toContain(`  ${command}`);
      for (const usage of text.split('\n').filter((l) => /^(Usage:| {7})latchkey /.test(l))) {
        expect(cliDoc, `docs/cli.md lacks: ${usage.trim()}`).toContain(usage.replace(/^Usage: +| +/, '').trim());
      }
      expect(cliDoc).toContain(`## \`latchkey ${command}\``);
    }
    // And nothing in docs/cli.md describes a command the CLI does not have.
    const documented = [...cliDoc.matchAll(/^## `latchkey ([a-z-]+)`/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(COMMAND_HELP).sort());
  });

  it('every config key and environment variable is documented in docs/configuration.md', () => {
    const conf = read('docs/configuration.md');
    const keys = (o: object, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (v && typeof v === 'object' && !Array.isArray(v) ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`]));
    for (const key of keys(DEFAULTS)) expect(conf, key).toContain(`\`${key}\``);
    for (const { env } of ENV_OVERRIDES) expect(conf, env).toContain(`\`${env}\``);
    for (const env of ['LATCHKEY_MASTER_KEY', 'LATCHKEY_ADMIN_KEY', 'LATCHKEY_JWT_SECRET', 'LATCHKEY_CONFIG']) expect(conf).toContain(`\`${env}\``);
  });

  it('the README and docs/ point nowhere outside the repository, and every relative link resolves', () => {
    for (const file of docFiles()) {
      const text = read(file);
      expect(text, file).not.toMatch(/\.\.\/shared|SPEC\.md/);
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/.test(target)) {
          // Only the local listeners: no page of these docs sends a reader off the machine.
          expect(target, `${file}: ${target}`).toMatch(/^http:\/\/(127\.0\.0\.1|localhost)/);
          continue;
        }
        expect(existsSync(resolve(dirname(join(root, file)), target)), `${file}: ${target}`).toBe(true);
      }
    }
  });
});
