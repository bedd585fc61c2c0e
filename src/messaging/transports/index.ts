/**
 * Picks the transport of MESSAGE_TRANSPORT (messages.md 9). One transport for all channels.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../../config.js';
import type { Db } from '../../store/db.js';
import { createTokenProvider, type TokenProvider } from '../token.js';
import { HttpTransport } from './http.js';
import { LocalTransport } from './local.js';
import { RabbitMqTransport } from './rabbitmq.js';
import type { Transport } from './types.js';

export type { BatchPublishOutcome, PublishResult, Transport } from './types.js';

export interface TransportDeps {
  config: AppConfig;
  db: Db;
  log: Logger;
  /** Shared token provider (the `http` consumer of payment-commands may reuse it). */
  tokens?: TokenProvider;
}

export function createTransport(deps: TransportDeps): Transport {
  const { config } = deps;
  switch (config.messageTransport) {
    case 'local':
      return new LocalTransport(deps.db);
    case 'http':
      return new HttpTransport({
        senderBaseUrl: config.httpSenderBaseUrl!,
        headerPrefix: config.httpHeaderPrefix,
        tokens: deps.tokens ?? createTokenProvider(config),
      });
    case 'rabbitmq':
      return new RabbitMqTransport({ url: config.amqpUrl!, exchange: config.amqpExchange, appIdentifier: config.appIdentifier, log: deps.log });
    default:
      throw new Error(`unknown MESSAGE_TRANSPORT "${String(config.messageTransport)}"`);
  }
}
