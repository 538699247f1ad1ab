/**
 * Help texts: `latchkey --help` and `latchkey COMMAND --help`. docs/cli.md
 * quotes each usage line; test/integration/docs.test.ts checks they agree.
 */
export const COMMAND_HELP: Record<string, string> = {
  serve: `Usage: latchkey serve

Start the proxy listener (data plane) and the admin listener (admin API, web
console at /console, OpenAPI at /openapi.json). This is what npm start runs.
SIGTERM or SIGINT: stop accepting, let in-flight calls finish, exit 0.`,
  'check-config': `Usage: latchkey check-config

Validate the configuration (files and LATCHKEY_* environment) and exit:
0 and "config ok", or 1 and one line naming the offending key.`,
  keys: `Usage: latchkey keys create --name N --role admin|agent [--integrations a,b|*] [--expires-at ISO] [--rules JSON|@FILE] [--rate-limit N/SECONDS]
       latchkey keys list
       latchkey keys update KEY_ID [--name N] [--expires-at ISO|none] [--rules JSON|@FILE|none] [--rate-limit N/SECONDS|none]
       latchkey keys revoke KEY_ID

Manage API keys on the database directly (no server needed). create prints the
new key once; list never shows keys, only their ids, names and prefixes; update
changes a key's name, expiry, request rules (a JSON list of {integration,
methods?, paths?}, or @FILE holding it) or rate limit (e.g. 60/60: 60 calls per
60 seconds); "none" removes one. update and revoke take effect on the very next
call, also in a running server.`,
  'rotate-master-key': `Usage: latchkey rotate-master-key --new-key-file FILE

Re-wrap every data key under the master key in FILE, in one transaction
(FILE is generated when it does not exist). The configured key file follows.`,
  backup: `Usage: latchkey backup FILE

Write a consistent copy of the database to FILE (SQLite online backup), also
while a server is running. Needs no master key: the copy holds sealed blobs only.`,
  catalog: `Usage: latchkey catalog

Print the provider catalog (config/providers.json plus the config file's
providers) as a Markdown table.`,
  ca: `Usage: latchkey ca print
       latchkey ca rotate

print writes the local CA certificate (PEM) that signs the certificates of
intercepted HTTPS tunnels, making the CA first if the database has none.
rotate replaces the CA; running latchkeys use the new one from their next
tunnel, and clients must be given the new certificate.`,
  run: `Usage: latchkey run [--integrations a,b|*] [--ttl 12h] -- COMMAND [ARGS...]

Run COMMAND with every HTTP(S) call it makes going through latchkey: an agent
key scoped to the integrations (default *), expiring after the ttl (30s, 15m,
12h, 7d) and revoked when COMMAND exits; HTTP(S)_PROXY, NO_PROXY, CA bundle
variables and a Node preload are set for it. Uses the latchkey listening at the
configured proxy address, or starts one in this process. The exit code is
COMMAND's.`,
};

export const HELP = `latchkey: credential-injecting outbound proxy

Usage: latchkey <command> [options]

Commands:
  serve                                  start the proxy and admin listeners (npm start)
  check-config                           validate the configuration and exit
  keys create --name N --role admin|agent [--integrations a,b|*] [--expires-at ISO]
              [--rules JSON|@FILE] [--rate-limit N/SECONDS]
  keys list                              list active API keys (never the keys themselves)
  keys update KEY_ID [--name N] [--expires-at ISO|none] [--rules JSON|@FILE|none]
              [--rate-limit N/SECONDS|none]
                                         change a key; applies to its next call
  keys revoke KEY_ID                     revoke a key at once
  rotate-master-key --new-key-file FILE  re-wrap every data key under the key in FILE
                                         (generated into FILE when it does not exist)
  backup FILE                            write a consistent copy of the database, also while serving
  catalog                                print the provider catalog as a Markdown table
  ca print|rotate                        print or replace the local CA of HTTPS interception
  run [--integrations a,b|*] [--ttl 12h] -- COMMAND [ARGS...]
                                         run COMMAND with its HTTP(S) calls going through latchkey
  --help                                 this text; latchkey COMMAND --help for one command

Configuration: config/default.json, then config/local.json (or LATCHKEY_CONFIG),
then LATCHKEY_* environment variables. See docs/configuration.md.`;
