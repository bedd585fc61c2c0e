/**
 * The connector port: what every PSP integration provides, plus optional capabilities it declares
 * (in the spirit of Spryker's optional plugin interfaces / Hyperswitch's connector traits).
 * Use cases depend only on this interface; `src/connectors/<psp>/` implements it.
 */

export interface ConnectorCapabilities {
  preOrder: boolean;
  customer: boolean;
  transfers: boolean;
  onboarding: boolean;
}

export type CheckoutStrategy = 'hosted-payment-page' | 'express-checkout' | 'embedded';

/** A payment method the configuration enables (messages.md 3.1). */
export interface PaymentMethodDefinition {
  /** Name shown in the shop, e.g. `Credit Card`. */
  name: string;
  strategy: CheckoutStrategy;
  scripts?: Array<{ url: string; queryParams: Record<string, string> }>;
  paymentServiceProviderData?: Record<string, unknown>;
}

/** Decrypted, merged tenant configuration values keyed by the form's property ids. */
export type TenantSettings = Record<string, unknown>;

export type CredentialCheck =
  | { ok: true }
  | { ok: false; kind: 'refused'; field: string; message: string }
  | { ok: false; kind: 'unreachable' };

export interface ConfigurationHooks {
  /** Connector-specific format rules (beyond configuration.json): field id → message key of the message catalog. */
  validateFormats(values: TenantSettings): Record<string, string>;
  /** Field ids that are secret beyond `password` widgets. */
  readonly extraSecretFields: readonly string[];
  /** Live credential check against the PSP (15 s budget). */
  checkCredentials(values: TenantSettings, signal: AbortSignal): Promise<CredentialCheck>;
  /** Called after the configuration is stored (e.g. register the webhook endpoint at the PSP). Best effort: failures are logged. */
  afterConfigured(values: TenantSettings, ctx: { tenantIdentifier: string; appBaseUrl: string }, signal: AbortSignal): Promise<void>;
  /** The payment methods this configuration enables. */
  paymentMethods(values: TenantSettings): PaymentMethodDefinition[];
}

export interface Connector extends ConfigurationHooks, PaymentOperations {
  /** Connector id as in `CONNECTOR` and `config/app/connectors/<id>/`. */
  readonly id: string;
  /** Provider name announced with payment methods, e.g. `Sandbox`. */
  readonly providerName: string;
  readonly capabilities: ConnectorCapabilities;
  /** Present when `capabilities.customer`. */
  readonly customer?: CustomerCapability;
  /** Present when `capabilities.transfers`. */
  readonly transfers?: TransferCapability;
  /** Present when `capabilities.onboarding`. */
  readonly onboarding?: OnboardingCapability;
}

// ---------------------------------------------------------------------------------------------
// Payment operations (issue: hosted payment page). Every call takes the tenant's decrypted settings,
// an idempotency key the caller stored before the call, and an AbortSignal carrying the 15 s budget.
// Failures are returned as values (PspFailure), never thrown, except programming errors.
// ---------------------------------------------------------------------------------------------

export interface CallOptions {
  idempotencyKey: string;
  signal: AbortSignal;
}

/** Why a PSP call did not succeed. `declined` = business refusal (card, amount, state at the PSP). */
export type PspFailure =
  | { kind: 'declined'; code: string; message: string }
  | { kind: 'conflict'; code: string; message: string }
  | { kind: 'error'; message: string }
  | { kind: 'timeout' };

export type PspResult<T> = { ok: true; value: T } | { ok: false; failure: PspFailure };

/**
 * What the PSP says about a payment, mapped onto the app's vocabulary:
 * - `pending`: not authorized yet, shopper may still pay (or retry after a retryable decline: `lastDecline` set)
 * - `requires_action`: shopper must complete a challenge at `actionUrl`
 * - `authorized` / `captured` (automatic capture) / `capture_failed` (authorized, automatic capture failed)
 * - `failed`: can no longer be authorized
 * - `canceled`
 */
export type PspPaymentState = 'pending' | 'requires_action' | 'authorized' | 'captured' | 'capture_failed' | 'failed' | 'canceled';

export interface PspPayment {
  id: string;
  state: PspPaymentState;
  amount: number;
  currency: string;
  amountCapturable: number;
  amountCaptured: number;
  amountRefunded: number;
  actionUrl?: string;
  lastDecline?: { code: string; message: string };
  /** Public details for `PaymentCreated/Updated.details` (card brand, last4, ...). Never secrets. */
  publicDetails: Record<string, unknown>;
  /** What a front end needs for pre-order confirmation (e.g. clientSecret, checkoutUrl). */
  preOrderPaymentData: Record<string, unknown>;
}

export interface CreatePaymentRequest {
  tenantIdentifier: string;
  amount: number;
  currency: string;
  orderReference?: string;
  captureMode: 'manual' | 'automatic';
  /** Where the PSP sends the browser back; the PSP appends `transactionId` if missing. */
  returnUrl: string;
  metadata: Record<string, string>;
}

export type CaptureOutcome = { status: 'succeeded' | 'pending'; pspReference?: string };
export type RefundOutcome = { pspRefundId: string; status: 'pending' | 'processing' | 'succeeded' | 'failed' | 'canceled' };

