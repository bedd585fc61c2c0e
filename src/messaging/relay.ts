/**
 * The outbox relay (messages.md 7): claims due `pending` rows with a lease (row locks that skip locked rows, so
 * several instances on one database never send the same row at once and each added instance adds
 * capacity), respects the ordering key, publishes each row through the transport outside any
 * transaction, and records the outcome: `delivered`, a retry with exponential backoff, or `dead` after
 * OUTBOX_MAX_RETRY_HOURS of failures.
 */
import type { Logger } from 'pino';
import { outboxDeadTotal, outboxDelivered } from '../metrics.js';
import type { Worker } from '../runtime.js';
import type { CompanionWrite, Db } from '../store/db.js';
import {
  claimOutboxRows,
  deleteDeliveredOutboxRows,
  markOutboxBatchDelivered,
  recordOutboxFailures,
  releaseOutboxLeases,
} from '../store/outbox.js';
import { hubHousekeeping } from './hub.js';
import { outboxSignal, type OutboxRow } from './outbox.js';
import { QuietDeliveryError, type BatchPublishOutcome, type Transport } from './transports/types.js';

export interface RelayOptions {
  /** Poll interval when not woken (default 500 ms). */
  pollIntervalMs?: number;
  /**
   * Rows claimed per round: default 500 with a transport that publishes a whole round at once (`publishBatch`), 50
   * with one that publishes row by row (a round must end within the lease: 50 / `concurrency` × its timeout).
   */
  batchSize?: number;
  /** Rows published in parallel within a round by a row-by-row transport (they all have different ordering keys; default 10). */
  concurrency?: number;
  /**
   * Rounds in flight at once while a backlog lasts (the previous claim came back full): the next round is claimed
   * while the previous one is being published and recorded. Default 2 with `publishBatch`, else 1.
   */
  pipeline?: number;
  /** How long a claimed row is reserved for this relay (default 60 s; must exceed the transport timeout). */
  leaseMs?: number;
  /** First retry delay (default 1 s); doubles per attempt. */
  backoffBaseMs?: number;
  /** Retry delay cap (default 5 min). */
  backoffMaxMs?: number;
  /** Jitter, fraction of the delay (default 0.2 = ±20 %). */
  jitter?: number;
  /** A row failing for longer than this becomes `dead` (OUTBOX_MAX_RETRY_HOURS). */
  maxRetryHours: number;
  /** Retention of delivered rows (default 7 days). */
  deliveredRetentionDays?: number;
  /** Housekeeping interval (default 10 min); 0 disables it. */
  housekeepingIntervalMs?: number;
  /** Also apply the local Event Platform's hub retention (default true). */
  hubHousekeeping?: boolean;
  name?: string;
}

export interface RoundResult {
  claimed: number;
  delivered: number;
  failed: number;
  dead: number;
}

/** Delay before the next attempt after `attempts` failures: base·2^(attempts−1), capped, ±jitter. */
export function retryDelayMs(attempts: number, base: number, max: number, jitter: number, random: () => number = Math.random): number {
  const raw = Math.min(max, base * 2 ** Math.max(0, Math.min(attempts - 1, 40)));
  const factor = 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(raw * factor));
}

/** Messages a repeated command may re-publish; housekeeping keeps their delivered rows. */
export const REPUBLISHABLE_MESSAGES = ['PaymentCaptured', 'PaymentCanceled', 'PaymentRefunded'];

/** Longest retry delay of a message whose channel is unroutable (the transport reports it; an operator fixes it). */
const QUIET_RETRY_MAX_MS = 10_000;

/** Longest pause between rounds while rounds keep failing (database away). */
const RELAY_MAX_BACKOFF_MS = 5_000;

