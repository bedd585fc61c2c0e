/**
 * The benchmark's load generator, run as its own process (`fork` of dist/bench/load.js by bench/run.ts) so that
 * generating requests does not take turns with the server on the server's one Node thread.
 *
 * It receives one job over IPC, runs it and answers with a summary (latency percentiles, statuses, optionally a field
 * collected from the answers), then exits. Jobs:
 * - `http`: CONCURRENCY keep-alive clients each sending back to back for warm-up + duration. Throughput: requests
 *   completed inside the measured window / its length; latency: every request started inside it (awaited to the end).
 *   The requests come from a scenario (below).
 * - `roundtrip`: a message published over HTTP and the time until a consumer polling the local Event Platform
 *   (`GET /event-platform/payment-events`, acknowledged with DELETE) sees the expected message: `CapturePayment` →
 *   `PaymentCaptured`, or a plain publish → receive on the hub (the floor of that line).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export interface Req {
  path: string;
  method: string;
  headers: Record<string, string>;
  /** Raw body (sent as is: a webhook's signature covers these exact bytes). */
  body?: string;
}

/** What requests an `http` job sends; built in the load process from plain data. */
export type Scenario =
  | { kind: 'floor' }
  | { kind: 'initialize'; tenant: string; run: string }
  | { kind: 'webhook'; tenant: string; secret: string; amount: number; transactionIds: string[] };

export interface HttpJob {
  type: 'http';
  baseUrl: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  scenario: Scenario;
  /** A top-level JSON field of 2xx answers to send back (e.g. `transactionId`). */
  collect?: string;
}

export interface Order {
  orderReference: string;
  items: number[];
  amount: number;
}

export interface RoundtripJob {
  type: 'roundtrip';
  baseUrl: string;
  concurrency: number;
  /** `capture`: publish CapturePayment for each order, wait for PaymentCaptured; `hub`: publish a plain message on payment-events, wait for it. */
  kind: 'capture' | 'hub';
  tenant: string;
  /** capture: one command per order; the first `warmup` are not measured. */
  orders: Order[];
  /** hub: how many messages. */
  count: number;
  warmup: number;
  pollMs: number;
  timeoutMs: number;
}

export type Job = HttpJob | RoundtripJob;

