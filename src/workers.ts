/**
 * The background workers of one instance. Each is safe to run in several instances at once.
 */
import type { AppDeps } from './app/context.js';
import { createCommandConsumers } from './messaging/consumers/index.js';
import { OutboxRelay } from './messaging/relay.js';
import { createTransport } from './messaging/transports/index.js';
import type { Worker } from './runtime.js';
import { createCommandWorker } from './app/command-worker.js';
import { createReconciliationWorker } from './app/reconciliation.js';
import { createWebhookWorker } from './app/webhook-processing.js';
import { createPreOrderExpiryWorker } from './app/pre-order-expiry.js';
import { createStatisticsWorker } from './store/maintenance.js';

export function createWorkers(deps: AppDeps): Worker[] {
  const transport = createTransport(deps);
  return [
    new OutboxRelay(deps.db, transport, deps.log, { maxRetryHours: deps.config.outboxMaxRetryHours }),
    ...createCommandConsumers(deps, transport), // payment-commands consumer of the rabbitmq / http transport
    createWebhookWorker(deps), // webhook inbox retries (flows.md 12)
    createPreOrderExpiryWorker(deps), // abandoned pre-order payments (PRE_ORDER_EXPIRY_MS, default 24 h)
    createCommandWorker(deps), // payment-commands inbox processing (messages.md 8)
    createReconciliationWorker(deps), // pending capture/cancel/refund records (flows.md 14)
    ...createStatisticsWorker(deps.db, deps.log), // ANALYZE of grown tables (PGlite has no autovacuum; PostgreSQL's starts late)
    ...deps.connectors.modules.flatMap((m) => m.workers?.(deps.connectors.env, deps) ?? []), // connectors' own workers (e.g. the in-process sandbox PSP's webhooks)
  ];
}
