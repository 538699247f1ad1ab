import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config/load.js';
import { createLogger, resolveLogFormat } from './log.js';
// Imported first thing: libsodium compiles its WebAssembly on another thread while the rest loads.
import { initSodium } from './crypto/seal.js';
import { MasterKeyError, generateMasterKeyFile, readMasterKeyFile } from './crypto/master-key.js';
import { DatabaseError, backupTo, openDatabase } from './store/db.js';
import { Store, replaceKeyFile } from './store/store.js';
import { COMMAND_HELP, HELP } from './cli-help.js';

// Each subcommand's modules are imported when it runs (the server's are most of a start).

/** Problems a person can fix: one line on stderr, exit 1. */
const EXPECTED = [ConfigError, MasterKeyError, DatabaseError];

async function serve(config: Config): Promise<void> {
  const sodium = initSodium();
  const [{ isClusterWorker, runPrimary, runWorker, stopAndExit }, { startApp }] = await Promise.all([import('./cluster.js'), import('./app.js')]);
  await sodium;
  const log = createLogger(config.logLevel, undefined, {
    format: resolveLogFormat(config.logFormat, process.stdout.isTTY === true),
    shared: isClusterWorker(),
  });
  if (isClusterWorker()) return runWorker(config, log);
  if (config.workerCount > 1) return runPrimary(config, log);
  const app = await startApp(config, log);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    stopAndExit(app, config, log, signal);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function rotateMasterKey(config: Config, newKeyFile: string | undefined): Promise<void> {
  if (!newKeyFile) throw new ConfigError('rotate-master-key: --new-key-file FILE is required');
  await initSodium();
  const store = Store.open({ dbPath: config.db, masterKey: config.masterKey, masterKeyFile: config.masterKeyFile });
  try {
    const generated = !existsSync(newKeyFile);
    const newKey = generated ? generateMasterKeyFile(newKeyFile) : readMasterKeyFile(newKeyFile);
    const count = store.rotateMasterKey(newKey);
    // A plain restart must keep working: the configured key file follows the rotation.
    const updatedFile = store.masterKeySource !== 'env' && resolve(newKeyFile) !== resolve(config.masterKeyFile);
    if (updatedFile) replaceKeyFile(config.masterKeyFile, newKey);
    process.stdout.write(
      `${JSON.stringify({
        rotated: count,
        newKeyFile,
        generated,
        masterKeyFileUpdated: updatedFile ? config.masterKeyFile : null,
        note: store.masterKeySource === 'env' ? 'set LATCHKEY_MASTER_KEY to the new key before the next start' : undefined,
      })}\n`,
    );
  } finally {
    store.close();
  }
}

async function backup(config: Config, file: string | undefined): Promise<void> {
  if (!file) throw new ConfigError('backup: FILE is required');
  if (!existsSync(config.db)) throw new DatabaseError(`database ${config.db}: does not exist`);
  if (existsSync(file)) throw new ConfigError(`backup: ${file} already exists`);
  // The copy holds only sealed blobs, so taking it needs no master key.
  const db = openDatabase(config.db);
  try {
    await backupTo(db, file);
  } finally {
    db.close();
  }
  process.stdout.write(`${JSON.stringify({ backup: file })}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      'new-key-file': { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string' },
      integrations: { type: 'string' },
      'expires-at': { type: 'string' },
      ttl: { type: 'string' },
      rules: { type: 'string' },
      'rate-limit': { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help && command && COMMAND_HELP[command]) {
    process.stdout.write(`${COMMAND_HELP[command]}\n`);
    return;
  }
  if (values.help || !command || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const config = loadConfig();
  switch (command) {
    case 'serve':
      return serve(config);
    case 'check-config':
      process.stdout.write(`config ok (${config.sources.join(', ') || 'embedded defaults'})\n`);
      return;
    case 'rotate-master-key':
      return rotateMasterKey(config, values['new-key-file']);
    case 'backup':
      return backup(config, rest[0]);
    case 'keys':
      return (await import('./cli-keys.js')).keysCommand(config, rest, values);
    case 'ca':
      return (await import('./cli-ca.js')).caCommand(config, rest);
    case 'run': {
      const { runCommand } = await import('./cli-run.js');
      const code = await runCommand(config, { integrations: values.integrations, ttl: values.ttl }, rest);
      process.exit(code);
    }
    case 'catalog':
      process.stdout.write(`${(await import('./catalog/table.js')).catalogTable(config.providerCatalog.list())}\n`);
      return;
    default:
      throw new ConfigError(`unknown command "${command}" (see latchkey --help)`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error & { code?: string };
  const expected = EXPECTED.some((C) => err instanceof C) || e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
    process.stderr.write(`latchkey: cannot listen: ${e.message}\n`);
  } else if (expected) {
    process.stderr.write(`latchkey: ${e.message}\n`);
  } else {
    process.stderr.write(`latchkey: unexpected error: ${e.name}: ${e.message}\n`);
  }
  process.exit(1);
});