export interface Summary {
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  throughput: number;
  p50: number;
  p99: number;
  max: number;
  collected?: string[];
  /** http jobs: every request sent, warm-up included. */
  sent?: number;
  note?: string;
  /** CPU (user + system, ms) this load process spent on the job, its own start-up excluded. */
  cpuMs?: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function signSandboxWebhook(body: string, secret: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

/** A sandbox `payment.authorized` event for an existing payment, as the sandbox PSP sends it (signed). */
export function authorizedWebhook(transactionId: string, tenant: string, amount: number, secret: string): Req {
  return sandboxWebhook('payment.authorized', paymentObject(transactionId, tenant, amount, 'authorized', 0), secret);
}

/** A sandbox payment object as its webhooks carry it (`captured`: the amount captured so far). */
export function paymentObject(transactionId: string, tenant: string, amount: number, status: string, captured: number): Record<string, unknown> {
  return {
    id: transactionId,
    object: 'payment',
    status,
    amount,
    currency: 'EUR',
    amountCapturable: amount - captured,
    amountCaptured: captured,
    amountRefunded: 0,
    captureMethod: 'manual',
    metadata: { tenantIdentifier: tenant },
    lastDecline: null,
    declineCount: 0,
    failureCode: null,
    captureError: null,
    card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2040 },
  };
}

/** A signed sandbox webhook request of `type` about `object` (a new event id each time). */
export function sandboxWebhook(type: string, object: Record<string, unknown>, secret: string): Req {
  const body = JSON.stringify({ id: `evt_${randomBytes(12).toString('hex')}`, type, created: Math.floor(Date.now() / 1000), livemode: false, data: { object } });
  return { path: '/webhooks/test', method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': signSandboxWebhook(body, secret) }, body };
}

export const INIT_AMOUNT = 12345;

export function initializeBody(orderReference: string | null, itemId = 1): Record<string, unknown> {
  return {
    orderData: {
      ...(orderReference !== null ? { orderReference } : {}),
      grandTotal: INIT_AMOUNT,
      currencyCode: 'EUR',
      paymentMethod: 'credit-card',
      items: [{ idSalesOrderItem: itemId, name: 'Shirt', sku: `SKU-${itemId}`, quantity: 1, unitPrice: INIT_AMOUNT }],
    },
    ...(orderReference === null ? { preOrderPaymentData: {} } : {}),
    redirectSuccessUrl: 'https://shop.example/en/payment/order-success',
    redirectCancelUrl: 'https://shop.example/en/payment/order-cancel',
    checkoutSummaryPageUrl: 'https://shop.example/en/checkout/summary',
  };
}

const json = (path: string, body: unknown, headers: Record<string, string> = {}): Req => ({
  path,
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

function requestsOf(s: Scenario): (client: number, i: number) => Req {
  switch (s.kind) {
    case 'floor':
      return (client, i) => json('/floor', { tenant: `bench-${client}`, i });
    case 'initialize':
      return (client, i) => json('/private/initialize-payment', initializeBody(`BENCH-${s.run}-${client}-${i}`, i + 1), { 'x-tenant-identifier': s.tenant });
    case 'webhook': {
      let next = 0; // payments in order: each gets its first payment.authorized, then the list starts over (repeats)
      return () => authorizedWebhook(s.transactionIds[next++ % s.transactionIds.length]!, s.tenant, s.amount, s.secret);
    }
  }
}

let agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function send(base: URL, req: Req): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
    const r = http.request({ agent, host: base.hostname, port: base.port, path: req.path, method: req.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

function summarize(latencies: number[], statuses: Map<number, number>, errors: number, seconds: number, extra: Partial<Summary> = {}): Summary {
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    statuses: Object.fromEntries([...statuses].map(([s, n]) => [s === 0 ? 'err' : String(s), n])),
    seconds,
    throughput: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.length ? latencies[latencies.length - 1]! : NaN,
    ...extra,
  };
}

async function runHttp(job: HttpJob): Promise<Summary> {
  const base = new URL(job.baseUrl);
  const next = requestsOf(job.scenario);
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const end = measureFrom + job.durationMs;
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  const collected: string[] = [];
  let errors = 0;
  let sent = 0;
  let completed = 0;
  let firstError: string | undefined;
  const client = async (c: number): Promise<void> => {
    for (let i = 0; ; i++) {
      const t0 = performance.now();
      if (t0 >= end) return;
      sent++;
      let status = 0;
      let body = '';
      try {
        ({ status, body } = await send(base, next(c, i)));
      } catch (err) {
        firstError ??= (err as Error).message;
      }
      const t1 = performance.now();
      const ok = status >= 200 && status < 300;
      if (!ok) firstError ??= `${status} ${body.slice(0, 200)}`;
      if (ok && job.collect) {
        try {
          const v = (JSON.parse(body) as Record<string, unknown>)[job.collect];
          if (typeof v === 'string') collected.push(v);
        } catch {
          /* not JSON: nothing to collect */
        }
      }
      if (t1 >= measureFrom && t1 <= end) completed++;
      if (t0 >= measureFrom) {
        // latency of every request started in the window, also when it ends after the window (a slow line still has figures)
        latencies.push(t1 - t0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (!ok) errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, (_, c) => client(c)));
  const seconds = job.durationMs / 1000;
  return summarize(latencies, statuses, errors, seconds, { throughput: completed / seconds, collected: job.collect ? collected : undefined, sent, note: errors > 0 ? firstError : undefined });
}

interface HubMessage {
  MessageId: string;
  MessageBody: string;
  MessageAttributes: Record<string, string>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes with `concurrency` messages in flight; one consumer polls the channel (a GET, then a DELETE of what it
 * received; it sleeps `pollMs` only after an empty answer) and resolves the waiting publisher.
 */
async function runRoundtrip(job: RoundtripJob): Promise<Summary> {
  const base = new URL(job.baseUrl);
  const waiting = new Map<string, () => void>();
  const keyOf = (m: HubMessage): string | undefined => {
    if (job.kind === 'hub') return m.MessageId;
    if (m.MessageAttributes.transferName !== 'PaymentCaptured') return undefined;
    try {
      return (JSON.parse(m.MessageBody) as { orderReference?: string }).orderReference;
    } catch {
      return undefined;
    }
  };
  let consuming = true;
  let polls = 0;
  const consumer = (async () => {
    const headers = { 'consumer-id': job.tenant };
    while (consuming) {
      polls++;
      const r = await send(base, { path: '/event-platform/payment-events?limit=100', method: 'GET', headers });
      const msgs = r.status === 200 ? (JSON.parse(r.body) as HubMessage[]) : [];
      if (msgs.length === 0) {
        await sleep(job.pollMs);
        continue;
      }
      for (const m of msgs) {
        const k = keyOf(m);
        const w = k === undefined ? undefined : waiting.get(k);
        if (w) {
          waiting.delete(k!);
          w();
        }
      }
      await send(base, { ...json('/event-platform/payment-events', { messageIds: msgs.map((m) => m.MessageId) }, headers), method: 'DELETE' });
    }
  })();
  const publishes: Array<() => { key: string; req: Req }> =
    job.kind === 'capture'
      ? job.orders.map((o) => () => {
          const req = json('/event-platform/payment-commands', { orderReference: o.orderReference, orderItemIds: o.items, amount: o.amount, currencyIsoCode: 'EUR' }, {
            'transfer-name': 'CapturePayment',
            'tenant-identifier': job.tenant,
            'message-id': randomUUID(),
          });
          return { key: o.orderReference, req };
        })
      : Array.from({ length: job.count }, (_, i) => () => {
          const id = randomUUID();
          return { key: id, req: json('/event-platform/payment-events', { ping: i }, { 'transfer-name': 'BenchPing', 'tenant-identifier': job.tenant, 'message-id': id }) };
        });

  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let errors = 0;
  let timeouts = 0;
  let next = 0;
  const t0 = performance.now();
  let measuredFrom = t0;
  const worker = async (): Promise<void> => {
    while (next < publishes.length) {
      const idx = next++;
      if (idx === job.warmup) measuredFrom = performance.now();
      const { key, req } = publishes[idx]!();
      const seen = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(key);
          resolve(false);
        }, job.timeoutMs);
        waiting.set(key, () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      const start = performance.now();
      let status = 0;
      try {
        status = (await send(base, req)).status;
      } catch {
        status = 0;
      }
      const ok = status === 200 && (await seen);
      if (status === 200 && !ok) timeouts++;
      if (idx < job.warmup) continue;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (ok) latencies.push(performance.now() - start);
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, () => worker()));
  const seconds = (performance.now() - measuredFrom) / 1000;
  consuming = false;
  await consumer;
  return summarize(latencies, statuses, errors, seconds, { note: `${polls} polls${timeouts ? `, ${timeouts} not seen within ${job.timeoutMs} ms` : ''}` });
}

async function runJob(job: Job): Promise<Summary> {
  agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency + 2 });
  const cpu0 = process.cpuUsage();
  try {
    const summary = job.type === 'http' ? await runHttp(job) : await runRoundtrip(job);
    const cpu = process.cpuUsage(cpu0);
    return { ...summary, cpuMs: (cpu.user + cpu.system) / 1000 };
  } finally {
    agent.destroy();
  }
}

// Only when forked as the load process (run.ts and counts.ts import the request builders above).
if (process.send && process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.once('message', (job: Job) => {
    runJob(job).then(
      (summary) => process.send!({ ok: true, summary }, () => process.exit(0)),
      (err: unknown) => process.send!({ ok: false, error: (err as Error).stack ?? String(err) }, () => process.exit(1)),
    );
  });
}
