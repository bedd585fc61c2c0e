/**
 * Webhook inbox processing (flows.md 12 steps 7-11, states.md 5).
 *
 * A stored, verified event (`webhook_inbox` row) is processed inline right after it is stored, again right after the
 * app stores the PSP object it concerns (`processWaitingWebhooksFor`), and by the background worker
 * (`createWebhookWorker`) on a timer. Each attempt runs in ONE transaction: the inbox row is locked
 * (`FOR UPDATE`), its state re-checked, the outcome applied through `applyPaymentOutcome` (which locks the payment and
 * writes the outbox), and the row's new state written — so an event's effect and its `processed` mark commit together.
 *
 * Row states:
 * - `payment` outcome → applied / no-op → `processed`; illegal → `ignored` (reason); payment without order →
 *   `waiting_for_order` (replayed by `replayHeldWebhooks`, discarded by `discardHeldWebhooks`, `expired` after 7 days);
 * - payment not stored yet → `waiting_for_payment`, retried with backoff 1 s doubling up to 10 min, `dead` after 24 h;
 * - other outcome kinds (capture, refund, transfer, account) → `ignored` "not handled yet" (later issues apply them);
 * - any failure while processing → `retrying` with backoff 1 s, 5 s, 30 s, 2 min, 10 min, then every 30 min, `dead`
 *   after 24 h.
 * Ordering (step 10): rows of one PSP object are processed in arrival order; a row with an older unfinished row of the
 * same object waits behind it (it takes the older row's waiting state, or is deferred for a second).
 *
 * The worker claims due rows with `FOR UPDATE SKIP LOCKED` and leases them by moving `next_attempt_at` forward
 * (a crashed instance's rows come back after the lease), so it is safe in several instances at once.
 */
import { EventEmitter } from 'node:events';
import type { WebhookContext, WebhookOutcome } from '../connectors/types.js';
import { webhookInboxTransition, type WebhookInboxStatus } from '../domain/processing-status.js';
import { webhookDeadTotal } from '../metrics.js';
import type { Worker } from '../runtime.js';
import { isDatabaseUnavailable, type CompanionWrite, type Queryable, type Tx } from '../store/db.js';
import { findPaymentByTransaction, listAliasTransactionIds, lockPaymentByTransactionWithHistory } from '../store/payments.js';
import {
  claimDueInboxRows,
  discardHeldInboxRows,
  expireHeldInboxRows,
  inboxStateWrite,
  listObjectInboxIds,
  lockInboxRow,
  lockInboxRowWithOlder,
  postponeInboxRow,
  releaseInboxRows,
  writeInboxState,
  type ClaimedInboxRow,
  type InboxRow,
  type InboxStateChange,
} from '../store/webhook-inbox.js';
import { applyPaymentOutcome } from './apply-payment-outcome.js';
import { applyOperationWebhook } from './process-command.js';
import type { AppDeps } from './context.js';
import { createPollingWorker } from './polling-worker.js';
import { applyAccountOutcome } from './merchant-onboarding.js';
import { applyTransferOutcome } from './transfers.js';

export const ACTIVE_STATES: readonly WebhookInboxStatus[] = ['received', 'waiting_for_payment', 'retrying'];
const UNFINISHED_STATES: readonly WebhookInboxStatus[] = [...ACTIVE_STATES, 'waiting_for_order'];

export const DEAD_AFTER_MS = 24 * 60 * 60_000;
export const HELD_EXPIRE_AFTER_MS = 7 * 24 * 60 * 60_000;
/** How long a claimed or freshly stored row is reserved for its processor before another may take it. */
/** (More than one PSP call's 15 s budget; short so a crashed instance's webhooks are taken over within half a minute.) */
export const LEASE_MS = 30_000;
const RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000];
const RETRY_DELAY_AFTER_MS = 30 * 60_000;
const WAITING_MAX_DELAY_MS = 10 * 60_000;

/** Delay before the next attempt of a `waiting_for_payment` row after `attempts` attempts: 1 s, 2 s, 4 s, ... up to 10 min. */
export function waitingDelayMs(attempts: number): number {
  return Math.min(WAITING_MAX_DELAY_MS, 1_000 * 2 ** Math.min(30, Math.max(0, attempts - 1)));
}

