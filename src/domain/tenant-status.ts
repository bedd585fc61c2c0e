/** Tenant configuration status machine (states.md 7). Pure. */

export const TENANT_STATUSES = ['NEW', 'CONNECTED', 'DISCONNECTED'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];
export type TenantTrigger = 'configure' | 'disconnect';

export interface TenantTransitionRow {
  from: TenantStatus | null;
  to: TenantStatus;
  trigger: TenantTrigger;
  /** Message kinds written, in order (states.md 7 / messages.md 5). */
  messages: readonly string[];
}

export const TENANT_TRANSITIONS: readonly TenantTransitionRow[] = Object.freeze([
  { from: null, to: 'NEW', trigger: 'configure', messages: ['AppConfigUpdated', 'AddPaymentMethod*', 'ReadyForMerchantAppOnboarding'] },
  { from: 'NEW', to: 'NEW', trigger: 'configure', messages: ['AppConfigUpdated', 'PaymentMethodDifferences*', 'ReadyForMerchantAppOnboarding'] },
  { from: 'CONNECTED', to: 'CONNECTED', trigger: 'configure', messages: ['AppConfigUpdated', 'PaymentMethodDifferences*', 'ReadyForMerchantAppOnboarding'] },
  { from: 'NEW', to: 'DISCONNECTED', trigger: 'disconnect', messages: ['DeletePaymentMethod*', 'AppConfigUpdated'] },
  { from: 'CONNECTED', to: 'DISCONNECTED', trigger: 'disconnect', messages: ['DeletePaymentMethod*', 'AppConfigUpdated'] },
  { from: 'DISCONNECTED', to: 'CONNECTED', trigger: 'configure', messages: ['AppConfigUpdated', 'AddPaymentMethod*', 'ReadyForMerchantAppOnboarding'] },
  { from: 'DISCONNECTED', to: 'DISCONNECTED', trigger: 'disconnect', messages: [] },
] as TenantTransitionRow[]);

const SET: ReadonlySet<string> = new Set(TENANT_STATUSES);
export const isTenantStatus = (v: unknown): v is TenantStatus => typeof v === 'string' && SET.has(v);

/** `isActive` of states.md 7. */
export function isActiveTenantStatus(status: TenantStatus | string | null | undefined): boolean {
  return status === 'NEW' || status === 'CONNECTED';
}

/** Status after a successful configure: (none) → NEW, NEW → NEW, CONNECTED → CONNECTED, DISCONNECTED → CONNECTED. */
export function statusAfterConfigure(current: TenantStatus | null): TenantStatus {
  if (current === null) return 'NEW';
  if (current === 'DISCONNECTED') return 'CONNECTED';
  return current;
}

/** Status after disconnect: NEW/CONNECTED → DISCONNECTED; DISCONNECTED stays (no-op); unknown tenant (null) stays null (no-op). */
export function statusAfterDisconnect(current: TenantStatus | null): TenantStatus | null {
  if (current === null) return null;
  return 'DISCONNECTED';
}

/** The one gate for tenant status: the row for (from, to, trigger) or ILLEGAL_TRANSITION. `changed` = from !== to. */
export function tenantTransition(
  from: TenantStatus | string | null,
  to: TenantStatus | string,
  trigger: TenantTrigger | string,
): { ok: true; changed: boolean; row: TenantTransitionRow } | { ok: false; error: { code: 'ILLEGAL_TRANSITION'; from: string | null; to: string; message: string } } {
  const row = TENANT_TRANSITIONS.find((r) => r.from === from && r.to === to && r.trigger === trigger);
  if (row) return { ok: true, changed: from !== to, row };
  return {
    ok: false,
    error: { code: 'ILLEGAL_TRANSITION', from, to, message: `Tenant status transition from "${from ?? '(none)'}" to "${to}" is not allowed.` },
  };
}
