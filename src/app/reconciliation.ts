/**
 * Reconciliation of operation records (flows.md 14 step 1): `pending` capture / cancel records and `pending` refunds
 * without a PSP refund id whose PSP call got no definite answer (timeout, network error, crash between the PSP call and
 * the commit) are retried with the SAME idempotency key (the record id), so the PSP acts at most once, with backoff
 * 1 s, 5 s, 30 s, 2 min, 10 min, then every 30 min; after 24 h without a definite answer the record becomes `failed`
 * and its flow's failure message is sent. Rows are claimed with `FOR UPDATE SKIP LOCKED` and leased (next_attempt_at
 * moved forward), so several instances can run it.
 *
 * Refunds that are `pending`/`processing` with a PSP id (flows.md 14 step 3; e.g. settled at the PSP while this app
 * was down, its webhook lost) are asked at the PSP through the payment's own connector (`getRefund`, resolved per
 * payment by the registry) 30 s after the PSP id was stored, then with backoff (1, 2, 5, 10, then every 30 min).
 * A connector without `getRefund` leaves them to their webhook.
 */
import type { Worker } from '../runtime.js';
import { claimDueOperations, claimDueRefundCalls, lockDueRefundChecks, releaseOperations, releaseRefunds, scheduleRefundCheck } from '../store/operations.js';
import { runCancel } from './cancel-payment.js';
import { RECORD_LEASE_MS, runCapture } from './capture-payment.js';
import type { AppDeps } from './context.js';
import { createPollingWorker } from './polling-worker.js';
import { checkRefundStatus, refundStatusCheckDelayMs, runRefund } from './refund-payment.js';
import { reconcilePendingTransfers } from './transfers.js';

const BATCH = 20;
/** Pending payouts/reversals (no definite PSP answer) are re-sent with their own idempotency key at most this often. */
const TRANSFER_PASS_EVERY_MS = 30_000;
const lastTransferPass = new WeakMap<AppDeps, number>();

/** One pass: claims due records and repeats their PSP calls. Returns how many records it took. */
export async function runReconciliation(deps: AppDeps, stopping?: AbortSignal): Promise<number> {
  const lease = new Date(Date.now() + RECORD_LEASE_MS);
  const ops = await deps.db.tx((tx) => claimDueOperations(tx, lease, BATCH));
  const refunds = await deps.db.tx((tx) => claimDueRefundCalls(tx, lease, BATCH));
  // Each claim moves next_attempt_at by the backoff of its check count (the lease is the backoff).
  const refundChecks = await deps.db.tx(async (tx) => {
    const rows = await lockDueRefundChecks(tx, BATCH);
    for (const row of rows) await scheduleRefundCheck(tx, row.id, new Date(Date.now() + refundStatusCheckDelayMs(row.attempts + 1)));
    return rows;
  });
  if (stopping?.aborted) {
    await releaseClaims(deps, ops.map((o) => o.id), refunds.map((r) => r.id), refundChecks.map((r) => r.id));
    return 0;
  }
  for (const op of ops) {
    const source = { trigger: 'reconciliation' as const, ref: op.id };
    try {
      if (op.kind === 'capture') await runCapture(deps, op.id, source);
      else await runCancel(deps, op.id, source);
    } catch (err) {
      deps.log.warn({ err, operationId: op.id }, 'reconciliation of an operation record failed; will retry');
    }
  }
  for (const rf of refunds) {
    try {
      await runRefund(deps, rf.id, { trigger: 'reconciliation', ref: rf.id });
    } catch (err) {
      deps.log.warn({ err, refundId: rf.id }, 'reconciliation of a refund failed; will retry');
    }
  }
  for (const rf of refundChecks) {
    try {
      await checkRefundStatus(deps, rf.id, { trigger: 'reconciliation', ref: rf.id });
    } catch (err) {
      deps.log.warn({ err, refundId: rf.id }, 'refund status check at the PSP failed; will retry');
    }
  }
  let transfers = 0;
  const last = lastTransferPass.get(deps) ?? 0;
  if (Date.now() - last >= TRANSFER_PASS_EVERY_MS) {
    lastTransferPass.set(deps, Date.now());
    try {
      transfers = await reconcilePendingTransfers(deps);
    } catch (err) {
      deps.log.warn({ err }, 'reconciliation of pending transfers failed; will retry');
    }
  }
  return ops.length + refunds.length + refundChecks.length + transfers;
}

/** Shutting down between claim and work: the claimed records are due again at once (for any instance). */
async function releaseClaims(deps: AppDeps, operationIds: string[], refundIds: string[], checkIds: string[]): Promise<void> {
  if (operationIds.length > 0) await releaseOperations(deps.db, operationIds);
  const ids = [...refundIds, ...checkIds];
  if (ids.length > 0) await releaseRefunds(deps.db, ids);
}

export function createReconciliationWorker(deps: AppDeps, opts: { pollMs?: number } = {}): Worker {
  return createPollingWorker({ name: 'reconciliation', pollMs: opts.pollMs ?? 1_000, log: deps.log, batchSize: BATCH, pass: (stopping) => runReconciliation(deps, stopping) });
}