/** Delay before the next attempt of a `retrying` row after `attempts` attempts: 1 s, 5 s, 30 s, 2 min, 10 min, then 30 min. */
export function retryDelayMs(attempts: number): number {
  return RETRY_DELAYS_MS[Math.max(0, attempts - 1)] ?? RETRY_DELAY_AFTER_MS;
}

export type { InboxRow } from '../store/webhook-inbox.js';

// ---- payload storage: the verified body as jsonb (exact JSON value); non-JSON bodies wrapped as base64 ----

const RAW_KEY = '__rawBodyBase64';

/** What goes into `webhook_inbox.payload` for a raw body. */
export function payloadForStorage(raw: Buffer): unknown {
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    if (v !== null && typeof v === 'object' && !(RAW_KEY in (v as object))) return v;
  } catch {
    /* not JSON */
  }
  return { [RAW_KEY]: raw.toString('base64') };
}

/** The body bytes handed to the connector again when processing. */
export function rawFromStorage(payload: unknown): Buffer {
  if (payload && typeof payload === 'object' && typeof (payload as Record<string, unknown>)[RAW_KEY] === 'string') {
    return Buffer.from((payload as Record<string, string>)[RAW_KEY]!, 'base64');
  }
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

// ---- one attempt on one row ----

type Change = { to: WebhookInboxStatus; reason?: string | null; delayMs?: number; countAttempt?: boolean; /** already written with the applied change */ written?: boolean };

const shortReason = (s: string): string => (s.length > 500 ? `${s.slice(0, 497)}...` : s);

/** What `writeState` writes for a change: the row's new state, or (the machine refuses the move) a postponement. */
type StatePlan =
  | { kind: 'write'; to: WebhookInboxStatus; state: InboxStateChange; reason: string | null | undefined }
  | { kind: 'postpone'; reason: string; attempts: number; nextAttemptAt: Date };

function planState(row: InboxRow, change: Change, now = Date.now()): StatePlan {
  let to = change.to;
  let reason = change.reason;
  // Waiting / retrying past 24 h since arrival → dead.
  if ((to === 'waiting_for_payment' || to === 'retrying') && now - row.received_at.getTime() >= DEAD_AFTER_MS && webhookInboxTransition(row.state, 'dead').ok) {
    reason = `dead after 24 hours: ${reason ?? ''}`.trim();
    to = 'dead';
  }
  if (!webhookInboxTransition(row.state, to).ok) {
    // The machine does not allow this move (e.g. retrying → waiting_for_payment): stay, retry later with the retry backoff.
    const attempts = row.attempts + 1;
    return { kind: 'postpone', reason: shortReason(reason ?? `waiting (${to})`), attempts, nextAttemptAt: new Date(now + (row.state === 'waiting_for_order' ? 0 : retryDelayMs(attempts))) };
  }
  const attempts = change.countAttempt === false ? row.attempts : row.attempts + 1;
  const final = to === 'processed' || to === 'ignored' || to === 'dead' || to === 'discarded' || to === 'expired';
  const delay = change.delayMs ?? (to === 'waiting_for_payment' ? waitingDelayMs(attempts) : to === 'retrying' ? retryDelayMs(attempts) : 0);
  return { kind: 'write', to, reason, state: { state: to, reason: reason == null ? null : shortReason(reason), attempts, nextAttemptAt: new Date(now + delay), final } };
}

/** `processed` as `writeState` would write it, for the statement that applies the event's change; null if the machine refuses. */
function processedWrite(row: InboxRow): CompanionWrite | null {
  const plan = planState(row, { to: 'processed', reason: null });
  return plan.kind === 'write' ? inboxStateWrite(row.id, plan.state) : null;
}

/** Writes the row's next state through the inbox machine's gate. Returns the state written (or kept). */
async function writeState(deps: AppDeps, tx: Tx, row: InboxRow, change: Change): Promise<WebhookInboxStatus> {
  const plan = planState(row, change);
  if (plan.kind === 'postpone') {
    await postponeInboxRow(tx, row.id, plan.reason, plan.attempts, plan.nextAttemptAt);
    return row.state;
  }
  await writeInboxState(tx, row.id, plan.state);
  if (plan.to === 'dead') {
    tx.afterCommit(() => {
      webhookDeadTotal.inc();
      deps.log.error({ webhookInboxId: row.id, eventId: row.event_id, eventType: row.event_type, tenantIdentifier: row.tenant_identifier, reason: plan.reason }, 'webhook inbox row is dead');
    });
  }
  return plan.to;
}

async function decide(deps: AppDeps, tx: Tx, row: InboxRow, older: { id: string; state: WebhookInboxStatus } | null, held: boolean): Promise<Change> {
  if (older) {
    const reason = `waiting for the older event ${older.id}`;
    if (older.state === 'waiting_for_order') return { to: 'waiting_for_order', reason, countAttempt: false };
    if (older.state === 'waiting_for_payment') return { to: 'waiting_for_payment', reason };
    if (held) return { to: row.state, reason, delayMs: 0, countAttempt: false };
    return { to: row.state, reason, delayMs: 1_000, countAttempt: false };
  }
  const connector = deps.connectors.get(row.connector);
  if (!connector) return { to: 'retrying', reason: `connector ${row.connector} is not enabled on this deployment` };
  // Context snapshot: what the app knows of the payment the event's primary object is (P4). A database error here
  // propagates (the row goes to retrying); only an unreadable event is ignored.
  // Read with its lock (inbox row, then payment: the order every webhook transaction takes): the payment outcome below
  // applies to this row without locking it again.
  const lockedKnown = row.psp_object_id ? await lockPaymentByTransactionWithHistory(tx, row.tenant_identifier, row.psp_object_id) : null;
  const known = lockedKnown?.payment ?? null;
  const context: WebhookContext = {
    payment: known
      ? { status: known.status, amount: known.amount, amountCaptured: known.capturedAmount, amountRefunded: known.refundedAmount, pspData: known.pspData }
      : null,
  };
  let outcome: WebhookOutcome;
  try {
    outcome = connector.webhookOutcome(rawFromStorage(row.payload), context);
  } catch (err) {
    return { to: 'ignored', reason: `unreadable event: ${(err as Error).message}` };
  }
  if (outcome.kind === 'ignored') return { to: 'ignored', reason: outcome.reason };
  // The payment the outcome names is usually the event's primary object: the context snapshot already locked it.
  const lockedOutcomePayment = lockedKnown && 'transactionId' in outcome && outcome.transactionId === row.psp_object_id ? lockedKnown : null;
  const alongside = processedWrite(row); // an applied outcome marks the row processed in its own statement
  // Capture results, refund status changes, cancels of pending cancel records (helper H, src/app/process-command.ts).
  const op = await applyOperationWebhook(deps, tx, row.tenant_identifier, outcome, row.id, lockedOutcomePayment, alongside);
  if (op) {
    if (op.kind === 'applied' || op.kind === 'noop') return { to: 'processed', reason: op.reason ?? null, written: op.written === true };
    if (op.kind === 'waiting_for_order') return { to: 'waiting_for_order', reason: op.reason ?? null, countAttempt: false };
    return { to: op.kind, reason: op.reason ?? null };
  }
  if (outcome.kind === 'account' || outcome.kind === 'transfer') {
    const v = outcome.kind === 'account' ? await applyAccountOutcome(deps, tx, row.tenant_identifier, outcome, row.id) : await applyTransferOutcome(tx, row.tenant_identifier, outcome);
    return { to: v.state, reason: v.reason };
  }
  if (outcome.kind !== 'payment') return { to: 'ignored', reason: `not handled yet (${outcome.kind} outcome)` };

  const locked = lockedOutcomePayment ?? (await lockPaymentByTransactionWithHistory(tx, row.tenant_identifier, outcome.transactionId));
  if (!locked) return { to: 'waiting_for_payment', reason: `payment ${outcome.transactionId} is not stored yet` };

  const result = await applyPaymentOutcome(
    deps,
    tx,
    { locked: locked.payment, history: locked.history },
    {
      state: outcome.state,
      ...(outcome.decline ? { decline: outcome.decline } : {}),
      ...(outcome.publicDetails ? { publicDetails: outcome.publicDetails } : {}),
      ...(outcome.amountCaptured !== undefined ? { amountCaptured: outcome.amountCaptured } : {}),
    },
    { trigger: 'webhook', ref: row.id },
    alongside ?? undefined,
  );
  switch (result.kind) {
    case 'applied':
      return { to: 'processed', reason: null, written: alongside !== null };
    case 'noop':
      return { to: 'processed', reason: null };
    case 'ignored':
      return { to: 'ignored', reason: result.reason ?? `not applicable in status ${result.status}` };
    case 'waiting_for_order':
      return { to: 'waiting_for_order', reason: 'payment is not linked to an order yet', countAttempt: false };
    default:
      return { to: 'retrying', reason: `unexpected apply result ${String((result as { kind: unknown }).kind)}` };
  }
}

/**
 * One processing attempt of one inbox row. `held` = also take `waiting_for_order` rows (replay after the order is
 * linked). Never throws: a failure moves the row to `retrying`. Returns the row's state afterwards (null: no such row).
 */
export async function processInboxRow(deps: AppDeps, id: string, opts: { held?: boolean } = {}): Promise<WebhookInboxStatus | null> {
  const r = await attempt(deps, id, opts.held === true, false);
  return r === BEHIND ? null : r;
}

/** What `attempt` answers when asked to yield to an older active row of the same PSP object (nothing written). */
const BEHIND = Symbol('behind an older row');

async function attempt(deps: AppDeps, id: string, held: boolean, yieldToOlder: boolean): Promise<WebhookInboxStatus | null | typeof BEHIND> {
  try {
    return await deps.db.tx(async (tx) => {
      // the row, locked, with the oldest unfinished row of the same PSP object that arrived before it
      const locked = await lockInboxRowWithOlder(tx, id, UNFINISHED_STATES);
      if (!locked) return null;
      const { row, older } = locked;
      const takeable = held ? UNFINISHED_STATES : ACTIVE_STATES;
      if (!takeable.includes(row.state)) return row.state;
      if (yieldToOlder && older && ACTIVE_STATES.includes(older.state)) return BEHIND;
      const change = await decide(deps, tx, row, older, held);
      return change.written ? change.to : writeState(deps, tx, row, change);
    });
  } catch (err) {
    deps.log.warn({ err, webhookInboxId: id }, 'webhook processing failed; will retry');
    try {
      return await deps.db.tx(async (tx) => {
        const row = await lockInboxRow(tx, id);
        if (!row) return null;
        if (!(held ? UNFINISHED_STATES : ACTIVE_STATES).includes(row.state)) return row.state;
        return writeState(deps, tx, row, { to: 'retrying', reason: `processing failed: ${(err as Error)?.message ?? String(err)}` });
      });
    } catch (err2) {
      deps.log.error({ err: err2, webhookInboxId: id }, 'could not record the webhook processing failure');
      return null;
    }
  }
}

/** Processes every unfinished row of one PSP object in arrival order (the new row comes last). Never throws. */
export async function processObjectRows(deps: AppDeps, tenant: string, pspObjectId: string, opts: { held?: boolean } = {}): Promise<void> {
  try {
    const states = opts.held ? UNFINISHED_STATES : ACTIVE_STATES;
    for (const id of await listObjectInboxIds(deps.db, tenant, pspObjectId, states)) await processInboxRow(deps, id, opts);
  } catch (err) {
    deps.log.error({ err, tenantIdentifier: tenant, pspObjectId }, 'webhook processing of a PSP object failed');
  }
}

/**
 * Inline processing of a row just stored (flows.md 12 step 7): the row alone when no older row of its PSP object is
 * still to process (one statement less than listing them), else every such row in arrival order. Never throws.
 */
export async function processStoredRow(deps: AppDeps, tenant: string, pspObjectId: string | null, id: string): Promise<void> {
  const r = await attempt(deps, id, false, pspObjectId !== null);
  if (r === BEHIND && pspObjectId !== null) await processObjectRows(deps, tenant, pspObjectId);
}

/**
 * At most `limit` webhook requests of this instance processed inline at once (WEBHOOK_INLINE_CONCURRENCY). A request
 * that finds none free is stored due at once and the webhook worker is woken (`webhookQueued`): under load the
 * acknowledgements the PSP waits for do not queue behind processing for connections and CPU; the inbox is the queue.
 */
export class InlineProcessingSlots {
  private busy = 0;
  constructor(private readonly limit: number) {}
  take(): boolean {
    if (this.busy >= this.limit) return false;
    this.busy++;
    return true;
  }
  release(): void {
    if (this.busy > 0) this.busy--;
  }
}

/**
 * Acknowledgements first (issue 12): webhook requests of this instance still waiting for their answer. While more than
 * `above` of them wait (a burst: a PSP replaying its backlog, an outage's retries), processing (inline and the worker's
 * passes) steps back for at most `maxDeferMs` at a time, so the CPU and connections go to the answers the PSP times out
 * on; the inbox is the queue meanwhile. Bounded, so processing always progresses under sustained load. Per instance: a
 * worker-only process (no HTTP) never waits.
 */
export class AcknowledgementQueue {
  private waiting = 0;
  private waiters = new Set<() => void>();
  constructor(
    readonly above = 4,
    readonly maxDeferMs = 100,
  ) {}
  /** A webhook request entered its handler. */
  begin(): void {
    this.waiting++;
  }
  /** Its answer went out (or its connection closed): once per `begin`. */
  end(): void {
    if (this.waiting > 0) this.waiting--;
    if (!this.busy()) for (const w of [...this.waiters]) w();
  }
  /** Webhook requests in their handler whose answer has not gone out yet. */
  get waitingAnswers(): number {
    return this.waiting;
  }
  busy(): boolean {
    return this.maxDeferMs > 0 && this.waiting > this.above;
  }
  /**
   * First lets the event loop take what arrived (an embedded database answers without I/O, so a processing pass would
   * otherwise keep the loop until its end); then resolves at once when not busy, else when it stops being busy, after
   * `maxDeferMs`, or when `signal` aborts. Off (`maxDeferMs` 0): resolves at once.
   */
  async quiet(signal?: AbortSignal): Promise<void> {
    if (this.maxDeferMs <= 0) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!this.busy() || signal?.aborted) return;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.maxDeferMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(done);
    });
  }
}

