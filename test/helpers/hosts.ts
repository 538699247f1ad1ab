import { appendFileSync, readFileSync } from 'node:fs';

/**
 * Maps test names to 127.0.0.1 in /etc/hosts (CI runs as root): appended
 * once, never removing anyone else's lines. Names under .example never
 * resolve anywhere else, so no traffic can leave the machine.
 */
export function ensureLoopbackNames(names: string[]): void {
  const text = readFileSync('/etc/hosts', 'utf8');
  const present = new Set(
    text
      .split('\n')
      .filter((l) => l.trim().startsWith('127.0.0.1'))
      .flatMap((l) => l.trim().split(/\s+/).slice(1)),
  );
  const missing = names.filter((n) => !present.has(n));
  if (missing.length === 0) return;
  appendFileSync('/etc/hosts', `${text.endsWith('\n') ? '' : '\n'}127.0.0.1 ${missing.join(' ')}\n`);
}
