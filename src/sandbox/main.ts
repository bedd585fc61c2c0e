/**
 * Runs only the sandbox PSP (see standalone.ts for its environment): `node dist/src/sandbox/main.js`.
 */
import { ConfigError } from '../config.js';
import { startStandaloneSandbox } from './standalone.js';

startStandaloneSandbox().then(
  (sbx) => {
    process.stdout.write(`Sandbox PSP listening on ${sbx.url}${'/sandbox'} (database: ${sbx.db.description})\n`);
    const stop = (): void => {
      sbx.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? 'Configuration error' : 'Start-up failed'}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