/** Webhook requests waiting for their answer above which processing steps back (WEBHOOK_ACK_FIRST_MS). */
export const ACK_FIRST_ABOVE = 4;

const acknowledgementQueues = new WeakMap<AppDeps, AcknowledgementQueue>();

/** The instance's acknowledgement queue (one per app: the webhook routes count, processing waits on it). */
export function acknowledgementQueue(deps: AppDeps): AcknowledgementQueue {
  let q = acknowledgementQueues.get(deps);
  if (!q) {
    q = new AcknowledgementQueue(ACK_FIRST_ABOVE, deps.config.webhookAckFirstMs);
    acknowledgementQueues.set(deps, q);
  }
  return q;
}

const webhookSignal = new EventEmitter();
webhookSignal.setMaxListeners(100);

/** Wakes the webhook workers: rows were stored for them to process now (call after the rows are committed). */
export function webhookQueued(): void {
  webhookSignal.emit('queued');
}

/** Re-drives the rows of one PSP object right after the app stored that object (flows.md 12 step 8). Never throws. */
export async function processWaitingWebhooksFor(deps: AppDeps, tenant: string, pspObjectId: string): Promise<void> {
  await processObjectRows(deps, tenant, pspObjectId);
}

/** The PSP ids of a payment: current transaction id and old ones (aliases). */
async function transactionIdsOf(q: Queryable, tenant: string, transactionId: string): Promise<string[]> {
  const payment = await findPaymentByTransaction(q, tenant, transactionId);
  const ids = new Set<string>([transactionId]);
  if (payment) {
    ids.add(payment.transactionId);
    for (const id of await listAliasTransactionIds(q, tenant, payment.id)) ids.add(id);
  }
  return [...ids];
}