/** A parsed, not yet verified webhook (flows.md 12 step 2). */
export interface ParsedWebhook {
  eventId: string;
  eventType: string;
  mode: 'test' | 'live';
  /** PSP object ids the event concerns (payment, refund, transfer, account); the first is the primary one. */
  objectIds: string[];
  /** Unverified tenant hint from PSP metadata. */
  tenantHint?: string;
  createdAt: Date;
}

/** What a verified webhook means for the app (connector maps PSP vocabulary to these). */
export type WebhookOutcome =
  | { kind: 'payment'; transactionId: string; state: PspPaymentState; amountCaptured?: number; decline?: { code: string; message: string }; publicDetails?: Record<string, unknown> }
  | { kind: 'capture'; transactionId: string; amountCaptured: number; succeeded: boolean; reason?: string }
  | { kind: 'refund'; transactionId: string; pspRefundId: string; amount: number; status: RefundOutcome['status']; reason?: string }
  | { kind: 'transfer'; pspTransferId: string; status: 'succeeded' | 'failed'; reversalId?: string }
  | { kind: 'account'; accountId: string; merchantStatus: 'pending' | 'completed' | 'enabled' | 'restricted soon' | 'restricted' | 'rejected' }
  | { kind: 'ignored'; reason: string };

/** What the hosted payment page needs to render the PSP's form. */
export interface PaymentPageForm {
  /** HTML fragment of the PSP's card form (no scripts), posting straight to the PSP. */
  html: string;
  /** Origins for the page's CSP `form-action` / `script-src` / `frame-src`. */
  formActionOrigins: string[];
}

export interface PaymentOperations {
  createPayment(settings: TenantSettings, req: CreatePaymentRequest, opts: CallOptions): Promise<PspResult<PspPayment>>;
  getPayment(settings: TenantSettings, transactionId: string, signal: AbortSignal): Promise<PspResult<PspPayment>>;
  /** Changes the amount of a payment not yet paid; may return a new id. */
  updatePaymentAmount(settings: TenantSettings, transactionId: string, amount: number, opts: CallOptions): Promise<PspResult<PspPayment>>;
  capture(settings: TenantSettings, transactionId: string, amount: number, opts: CallOptions): Promise<PspResult<CaptureOutcome>>;
  cancel(settings: TenantSettings, transactionId: string, opts: CallOptions): Promise<PspResult<{ canceled: true }>>;
  refund(settings: TenantSettings, transactionId: string, amount: number, opts: CallOptions): Promise<PspResult<RefundOutcome>>;
  /** Parses a raw webhook body (no verification yet). null = unparseable. */
  parseWebhook(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): ParsedWebhook | null;
  /** Verifies the signature with the current and previous webhook secrets (constant time, tolerance). */
  verifyWebhook(rawBody: Buffer, headers: Record<string, string | string[] | undefined>, secrets: string[], now: Date): boolean;
  /** Maps a verified webhook body to an outcome. */
  webhookOutcome(rawBody: Buffer): WebhookOutcome;
  /** The PSP's card form for the hosted page. */
  paymentPageForm(settings: TenantSettings, payment: PspPayment, ctx: { locale: string }): PaymentPageForm;
  /** Webhook secret(s) field id in the settings. */
  readonly webhookSecretField: string;
}

export interface PayerAddress {
  salutation: string | null;
  firstName: string | null;
  lastName: string | null;
  address1: string | null;
  address2: string | null;
  address3: string | null;
  zipCode: string | null;
  city: string | null;
  state: string | null;
  region: string | null;
  iso2Code: string | null;
  company: string | null;
  email: string | null;
  phone: string | null;
  cellPhone: string | null;
}

export interface Payer {
  salutation: string | null;
  firstName: string | null;
  lastName: string | null;
  email: string | null;
  phone: string | null;
  company: string | null;
  gender: string | null;
  dateOfBirth: string | null;
  billingAddress: PayerAddress | null;
  shippingAddress: PayerAddress | null;
}

/** Optional capability: customer lookup (express checkout). */
export interface CustomerCapability {
  getPayer(settings: TenantSettings, transactionId: string, signal: AbortSignal): Promise<PspResult<Payer | null>>;
}

/** Optional capability: marketplace transfers. */
export interface TransferCapability {
  createTransfer(settings: TenantSettings, req: { amount: number; currency: string; destinationAccountId: string; transferGroup?: string }, opts: CallOptions): Promise<PspResult<{ pspTransferId: string }>>;
  reverseTransfer(settings: TenantSettings, pspTransferId: string, amount: number, opts: CallOptions): Promise<PspResult<{ pspReversalId: string }>>;
}

/** Optional capability: merchant onboarding. */
export interface OnboardingCapability {
  createAccount(settings: TenantSettings, req: { merchantReference: string; name?: string; tenantIdentifier: string }, opts: CallOptions): Promise<PspResult<{ accountId: string; status: 'pending' | 'completed' | 'enabled' | 'restricted soon' | 'restricted' | 'rejected' }>>;
  onboardingLink(settings: TenantSettings, accountId: string, urls: { successUrl: string; refreshUrl: string }, signal: AbortSignal): Promise<PspResult<{ url: string }>>;
}
