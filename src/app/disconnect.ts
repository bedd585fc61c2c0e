/**
 * Use case: disconnect a tenant (sync-api.md 4.2, flows.md 3, states.md 7).
 *
 * Checks in order (401 is the auth hook's): tenant header (400 "20000"), unknown or already disconnected
 * tenant (204, nothing happens), open payments (409 "21000" / 400 "21001"), active merchants when the connector
 * onboards merchants (409 "22000" / 400 "22001"). `X-Confirmation-Status` is a comma list; each check that
 * needs a confirmation consumes the next value.
 * Effects in one transaction: DISCONNECTED, isActive false, revision + 1, DeletePaymentMethod per announced
 * method (list emptied), AppConfigUpdated. The configuration (and its encrypted secrets) is kept.
 */
import { decryptedSettings } from '../store/tenants.js';
import { AppError } from '../domain/errors.js';
import type { PaymentStatus } from '../domain/payment-status.js';
import { statusAfterDisconnect, tenantTransition } from '../domain/tenant-status.js';
import { t, type Locale } from '../i18n/messages.js';
import { enqueue, type OutgoingMessage } from '../messaging/outbox.js';
import type { Queryable } from '../store/db.js';
import { hasActiveMerchants } from '../store/merchants.js';
import { tenantHasOpenPayments } from '../store/payments.js';
import { loadTenant, saveTenant, type TenantRecord } from '../store/tenants.js';
import { appConfigUpdatedMessage, deletePaymentMethodMessage } from './configure.js';
import type { AppDeps } from './context.js';

export const OPEN_PAYMENT_STATUSES: readonly PaymentStatus[] = ['new', 'authorized', 'capture_requested', 'partially_captured', 'capture_failed', 'cancellation_failed'];

export interface DisconnectInput {
  tenantIdentifier: string | undefined;
  /** Raw `X-Confirmation-Status` value. */
  confirmation: string | undefined;
  locale: Locale;
  requestId?: string;
}

export type DisconnectResult = { disconnected: boolean };

const TRUE_VALUES = new Set(['true', '1', 'yes', 'on']);

/** Parses `X-Confirmation-Status` into a queue of answers (empty entries are kept as non-true answers). */
export function confirmationQueue(header: string | undefined): string[] {
  if (header === undefined || header.trim() === '') return [];
  return header.split(',').map((v) => v.trim());
}

export const isTrueConfirmation = (v: string): boolean => TRUE_VALUES.has(v.trim().toLowerCase());

/** Open payments of the tenant (sync-api.md 4.2 definition). */
export const hasOpenPayments = (q: Queryable, tenant: string): Promise<boolean> => tenantHasOpenPayments(q, tenant, OPEN_PAYMENT_STATUSES);

function confirmation(locale: Locale): { labelOk: string; labelCancel: string } {
  return { labelOk: t(locale, 'confirm_label_ok'), labelCancel: t(locale, 'confirm_label_cancel') };
}

export async function disconnectTenant(deps: AppDeps, input: DisconnectInput): Promise<DisconnectResult> {
  const { locale } = input;
  const tenant = input.tenantIdentifier;
  if (tenant === undefined) throw new AppError('20000', t(locale, 'disconnect_tenant_missing'), { status: 400 });

  const row = await loadTenant(deps.db, tenant);
  if (!row || row.status === 'DISCONNECTED') return { disconnected: false };

  const answers = confirmationQueue(input.confirmation);
  const needConfirmation = (code: string, declinedCode: string, textKey: 'disconnect_open_orders' | 'disconnect_merchants', declinedKey: 'disconnect_open_orders_declined' | 'disconnect_merchants_declined'): void => {
    const answer = answers.shift();
    if (answer === undefined) throw new AppError(code, t(locale, textKey), { status: 409, confirm: confirmation(locale) });
    if (!isTrueConfirmation(answer)) throw new AppError(declinedCode, t(locale, declinedKey), { status: 400 });
  };
  if (await hasOpenPayments(deps.db, tenant)) needConfirmation('21000', '21001', 'disconnect_open_orders', 'disconnect_open_orders_declined');
  const connector = deps.connectors.require(row.connector);
  if (connector.capabilities.onboarding && (await hasActiveMerchants(deps.db, tenant))) {
    needConfirmation('22000', '22001', 'disconnect_merchants', 'disconnect_merchants_declined');
  }

  // Best effort: the connector removes what it registered at the PSP (e.g. webhook endpoints); never blocks the disconnect.
  if (connector.beforeDisconnect) {
    try {
      await connector.beforeDisconnect(decryptedSettings(deps.secrets, row), { tenantIdentifier: tenant, appBaseUrl: deps.config.appBaseUrl, appIdentifier: deps.config.appIdentifier }, AbortSignal.timeout(15_000));
    } catch (err) {
      deps.log.warn({ tenantIdentifier: tenant, err: err instanceof Error ? err.message : String(err) }, 'connector beforeDisconnect failed (disconnect goes on)');
    }
  }

  return deps.db.tx(async (tx) => {
    const current = await loadTenant(tx, tenant, { forUpdate: true });
    if (!current) return { disconnected: false };
    const to = statusAfterDisconnect(current.status);
    if (to === null || current.status === 'DISCONNECTED') return { disconnected: false };
    const transition = tenantTransition(current.status, to, 'disconnect');
    if (!transition.ok) throw new Error(transition.error.message);

    const next: TenantRecord = { ...current, status: to, is_active: false, revision: current.revision + 1, announced_methods: [] };
    const messages: OutgoingMessage[] = current.announced_methods.map((m) =>
      deletePaymentMethodMessage(tenant, m, connector.providerName, next.revision, input.requestId),
    );
    messages.push(appConfigUpdatedMessage(deps, next, input.requestId));
    await saveTenant(tx, next);
    await enqueue(tx, deps.config.appIdentifier, messages);
    return { disconnected: true };
  });
}