/** Replays the `waiting_for_order` rows of a payment in arrival order (after confirm-pre-order linked the order). Never throws. */
export async function replayHeldWebhooks(deps: AppDeps, tenant: string, transactionId: string): Promise<void> {
  try {
    for (const id of await transactionIdsOf(deps.db, tenant, transactionId)) await processObjectRows(deps, tenant, id, { held: true });
  } catch (err) {
    deps.log.error({ err, tenantIdentifier: tenant, transactionId }, 'replaying held webhooks failed');
  }
}

/** Marks the `waiting_for_order` rows of a payment `discarded` (pre-order payment cancelled, flows.md 7), in the caller's transaction. */
export async function discardHeldWebhooks(tx: Tx, tenant: string, transactionId: string): Promise<number> {
  const ids = await transactionIdsOf(tx, tenant, transactionId);
  return discardHeldInboxRows(tx, tenant, ids);
}

// ---- background worker ----

const BATCH = 50;
/** Rows of different PSP objects the worker processes at once (each a transaction on its own connection). */
const WORKER_LANES = 2;

/** Claims due rows (lease) and processes them in arrival order. Returns how many rows it took. */
/** Rows a pass claimed but could not process because the database went away: released as soon as it is back. */
const unreleasedRows = new WeakMap<AppDeps, Set<string>>();

