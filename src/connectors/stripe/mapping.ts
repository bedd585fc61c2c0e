/**
 * Stripe objects → the connector port's vocabulary (stripe.md 1.4, 1.5, 1.7, 1.2 refunds).
 */
import type Stripe from 'stripe';
import type { MerchantStatus, Payer, PayerAddress, PspPayment, PspPaymentState, RefundOutcome } from '../types.js';
import { fromStripeAmount } from './currency.js';

type Obj = Record<string, any>;

const idOf = (v: unknown): string | null => (typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as Obj).id === 'string' ? (v as Obj).id : null);

/** The PaymentIntent's latest charge when expanded (else null). */
export const expandedCharge = (pi: Obj): Obj | null => (pi.latest_charge && typeof pi.latest_charge === 'object' ? pi.latest_charge : null);

export const latestChargeId = (pi: Obj): string | null => idOf(pi.latest_charge);

/** Whether the card charge allows more captures (stripe.md 3.1: `multicapture.status = available`). */
export function multicaptureAvailable(pi: Obj): boolean {
  const card = expandedCharge(pi)?.payment_method_details?.card;
  return card?.multicapture?.status === 'available';
}

/** The decline of the last attempt (stripe.md 1.4: `decline_code ?? code`), with the PSP's attempt id (stripe.md 8). */
export function declineOf(pi: Obj): { code: string; message: string; attemptId?: string } | undefined {
  const e = pi.last_payment_error;
  if (!e || typeof e !== 'object') return undefined;
  const code = String(e.decline_code ?? e.code ?? 'card_declined');
  const attempt = idOf(e.charge) ?? idOf(e.payment_method) ?? (typeof pi.latest_charge === 'string' ? pi.latest_charge : idOf(pi.latest_charge));
  return { code, message: String(e.message ?? code).slice(0, 500), ...(attempt ? { attemptId: attempt } : {}) };
}

/** PaymentIntent status → port state (stripe.md 1.4). The connector never answers `failed` or `capture_failed` itself. */
export function paymentState(pi: Obj): PspPaymentState {
  switch (pi.status) {
    case 'requires_payment_method':
    case 'requires_confirmation':
    case 'processing':
      return 'pending';
    case 'requires_action':
      return 'requires_action';
    case 'requires_capture':
      return 'authorized';
    case 'succeeded':
      return 'captured';
    case 'canceled':
      // Canceled after a partial capture: the captured part stays, the remainder was released.
      return Number(pi.amount_received ?? 0) > 0 ? 'captured' : 'canceled';
    default:
      throw new Error(`unknown PaymentIntent status "${String(pi.status)}"`);
  }
}

/** Card details for `PaymentCreated/Updated.details`: never secrets. */
export function publicDetailsOf(pi: Obj): Record<string, unknown> {
  const charge = expandedCharge(pi);
  const card = charge?.payment_method_details?.card;
  const out: Record<string, unknown> = {};
  if (card && typeof card === 'object') {
    if (card.brand) out.cardBrand = card.brand;
    if (card.last4) out.cardLast4 = card.last4;
    if (card.exp_month) out.cardExpMonth = card.exp_month;
    if (card.exp_year) out.cardExpYear = card.exp_year;
    if (card.multicapture?.status) out.multicapture = card.multicapture.status;
  }
  const type = charge?.payment_method_details?.type;
  if (typeof type === 'string') out.paymentMethodType = type;
  return out;
}

/** A PaymentIntent (optionally with `latest_charge` expanded) → PspPayment. `publishableKey` goes to front ends. */
export function toPspPayment(pi: Stripe.PaymentIntent | Obj, publishableKey: string): PspPayment {
  const o = pi as Obj;
  if (typeof o.id !== 'string' || typeof o.amount !== 'number') throw new Error('not a PaymentIntent');
  const currency = String(o.currency ?? '');
  const state = paymentState(o);
  const amount = fromStripeAmount(o.amount, currency);
  const received = fromStripeAmount(Number(o.amount_received ?? 0), currency);
  const charge = expandedCharge(o);
  const p: PspPayment = {
    id: o.id,
    state,
    amount,
    currency: currency.toUpperCase(),
    amountCapturable: fromStripeAmount(Number(o.amount_capturable ?? 0), currency),
    amountCaptured: state === 'captured' || state === 'authorized' || state === 'canceled' ? received : 0,
    amountRefunded: charge ? fromStripeAmount(Number(charge.amount_refunded ?? 0), currency) : 0,
    publicDetails: publicDetailsOf(o),
    preOrderPaymentData: {
      transactionId: o.id,
      ...(typeof o.client_secret === 'string' ? { clientSecret: o.client_secret } : {}),
      ...(publishableKey ? { publishableKey } : {}),
    },
    multipleCapturesAvailable: multicaptureAvailable(o),
    pspData: {
      captureMethod: o.capture_method ?? null,
      ...(latestChargeId(o) ? { latestChargeId: latestChargeId(o) } : {}),
    },
  };
  if (state === 'requires_action') {
    const url = o.next_action?.type === 'redirect_to_url' ? o.next_action.redirect_to_url?.url : undefined;
    if (typeof url === 'string' && url) p.actionUrl = url;
  }
  if (state === 'pending' && o.status === 'requires_payment_method') {
    const d = declineOf(o);
    if (d) p.lastDecline = d;
  }
  return p;
}

