/**
 * Outbox figures for /metrics (messages.md 7). The statement lives in the outbox repository.
 */
export { outboxStats, type OutboxStats } from '../store/outbox.js';
