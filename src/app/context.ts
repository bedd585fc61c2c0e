/**
 * The ports every use case receives. Built once in `src/runtime.ts`; tests build their own.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import type { ConnectorRegistry } from '../connectors/registry.js';
import type { Db } from '../store/db.js';
import type { SecretBox } from '../store/secret-box.js';
import type { TenantLookup } from '../store/tenant-cache.js';

/** One PSP call may take at most 15 s (sync-api.md 2.5; flows.md 0 rule 6). */
export const PSP_CALL_TIMEOUT_MS = 15_000;

export interface AppDeps {
  config: AppConfig;
  db: Db;
  log: Logger;
  secrets: SecretBox;
  /** The enabled connectors, resolved per tenant and per payment (`connectors.require(row.connector)`). */
  connectors: ConnectorRegistry;
  /** Tenant rows, read once per instance and dropped when any instance changes them (src/store/tenant-cache.ts). */
  tenants: TenantLookup;
}
