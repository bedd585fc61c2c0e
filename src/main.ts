/**
 * `npm start`: reads the environment, starts the server, stops cleanly on SIGTERM/SIGINT.
 */
import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './config.js';
import { startRuntime } from './runtime.js';

/** Orchestrators kill after 30 s; the runtime stops well within this (requests cut at 5 s, workers leave their batches). */
const SHUTDOWN_TIMEOUT_MS = 10_000;

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
  if (config.database.kind !== 'postgres') {
    // The embedded database's WASM stays on V8's baseline compiler (Liftoff): the optimizing tier-up compiles that
    // PostgreSQL's hot functions trigger leave about 60 MB of compiler memory resident (README "Benchmark"). Set before
    // PGlite compiles its module; the flags concern WebAssembly only.
    setFlagsFromString('--no-wasm-dynamic-tiering');
    setFlagsFromString('--no-wasm-tier-up');
  }
  const rt = await startRuntime(config);
  const { deps } = rt;
  const database = config.database.kind === 'pglite' ? `PGlite ${resolve(config.dataDir, 'pgdata')}` : deps.db.description;
  process.stdout.write(
    `Open ACP Pay listening on ${rt.listenUrl} (public URL ${config.appBaseUrl})\n` +
      `  database:  ${database}\n` +
      `  connector: ${deps.connectors.modules.map((m) => m.describe?.(deps.connectors.env) ?? m.id).join(', ')}\n` +
      `  transport: ${config.messageTransport}\n` +
      `  auth:      ${config.authMode}\n`,
  );
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // a second signal: stop waiting for in-flight work
      deps.log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    deps.log.info({ signal }, 'shutting down');
    // the runtime bounds in-flight requests and batches; do not hang forever on a stuck worker
    setTimeout(() => {
      deps.log.error({ signal }, `shutdown did not finish within ${SHUTDOWN_TIMEOUT_MS / 1000} s: exiting`);
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
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
