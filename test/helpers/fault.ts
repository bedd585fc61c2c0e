/**
 * The fault suite's harness (test/fault-*.test.ts): a client that spreads requests over the app instances and retries
 * through outages (counting 5xx answers), one payment's whole life (initialize, pay at the sandbox PSP, capture,
 * partial refund), the exactly-once checks on the rows of the shared PostgreSQL database (events in the hub, the
 * sandbox PSP's own tables), and the one line of figures each fault test prints.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SECRET_KEY, WEBHOOK_SECRET } from './commands.js';

export interface FaultFigures {
  kills: number;
  payments: number;
  lost: number;
  duplicated: number;
  /** The same message id received again (at-least-once delivery, messages.md 6: allowed; receivers drop it by id). */
  redelivered?: number;
  fiveXX: number;
  recoveryMs: number;
}

export function printFigures(scenario: string, f: FaultFigures): void {
  process.stdout.write(`[fault] kills=${f.kills} payments=${f.payments} lost=${f.lost} duplicated=${f.duplicated}${f.redelivered === undefined ? '' : ` redelivered=${f.redelivered}`} 5xx=${f.fiveXX} recovery_ms=${f.recoveryMs} scenario=${scenario}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Requests spread round-robin over the instances; network errors and 5xx are retried (5xx counted) until a deadline. */
export class FaultClient {
  fiveXX = 0;
  private next = 0;
  constructor(private readonly urls: () => string[]) {}

  async call(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}, timeoutMs = 90_000): Promise<{ status: number; body: any }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const list = this.urls();
      const url = list[this.next++ % list.length]!;
      try {
        const res = await fetch(url + path, {
          method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
          headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) },
          body: init.body === undefined ? undefined : JSON.stringify(init.body),
          signal: AbortSignal.timeout(20_000),
        });
        const text = await res.text();
        if (res.status < 500) {
          let body: any;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          return { status: res.status, body };
        }
        this.fiveXX++;
      } catch {
        /* connection refused / reset while an instance is down: try again (maybe another instance) */
      }
      if (Date.now() > end) throw new Error(`${path}: no answer below 500 within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

export async function configureFaultTenant(client: FaultClient, tenant: string): Promise<void> {
  const r = await client.call('/private/configure', {
    headers: { 'x-tenant-identifier': tenant },
    body: { data: { type: 'configuration', attributes: { configuration: JSON.stringify({ secretKey: SECRET_KEY, webhookSecret: WEBHOOK_SECRET }) } } },
  });
  if (r.status !== 200) throw new Error(`configure answered ${r.status}: ${JSON.stringify(r.body)}`);
}

/** Reads rows of the shared database (the checks never go through the app under test). */
export class Rows {
  private readonly pool: pg.Pool;
  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 3 });
    this.pool.on('error', () => undefined);
  }
  async one<T>(sql: string, params: unknown[] = []): Promise<T | undefined> {
    return (await this.pool.query(sql, params)).rows[0] as T | undefined;
  }
  async all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[];
  }
  close(): Promise<void> {
    return this.pool.end();
  }
}