/** Refund status → port status (stripe.md 1.2). */
export function refundStatus(s: unknown): RefundOutcome['status'] {
  switch (s) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return 'failed';
    case 'canceled':
      return 'canceled';
    case 'requires_action':
      return 'processing';
    default:
      return 'pending';
  }
}

const nonEmpty = (v: unknown): boolean => Array.isArray(v) && v.length > 0;

/** Account → ACP merchant status, evaluated in the order of stripe.md 1.7. */
export function merchantStatusOf(acct: Obj): MerchantStatus {
  const req = acct.requirements ?? {};
  const future = acct.future_requirements ?? {};
  const disabled = typeof req.disabled_reason === 'string' ? req.disabled_reason : '';
  if (disabled.startsWith('rejected.')) return 'rejected';
  const transfers = typeof acct.capabilities?.transfers === 'string' ? acct.capabilities.transfers : acct.capabilities?.transfers?.status;
  const due = nonEmpty(req.currently_due) || nonEmpty(req.past_due) || !!req.current_deadline || nonEmpty(future.currently_due);
  if (transfers === 'active') return acct.payouts_enabled === true && !due ? 'enabled' : 'restricted soon';
  // "After having been enabled" is history the connector does not see: an account that went through onboarding
  // (details submitted) and lost transfers for a past-due or platform reason is `restricted`; `under_review` right
  // after submission is Stripe reviewing (`completed`). The app's status machine rejects any illegal move.
  const restrictedReasons = ['requirements.past_due', 'platform_paused', 'listed'];
  if (acct.details_submitted === true && (nonEmpty(req.past_due) || restrictedReasons.some((r) => disabled === r || disabled.startsWith(`${r}.`)))) return 'restricted';
  if (acct.details_submitted === true) return 'completed';
  return 'pending';
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.trim() !== '' ? v : null);

/** Stripe gives one name: split at the last space (stripe.md 1.5). */
export function splitName(name: unknown): { firstName: string | null; lastName: string | null } {
  const n = str(name)?.trim();
  if (!n) return { firstName: null, lastName: null };
  const i = n.lastIndexOf(' ');
  return i < 0 ? { firstName: n, lastName: null } : { firstName: n.slice(0, i).trim(), lastName: n.slice(i + 1) };
}

function address(name: unknown, a: Obj | null | undefined, email: unknown, phone: unknown): PayerAddress | null {
  if (!a && !str(name)) return null;
  const { firstName, lastName } = splitName(name);
  return {
    salutation: null,
    firstName,
    lastName,
    address1: str(a?.line1),
    address2: str(a?.line2),
    address3: null,
    zipCode: str(a?.postal_code),
    city: str(a?.city),
    state: str(a?.state),
    region: str(a?.state),
    iso2Code: str(a?.country)?.toUpperCase() ?? null,
    company: null,
    email: str(email),
    phone: str(phone),
    cellPhone: null,
  };
}

/** Shipping + billing details (a ConfirmationToken's, or a PaymentIntent's with its payment method) → Payer. */
export function toPayer(shipping: Obj | null | undefined, billing: Obj | null | undefined): Payer | null {
  if (!shipping && !billing) return null;
  const who = splitName(billing?.name ?? shipping?.name);
  return {
    salutation: null,
    firstName: who.firstName,
    lastName: who.lastName,
    email: str(billing?.email),
    phone: str(billing?.phone) ?? str(shipping?.phone),
    company: null,
    gender: null,
    dateOfBirth: null,
    billingAddress: billing ? address(billing.name, billing.address, billing.email, billing.phone) : null,
    shippingAddress: shipping ? address(shipping.name, shipping.address, null, shipping.phone) : null,
  };
}
