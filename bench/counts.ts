/**
 * SQL statements and transactions of each hot path, read from the app's Db counters (`db.stats`; statements exclude
 * BEGIN/COMMIT, a transaction is one `db.tx`).
 *
 * The app runs with its workers stopped, so nothing else touches the database while an operation is counted; the
 * workers' share is run by hand (`runCommandBatch` for a command, the outbox relay's `runOnce` for a relay batch).
 * Each sequence runs twice and the second round is reported (caches warm, as in steady operation).
 *
 * Two set-ups: the sandbox PSP in its own process (SANDBOX_PSP_URL, its own database, webhooks held back with
 * SANDBOX_WEBHOOK_DELAY_MS): the app's statements only; and the default in-process sandbox, which shares the app's
 * Db: app + PSP statements together.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { runCommandBatch } from '../src/app/command-worker.js';
import type { OutboxRelay } from '../src/messaging/relay.js';
import type { Db } from '../src/store/db.js';
import { call, configureTenant, expectStatus, inParallel, pay, startApp, WEBHOOK_SECRET, withPspProcess, type BenchApp, type BenchDatabase } from './harness.js';
import { authorizedWebhook, INIT_AMOUNT, initializeBody, paymentObject, sandboxWebhook } from './load.js';

export interface Count {
  statements: number;
  transactions: number;
  /** Waits for the database's answer (db.stats.exchanges). */
  exchanges: number;
  note?: string;
}

export const HOT_PATHS = [
  'initialize-payment (hosted)',
  'initialize-payment (pre-order)',
  'webhook receive (payment.authorized)',
  'redirect return, before the webhook',
  'redirect return, webhook applied',
  'CapturePayment command',
  'its webhook (payment.captured)',
  'RefundPayment command',
  'its webhook (refund.succeeded)',
  'one relay batch (local transport)',
] as const;
export type HotPath = (typeof HOT_PATHS)[number];

/** BENCH_TRACE=1 prints the SQL of each counted operation (stderr). */
const TRACE = process.env.BENCH_TRACE === '1';

async function counted(db: Db, fn: () => Promise<unknown>, what = ''): Promise<Count> {
  await new Promise((r) => setTimeout(r, 20)); // anything still finishing from the previous step
  db.stats.statements = 0;
  db.stats.transactions = 0;
  db.stats.exchanges = 0;
  if (TRACE) db.stats.trace = [];
  await fn();
  await new Promise((r) => setTimeout(r, 20)); // work after the answer was sent (none expected) is counted too
  if (db.stats.trace) {
    process.stderr.write(`--- ${what}: ${db.stats.statements} statements, ${db.stats.transactions} transactions, ${db.stats.exchanges} exchanges\n${db.stats.trace.map((q) => `  ${q.replace(/\s+/g, ' ').slice(0, 300)}`).join('\n')}\n`);
    delete db.stats.trace;
  }
  return { statements: db.stats.statements, transactions: db.stats.transactions, exchanges: db.stats.exchanges };
}

const sum = (a: Count, b: Count, note: string): Count => ({
  statements: a.statements + b.statements,
  transactions: a.transactions + b.transactions,
  exchanges: a.exchanges + b.exchanges,
  note,
});

