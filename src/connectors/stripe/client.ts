/**
 * The Stripe SDK client (stripe.md 1, 4.4): one client per secret key, API version pinned, SDK retries off, timeouts
 * from the 15 s budget (the port's AbortSignal is carried into the SDK's fetch), host/port/protocol from
 * STRIPE_API_BASE. SDK errors become port failures (values, never throws).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type Stripe from 'stripe';
import type { PspFailure, PspResult, TenantSettings } from '../types.js';

/** The API version this connector's payload mapping is written for (stripe.md 4.4); change together with the SDK. */
export const STRIPE_API_VERSION = '2026-10-28.endive' as const;
/** Upper bound of one call; the port's signal usually ends it earlier. */
export const STRIPE_TIMEOUT_MS = 15_000;

const currentSignal = new AsyncLocalStorage<AbortSignal>();

const requireSdk = createRequire(import.meta.url);
let loadedSdk: typeof Stripe | undefined;
/**
 * The SDK, loaded on first use (README "Benchmark"): a deployment that does not enable the Stripe connector never loads
 * it (about 120 ms of start-up CPU and 19 MB of memory). Every value use of the SDK goes through here.
 */
export const stripeSdk = (): typeof Stripe => (loadedSdk ??= requireSdk('stripe') as typeof Stripe);

/** A fetch that also stops when the port's signal of the running call aborts. */
const signalFetch: typeof fetch = (input, init) => {
  const outer = currentSignal.getStore();
  const signals = [init?.signal, outer].filter((s): s is AbortSignal => s !== undefined && s !== null);
  return fetch(input, { ...init, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] });
};

export interface StripeApiTarget {
  host: string;
  port: number;
  protocol: 'http' | 'https';
}

/** STRIPE_API_BASE → the SDK's host, port and protocol. */
export function apiTarget(base: string): StripeApiTarget {
  const u = new URL(base);
  const protocol = u.protocol === 'http:' ? 'http' : 'https';
  return { host: u.hostname, port: u.port ? Number(u.port) : protocol === 'http' ? 80 : 443, protocol };
}

export class StripeClients {
  private readonly clients = new Map<string, Stripe>();
  constructor(private readonly base: () => string) {}

  /** The client of one secret key (cached; the key is never logged). */
  of(secretKey: string): Stripe {
    const target = apiTarget(this.base());
    const cacheKey = `${target.protocol}://${target.host}:${target.port}|${secretKey}`;
    let c = this.clients.get(cacheKey);
    if (!c) {
      const Sdk = stripeSdk();
      c = new Sdk(secretKey, {
        apiVersion: STRIPE_API_VERSION,
        maxNetworkRetries: 0,
        timeout: STRIPE_TIMEOUT_MS,
        host: target.host,
        port: target.port,
        protocol: target.protocol,
        telemetry: false,
        httpClient: Sdk.createFetchHttpClient(signalFetch),
        appInfo: { name: 'open-acp-pay' },
      });
      if (this.clients.size > 500) this.clients.clear();
      this.clients.set(cacheKey, c);
    }
    return c;
  }
}

export const secretKeyOf = (s: TenantSettings): string => (typeof s.secretKey === 'string' ? s.secretKey : '');

/** Lower-case hex SHA-256 of `tenant|value` (stripe.md 8, key encoding). */
export const sha256Key = (tenant: string, value: string): string => createHash('sha256').update(`${tenant}|${value}`, 'utf8').digest('hex');

/** Idempotency keys (stripe.md 1.3); all well below Stripe's 255 characters. */
export const keys = {
  hostedPayment: (tenant: string, orderReference: string): string => `oacp_pi_${sha256Key(tenant, orderReference)}`,
  preOrderPayment: (paymentId: string): string => `oacp_pi_${paymentId}`,
  amountUpdate: (paymentId: string, version: string): string => `oacp_piu_${paymentId}_${version}`,
  confirm: (paymentId: string): string => `oacp_pic_${paymentId}`,
  capture: (captureId: string): string => `oacp_cap_${captureId}`,
  cancel: (cancelId: string): string => `oacp_cancel_${cancelId}`,
  preOrderCancel: (id: string): string => `oacp_pi_cancel_${id}`,
  refund: (refundId: string): string => `oacp_ref_${refundId}`,
  transfer: (payoutId: string): string => `oacp_tr_${payoutId}`,
  reversal: (reversalId: string): string => `oacp_trr_${reversalId}`,
  account: (tenant: string, merchantReference: string): string => `oacp_acct_${sha256Key(tenant, merchantReference)}`,
};

