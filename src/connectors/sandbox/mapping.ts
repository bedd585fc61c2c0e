/**
 * Sandbox API objects → the connector port's vocabulary.
 */
import type { Payer, PayerAddress, PspPayment, PspPaymentState } from '../types.js';

/**
 * requires_payment_method → pending (with the last decline if any), requires_action → requires_action,
 * authorized → authorized (capture_failed when an automatic capture failed), captured/failed/canceled → same.
 */
export function mapPaymentState(o: Record<string, any>): PspPaymentState {
  switch (o.status) {
    case 'requires_payment_method':
      return 'pending';
    case 'requires_action':
      return 'requires_action';
    case 'authorized':
      return o.captureMethod === 'automatic' && o.captureError && Number(o.amountCaptured) === 0 ? 'capture_failed' : 'authorized';
    case 'captured':
      return 'captured';
    case 'failed':
      return 'failed';
    case 'canceled':
      return 'canceled';
    default:
      throw new Error(`unknown sandbox payment status "${String(o.status)}"`);
  }
}

export function publicDetailsOf(o: Record<string, any>): Record<string, unknown> {
  const card = o.card;
  if (!card || typeof card !== 'object') return {};
  return { cardBrand: card.brand, cardLast4: card.last4, cardExpMonth: card.expMonth, cardExpYear: card.expYear };
}

export function toPspPayment(o: Record<string, any>): PspPayment {
  if (typeof o.id !== 'string' || typeof o.amount !== 'number') throw new Error('not a sandbox payment');
  const state = mapPaymentState(o);
  const p: PspPayment = {
    id: o.id,
    state,
    amount: o.amount,
    currency: String(o.currency),
    amountCapturable: Number(o.amountCapturable ?? 0),
    amountCaptured: Number(o.amountCaptured ?? 0),
    amountRefunded: Number(o.amountRefunded ?? 0),
    publicDetails: publicDetailsOf(o),
    preOrderPaymentData: { clientSecret: o.clientSecret, checkoutUrl: o.checkoutUrl },
  };
  if (state === 'requires_action' && o.nextAction?.url) p.actionUrl = String(o.nextAction.url);
  if ((state === 'pending' || state === 'failed') && o.lastDecline?.code) p.lastDecline = { code: String(o.lastDecline.code), message: String(o.lastDecline.message ?? o.lastDecline.code) };
  return p;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

function toAddress(a: unknown): PayerAddress | null {
  if (!a || typeof a !== 'object') return null;
  const x = a as Record<string, unknown>;
  return {
    salutation: str(x.salutation),
    firstName: str(x.firstName),
    lastName: str(x.lastName),
    address1: str(x.address1),
    address2: str(x.address2),
    address3: str(x.address3),
    zipCode: str(x.zipCode),
    city: str(x.city),
    state: str(x.state),
    region: str(x.region),
    iso2Code: str(x.iso2Code),
    company: str(x.company),
    email: str(x.email),
    phone: str(x.phone),
    cellPhone: str(x.cellPhone),
  };
}

export function toPayer(c: Record<string, unknown>): Payer {
  return {
    salutation: str(c.salutation),
    firstName: str(c.firstName),
    lastName: str(c.lastName),
    email: str(c.email),
    phone: str(c.phone),
    company: str(c.company),
    gender: str(c.gender),
    dateOfBirth: str(c.dateOfBirth),
    billingAddress: toAddress(c.billingAddress),
    shippingAddress: toAddress(c.shippingAddress),
  };
}
