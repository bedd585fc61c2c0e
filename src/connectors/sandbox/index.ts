/**
 * The sandbox connector module: the built-in sandbox PSP's connector, plus (when the PSP runs in-process, i.e. without
 * SANDBOX_PSP_URL) the PSP's own routes under `/sandbox`, its webhook dispatcher and its tables.
 */
import { sandboxMigrationsDir } from '../../paths.js';
import { sandboxWorker } from '../../sandbox/dispatcher.js';
import { SANDBOX_PREFIX, sandboxRoutes } from '../../sandbox/routes.js';
import type { ConnectorEnv, ConnectorModule } from '../types.js';
import { createSandboxConnector, SANDBOX_SECRET_FIELDS } from './connector.js';

const inProcess = (env: ConnectorEnv): boolean => !env.config.sandboxPspUrl;
/** The config object itself: `appBaseUrl` is read when used (a test server learns its port after listen). */
const sandboxConfig = (env: ConnectorEnv) => env.config;

export const sandboxModule: ConnectorModule = {
  id: 'sandbox',
  providerName: 'Sandbox',
  secretFields: SANDBOX_SECRET_FIELDS,
  create: (env) =>
    createSandboxConnector({
      pspBaseUrl: () => env.config.sandboxPspUrl ?? `${env.listenUrl()}${SANDBOX_PREFIX}`,
      ...(inProcess(env) && env.inProcessHttp ? { inProcess: { dispatch: env.inProcessHttp, path: SANDBOX_PREFIX } } : {}),
      publicBaseUrl: () => env.config.sandboxPspUrl ?? `${env.config.appBaseUrl}${SANDBOX_PREFIX}`,
      log: env.log,
    }),
  routes: (env) => (inProcess(env) ? (app, deps) => sandboxRoutes(app, { db: deps.db, log: deps.log, config: sandboxConfig(env) }) : null),
  workers: (env, deps) => (inProcess(env) ? [sandboxWorker({ db: deps.db, log: deps.log, config: sandboxConfig(env) })] : []),
  migrationsDir: sandboxMigrationsDir,
  describe: (env) => (inProcess(env) ? 'sandbox (sandbox PSP in-process at /sandbox)' : `sandbox (sandbox PSP at ${env.config.sandboxPspUrl})`),
};