export class OutboxRelay implements Worker {
  readonly name: string;
  private readonly opts: Required<Omit<RelayOptions, 'name'>>;
  private running = false;
  private loopPromise: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private lastHousekeeping = 0;
  private readonly onWritten = (): void => this.wake();
  /** Rows this relay leased but could not record (database away): their leases are released as soon as it can. */
  private readonly unreleased = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly transport: Transport,
    private readonly log: Logger,
    options: RelayOptions,
  ) {
    this.name = options.name ?? 'outbox-relay';
    this.opts = {
      pollIntervalMs: options.pollIntervalMs ?? 500,
      batchSize: options.batchSize ?? (transport.publishBatch ? 500 : 50),
      concurrency: options.concurrency ?? 10,
      pipeline: Math.max(1, options.pipeline ?? (transport.publishBatch ? 3 : 1)),
      leaseMs: options.leaseMs ?? 60_000,
      backoffBaseMs: options.backoffBaseMs ?? 1000,
      backoffMaxMs: options.backoffMaxMs ?? 300_000,
      jitter: options.jitter ?? 0.2,
      maxRetryHours: options.maxRetryHours,
      deliveredRetentionDays: options.deliveredRetentionDays ?? 7,
      housekeepingIntervalMs: options.housekeepingIntervalMs ?? 600_000,
      hubHousekeeping: options.hubHousekeeping ?? true,
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.transport.start?.();
    outboxSignal.on('written', this.onWritten);
    this.loopPromise = this.loop();
  }

  /** Stops polling; resolves once the in-flight round has been published and recorded. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    outboxSignal.off('written', this.onWritten);
    this.wake();
    await this.loopPromise;
    this.loopPromise = undefined;
    await this.releaseUnrecorded().catch(() => undefined); // best effort: else the leases run out
    await this.transport.close?.().catch((err: unknown) => this.log.warn({ err, worker: this.name }, 'transport did not close cleanly'));
  }

  /** Runs at once instead of waiting for the next poll. */
  wake(): void {
    this.woken = true;
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    /** Rounds claimed and still being published or recorded. */
    const inflight = new Set<Promise<void>>();
    const settled = (): Promise<void> => Promise.race(inflight);
    while (this.running) {
      let claimed = 0;
      let full = false;
      try {
        await this.releaseUnrecorded();
        const rows = await this.claim();
        claimed = rows.length;
        full = claimed >= this.opts.batchSize;
        if (claimed > 0) {
          const round: Promise<void> = this.deliverRound(rows)
            .then(
              () => undefined,
              (err: unknown) => this.log.error({ err, worker: this.name }, 'outbox relay round failed'),
            )
            .finally(() => inflight.delete(round));
          inflight.add(round);
        }
        await this.maybeHousekeeping();
        failures = 0;
      } catch (err) {
        // e.g. the database is away: back off (poll interval doubling to 5 s) and keep going
        failures++;
        if (failures === 1 || failures % 10 === 0) this.log.error({ err, worker: this.name, failures }, 'outbox relay round failed; backing off');
      }
      if (!this.running) break;
      if (failures > 0) {
        await Promise.all(inflight);
        await this.sleep(Math.max(this.opts.pollIntervalMs, Math.min(RELAY_MAX_BACKOFF_MS, this.opts.pollIntervalMs * 2 ** Math.min(failures, 10))));
        continue;
      }
      // A full claim means a backlog: claim the next round while this one is published (up to `pipeline` rounds in
      // flight; they hold different ordering keys, since a key's next row waits until its previous one is recorded).
      if (full && inflight.size < this.opts.pipeline) continue;
      if (inflight.size > 0) {
        // the next rows of the keys in flight become due once their rounds are recorded
        await settled();
        continue;
      }
      if (claimed > 0) continue; // more may be due at once (e.g. the next row of an ordering key)
      await this.sleep(this.opts.pollIntervalMs);
    }
    await Promise.all(inflight);
  }

  private sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        this.woken = false;
        resolve();
      };
    });
  }

  /** Claims the due rows (with a lease) in one autocommit statement. */
  async claim(): Promise<OutboxRow[]> {
    return claimOutboxRows(this.db, this.opts.batchSize, this.opts.leaseMs);
  }

  /**
   * Releases the leases of rows this relay claimed but could not record, so they are retried at once (by any instance)
   * instead of after the lease; a row published but not recorded is then sent again (at least once, same id).
   */
  private async releaseUnrecorded(): Promise<void> {
    if (this.unreleased.size === 0) return;
    const ids = [...this.unreleased];
    await releaseOutboxLeases(this.db, ids);
    for (const id of ids) this.unreleased.delete(id);
  }

  /** One round: claim, publish (outside any transaction), record. */
  async runOnce(): Promise<RoundResult> {
    await this.releaseUnrecorded();
    return this.deliverRound(await this.claim());
  }

  /** Publishes the claimed rows (distinct ordering keys) outside any transaction and records the outcomes. */
  private async deliverRound(rows: OutboxRow[]): Promise<RoundResult> {
    const result: RoundResult = { claimed: rows.length, delivered: 0, failed: 0, dead: 0 };
    if (rows.length === 0) return result;
    const done = this.transport.deliveryWrite ? await this.deliverByWrite(rows, this.transport.deliveryWrite.bind(this.transport)) : await this.recordRound(rows, await this.publishRound(rows));
    for (const o of done) result[o]++;
    return result;
  }

  /** One outcome per row: the whole round at once (e.g. AMQP publisher confirms awaited together), else `concurrency` rows at a time. */
  private async publishRound(rows: OutboxRow[]): Promise<BatchPublishOutcome[]> {
    if (this.transport.publishBatch) {
      try {
        return await this.transport.publishBatch(rows);
      } catch (error) {
        return rows.map(() => ({ ok: false as const, error }));
      }
    }
    const outcomes: BatchPublishOutcome[] = new Array(rows.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.opts.concurrency, rows.length) }, async () => {
        while (next < rows.length) {
          const i = next++;
          try {
            outcomes[i] = { ok: true, ...(await this.transport.publish(rows[i]!)) };
          } catch (error) {
            outcomes[i] = { ok: false, error };
          }
        }
      }),
    );
    return outcomes;
  }

  /** Records the outcomes of a round: the delivered rows in one statement, the failed ones in another. */
  private async recordRound(rows: OutboxRow[], outcomes: BatchPublishOutcome[]): Promise<Array<'delivered' | 'failed' | 'dead'>> {
    const okRows: OutboxRow[] = [];
    const receipts: Array<string | null> = [];
    const failed: Array<{ row: OutboxRow; error: unknown }> = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const o = outcomes[i] ?? { ok: false as const, error: new Error('transport returned no outcome') };
      if (o.ok) {
        okRows.push(row);
        receipts.push(o.receipt ?? null);
      } else failed.push({ row, error: o.error });
    }
    const [delivered, failures] = await Promise.all([this.recordDelivered(okRows, receipts), this.recordFailures(failed)]);
    return [...delivered, ...failures];
  }

  /**
   * A round whose delivery is a write to this database (`Transport.deliveryWrite`): the write and the record of the
   * round as delivered in one statement. If it fails, nothing was delivered: every row failed (retried with backoff).
   */
  private async deliverByWrite(rows: OutboxRow[], write: (rows: OutboxRow[]) => CompanionWrite): Promise<Array<'delivered' | 'failed' | 'dead'>> {
    const ids = rows.map((r) => r.id);
    try {
      await markOutboxBatchDelivered(this.db, ids, ids, write(rows));
    } catch (error) {
      return this.recordFailures(rows.map((row) => ({ row, error })));
    }
    this.countDelivered(rows, ids);
    return rows.map(() => 'delivered');
  }

  private async recordDelivered(okRows: OutboxRow[], receipts: Array<string | null>): Promise<Array<'delivered' | 'failed'>> {
    if (okRows.length === 0) return [];
    try {
      await markOutboxBatchDelivered(this.db, okRows.map((r) => r.id), receipts);
    } catch (err) {
      // Published but not recorded: the leases are released (or run out) and the rows are sent again (at least once).
      this.log.error({ err, messageIds: okRows.map((r) => r.id), worker: this.name }, 'could not record outbox delivery');
      for (const r of okRows) this.unreleased.add(r.id);
      return okRows.map(() => 'failed');
    }
    this.countDelivered(okRows, receipts);
    return okRows.map(() => 'delivered');
  }

  private countDelivered(okRows: OutboxRow[], receipts: Array<string | null>): void {
    const perChannel = new Map<string, number>();
    for (const row of okRows) perChannel.set(row.channel, (perChannel.get(row.channel) ?? 0) + 1);
    for (const [channel, n] of perChannel) outboxDelivered.inc({ channel }, n);
    if (!this.log.isLevelEnabled('debug')) return;
    for (let i = 0; i < okRows.length; i++) {
      const row = okRows[i]!;
      this.log.debug({ messageId: row.id, channel: row.channel, messageName: row.message_name, receipt: receipts[i] ?? undefined }, 'outbox message delivered');
    }
  }

  /** Records failed attempts in one statement: each row a retry with backoff, or `dead` after OUTBOX_MAX_RETRY_HOURS. */
  private async recordFailures(failed: Array<{ row: OutboxRow; error: unknown }>): Promise<Array<'failed' | 'dead'>> {
    if (failed.length === 0) return [];
    const entries = failed.map(({ row, error }) => {
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 1000) || 'unknown error';
      // A condition the transport reports itself (an unroutable channel) ends when the operator binds a queue, not by
      // waiting: retry at most every QUIET_RETRY_MAX_MS so the waiting messages go out soon after the binding.
      const maxMs = error instanceof QuietDeliveryError ? Math.min(QUIET_RETRY_MAX_MS, this.opts.backoffMaxMs) : this.opts.backoffMaxMs;
      return { row, error, message, delayMs: retryDelayMs(row.attempts + 1, this.opts.backoffBaseMs, maxMs, this.opts.jitter) };
    });
    let records: Awaited<ReturnType<typeof recordOutboxFailures>>;
    try {
      records = await recordOutboxFailures(this.db, entries.map((e) => ({ id: e.row.id, error: e.message, delayMs: e.delayMs })), this.opts.maxRetryHours);
    } catch (dbErr) {
      // Not recorded: the leases are released (or run out) and the rows are tried again.
      this.log.error({ err: dbErr, messageIds: entries.map((e) => e.row.id), worker: this.name }, 'could not record outbox delivery failure');
      for (const e of entries) this.unreleased.add(e.row.id);
      return entries.map(() => 'failed');
    }
    return entries.map(({ row, error, message, delayMs }) => {
      const updated = records.get(row.id);
      if (updated?.state === 'dead') {
        outboxDeadTotal.inc();
        this.log.error(
          { messageId: row.id, channel: row.channel, messageName: row.message_name, tenantIdentifier: row.tenant_identifier, attempts: updated.attempts, firstFailedAt: updated.first_failed_at, error: message },
          `outbox message is dead after failing for more than ${this.opts.maxRetryHours} hours; it blocks its ordering key until re-queued`,
        );
        return 'dead';
      }
      // a failure the transport reports itself, rate-limited (unroutable channel), is not logged once per message
      if (!(error instanceof QuietDeliveryError)) this.log.warn({ messageId: row.id, channel: row.channel, attempts: updated?.attempts, retryInMs: delayMs, error: message }, 'outbox delivery failed; will retry');
      return 'failed';
    });
  }

  private async maybeHousekeeping(): Promise<void> {
    if (this.opts.housekeepingIntervalMs <= 0) return;
    const now = Date.now();
    if (now - this.lastHousekeeping < this.opts.housekeepingIntervalMs) return;
    this.lastHousekeeping = now;
    await this.housekeeping();
  }

  /**
   * Deletes delivered rows older than the retention (and old hub messages with the local transport).
   * Outcome messages that a repeated command re-publishes (messages.md 4.3) are kept: re-publication needs the
   * original row (same id, payload and timestamp), and a shop may retry a command long after 7 days.
   */
  async housekeeping(): Promise<{ outbox: number; hubAcked: number; hubUnacked: number }> {
    const deleted = await deleteDeliveredOutboxRows(this.db, this.opts.deliveredRetentionDays, REPUBLISHABLE_MESSAGES);
    let hub = { acked: 0, unacked: 0 };
    if (this.opts.hubHousekeeping) hub = await hubHousekeeping(this.db);
    if (deleted > 0 || hub.acked > 0 || hub.unacked > 0) {
      this.log.info({ outboxDeleted: deleted, hubAckedDeleted: hub.acked, hubUnackedDeleted: hub.unacked }, 'outbox housekeeping');
    }
    return { outbox: deleted, hubAcked: hub.acked, hubUnacked: hub.unacked };
  }
}
