/**
 * Acknowledgements first (WEBHOOK_ACK_FIRST_MS, issue 12): while more than 4 webhook requests of an instance wait for
 * their answer, processing of stored events waits for them (bounded), so a burst's answers get the CPU and connections.
 * Made observable with PostgreSQL: 5 webhook requests are held in their inbox insert (another transaction inserted the
 * same event ids and has not committed), so they wait for their answer; a sixth event is stored and answered at once,
 * and its processing waits while the five still wait, then follows once they are answered. With the setting 0 it is
 * processed at once, as before. On PGlite (statements run on the event loop's thread) each processing step first lets the
 * loop take the requests that arrived.
 */
import { createHmac, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acknowledgementQueue, AcknowledgementQueue } from '../src/app/webhook-processing.js';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, until } from './helpers/commands.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const WH = 'whsec_0123456789abcdef';
const sign = (body: string, t = Math.floor(Date.now() / 1000)): string => `t=${t},v1=${createHmac('sha256', WH).update(`${t}.${body}`).digest('hex')}`;

const authorized = (eventId: string, transactionId: string, tenant: string): string =>
  JSON.stringify({
    id: eventId,
    type: 'payment.authorized',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object: { id: transactionId, object: 'payment', status: 'authorized', amount: 1000, currency: 'EUR', captureMethod: 'manual', amountCapturable: 1000, amountCaptured: 0, amountRefunded: 0, metadata: { tenantIdentifier: tenant } } },
  });

const pgOk = await postgresAvailable();

describe('AcknowledgementQueue', () => {
  it('is busy only above its threshold, and quiet() resolves when the answers went out, or after its bound', async () => {
    const q = new AcknowledgementQueue(2, 5_000);
    for (let i = 0; i < 3; i++) q.begin();
    expect(q.busy()).toBe(true);
    let resolved = false;
    const waiting = q.quiet().then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBe(false);
    q.end(); // 2 left: not above 2
    await waiting;
    expect(q.busy()).toBe(false);
    const bounded = new AcknowledgementQueue(2, 30);
    for (let i = 0; i < 3; i++) bounded.begin();
    const t0 = Date.now();
    await bounded.quiet(); // busy: the bound ends the wait
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    q.begin();
    const ac = new AbortController();
    const aborted = q.quiet(ac.signal);
    ac.abort();
    await aborted;
    expect(new AcknowledgementQueue(0, 0).busy()).toBe(false); // 0: off
  });
});

describe('AcknowledgementQueue on an embedded database', () => {
  it('counts every webhook answer off, refusals included', async () => {
    const app = await startTestApp({ SANDBOX_WEBHOOK_DELAY_MS: '3600000' });
    try {
      await configureTenant(app, 'ackfirst-count');
      const o = await initializeOrder(app, 'ackfirst-count', { 1: 1000 });
      const good = authorized(`evt_${randomBytes(8).toString('hex')}`, o.transactionId, 'ackfirst-count');
      const statuses = await Promise.all([
        fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': sign(good) }, body: good }).then((r) => r.status),
        fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': 't=1,v1=00' }, body: good }).then((r) => r.status),
        fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"not":' }).then((r) => r.status),
      ]);
      expect(statuses).toEqual([200, 400, 400]);
      expect(await until(async () => acknowledgementQueue(app.deps).waitingAnswers, (n) => n === 0, 5_000)).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('lets the event loop take what arrived before each processing step (PGlite answers without I/O); off: no wait at all', async () => {
    let ran = false;
    setImmediate(() => (ran = true));
    await new AcknowledgementQueue(4, 100).quiet();
    expect(ran).toBe(true);
    ran = false;
    setImmediate(() => (ran = true));
    await new AcknowledgementQueue(4, 0).quiet();
    expect(ran).toBe(false);
  });
});

describe.skipIf(!pgOk)('acknowledgements first (PostgreSQL)', () => {
  const apps: TestApp[] = [];
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
    for (const d of drops) await d();
  });

  async function scenario(ackFirstMs: string): Promise<{ heldState: string; finalStatus: string; acks: number[] }> {
    const tmp = await createTempDatabase();
    drops.push(tmp.drop);
    const app = await startTestApp({ DATABASE_URL: tmp.url, SANDBOX_WEBHOOK_DELAY_MS: '3600000', WEBHOOK_ACK_FIRST_MS: ackFirstMs });
    apps.push(app);
    const tenant = `ackfirst-${ackFirstMs}`;
    await configureTenant(app, tenant);
    const o = await initializeOrder(app, tenant, { 1: 1000 });
    const heldIds = Array.from({ length: 5 }, () => `evt_${randomBytes(8).toString('hex')}`);
    const locker = new pg.Client({ connectionString: tmp.url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      for (const id of heldIds) {
        await locker.query(
          `INSERT INTO webhook_inbox (id, tenant_identifier, connector, event_id, event_type, mode, psp_object_id, payload, state, next_attempt_at, received_at)
           VALUES (gen_random_uuid(), $1, 'sandbox', $2, 'payment.authorized', 'test', $3, '{}'::jsonb, 'ignored', now(), now())`,
          [tenant, id, o.transactionId],
        );
      }
      const post = (body: string) => fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': sign(body) }, body });
      const held = heldIds.map((id) => post(authorized(id, o.transactionId, tenant)));
      // the five wait for their answers: their inserts wait for the locker's uncommitted rows
      await new Promise((r) => setTimeout(r, 500));
      const settled = await Promise.race([Promise.all(held).then(() => 'answered'), new Promise((r) => setTimeout(() => r('waiting'), 50))]);
      expect(settled).toBe('waiting');
      expect(acknowledgementQueue(app.deps).waitingAnswers).toBe(5);
      const fresh = await post(authorized(`evt_${randomBytes(8).toString('hex')}`, o.transactionId, tenant));
      expect(fresh.status).toBe(200);
      await new Promise((r) => setTimeout(r, 1_000));
      const heldState = (await locker.query(`SELECT status FROM payments WHERE transaction_id = $1`, [o.transactionId])).rows[0].status as string;
      await locker.query('ROLLBACK');
      const acks = (await Promise.all(held)).map((r) => r.status);
      // every answer that went out is counted off (else processing would keep waiting after the burst)
      expect(await until(async () => acknowledgementQueue(app.deps).waitingAnswers, (n) => n === 0, 5_000)).toBe(0);
      const final = await until(
        async () => (await app.deps.db.query<{ status: string }>('SELECT status FROM payments WHERE transaction_id = $1', [o.transactionId])).rows[0]!.status,
        (s) => s === 'authorized',
        10_000,
      );
      return { heldState, finalStatus: final, acks };
    } finally {
      await locker.end();
    }
  }

  it('processes a stored event only once the queueing answers went out', async () => {
    const r = await scenario('5000');
    expect(r.heldState).toBe('new'); // stored and answered, not yet applied: five answers were still queueing
    expect(r.acks).toEqual([200, 200, 200, 200, 200]);
    expect(r.finalStatus).toBe('authorized');
  });

  it('with WEBHOOK_ACK_FIRST_MS=0 processes it at once', async () => {
    const r = await scenario('0');
    expect(r.heldState).toBe('authorized');
    expect(r.acks).toEqual([200, 200, 200, 200, 200]);
  });
});
