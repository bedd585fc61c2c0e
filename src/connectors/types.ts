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

export interface Connector extends ConfigurationHooks {
  /** Connector id as in `CONNECTOR` and `config/app/connectors/<id>/`. */
  readonly id: string;
  /** Provider name announced with payment methods, e.g. `Sandbox`. */
  readonly providerName: string;
  readonly capabilities: ConnectorCapabilities;
}