/** Codes Stripe answers for a business refusal that is not a card decline (stripe.md 1.2, 1.6). */
const DECLINE_CODES = new Set([
  'amount_too_large',
  'amount_too_small',
  'charge_exceeds_source_limit',
  'charge_already_refunded',
  'balance_insufficient',
  'insufficient_funds',
  'insufficient_capabilities_for_transfer',
  'transfers_not_allowed',
  'account_invalid',
  'invalid_amount',
  'resource_missing',
  'payment_intent_authentication_failure',
  'payment_method_unactivated',
  'refund_disputed_payment',
  'parameter_invalid_integer',
]);

export type StripeErr = InstanceType<typeof Stripe.errors.StripeError>;

export const isStripeError = (e: unknown): e is StripeErr => loadedSdk !== undefined && e instanceof loadedSdk.errors.StripeError;

/** Whether Stripe answered this error as a replay of a stored response for the same idempotency key. */
export const isReplayed = (e: StripeErr): boolean => String((e.headers as Record<string, string> | undefined)?.['idempotent-replayed'] ?? '') === 'true';

/** Keys, webhook secrets and client secrets never leave the connector inside a message (they may end up in logs). */
export const redactSecrets = (text: string): string =>
  text
    .replace(/\b(sk|rk)_(test|live)_[A-Za-z0-9]+/g, '$1_$2_********')
    .replace(/\bwhsec_[A-Za-z0-9]+/g, 'whsec_********')
    .replace(/\b((?:pi|seti)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+/g, '$1_secret_********');

/** An SDK error → the port's failure (stripe.md 1.2: conflict, declined, error, timeout). */
export function failureOf(err: unknown, signal?: AbortSignal): PspFailure {
  if (signal?.aborted) return { kind: 'timeout' };
  if (!isStripeError(err)) return { kind: 'error', message: `Stripe call failed: ${err instanceof Error ? err.name : 'unknown error'}` };
  const code = String(err.code ?? err.type ?? 'unknown');
  const message = redactSecrets(String(err.message ?? code)).slice(0, 500);
  const Stripe = stripeSdk();
  if (err instanceof Stripe.errors.StripeConnectionError) {
    return /timed? ?out|timeout/i.test(message) ? { kind: 'timeout' } : { kind: 'error', message: `Stripe unreachable: ${message}` };
  }
  if (err instanceof Stripe.errors.StripeCardError) return { kind: 'declined', code: String(err.decline_code ?? err.code ?? 'card_declined'), message };
  if (err instanceof Stripe.errors.StripeIdempotencyError) return { kind: 'conflict', code: 'idempotency_error', message };
  if (err instanceof Stripe.errors.StripeInvalidRequestError) {
    if (code === 'payment_intent_unexpected_state') return { kind: 'conflict', code, message };
    if (DECLINE_CODES.has(code) || err.statusCode === 402) return { kind: 'declined', code, message };
    return { kind: 'error', message: `Stripe refused the request (${err.statusCode ?? '?'} ${code}): ${message}` };
  }
  return { kind: 'error', message: `Stripe answered ${err.statusCode ?? '?'} ${code}: ${message}` };
}

/** Runs one SDK call with the port's signal; any error becomes a PspFailure. */
export async function run<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<PspResult<T>> {
  if (signal.aborted) return { ok: false, failure: { kind: 'timeout' } };
  try {
    return { ok: true, value: await currentSignal.run(signal, fn) };
  } catch (err) {
    return { ok: false, failure: failureOf(err, signal) };
  }
}

/** As `run`, but hands the raw error to the caller (to look at codes, replays, status). */
export async function attempt<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await currentSignal.run(signal, fn) };
  } catch (error) {
    return { ok: false, error };
  }
}