const debug = (msg: string): void => {
  if (process.env.FAULT_DEBUG) process.stderr.write(`[fault-debug ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
};

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  debug(`waiting for ${what}`);
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(150);
  }
}

export const AMOUNT = 5000;
export const REFUND = 2000;

export interface PaymentRun {
  orderReference: string;
  transactionId?: string;
}

/** Publishes a payment command with a fixed message id (a retry is a duplicate at the inbox). */
export type CommandPublisher = (tenant: string, name: string, payload: Record<string, unknown>, messageId: string) => Promise<void>;

export const publishViaEventPlatform =
  (client: FaultClient): CommandPublisher =>
  async (tenant, name, payload, messageId) => {
    const r = await client.call('/event-platform/payment-commands', { headers: { 'transfer-name': name, 'tenant-identifier': tenant, 'message-id': messageId }, body: payload });
    if (r.status !== 200) throw new Error(`publish ${name} answered ${r.status}`);
  };

/** One payment's life: initialize, pay at the sandbox, authorized, capture (command), captured, refund 2000 (command), refunded. */
export async function paymentLife(client: FaultClient, rows: Rows, tenant: string, publish: CommandPublisher, run: PaymentRun, psp: FaultClient = client): Promise<void> {
  const ref = run.orderReference;
  const init = await client.call('/private/initialize-payment', {
    headers: { 'x-tenant-identifier': tenant },
    body: {
      orderData: { orderReference: ref, grandTotal: AMOUNT, currencyCode: 'EUR', paymentMethod: 'Credit Card', items: [{ idSalesOrderItem: 1, name: 'I', sku: 'SKU-1', quantity: 1, unitPrice: AMOUNT }] },
      redirectSuccessUrl: 'https://shop.example/ok',
      redirectCancelUrl: 'https://shop.example/cancel',
    },
  });
  if (init.status !== 200) throw new Error(`initialize ${ref} answered ${init.status}: ${JSON.stringify(init.body)}`);
  const tx: string = init.body.transactionId;
  run.transactionId = tx;
  const auth = { authorization: `Bearer ${SECRET_KEY}` };
  const sbx = await psp.call(`/sandbox/v1/payments/${encodeURIComponent(tx)}`, { headers: auth });
  if (sbx.status !== 200) throw new Error(`sandbox payment ${tx} answered ${sbx.status}`);
  if (sbx.body.status !== 'authorized') {
    const c = await psp.call(`/sandbox/v1/payments/${encodeURIComponent(tx)}/confirm`, {
      headers: { 'idempotency-key': `confirm-${tx}` },
      body: { clientSecret: sbx.body.clientSecret, card: { number: '4242424242424242', expMonth: 12, expYear: new Date().getUTCFullYear() + 3, cvc: '123' } },
    });
    if (c.status !== 200) {
      const again = await psp.call(`/sandbox/v1/payments/${encodeURIComponent(tx)}`, { headers: auth });
      if (again.body?.status !== 'authorized') throw new Error(`confirm ${tx} answered ${c.status}: ${JSON.stringify(c.body)}`);
    }
  }
  const explain = async (err: Error): Promise<never> => {
    const diag = {
      commands: await rows.all(`SELECT message_name, state, last_error, next_attempt_at FROM command_inbox WHERE payload->>'orderReference' = $1`, [ref]),
      refunds: await rows.all(`SELECT r.status, r.psp_refund_id, r.attempts, r.next_attempt_at FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE p.order_reference = $1`, [ref]),
      webhooks: await rows.all(`SELECT state, reason, attempts, next_attempt_at FROM webhook_inbox WHERE tenant_identifier = $1 AND state <> 'processed'`, [tenant]),
      pspEvents: await rows.all(`SELECT type, state, attempts, next_attempt_at, lease_until, last_error FROM sandbox_events WHERE state <> 'delivered' ORDER BY seq LIMIT 5`),
      now: new Date().toISOString(),
    };
    throw new Error(`${err.message}: ${JSON.stringify(diag)}`);
  };
  const payment = () => rows.one<{ status: string; captured_amount: number; refunded_amount: number }>('SELECT status, captured_amount::int AS captured_amount, refunded_amount::int AS refunded_amount FROM payments WHERE tenant_identifier = $1 AND order_reference = $2', [tenant, ref]);
  await until(`${ref} authorized`, async () => (await payment())?.status === 'authorized', 60_000).catch(explain);
  await publish(tenant, 'CapturePayment', { orderReference: ref, orderItemIds: [1], amount: AMOUNT, currencyIsoCode: 'EUR' }, `capture-${ref}`);
  await until(`${ref} captured`, async () => (await payment())?.captured_amount === AMOUNT, 60_000).catch(explain);
  await publish(tenant, 'RefundPayment', { orderReference: ref, orderItems: [{ orderItemId: 1, sku: 'SKU-1' }], orderItemIds: [1], amount: -REFUND, currencyIsoCode: 'EUR' }, `refund-${ref}`);
  await until(`${ref} refunded`, async () => (await payment())?.refunded_amount === REFUND, 60_000).catch(explain);
}

/** Runs `count` payment lives, `concurrency` at a time; returns the runs (failures are thrown at the end). */
export async function runPayments(count: number, concurrency: number, life: (run: PaymentRun) => Promise<void>, keepGoing: () => boolean = () => false): Promise<PaymentRun[]> {
  const newRun = (): PaymentRun => ({ orderReference: `DE--F${randomBytes(5).toString('hex')}` });
  const runs: PaymentRun[] = Array.from({ length: count }, newRun);
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      // At least `count` payments, and more while `keepGoing()` (the load must outlast the faults it is meant to meet).
      while (next < runs.length || (errors.length === 0 && keepGoing())) {
        if (next >= runs.length) runs.push(newRun());
        const run = runs[next++]!;
        await life(run).catch((e: unknown) => errors.push(e));
      }
    }),
  );
  if (errors.length > 0) throw errors[0];
  return runs;
}

/**
 * Runs `load` while `killAndRestart` is called `times` times, 2.5 s apart; the load goes on until the kills are done.
 * `recoveryMs`: the longest kill-to-restarted time.
 */
export async function loadWhileKilling(
  times: number,
  killAndRestart: () => Promise<void>,
  load: (keepGoing: () => boolean) => Promise<PaymentRun[]>,
): Promise<{ runs: PaymentRun[]; kills: number; recoveryMs: number }> {
  let kills = 0;
  let recoveryMs = 0;
  let done = false;
  const killer = (async () => {
    while (kills < times && !done) {
      await new Promise((r) => setTimeout(r, 2_500));
      if (done) break;
      const t0 = Date.now();
      await killAndRestart();
      kills++;
      recoveryMs = Math.max(recoveryMs, Date.now() - t0);
    }
  })();
  const runs = await load(() => kills < times).finally(() => {
    done = true;
  });
  await killer;
  return { runs, kills, recoveryMs };
}

/**
 * Exactly-once checks once everything settled: every payment's three outcome events (PaymentAuthorized,
 * PaymentCaptured, PaymentRefunded) were delivered (`lost`: missing) under one message id each (`duplicated`: an
 * outcome under a second id, i.e. announced twice), and the sandbox PSP captured and refunded each payment exactly
 * once (else `duplicated`). The same id received twice is at-least-once delivery, which the contract allows
 * (messages.md 6: receivers drop it by id): counted as `redelivered`. It happens when the broker went away after it
 * took a message but before its confirm reached the relay.
 */
export async function exactlyOnce(
  rows: Rows,
  pspRows: Rows,
  tenant: string,
  runs: PaymentRun[],
  delivered: () => Promise<Array<{ id: string; name: string; orderReference: string }>>,
): Promise<{ lost: number; duplicated: number; redelivered: number }> {
  await until('the payment events delivered', async () => (await rows.one<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE state <> 'delivered' AND channel = 'payment-events' AND tenant_identifier = $1`, [tenant]))!.n === 0, 60_000);
  const events = await delivered();
  let lost = 0;
  let duplicated = 0;
  let redelivered = 0;
  const ids = new Set<string>();
  for (const e of events) {
    if (ids.has(e.id)) redelivered++;
    ids.add(e.id);
  }
  for (const run of runs) {
    for (const name of ['PaymentAuthorized', 'PaymentCaptured', 'PaymentRefunded']) {
      const n = new Set(events.filter((e) => e.name === name && e.orderReference === run.orderReference).map((e) => e.id)).size;
      if (n === 0) lost++;
      if (n > 1) duplicated += n - 1;
    }
    const psp = await pspRows.one<{ amount_captured: number; refunds: number; refunded: number }>(
      `SELECT p.amount_captured::int AS amount_captured, count(r.id)::int AS refunds, COALESCE(sum(r.amount), 0)::int AS refunded
         FROM sandbox_payments p LEFT JOIN sandbox_refunds r ON r.payment_id = p.id WHERE p.id = $1 GROUP BY p.id`,
      [run.transactionId],
    );
    if (!psp || psp.amount_captured !== AMOUNT || psp.refunds !== 1 || psp.refunded !== REFUND) duplicated++;
  }
  return { lost, duplicated, redelivered };
}

/** The local transport's delivered payment-events of one tenant (the hub keeps one row per message id). */
export const hubEvents = (rows: Rows, tenant: string) => async (): Promise<Array<{ id: string; name: string; orderReference: string }>> =>
  (
    await rows.all<{ message_id: string; name: string; body: string }>(
      `SELECT message_id, attributes->>'transferName' AS name, body FROM hub_messages WHERE channel = 'payment-events' AND consumer_id = $1`,
      [tenant],
    )
  ).map((r) => ({ id: r.message_id, name: r.name, orderReference: String(JSON.parse(r.body).orderReference ?? '') }));
