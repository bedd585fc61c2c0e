/**
 * The consumers of `payment-commands` for the configured transport (messages.md 9): `rabbitmq` and
 * `http` poll/consume here; with `local` the embedded Event Platform writes the inbox directly, so there
 * is no consumer. Also registers the transport's readiness check (/ready → checks.transport).
 */
import type { AppDeps } from '../../app/context.js';
import { addReadinessCheck } from '../../http/ops.js';
import type { Worker } from '../../runtime.js';
import { createTokenProvider } from '../token.js';
import type { Transport } from '../transports/types.js';
import { HttpCommandConsumer } from './http.js';
import { RabbitMqCommandConsumer } from './rabbitmq.js';

export function createCommandConsumers(deps: AppDeps, transport: Transport): Worker[] {
  const { config, db, log } = deps;
  if (config.messageTransport === 'rabbitmq') {
    const consumer = new RabbitMqCommandConsumer({ url: config.amqpUrl!, exchange: config.amqpExchange, appIdentifier: config.appIdentifier, db, log });
    addReadinessCheck(deps, 'transport', () => {
      if (transport.isConnected && !transport.isConnected()) return 'rabbitmq: publisher not connected';
      if (!consumer.isConnected()) return 'rabbitmq: consumer not connected';
      return null;
    });
    // unroutable channels: still ready (payments go on, messages wait in the outbox), each channel named degraded
    addReadinessCheck(deps, 'channels', () => {
      const degraded = transport.degradedChannels?.() ?? {};
      return Object.keys(degraded).length > 0 ? { degraded } : null;
    });
    return [consumer];
  }
  if (config.messageTransport === 'http') {
    const consumer = new HttpCommandConsumer({
      receiverBaseUrl: config.httpReceiverBaseUrl!,
      consumerId: config.messageConsumerId,
      pollIntervalMs: config.messagePollIntervalMs,
      tokens: createTokenProvider(config),
      db,
      log,
    });
    // The Event Platform is reachable as far as the last poll knows; unknown before the first one.
    addReadinessCheck(deps, 'transport', () => (consumer.isConnected() === false ? 'http: Event Platform not reachable (last poll failed)' : null));
    return [consumer];
  }
  return [];
}
