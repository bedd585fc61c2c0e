/** Merchant onboarding status machine (states.md 6). Pure. */

export const MERCHANT_STATUSES = ['pending', 'completed', 'enabled', 'restricted soon', 'restricted', 'rejected'] as const;
export type MerchantStatus = (typeof MERCHANT_STATUSES)[number];

/** states.md 6; `from: null` = no merchant yet (first onboarding call). */
export const MERCHANT_TRANSITIONS: ReadonlyArray<{ from: MerchantStatus | null; to: MerchantStatus }> = Object.freeze([
  { from: null, to: 'pending' },
  { from: 'pending', to: 'completed' },
  { from: 'pending', to: 'enabled' },
  { from: 'pending', to: 'restricted soon' },
  { from: 'pending', to: 'restricted' },
  { from: 'pending', to: 'rejected' },
  { from: 'completed', to: 'enabled' },
  { from: 'completed', to: 'restricted soon' },
  { from: 'completed', to: 'restricted' },
  { from: 'completed', to: 'rejected' },
  { from: 'enabled', to: 'restricted soon' },
  { from: 'enabled', to: 'restricted' },
  { from: 'enabled', to: 'rejected' },
  { from: 'restricted soon', to: 'enabled' },
  { from: 'restricted soon', to: 'restricted' },
  { from: 'restricted soon', to: 'rejected' },
  { from: 'restricted', to: 'enabled' },
  { from: 'restricted', to: 'restricted soon' },
  { from: 'restricted', to: 'rejected' },
] as Array<{ from: MerchantStatus | null; to: MerchantStatus }>);

export const PAYOUT_STATUSES: readonly MerchantStatus[] = ['completed', 'enabled', 'restricted soon'];

const SET: ReadonlySet<string> = new Set(MERCHANT_STATUSES);
export const isMerchantStatus = (v: unknown): v is MerchantStatus => typeof v === 'string' && SET.has(v);

export type MerchantTransitionResult =
  | { ok: true; changed: boolean; messages: Array<'MerchantAppOnboardingStatusChanged'> }
  | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string | null; to: string; message: string } };

/**
 * The one gate for merchant status: every change sends `MerchantAppOnboardingStatusChanged`; an event
 * reporting the current status is a no-op (nothing sent); anything else is illegal.
 * A new merchant always starts `pending`; a PSP reporting another status right away is a second transition.
 */
export function merchantTransition(from: MerchantStatus | string | null, to: MerchantStatus | string): MerchantTransitionResult {
  if ((from === null || isMerchantStatus(from)) && isMerchantStatus(to)) {
    if (from === to) return { ok: true, changed: false, messages: [] };
    if (MERCHANT_TRANSITIONS.some((r) => r.from === from && r.to === to)) {
      return { ok: true, changed: true, messages: ['MerchantAppOnboardingStatusChanged'] };
    }
  }
  const f = from === null ? '(none)' : from;
  return { ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Merchant status transition from "${f}" to "${to}" is not allowed.` } };
}

/** Payouts allowed for `completed`, `enabled`, `restricted soon` (states.md 6). */
export function canReceivePayouts(status: MerchantStatus | string | null | undefined): boolean {
  return typeof status === 'string' && (PAYOUT_STATUSES as readonly string[]).includes(status);
}
