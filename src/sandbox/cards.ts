/**
 * Test cards (sandbox-psp.md "Test cards"): what a card number does.
 */

export type CardBehavior = 'normal' | 'capture_fails' | 'refund_fails';

export type CardDecision =
  | { kind: 'authorize'; behavior: CardBehavior }
  | { kind: 'decline'; code: string; message: string } // retryable
  | { kind: 'fail'; code: string; message: string } // final
  | { kind: 'challenge' }
  | { kind: 'reject'; code: string; message: string }; // invalid card data, no attempt counted

export const DECLINE_MESSAGES: Record<string, string> = {
  card_declined: 'Your card was declined.',
  insufficient_funds: 'Your card has insufficient funds.',
  card_blocked: 'Your card is blocked.',
  authentication_failed: 'The card holder did not complete the authentication.',
  invalid_number: 'Your card number is incorrect.',
  invalid_expiry: 'Your card expiry date is invalid.',
  expired_card: 'Your card has expired.',
  invalid_cvc: 'Your card security code is invalid.',
  capture_failed: 'The capture failed.',
  too_many_declines: 'Too many declined attempts; this payment can no longer succeed.',
  refund_failed: 'The refund failed.',
};

const decision = (kind: 'decline' | 'fail' | 'reject', code: string): CardDecision => ({ kind, code, message: DECLINE_MESSAGES[code]! });

export function luhn(number: string): boolean {
  let sum = 0;
  for (let i = 0; i < number.length; i++) {
    let d = number.charCodeAt(number.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export function brandOf(number: string): string {
  if (/^4/.test(number)) return 'visa';
  if (/^(5[1-5]|2[2-7])/.test(number)) return 'mastercard';
  if (/^3[47]/.test(number)) return 'amex';
  return 'unknown';
}

export interface CardInput {
  number: string;
  expMonth: number;
  expYear: number;
  cvc: string;
}

/** Normalises form/JSON card input: strips spaces from the number, parses month/year. */
export function normaliseCard(raw: { number?: unknown; expMonth?: unknown; expYear?: unknown; cvc?: unknown }): CardInput {
  const num = (v: unknown): number => (typeof v === 'number' ? v : /^\s*\d{1,4}\s*$/.test(String(v ?? '')) ? Number(String(v).trim()) : NaN);
  let expYear = num(raw.expYear);
  if (expYear >= 0 && expYear < 100) expYear += 2000;
  return { number: String(raw.number ?? '').replace(/[\s-]/g, ''), expMonth: num(raw.expMonth), expYear, cvc: String(raw.cvc ?? '').trim() };
}

export function decideCard(card: CardInput, now = new Date()): CardDecision {
  if (!/^\d{12,19}$/.test(card.number) || !luhn(card.number)) return decision('reject', 'invalid_number');
  if (!Number.isInteger(card.expMonth) || card.expMonth < 1 || card.expMonth > 12 || !Number.isInteger(card.expYear)) return decision('reject', 'invalid_expiry');
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth() + 1;
  if (card.expYear < y || (card.expYear === y && card.expMonth < m)) return decision('reject', 'expired_card');
  if (!/^\d{3,4}$/.test(card.cvc)) return decision('reject', 'invalid_cvc');
  switch (card.number) {
    case '4000000000000002':
      return decision('decline', 'card_declined');
    case '4000000000009995':
      return decision('decline', 'insufficient_funds');
    case '4100000000000019':
      return decision('fail', 'card_blocked');
    case '4000002500003155':
      return { kind: 'challenge' };
    case '4000000000000341':
      return { kind: 'authorize', behavior: 'capture_fails' };
    case '4000000000005126':
      return { kind: 'authorize', behavior: 'refund_fails' };
    default:
      return { kind: 'authorize', behavior: 'normal' };
  }
}

/** After this many retryable declines the payment fails for good. */
export const MAX_RETRYABLE_DECLINES = 5;
