/**
 * A state change reads the payment's history with its lock (store/payments.ts `lockPaymentWithHistory`) and writes the
 * payment, the next history row and the announcing messages in one statement. The history read in the locking
 * statement comes from a snapshot taken before the lock was granted: these tests make another transaction hold the
 * lock and append history meanwhile (PostgreSQL: real row locks), and check the reader gets the full history; also
 * rows written before the payment kept a counter (`history_seq` behind the rows) are all read.
 */
import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Db, Tx } from '../src/store/db.js';
import { operationInsertWrite, operationLock, operationUpdateWrite } from '../src/store/operations.js';
import { appendHistory, insertNewPayment, lockPaymentWithHistory, lockPaymentWithHistoryAndRecord, updatePayment, updatePaymentRecording } from '../src/store/payments.js';
import { testPayment } from './helpers/payments.js';
import { migratedTempDatabase, postgresAvailable } from './helpers/services.js';

const pgOk = await postgresAvailable();

async function newPayment(db: Db): Promise<string> {
  const p = testPayment({ tenantIdentifier: 'hist', transactionId: `tx_${randomUUID()}` });
  const id = p.id;
  const stored = await insertNewPayment(db, p, { trigger: 'sync', ref: 'r1', pspObjectKind: 'payment', waitingStates: ['received'] });
  expect(stored?.history.seq).toBe(1);
  return id;
}

/**
 * `write` in a transaction that holds the payment's lock; `read` in another, started meanwhile: it waits for that lock
 * (seen waiting in pg_stat_activity) until the writer commits. Returns what `read` got.
 */
async function readWhileWriting<T>(db: Db, id: string, write: (tx: Tx) => Promise<unknown>, read: (tx: Tx) => Promise<T>): Promise<T> {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const writer = db.tx(async (tx) => {
    await tx.query('SELECT 1 FROM payments WHERE id = $1 FOR UPDATE', [id]);
    await write(tx);
    locked();
    await held;
  });
  await isLocked;
  const reader = db.tx(read);
  await expect
    .poll(async () => (await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rowCount, { timeout: 10_000 })
    .toBe(1);
  release();
  await writer;
  return reader;
}

describe.skipIf(!pgOk)('payment history read with the lock', () => {
  const database = migratedTempDatabase();
  let db: Db;
  beforeEach(() => {
    db = database();
  });

  it('history written by the transaction that held the lock is part of what the waiting reader gets', async () => {
    const id = await newPayment(db);
    const got = await readWhileWriting(
      db,
      id,
      (tx) => updatePaymentRecording(tx, id, { status: 'authorized' }, { status: 'authorized', trigger: 'webhook', ref: 'w1' }, false),
      (tx) => lockPaymentWithHistory(tx, id),
    );
    expect(got.payment.status).toBe('authorized');
    expect(got.history.map((h) => [h.seq, h.status])).toEqual([
      [1, 'new'],
      [2, 'authorized'],
    ]);
  });

  it('a record locked with its payment is read as the transaction that held the lock left it, with the history it wrote', async () => {
    const id = await newPayment(db);
    const opId = randomUUID();
    const insert = operationInsertWrite(
      { id: opId, paymentId: id, tenantIdentifier: 'hist', kind: 'capture', itemKey: 'k', orderItemIds: [1], amount: 100, status: 'pending', commandId: null },
      new Date(),
    );
    await db.tx((tx) => updatePayment(tx, id, { pendingCaptureAmount: 100 }, insert.write));
    const got = await readWhileWriting(
      db,
      id,
      (tx) =>
        updatePaymentRecording(tx, id, { status: 'authorized' }, { status: 'authorized', trigger: 'webhook', ref: 'w1' }, false, undefined, operationUpdateWrite(opId, { status: 'succeeded', pspReference: 'cap_1' })),
      (tx) => lockPaymentWithHistoryAndRecord(tx, id, null, operationLock, opId),
    );
    expect(got.payment.status).toBe('authorized');
    expect(got.history.map((h) => [h.seq, h.status])).toEqual([
      [1, 'new'],
      [2, 'authorized'],
    ]);
    expect(got.record).toMatchObject({ id: opId, paymentId: id, status: 'succeeded', pspReference: 'cap_1', amount: 100, orderItemIds: [1], kind: 'capture' });
    expect(got.record!.createdAt).toBeInstanceOf(Date);
    // a record of another payment is not locked with this one
    const other = await newPayment(db);
    const none = await db.tx((tx) => lockPaymentWithHistoryAndRecord(tx, other, null, operationLock, opId));
    expect([none.payment.id, none.record]).toEqual([other, null]);
  });

  it('the next sequence number follows rows the counter does not know of (written before it existed)', async () => {
    const id = await newPayment(db);
    await db.tx((tx) => appendHistory(tx, id, 'new', 'webhook', 'w2', { retryableDecline: { code: 'x', message: 'y' } }));
    await db.query('UPDATE payments SET history_seq = 0 WHERE id = $1', [id]);
    const got = await db.tx((tx) => lockPaymentWithHistory(tx, id));
    expect(got.history.map((h) => h.seq)).toEqual([1, 2]);
    const next = await db.tx((tx) => updatePaymentRecording(tx, id, { status: 'authorized' }, { status: 'authorized', trigger: 'webhook', ref: 'w3' }, false));
    expect(next.entry?.seq).toBe(3);
    const after = await db.tx((tx) => lockPaymentWithHistory(tx, id));
    expect(after.history.map((h) => h.seq)).toEqual([1, 2, 3]);
    expect((await db.query<{ history_seq: number }>('SELECT history_seq FROM payments WHERE id = $1', [id])).rows[0]?.history_seq).toBe(3);
  });
});
