/**
 * The connector port: what every PSP integration provides, plus optional capabilities it declares
 * (in the spirit of Spryker's optional plugin interfaces / Hyperswitch's connector traits).
 * Use cases depend only on this interface; `src/connectors/<psp>/` implements it.
 */

/** How captures work for one payment (capability `captures`, stripe.md 6). */
export type CaptureModel = 'multiple' | 'single-final';

/**
 * What a connector can do and how (connectors/README.md 1, stripe.md 6). Use cases read these, never the connector id.
 */
export interface ConnectorCapabilities {
  preOrder: boolean;
  /** `server`: the PSP answers the payer; `client-supplied`: the storefront sends it; false: no lookup. */
  customer: 'server' | 'client-supplied' | false;
  transfers: false | { model: 'connected-accounts' | 'balance-accounts'; needsSourcePayment: boolean; reversal: 'native' | 'compensating' };
  onboarding: false | { strategy: 'redirect' | 'iframe'; linkExpires: boolean };
  /** Default capture model; the per-payment truth is `PspPayment.multipleCapturesAvailable`. */
  captures: CaptureModel;
  captureResult: 'sync' | 'async';
  cancelResult: 'sync' | 'async';
  refundResult: 'sync' | 'async';
  /** How the uncaptured remainder is released (flow 9.5). */
  releaseRemainder: 'cancel' | 'final-capture' | 'none';
  amountUpdate: 'before-authorization' | 'after-authorization' | 'none';
  amountUpdateMayChangeId: boolean;
  /** Whether the PSP itself reports "can no longer be authorized"; false = the app applies the declined-attempts cap. */
  finalDeclines: boolean;
  automaticCapture: { supported: boolean; mayFail: boolean };
  /** `server-confirm`: confirm-pre-order calls `confirmPayment` with the storefront's data. */
  confirmation: 'none' | 'server-confirm';
  paymentIdentity: 'psp-id-at-creation' | 'merchant-reference';
  paymentPage: { requiresJavaScript: boolean; iframeable: boolean };
  webhooks: { eventsPerRequest: 'one' | 'many'; signature: 'timestamped' | 'untimestamped'; secretsPerTenant: 1 | 2; endpointTenantInUrl: boolean };
  dashboardOperations: ReadonlyArray<'capture' | 'cancel' | 'refund'>;
  idempotency: { maxKeyLength: number; retentionHours: number | null };
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

export interface ConfigureContext {
  tenantIdentifier: string;
  appBaseUrl: string;
  appIdentifier?: string;
}

export interface ConfigurationHooks {
  /** Connector-specific format rules (beyond configuration.json): field id → message key of the message catalog. */
  validateFormats(values: TenantSettings): Record<string, string>;
  /**
   * Field ids that are secret beyond `password` widgets. Together with the password fields they are encrypted at rest,
   * masked in answers and messages, and redacted from every log line.
   */
  readonly extraSecretFields: readonly string[];
  /** Live credential check against the PSP (15 s budget). */
  checkCredentials(values: TenantSettings, signal: AbortSignal): Promise<CredentialCheck>;
  /**
   * Called after the configuration is stored (e.g. register the webhook endpoint at the PSP). Returns settings to
   * persist (PSP-generated webhook secrets, endpoint ids: P3). Failures are logged; the configuration stays saved.
   */
  afterConfigured(values: TenantSettings, ctx: ConfigureContext, signal: AbortSignal): Promise<{ settingsPatch?: TenantSettings } | void>;
  /** Called before a disconnect is stored (best effort: e.g. delete the webhook endpoints the app registered). */
  beforeDisconnect?(values: TenantSettings, ctx: ConfigureContext, signal: AbortSignal): Promise<void>;
  /** The payment methods this configuration enables. */
  paymentMethods(values: TenantSettings): PaymentMethodDefinition[];
}

/** Settings accessors: use cases ask these instead of reading PSP field names. */
export interface SettingsAccessors {
  captureMode(settings: TenantSettings): 'manual' | 'automatic';
  isLive(settings: TenantSettings): boolean;
  /** Field ids holding webhook signing secrets (current values; the store adds the previous ones during rotation). */
  readonly webhookSecretFields: readonly string[];
  /** Whether this configuration runs a marketplace (transfers and merchant onboarding in use). */
  marketplace(settings: TenantSettings): boolean;
}

export interface Connector extends ConfigurationHooks, PaymentOperations {
  /** Connector id as in `CONNECTOR` and `config/app/connectors/<id>/`. */
  readonly id: string;
  /** Provider name announced with payment methods, e.g. `Sandbox`. */
  readonly providerName: string;
  readonly capabilities: ConnectorCapabilities;
  readonly settings: SettingsAccessors;
  /** Present when `capabilities.customer`. */
  readonly customer?: CustomerCapability;
  /** Present when `capabilities.transfers`. */
  readonly transfers?: TransferCapability;
  /** Present when `capabilities.onboarding`. */
  readonly onboarding?: OnboardingCapability;
  /**
   * The configuration form's property ids, when the connector declares them: the catalog checks its
   * `configuration.json` against them at load (catalog rule 7.3).
   */
  readonly configurationKeys?: readonly string[];
  /**
   * With `capabilities.finalDeclines === false`: declined attempts after which the app cancels the payment at the PSP
   * and reports `authorization_failed` (stripe.md 3.4). Unset: the app's default.
   */
  readonly maxDeclinedAttempts?: number;
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
  lastDecline?: { code: string; message: string; attemptId?: string };
  /** Public details for `PaymentCreated/Updated.details` (card brand, last4, ...). Never secrets. */
  publicDetails: Record<string, unknown>;
  /** What a front end needs for pre-order confirmation (e.g. clientSecret, publishableKey, checkoutUrl). */
  preOrderPaymentData: Record<string, unknown>;
  /** Whether more than one capture is possible on this payment (capability `captures`, per payment). */
  multipleCapturesAvailable?: boolean;
  /** Opaque PSP data stored with the payment (`payments.psp_data`); only the connector reads it. */
  pspData?: Record<string, unknown>;
}

export interface CreatePaymentRequest {
  tenantIdentifier: string;
  /** The app's payment UUID (stored with the PSP's answer; the PSP's metadata and, for pre-order payments, its key). */
  paymentId?: string;
  amount: number;
  currency: string;
  orderReference?: string;
  captureMode: 'manual' | 'automatic';
  /** Where the PSP sends the browser back (`/app-payment/redirect?transactionId=..&tenantIdentifier=..` once known). */
  returnUrl: string;
  metadata: Record<string, string>;
  /** The order as the shop sent it (shipping, e-mail, ...), for PSPs that take them. */
  orderData?: Record<string, unknown>;
}

/**
 * A capture's result. Cumulative PSPs (Stripe) report `amountCaptured` (all captures so far); per-modification PSPs
 * (Adyen) report this capture's `amount` and `pspCaptureId` (P9). `pending`: the result arrives by webhook.
 */
export type CaptureOutcome = { status: 'succeeded' | 'pending'; pspReference?: string; amountCaptured?: number; amount?: number; pspCaptureId?: string; finalCapture?: boolean };
export type CancelOutcome = { status: 'canceled' | 'pending'; amountCaptured?: number };
export type RefundOutcome = { pspRefundId: string; status: 'pending' | 'processing' | 'succeeded' | 'failed' | 'canceled' };

/** The whole webhook request (P4, P8): the connector reads what it needs. */
export interface WebhookRequest {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  query: Record<string, unknown>;
  rawBody: Buffer;
}

/** One parsed, not yet verified webhook event (flows.md 12 step 2). */
export interface ParsedWebhook {
  eventId: string;
  eventType: string;
  mode: 'test' | 'live';
  /** PSP object ids the event concerns (payment, refund, transfer, account); the first is the primary one. */
  objectIds: string[];
  /** Unverified tenant hint from PSP metadata. */
  tenantHint?: string;
  createdAt: Date;
  /** The event's own bytes, stored in the inbox and handed back to `webhookOutcome` (the whole body for one-event PSPs). */
  payload: Buffer;
}

/** A parsed webhook request: one or many events, and the tenant the endpoint URL names (1.10). */
export interface ParsedWebhookRequest {
  events: ParsedWebhook[];
  /** Tenant named by the endpoint URL (`?endpoint=<tenant>`); verification then uses that tenant's secrets. */
  endpointTenant?: string;
}

/** What the app knows of the payment a webhook concerns when it asks for the outcome (context snapshot). */
export interface WebhookContext {
  payment: { status: string; amount: number; amountCaptured: number; amountRefunded: number; pspData: Record<string, unknown> } | null;
}

/** What a verified webhook means for the app (connector maps PSP vocabulary to these). */
export type WebhookOutcome =
  | { kind: 'payment'; transactionId: string; state: PspPaymentState; amountCaptured?: number; decline?: { code: string; message: string; attemptId?: string }; publicDetails?: Record<string, unknown>; multipleCapturesAvailable?: boolean }
  | { kind: 'capture'; transactionId: string; amountCaptured: number; succeeded: boolean; reason?: string; final?: boolean }
  | { kind: 'refund'; transactionId: string; pspRefundId: string; amount: number; status: RefundOutcome['status']; reason?: string; refundId?: string }
  | { kind: 'transfer'; pspTransferId: string; status: 'succeeded' | 'failed'; reversalId?: string }
  | { kind: 'account'; accountId: string; merchantStatus: 'pending' | 'completed' | 'enabled' | 'restricted soon' | 'restricted' | 'rejected' }
  | { kind: 'ignored'; reason: string };

/** The acknowledgement the PSP expects (status and body are the connector's choice: P8). */
export interface WebhookAck {
  status: number;
  contentType: string;
  body: string;
}

/** Content-Security-Policy sources a checkout needs on `/app-payment` (P6). */
export interface CspSources {
  script?: string[];
  frame?: string[];
  connect?: string[];
  img?: string[];
  formAction?: string[];
}

/**
 * What `/app-payment` shows (P6):
 * - `page`: the app renders its page around the connector's HTML form, which works without JavaScript; an optional
 *   `script` only improves it where scripts run (progressive enhancement: tagged with the per-response nonce, no
 *   `<noscript>` notice);
 * - `sdk`: as `page`, plus an inline script the app tags with a per-response CSP nonce (and external scripts);
 * - `redirect`: a PSP-hosted page.
 */
export type CheckoutView =
  | { kind: 'page'; html: string; csp: CspSources; script?: string }
  | { kind: 'sdk'; html: string; script: string; externalScripts: string[]; csp: CspSources; noscriptMessageKey?: string }
  | { kind: 'redirect'; url: string };

export interface CheckoutContext {
  locale: string;
  /** `{APP_BASE_URL}/app-payment/redirect?transactionId=..&tenantIdentifier=..`. */
  returnUrl: string;
  /** `/app-payment` itself (back from a failed attempt). */
  pageUrl: string;
  cancelUrl: string | null;
  amountLabel: string;
  pspData: Record<string, unknown>;
  /**
   * The page shows a decline message (element `messageId`) that concerns one of the card fields: a form the connector
   * renders marks that field `aria-invalid` and points its `aria-describedby` at the message. Absent: no field error.
   */
  fieldError?: { field: 'number' | 'expiry' | 'cvc'; messageId: string };
  /**
   * For a form that reports a retryable decline in place (without leaving the page, so what was typed stays): the text
   * the page shows for a decline message key (a `declineMessageKey` answer), from the app's catalog, and the card field
   * it concerns. The element holding the text gets the id `messageId` (the field's `aria-describedby`). Absent: the
   * form leaves the page for every outcome.
   */
  inPageDeclines?: { messageId: string; notice(messageKey: string): { text: string; field: 'number' | 'expiry' | 'cvc' | null } };
}

export interface PaymentOperations {
  createPayment(settings: TenantSettings, req: CreatePaymentRequest, opts: CallOptions): Promise<PspResult<PspPayment>>;
  getPayment(settings: TenantSettings, transactionId: string, signal: AbortSignal): Promise<PspResult<PspPayment>>;
  /** Changes the amount of a payment not yet paid; may return a new id. */
  updatePaymentAmount(settings: TenantSettings, transactionId: string, amount: number, opts: CallOptions & { paymentId?: string }): Promise<PspResult<PspPayment>>;
  /** Server-side confirmation (capability `confirmation = server-confirm`, P1). */
  confirmPayment?(settings: TenantSettings, transactionId: string, req: { amount: number; clientData: Record<string, unknown>; returnUrl: string }, opts: CallOptions): Promise<PspResult<PspPayment>>;
  capture(settings: TenantSettings, transactionId: string, amount: number, opts: CallOptions & { final?: boolean; captureId?: string }): Promise<PspResult<CaptureOutcome>>;
  cancel(settings: TenantSettings, transactionId: string, opts: CallOptions & { reason?: 'abandoned' | 'requested_by_customer' }): Promise<PspResult<CancelOutcome>>;
  refund(settings: TenantSettings, transactionId: string, amount: number, opts: CallOptions & { refundId?: string; orderReference?: string }): Promise<PspResult<RefundOutcome>>;
  /** Current state of one refund (reconciliation); optional. */
  getRefund?(settings: TenantSettings, transactionId: string, ref: { pspRefundId?: string; refundId: string }, signal: AbortSignal): Promise<PspResult<RefundOutcome | null>>;
  /** Parses a webhook request (no verification yet). null = unparseable. */
  parseWebhook(req: WebhookRequest): ParsedWebhookRequest | null;
  /** Verifies the request's signature with the secrets given (current, previous, Connect); constant time, tolerance. */
  verifyWebhook(req: WebhookRequest, secrets: string[], now: Date): boolean;
  /** Maps one verified event (its stored payload) to an outcome, given what the app knows of the payment. */
  webhookOutcome(payload: Buffer, context: WebhookContext): WebhookOutcome;
  /** The acknowledgement for an accepted request. */
  webhookAck(): WebhookAck;
  /** The transaction id the browser's return to `/app-payment/redirect` names (the PSP's own parameters first). */
  returnTransactionId(query: Record<string, unknown>): string | null;
  /** What the hosted page shows for a payment the shopper can still pay. */
  checkout(settings: TenantSettings, payment: PspPayment, ctx: CheckoutContext): CheckoutView;
  /** Maps a PSP decline code to a message key of the app's catalog (never free text). */
  declineMessageKey(code: string): string;
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
  /** `clientData`: what the storefront sent with the lookup (e.g. `preOrderPaymentData.confirmationTokenId`), P2. */
  getPayer(settings: TenantSettings, transactionId: string, clientData: Record<string, unknown>, signal: AbortSignal): Promise<PspResult<Payer | null>>;
}

/** Optional capability: marketplace transfers. */
export interface TransferCapability {
  createTransfer(
    settings: TenantSettings,
    req: { amount: number; currency: string; destinationAccountId: string; transferGroup?: string; sourceTransactionId?: string; payoutId?: string; tenantIdentifier?: string; merchantReference?: string },
    opts: CallOptions,
  ): Promise<PspResult<{ pspTransferId: string }>>;
  reverseTransfer(settings: TenantSettings, pspTransferId: string, amount: number, opts: CallOptions & { reversalId?: string; tenantIdentifier?: string }): Promise<PspResult<{ pspReversalId: string }>>;
}

export type MerchantStatus = 'pending' | 'completed' | 'enabled' | 'restricted soon' | 'restricted' | 'rejected';

/** Optional capability: merchant onboarding. */
export interface OnboardingCapability {
  createAccount(settings: TenantSettings, req: { merchantReference: string; name?: string; tenantIdentifier: string }, opts: CallOptions): Promise<PspResult<{ accountId: string; status: MerchantStatus }>>;
  onboardingLink(settings: TenantSettings, accountId: string, urls: { successUrl: string; refreshUrl: string }, signal: AbortSignal): Promise<PspResult<{ url: string }>>;
}

// ---------------------------------------------------------------------------------------------
// Connector modules and the registry (connectors/README.md 1)
// ---------------------------------------------------------------------------------------------

/** What the app gives a connector module to build its runtime connector. No PSP-specific fields. */
export interface ConnectorEnv {
  /** The whole parsed configuration; a module reads its own variables from it. */
  config: import('../config.js').AppConfig;
  /** Where this process listens (in-process routes of a connector, e.g. the sandbox PSP). */
  listenUrl: () => string;
  /**
   * This process's own HTTP routes called without a socket, once the server is up (undefined before, and where no
   * server runs, e.g. the CLI): a connector whose PSP is mounted in-process calls it through this.
   */
  inProcessHttp?: () => InProcessHttp | undefined;
  log: import('pino').Logger;
}

/** One request to this process's own routes, dispatched in memory: the answer's status and body as text. */
export type InProcessHttp = (req: { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: string }) => Promise<{ status: number; text: string }>;

/** A route group a connector serves (registered only when the connector is enabled). */
export type ConnectorRoutes = (app: import('fastify').FastifyInstance, deps: import('../app/context.js').AppDeps) => Promise<void>;

/** One connector folder's export: the only thing the registry imports. */
export interface ConnectorModule {
  readonly id: string;
  readonly providerName: string;
  /** Static secret field ids (encryption at rest, masking and log redaction) beyond the form's password fields. */
  readonly secretFields: readonly string[];
  create(env: ConnectorEnv): Connector;
  /** Routes only this connector needs (e.g. the in-process sandbox PSP). */
  routes?(env: ConnectorEnv): ConnectorRoutes | null;
  /** Background workers only this connector needs. */
  workers?(env: ConnectorEnv, deps: import('../app/context.js').AppDeps): Array<import('../runtime.js').Worker>;
  /** Folder of this connector's own versioned SQL migrations (applied only when the connector is enabled). */
  readonly migrationsDir?: string;
  /** One line for the start-up banner. */
  describe?(env: ConnectorEnv): string;
}