/** One round of every hot path on a started app (workers stopped). */
async function round(app: BenchApp, tenant: string): Promise<Map<HotPath, Count>> {
  const db = app.rt.deps.db;
  const out = new Map<HotPath, Count>();
  const init = async (orderReference: string | null): Promise<string> =>
    (await expectStatus(call(`${app.url}/private/initialize-payment`, { headers: { 'x-tenant-identifier': tenant }, body: initializeBody(orderReference) }), 200, 'initialize-payment')).body
      .transactionId as string;
  const ref = (): string => `CNT-${randomBytes(5).toString('hex')}`;
  const redirect = (tx: string) =>
    expectStatus(call(`${app.url}/app-payment/redirect?${new URLSearchParams({ transactionId: tx, tenantIdentifier: tenant })}`), 302, 'redirect return');
  const command = (name: string, payload: Record<string, unknown>) =>
    expectStatus(
      call(`${app.url}/event-platform/payment-commands`, { headers: { 'transfer-name': name, 'tenant-identifier': tenant, 'message-id': randomUUID() }, body: payload }),
      200,
      `publish ${name}`,
    );
  const processCommands = async (): Promise<void> => {
    if ((await runCommandBatch(app.rt.deps)) !== 1) throw new Error('bench: expected exactly one command to process');
  };

  const refA = ref();
  let a = '';
  out.set('initialize-payment (hosted)', await counted(db, async () => (a = await init(refA)), 'initialize hosted'));
  const b = await init(ref());
  out.set('initialize-payment (pre-order)', await counted(db, () => init(null), 'initialize pre-order'));

  await pay(app.sandboxUrl, a);
  const wh = authorizedWebhook(a, tenant, INIT_AMOUNT, WEBHOOK_SECRET);
  out.set('webhook receive (payment.authorized)', await counted(db, () => expectStatus(call(`${app.url}${wh.path}`, { headers: wh.headers, raw: wh.body }), 200, 'webhook'), 'webhook'));
  out.set('redirect return, webhook applied', await counted(db, () => redirect(a), 'redirect after webhook'));
  await pay(app.sandboxUrl, b);
  out.set('redirect return, before the webhook', await counted(db, () => redirect(b), 'redirect before webhook'));

  const items = { orderReference: refA, orderItemIds: [1], amount: INIT_AMOUNT, currencyIsoCode: 'EUR' };
  const capPublish = await counted(db, () => command('CapturePayment', items), 'publish CapturePayment');
  const capProcess = await counted(db, processCommands, 'process CapturePayment');
  out.set('CapturePayment command', sum(capPublish, capProcess, `publish ${capPublish.statements}/${capPublish.transactions}/${capPublish.exchanges} + processing ${capProcess.statements}/${capProcess.transactions}/${capProcess.exchanges}`));
  // the PSP's webhook for that capture (its own answer already settled the record: the webhook changes nothing)
  const sendWebhook = (w: ReturnType<typeof sandboxWebhook>, what: string) =>
    counted(db, () => expectStatus(call(`${app.url}${w.path}`, { headers: w.headers, raw: w.body }), 200, what), what);
  out.set('its webhook (payment.captured)', await sendWebhook(sandboxWebhook('payment.captured', paymentObject(a, tenant, INIT_AMOUNT, 'captured', INIT_AMOUNT), WEBHOOK_SECRET), 'capture webhook'));
  const refPublish = await counted(db, () => command('RefundPayment', { ...items, orderItems: [{ orderItemId: 1, sku: 'SKU-1' }] }), 'publish RefundPayment');
  const refProcess = await counted(db, processCommands, 'process RefundPayment');
  out.set('RefundPayment command', sum(refPublish, refProcess, `publish ${refPublish.statements}/${refPublish.transactions}/${refPublish.exchanges} + processing ${refProcess.statements}/${refProcess.transactions}/${refProcess.exchanges}`));
  // the PSP's webhook settling that refund (pending until then)
  const pspRefundId = (await db.query<{ id: string }>(`SELECT r.psp_refund_id AS id FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE p.tenant_identifier = $1 AND p.order_reference = $2`, [tenant, refA])).rows[0]?.id;
  if (!pspRefundId) throw new Error('bench: the refund has no PSP refund id');
  const refundObject = { id: pspRefundId, object: 'refund', payment: a, amount: INIT_AMOUNT, currency: 'EUR', status: 'succeeded', failureReason: null, metadata: { tenantIdentifier: tenant } };
  out.set('its webhook (refund.succeeded)', await sendWebhook(sandboxWebhook('refund.succeeded', refundObject, WEBHOOK_SECRET), 'refund webhook'));

  // a full batch: more payments' first messages (distinct ordering keys) waiting in the outbox
  await inParallel(Array.from({ length: 50 }), 5, () => init(null));
  const relay = app.rt.workers.find((w) => w.name === 'outbox-relay') as OutboxRelay | undefined;
  if (!relay) throw new Error('bench: no outbox-relay worker');
  let delivered = 0;
  const batch = await counted(db, async () => (delivered = (await relay.runOnce()).delivered), 'relay batch');
  out.set('one relay batch (local transport)', { ...batch, note: `${delivered} messages` });
  while ((await relay.runOnce()).claimed > 0); // drain for the next round
  return out;
}

async function measure(app: BenchApp): Promise<Map<HotPath, Count>> {
  const tenant = `bench-count-${randomBytes(3).toString('hex')}`;
  await configureTenant(app, tenant);
  await round(app, tenant); // warm-up round: caches, prepared plans, sandbox account
  return round(app, tenant);
}

export interface CountsResult {
  database: string;
  /** Sandbox PSP in its own process: the app's statements only. */
  appOnly: Map<HotPath, Count>;
  /** Default in-process sandbox: app and PSP statements on the one Db. */
  withSandbox: Map<HotPath, Count>;
}

export async function measureCounts(database: BenchDatabase): Promise<CountsResult> {
  // the PSP's webhooks would be counted: held back
  const appOnly = await withPspProcess(database, { pspEnv: { SANDBOX_WEBHOOK_DELAY_MS: '3600000' }, startWorkers: false }, measure);
  const app = await startApp(database, { startWorkers: false });
  try {
    return { database: database.label, appOnly, withSandbox: await measure(app) };
  } finally {
    await app.close();
  }
}
