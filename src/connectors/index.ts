/**
 * Picks the connector named by CONNECTOR.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import { createSandboxConnector } from './sandbox/connector.js';
import type { Connector } from './types.js';

export interface ConnectorEnv {
  /** Base URL of the sandbox PSP API (in-process `/sandbox` or SANDBOX_PSP_URL). */
  pspBaseUrl: () => string;
  /** Base URL of the sandbox PSP as browsers reach it (`${APP_BASE_URL}/sandbox` or SANDBOX_PSP_URL). */
  publicBaseUrl: () => string;
  log: Logger;
}

export function createConnector(config: AppConfig, env: ConnectorEnv): Connector {
  switch (config.connector) {
    case 'sandbox':
      return createSandboxConnector(env);
    default:
      throw new Error(`unknown connector "${String(config.connector)}"`);
  }
}
