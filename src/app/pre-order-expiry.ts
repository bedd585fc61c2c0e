/**
 * Abandoned pre-order payments (flows.md 5 step 13, 7): a background worker cancels, at the PSP and here, pre-order
 * payments that were never linked to an order (no order reference, status `new`) and are older than
 * `PRE_ORDER_EXPIRY_MS` (default 24 h). Each goes through `cancelUnlinkedPayment` (the 4.6 path): PSP cancel with the
 * idempotency key derived from the payment id, then one transaction sets `canceled` through the status machine,
 * discards the held webhooks and writes `PaymentUpdated` (history trigger `reconciliation`).
 *
 * A payment the PSP refuses to cancel (already captured, or an error) keeps its status and is retried after
 * `RETRY_AFTER_MS`; the refusal is logged. Safe in several instances: the row is locked in the cancel transaction and
 * the PSP call is idempotent.
 */
export { DEFAULT_PRE_ORDER_EXPIRY_MS } from '../config.js';
import { AppError } from '../domain/errors.js';
import type { Worker } from '../runtime.js';
import { findPaymentById, listAbandonedPreOrderPayments } from '../store/payments.js';
import { cancelUnlinkedPayment } from './cancel-pre-order.js';
import type { AppDeps } from './context.js';
import { createPollingWorker } from './polling-worker.js';

const BATCH = 50;
const RETRY_AFTER_MS = 60 * 60_000;

export interface ExpiryRunResult {
  canceled: number;
  failed: number;
}

/**
 * One pass: cancels due abandoned pre-order payments. `skipUntil` (payment id → epoch ms) holds back payments whose
 * cancel failed recently.
 */
export async function runPreOrderExpiry(deps: AppDeps, opts: { expiryMs: number; now?: Date; skipUntil?: Map<string, number> }): Promise<ExpiryRunResult> {
  const now = opts.now ?? new Date();
  const skip = opts.skipUntil ?? new Map<string, number>();
  for (const [id, until] of skip) if (until <= now.getTime()) skip.delete(id);
  const due = await listAbandonedPreOrderPayments(deps.db, new Date(now.getTime() - opts.expiryMs), [...skip.keys()], BATCH);
  const result: ExpiryRunResult = { canceled: 0, failed: 0 };
  for (const row of due) {
    try {
      const tenant = await deps.tenants.get(row.tenant_identifier);
      const payment = await findPaymentById(deps.db, row.id);
      if (!tenant || !payment || payment.orderReference || payment.status !== 'new') continue;
      const r = await cancelUnlinkedPayment(deps, tenant, payment, { trigger: 'reconciliation', ref: `pre-order-expiry:${payment.id}`, reason: 'abandoned pre-order payment expired' });
      if (r.kind === 'canceled') {
        result.canceled++;
        deps.log.info({ tenantIdentifier: row.tenant_identifier, transactionId: payment.transactionId }, 'abandoned pre-order payment canceled');
      }
    } catch (err) {
      result.failed++;
      skip.set(row.id, now.getTime() + RETRY_AFTER_MS);
      const reason = err instanceof AppError ? `${String(err.code)}: ${err.message}` : (err as Error)?.message;
      deps.log.warn({ tenantIdentifier: row.tenant_identifier, paymentId: row.id, reason }, 'could not cancel an abandoned pre-order payment; will retry later');
    }
  }
  return result;
}

/** The worker: one pass every `pollMs` (default: a tenth of the expiry time, between 1 s and 5 min). */
export function createPreOrderExpiryWorker(deps: AppDeps, opts: { expiryMs?: number; pollMs?: number } = {}): Worker {
  const expiryMs = opts.expiryMs ?? deps.config.preOrderExpiryMs;
  const pollMs = opts.pollMs ?? Math.min(5 * 60_000, Math.max(1_000, Math.floor(expiryMs / 10)));
  const skipUntil = new Map<string, number>();
  return createPollingWorker({
    name: 'pre-order-expiry',
    pollMs,
    log: deps.log,
    pass: async () => {
      await runPreOrderExpiry(deps, { expiryMs, skipUntil });
      return 0;
    },
  });
}
