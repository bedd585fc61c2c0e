/**
 * Operator commands: `node dist/src/cli.js <command>` (`npm run cli -- <command>`).
 *
 *   rotate-keys   Re-encrypts every stored tenant secret (current and previous webhook secrets) under the
 *                 first key of ENCRYPTION_KEYS. Run it after putting a new key first in the ring
 *                 (ENCRYPTION_KEYS=new:...,old:...); once it reports 0 left, the old key can be removed.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from './config.js';
import { createLogger, loadKeyRing } from './runtime.js';
import { migrate, openDb } from './store/db.js';
import { SecretBox } from './store/secret-box.js';
import { rotateTenantSecrets } from './store/tenants.js';

const USAGE = 'Usage: cli <command>\n\nCommands:\n  rotate-keys   re-encrypt every stored secret under the first key of ENCRYPTION_KEYS\n';

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CliIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

/** Runs one command; returns the process exit code. */
export async function runCli(argv: string[], env: Record<string, string | undefined> = process.env, io: CliIo = defaultIo): Promise<number> {
  const command = argv[0];
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out(USAGE.trimEnd());
    return command === undefined ? 2 : 0;
  }
  if (command !== 'rotate-keys') {
    io.err(`Unknown command "${command}".`);
    io.out(USAGE.trimEnd());
    return 2;
  }
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`Configuration error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
  const db = await openDb(config.database);
  try {
    await migrate(db);
    const box = new SecretBox(loadKeyRing(config, log));
    const report = await rotateTenantSecrets(db, box);
    io.out(
      `rotate-keys: ${report.tenants} tenant(s), ${report.reencrypted} secret(s) re-encrypted under key "${box.currentKeyId}", ${report.alreadyCurrent} already under it.`,
    );
    return 0;
  } catch (err) {
    io.err(`rotate-keys failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
    return 1;
  } finally {
    await db.close();
  }
}

function invokedDirectly(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`cli failed: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}\n`);
      process.exit(1);
    },
  );
}
