/**
 * Stripe's "smallest currency unit" versus ISO 4217 minor units (stripe.md 3.8). The app keeps ISO minor units; this
 * table is the only place that converts. [unconfirmed] list of special cases: kept here, in one place.
 */

/** ISO zero-decimal currencies that Stripe takes with two decimals (the amount must be a multiple of 100). */
const ISO_ZERO_STRIPE_TWO = new Set(['isk', 'ugx']);
/** Three-decimal currencies: same unit as ISO, but Stripe requires the last digit to be 0. */
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);
/** Two-decimal in ISO and at Stripe, but paid out in whole units: charges are unchanged (documented only). */
export const WHOLE_UNIT_PAYOUTS: ReadonlySet<string> = new Set(['huf', 'twd']);

const norm = (currency: string): string => currency.trim().toLowerCase();

/** ISO minor units → Stripe amount, or null when Stripe cannot take the amount in this currency. */
export function toStripeAmount(amount: number, currency: string): number | null {
  if (!Number.isSafeInteger(amount) || amount < 0) return null;
  const c = norm(currency);
  if (ISO_ZERO_STRIPE_TWO.has(c)) return amount * 100;
  if (THREE_DECIMAL.has(c) && amount % 10 !== 0) return null;
  return amount;
}

/** Stripe amount → ISO minor units (ISK/UGX amounts with a fraction are rounded down: Stripe only accepts whole units). */
export function fromStripeAmount(amount: number, currency: string): number {
  const c = norm(currency);
  if (ISO_ZERO_STRIPE_TWO.has(c)) return Math.floor(amount / 100);
  return amount;
}

/** Lower-case ISO code as Stripe takes it. */
export const stripeCurrency = norm;
