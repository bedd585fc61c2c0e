/**
 * Prometheus metrics of this process (one registry per process; tests may start several apps,
 * so metric objects are created once and shared).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const httpRequests = new Counter({
  name: 'http_requests_total',
  help: 'HTTP requests by route pattern, method and status',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [registry],
});

export const httpDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP request latency by route pattern and method',
  labelNames: ['route', 'method'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
  registers: [registry],
});

export const outboxDeadTotal = new Counter({
  name: 'outbox_dead_total',
  help: 'Outbox rows that became dead after OUTBOX_MAX_RETRY_HOURS',
  registers: [registry],
});

export const outboxDelivered = new Counter({
  name: 'outbox_delivered_total',
  help: 'Outbox rows delivered by this process',
  labelNames: ['channel'] as const,
  registers: [registry],
});

export const webhookDeadTotal = new Counter({
  name: 'webhook_dead_total',
  help: 'Webhook inbox rows that became dead or expired',
  registers: [registry],
});
