/**
 * Payments written straight through the repository (as another instance or an older version would have stored them),
 * for tests that need a payment the app under test did not create itself.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../../src/store/db.js';
import { insertPayment, recordPspObject, type NewPayment } from '../../src/store/payments.js';

/** A new sandbox payment of 1000 EUR (manual capture, test mode) with one order item; `fields` override. */
export function testPayment(fields: Pick<NewPayment, 'tenantIdentifier' | 'transactionId'> & Partial<NewPayment>): NewPayment {
  const orderReference = fields.orderReference === undefined ? `ORD-${randomBytes(4).toString('hex')}` : fields.orderReference;
  return {
    id: randomUUID(),
    orderReference,
    status: 'new',
    amount: 1000,
    currency: 'EUR',
    paymentMethod: 'credit-card',
    connector: 'sandbox',
    mode: 'test',
    captureMode: 'manual',
    orderData: { orderReference, grandTotal: 1000, currencyCode: 'EUR', items: [{ idSalesOrderItem: 1, name: 'Shirt' }] },
    redirectSuccessUrl: 'https://shop.example/success',
    redirectCancelUrl: 'https://shop.example/cancel',
    ...fields,
  };
}

/** Stores `testPayment(...)` and its PSP object mapping in one transaction; returns the payment id. */
export async function storePayment(db: Db, tenant: string, transactionId: string, orderReference?: string | null): Promise<string> {
  const p = testPayment({ tenantIdentifier: tenant, transactionId, ...(orderReference !== undefined ? { orderReference } : {}) });
  await db.tx(async (tx) => {
    await insertPayment(tx, p);
    await recordPspObject(tx, 'sandbox', transactionId, tenant, 'payment');
  });
  return p.id;
}
