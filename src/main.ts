/**
 * `npm start`: reads the environment, starts the server, stops cleanly on SIGTERM/SIGINT.
 */
import { ConfigError, loadConfig } from './config.js';
import { startRuntime } from './runtime.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const rt = await startRuntime(config);
  const { deps } = rt;
  process.stdout.write(
    `Open ACP Pay listening on ${rt.listenUrl} (public URL ${config.appBaseUrl})\n` +
      `  database:  ${deps.db.description}\n` +
      `  connector: ${deps.connector.id}${config.connector === 'sandbox' ? (config.sandboxPspUrl ? ` (sandbox PSP at ${config.sandboxPspUrl})` : ' (sandbox PSP in-process at /sandbox)') : ''}\n` +
      `  transport: ${config.messageTransport}\n` +
      `  auth:      ${config.authMode}\n`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    deps.log.info({ signal }, 'shutting down');
    rt.close().then(
      () => process.exit(0),
      (err) => {
        deps.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`Start-up failed: ${msg.split('\n')[0]}\n`);
  process.exit(1);
});
