/**
 * A webhook is acknowledged as soon as it is stored (flows.md 12 step 6); its processing follows the answer (step 7).
 * Proof: while another transaction holds the payment's row lock, the PSP still gets its 200 at once, the inbox row is
 * stored `received`; when the lock goes, the row is processed and the payment authorized (PostgreSQL: real row locks).
 */
import { createHmac, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.js';
import { configureTenant, initializeOrder, until } from './helpers/commands.js';
import { createTempDatabase, postgresAvailable } from './helpers/services.js';

const WH = 'whsec_0123456789abcdef';
const sign = (body: string, t = Math.floor(Date.now() / 1000)): string => `t=${t},v1=${createHmac('sha256', WH).update(`${t}.${body}`).digest('hex')}`;

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('webhook acknowledgement', () => {
  let app: TestApp;
  let url: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const tmp = await createTempDatabase();
    url = tmp.url;
    drop = tmp.drop;
    app = await startTestApp({ DATABASE_URL: url, SANDBOX_WEBHOOK_DELAY_MS: '3600000' });
    await configureTenant(app, 'ack-1');
  });
  afterAll(async () => {
    await app?.close();
    await drop?.();
  });

  it('answers 200 once the event is stored, while its processing still waits for the payment row', async () => {
    const o = await initializeOrder(app, 'ack-1', { 1: 1000 });
    const body = JSON.stringify({
      id: `evt_${randomBytes(8).toString('hex')}`,
      type: 'payment.authorized',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object: { id: o.transactionId, object: 'payment', status: 'authorized', amount: 1000, currency: 'EUR', captureMethod: 'manual', amountCapturable: 1000, amountCaptured: 0, amountRefunded: 0, metadata: { tenantIdentifier: 'ack-1' } } },
    });
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM payments WHERE transaction_id = $1 FOR UPDATE', [o.transactionId]);
      const res = await Promise.race([
        fetch(`${app.url}/webhooks/test`, { method: 'POST', headers: { 'content-type': 'application/json', 'sandbox-signature': sign(body) }, body }),
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      expect(res?.status).toBe(200);
      const inbox = await app.deps.db.query<{ state: string }>('SELECT state FROM webhook_inbox WHERE psp_object_id = $1', [o.transactionId]);
      expect(inbox.rows.map((r) => r.state)).toEqual(['received']);
      await locker.query('COMMIT');
    } finally {
      await locker.end();
    }
    const state = await until(
      async () => (await app.deps.db.query<{ state: string; status: string }>('SELECT w.state, p.status FROM webhook_inbox w JOIN payments p ON p.transaction_id = w.psp_object_id WHERE w.psp_object_id = $1', [o.transactionId])).rows[0],
      (r) => r?.state === 'processed',
    );
    expect(state).toEqual({ state: 'processed', status: 'authorized' });
  });
});
