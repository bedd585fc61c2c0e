/**
 * The ports every use case receives. Built once in `src/runtime.ts`; tests build their own.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config.js';
import type { Connector } from '../connectors/types.js';
import type { Db } from '../store/db.js';
import type { SecretBox } from '../store/secret-box.js';

export interface AppDeps {
  config: AppConfig;
  db: Db;
  log: Logger;
  secrets: SecretBox;
  connector: Connector;
}
