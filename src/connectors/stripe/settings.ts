/**
 * The Stripe tenant configuration (stripe.md 1.1): field rules, capabilities (section 6), settings accessors and the
 * message keys this connector returns (rendered by the app's message catalog).
 */
import type { ConnectorCapabilities, PaymentMethodDefinition, SettingsAccessors, TenantSettings } from '../types.js';

export const SECRET_KEY_FORMAT = /^(sk|rk)_(test|live)_[A-Za-z0-9]{10,}$/;
export const PUBLISHABLE_KEY_FORMAT = /^pk_(test|live)_[A-Za-z0-9]{10,}$/;
export const WEBHOOK_SECRET_FORMAT = /^whsec_[A-Za-z0-9]{16,}$/;
const COLOR_FORMAT = /^#[0-9A-Fa-f]{6}$/;
const COUNTRY_FORMAT = /^[A-Z]{2}$/;
/** Stripe rejects `<`, `>`, `\`, `'`, `"`, `*` in statement descriptors. */
const DESCRIPTOR_SUFFIX_FORMAT = /^[^<>\\'"*]{1,22}$/;

/** Every configuration key of the form (catalog rule 7.3 checks configuration.json against this list). */
export const CONFIGURATION_KEYS = [
  'secretKey',
  'publishableKey',
  'webhookSecret',
  'connectWebhookSecret',
  'businessModel',
  'captureMode',
  'paymentMethods',
  'multicapture',
  'onboardingCountry',
  'paymentPageTitle',
  'brandFavicon',
  'payButtonColor',
  'statementDescriptorSuffix',
] as const;

/** Secret fields (log redaction of every line; the form's password widgets are encrypted at rest and masked). */
export const STRIPE_SECRET_FIELDS = ['secretKey', 'webhookSecret', 'connectWebhookSecret', 'clientSecret', 'client_secret'] as const;
export const WEBHOOK_SECRET_FIELDS = ['webhookSecret', 'connectWebhookSecret'] as const;

export const STRIPE_MESSAGE_KEYS = {
  invalidSecretKey: 'stripe_invalid_secret_key_format',
  invalidPublishableKey: 'stripe_invalid_publishable_key_format',
  keyModeMismatch: 'stripe_key_mode_mismatch',
  invalidWebhookSecret: 'stripe_invalid_webhook_secret_format',
  invalidColor: 'stripe_invalid_pay_button_color',
  invalidCountry: 'stripe_invalid_onboarding_country',
  countryRequired: 'stripe_onboarding_country_required',
  invalidDescriptor: 'stripe_invalid_statement_descriptor_suffix',
  invalidFavicon: 'stripe_invalid_favicon_url',
  keyRefused: 'stripe_key_refused',
  keyLacksPermission: 'stripe_key_lacks_permission',
  connectNotEnabled: 'stripe_connect_not_enabled',
} as const;

export const STRIPE_CAPABILITIES: ConnectorCapabilities = {
  preOrder: true,
  customer: 'server',
  transfers: { model: 'connected-accounts', needsSourcePayment: true, reversal: 'native' },
  onboarding: { strategy: 'redirect', linkExpires: true },
  // Per payment: `PspPayment.multipleCapturesAvailable` (multicapture on the card charge); the default is one final capture.
  captures: 'single-final',
  captureResult: 'sync',
  cancelResult: 'sync',
  refundResult: 'async',
  releaseRemainder: 'cancel',
  amountUpdate: 'before-authorization',
  amountUpdateMayChangeId: false,
  finalDeclines: false,
  automaticCapture: { supported: true, mayFail: false },
  confirmation: 'server-confirm',
  paymentIdentity: 'psp-id-at-creation',
  paymentPage: { requiresJavaScript: true, iframeable: true },
  webhooks: { eventsPerRequest: 'one', signature: 'timestamped', secretsPerTenant: 2, endpointTenantInUrl: true },
  dashboardOperations: ['capture', 'cancel', 'refund'],
  idempotency: { maxKeyLength: 255, retentionHours: 24 },
};

const s = (v: unknown): string => (typeof v === 'string' ? v : '');
const given = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

export const modeOfKey = (key: string): 'test' | 'live' | null => (/_live_/.test(key.slice(0, 8)) ? 'live' : /_test_/.test(key.slice(0, 8)) ? 'test' : null);
export const isMarketplace = (v: TenantSettings): boolean => v.businessModel === 'marketplace';
export const isLiveSettings = (v: TenantSettings): boolean => modeOfKey(s(v.secretKey)) === 'live';

export const stripeSettings: SettingsAccessors = {
  captureMode: (v) => (v.captureMode === 'automatic' ? 'automatic' : 'manual'),
  isLive: isLiveSettings,
  webhookSecretFields: WEBHOOK_SECRET_FIELDS,
  marketplace: isMarketplace,
};

/** Format rules beyond configuration.json: field id → message key. */
export function validateStripeFormats(v: TenantSettings): Record<string, string> {
  const errors: Record<string, string> = {};
  const K = STRIPE_MESSAGE_KEYS;
  if (given(v.secretKey) && !SECRET_KEY_FORMAT.test(s(v.secretKey))) errors.secretKey = K.invalidSecretKey;
  if (given(v.publishableKey) && !PUBLISHABLE_KEY_FORMAT.test(s(v.publishableKey))) errors.publishableKey = K.invalidPublishableKey;
  if (!errors.secretKey && !errors.publishableKey && given(v.secretKey) && given(v.publishableKey) && modeOfKey(s(v.secretKey)) !== modeOfKey(s(v.publishableKey))) {
    errors.publishableKey = K.keyModeMismatch;
  }
  for (const f of WEBHOOK_SECRET_FIELDS) if (given(v[f]) && !WEBHOOK_SECRET_FORMAT.test(s(v[f]))) errors[f] = K.invalidWebhookSecret;
  if (given(v.payButtonColor) && !COLOR_FORMAT.test(s(v.payButtonColor))) errors.payButtonColor = K.invalidColor;
  if (given(v.onboardingCountry) && !COUNTRY_FORMAT.test(s(v.onboardingCountry))) errors.onboardingCountry = K.invalidCountry;
  if (isMarketplace(v) && !given(v.onboardingCountry)) errors.onboardingCountry = K.countryRequired;
  if (given(v.statementDescriptorSuffix) && !DESCRIPTOR_SUFFIX_FORMAT.test(s(v.statementDescriptorSuffix))) errors.statementDescriptorSuffix = K.invalidDescriptor;
  if (given(v.brandFavicon)) {
    let ok = false;
    try {
      ok = new URL(s(v.brandFavicon)).protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) errors.brandFavicon = K.invalidFavicon;
  }
  return errors;
}

/** The payment methods a configuration enables (1.1 `paymentMethods`). */
export function stripePaymentMethods(v: TenantSettings, jsUrl: string): PaymentMethodDefinition[] {
  const chosen = Array.isArray(v.paymentMethods) && v.paymentMethods.length > 0 ? v.paymentMethods : ['stripe'];
  const psp = { publishableKey: s(v.publishableKey), isLive: isLiveSettings(v) };
  const out: PaymentMethodDefinition[] = [];
  if (chosen.includes('stripe')) out.push({ name: 'Stripe', strategy: 'hosted-payment-page', paymentServiceProviderData: psp });
  if (chosen.includes('stripe-express')) out.push({ name: 'Stripe Express', strategy: 'express-checkout', scripts: [{ url: jsUrl, queryParams: {} }], paymentServiceProviderData: psp });
  return out;
}

/** Stripe decline and error codes → message keys the payment page knows (never Stripe's text). */
const DECLINE_KEYS: Record<string, string> = {
  insufficient_funds: 'insufficient_funds',
  expired_card: 'expired_card',
  incorrect_cvc: 'incorrect_cvc',
  invalid_cvc: 'incorrect_cvc',
  incorrect_number: 'invalid_number',
  invalid_number: 'invalid_number',
  invalid_expiry_month: 'expired_card',
  invalid_expiry_year: 'expired_card',
  authentication_required: 'authentication_failed',
  payment_intent_authentication_failure: 'authentication_failed',
  card_declined: 'card_declined',
  generic_decline: 'card_declined',
  do_not_honor: 'card_declined',
  lost_card: 'card_declined',
  stolen_card: 'card_declined',
  fraudulent: 'card_declined',
  pickup_card: 'card_declined',
  card_velocity_exceeded: 'card_declined',
};

export const stripeDeclineMessageKey = (code: string): string => DECLINE_KEYS[code] ?? 'card_declined';