export async function runWebhookRetries(deps: AppDeps, stopping?: AbortSignal): Promise<number> {
  const unreleased = unreleasedRows.get(deps) ?? new Set<string>();
  unreleasedRows.set(deps, unreleased);
  if (unreleased.size > 0) {
    const ids = [...unreleased];
    await releaseInboxRows(deps.db, ids, ACTIVE_STATES);
    for (const id of ids) unreleased.delete(id);
  }
  // Held rows older than 7 days expire.
  const expired = await expireHeldInboxRows(deps.db, new Date(Date.now() - HELD_EXPIRE_AFTER_MS));
  for (const row of expired) {
    webhookDeadTotal.inc();
    deps.log.error({ webhookInboxId: row.id, eventId: row.event_id, tenantIdentifier: row.tenant_identifier }, 'held webhook expired');
  }
  // Acknowledgements first: while webhook requests queue for their answers, each step waits up to maxDeferMs for them.
  const acks = acknowledgementQueue(deps);
  await acks.quiet(stopping);
  const claimed = await deps.db.tx((tx) => claimDueInboxRows(tx, new Date(Date.now() + LEASE_MS), ACTIVE_STATES, BATCH));
  claimed.sort((a, b) => new Date(a.received_at).getTime() - new Date(b.received_at).getTime() || (a.id < b.id ? -1 : 1));
  // Rows of one PSP object one after the other in arrival order; different objects in WORKER_LANES lanes at once.
  const groups = new Map<string, ClaimedInboxRow[]>();
  for (const row of claimed) {
    const key = row.psp_object_id === null ? `row\u0000${row.id}` : `${row.tenant_identifier}\u0000${row.connector}\u0000${row.psp_object_id}`;
    const g = groups.get(key);
    if (g) g.push(row);
    else groups.set(key, [row]);
  }
  const queue = [...groups.values()];
  const left: string[] = []; // not processed: stopping, or a lane failed
  const failed: { err: unknown }[] = [];
  const lane = async (): Promise<void> => {
    for (let g = queue.shift(); g; g = queue.shift()) {
      for (let i = 0; i < g.length; i++) {
        if (stopping?.aborted || failed.length > 0) {
          left.push(...g.slice(i).map((r) => r.id));
          break;
        }
        try {
          await acks.quiet(stopping);
          await processInboxRow(deps, g[i]!.id);
        } catch (err) {
          failed.push({ err });
          left.push(...g.slice(i).map((r) => r.id));
          break;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WORKER_LANES, queue.length) }, lane));
  if (failed.length > 0) {
    // the database went away mid-batch: the rest of the batch is not held for the whole lease
    if (isDatabaseUnavailable(failed[0]!.err)) for (const id of left) unreleased.add(id);
    throw failed[0]!.err;
  }
  // shutting down: the rest of the batch is released for any instance at once instead of after the lease
  if (left.length > 0) await releaseInboxRows(deps.db, left, ACTIVE_STATES);
  return claimed.length;
}

export function createWebhookWorker(deps: AppDeps, opts: { pollMs?: number } = {}): Worker {
  return createPollingWorker({
    name: 'webhook-inbox',
    pollMs: opts.pollMs ?? 500,
    log: deps.log,
    batchSize: BATCH,
    pass: (stopping) => runWebhookRetries(deps, stopping),
    wakeOn: { emitter: webhookSignal, event: 'queued' },
  });
}
