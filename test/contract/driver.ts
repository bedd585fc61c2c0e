/**
 * What the connector contract suite (connectors/README.md 3) needs to know about one connector beyond the public
 * surface: how to start the app against its PSP, what configuration a tenant sends, and how a shopper, a storefront, a
 * merchant or the PSP itself acts (pay on the page, pay in a component, approve an express wallet, finish onboarding,
 * (re)deliver webhooks). Everything the suite asserts goes through HTTP, published messages and rows; a driver only
 * plays the actors outside the app.
 */
import { loadConfig } from '../../src/config.js';
import type { ConnectorCapabilities, ConnectorModule } from '../../src/connectors/types.js';
import { createLogger } from '../../src/runtime.js';
import type { TestApp } from '../helpers/app.js';
import type { Hop } from '../helpers/hosted-flow.js';

/** How a shopper's attempt ends at the PSP. */
export type PayOutcome =
  /** authorized (captures and refunds succeed) */
  | 'success'
  /** a retryable decline (`card_declined`) */
  | 'decline'
  /** challenge shown, then completed */
  | 'challenge-complete'
  /** challenge shown, then failed (a retryable decline) */
  | 'challenge-fail'
  /** authorized, but refunds fail later at the PSP */
  | 'refund-fails'
  /** authorized, but every capture fails at the PSP */
  | 'capture-fails';

/** Where a shopper ends up after paying on the hosted page. */
export interface ShopperResult {
  hops: Hop[];
  /** The last URL the browser was sent to (a shop URL, or an app/PSP page). */
  finalUrl: string;
  /** Final page HTML when the browser stayed on an app/PSP page. */
  html: string;
}

export interface Payer {
  firstName: string;
  lastName: string;
  email: string;
  shipping: { address1: string; zipCode: string; city: string; iso2Code: string };
}

export interface ConnectorDriver {
  readonly id: string;
  /** Provider name announced with payment methods. */
  readonly providerName: string;
  /** Method names the configuration of `configuration()` announces. */
  readonly methods: { card: string; express: string };
  readonly transactionIdPattern: RegExp;
  /** Shopper instruments this driver's PSP cannot produce (outcome → why): such flows are skipped naming the reason. */
  readonly unsupported: Partial<Record<PayOutcome, string>>;
  /**
   * Whether a tenant can ask for several captures per payment where the connector's default is single-final
   * (`configuration({multicapture: true})`; the per-payment truth is `PspPayment.multipleCapturesAvailable`).
   */
  readonly multicaptureOption: boolean;
  /** Whether the `refund-fails` instrument's refunds first succeed, then fail (stripe.md 3.7), or fail straight away. */
  readonly refundFailsAfterSuccess: boolean;

  /** Starts the app (and the PSP or its fake) for this connector. */
  start(): Promise<TestApp>;
  stop(): Promise<void>;
  /** The connector's declared capabilities (known before the app starts, for skip decisions). */
  capabilities(): ConnectorCapabilities;

  /** Configuration values a tenant's Back Office user saves (`/private/configure`). */
  configuration(tenant: string, o?: { captureMode?: 'manual' | 'automatic'; express?: boolean; marketplace?: boolean; multicapture?: boolean }): Record<string, unknown>;
  /** Values whose credential the PSP refuses, and the field the error must name. */
  refusedConfiguration(tenant: string): { values: Record<string, unknown>; field: string; secret: string };

  /** Pays on the hosted page at `pageUrl` like a shopper's browser and follows the redirects. */
  payOnPage(app: TestApp, pageUrl: string, outcome: PayOutcome): Promise<ShopperResult>;
  /** Makes the payment fail for good on the hosted page (the PSP's final decline, or the app's declined-attempts cap). */
  failForGood(app: TestApp, pageUrl: string): Promise<ShopperResult>;
  /** A headless storefront pays a pre-order payment in the PSP's component (no order yet). */
  payPreOrder(app: TestApp, tenant: string, preOrderPaymentData: Record<string, unknown>, outcome: PayOutcome): Promise<void>;
  /**
   * The shopper approves an express payment in the PSP's wallet with `payer`; answers the `preOrderPaymentData` the
   * storefront sends on to `/private/customer` and confirm-pre-order.
   */
  approveExpress(app: TestApp, tenant: string, preOrderPaymentData: Record<string, unknown>, payer: Payer): Promise<Record<string, unknown>>;
  /**
   * The shopper's approval of an express payment is declined for good (sandbox: a blocked card; Stripe: a declined
   * ConfirmationToken that the server-side confirmation uses); answers the `preOrderPaymentData` sent on.
   */
  declineExpress(app: TestApp, tenant: string, preOrderPaymentData: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** The PSP's own view of a payment's money. */
  pspAmounts(app: TestApp, tenant: string, transactionId: string): Promise<{ captured: number; refunded: number }>;

  /** Waits until every webhook the PSP sends about `objectId` was delivered and the app finished processing it. */
  settle(app: TestApp, tenant: string, objectId: string): Promise<void>;
  /** Stops the PSP from delivering the tenant's webhooks (they queue up at the PSP). */
  holdWebhooks(app: TestApp, tenant: string): Promise<void>;
  /**
   * Delivers the tenant's held webhooks in reverse order, each twice, then lets the PSP deliver normally again.
   * Answers the HTTP statuses of the deliveries it made and the event ids.
   */
  releaseWebhooksReversedTwice(app: TestApp, tenant: string): Promise<{ statuses: number[]; eventIds: string[] }>;
  /** Delivers again (signed, as the PSP would) one event the PSP already delivered about `objectId`; answers the status. */
  redeliver(app: TestApp, tenant: string, objectId: string): Promise<number>;

  /**
   * The PSP performs the next capture / refund call but its answer never reaches the app (connection lost after the
   * write). Answers a check that the fault really happened.
   */
  loseNextAnswer(app: TestApp, op: 'capture' | 'refund'): Promise<() => boolean>;

  /** Staff act in the PSP's dashboard on a payment (capabilities.dashboardOperations): full amount. */
  dashboard(app: TestApp, tenant: string, transactionId: string, op: 'capture' | 'cancel' | 'refund'): Promise<void>;

  /** The merchant finishes (or fails) the PSP's onboarding at `url`. */
  completeOnboarding(app: TestApp, tenant: string, url: string, outcome: 'complete' | 'fail'): Promise<void>;
}

/** A module's declared capabilities, read without starting an app (the suite decides its skips before any app runs). */
export function moduleCapabilities(module: ConnectorModule): ConnectorCapabilities {
  const config = loadConfig({ DATABASE_URL: 'memory://', ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`, LOG_LEVEL: 'silent', CONNECTOR: module.id });
  return module.create({ config, listenUrl: () => 'http://127.0.0.1:0', log: createLogger(config) }).capabilities;
}
