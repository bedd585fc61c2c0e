import { describe, expect, it } from 'vitest';
import { MERCHANT_STATUSES, canReceivePayouts, merchantTransition } from '../../src/domain/merchant-status.js';
import {
  TENANT_STATUSES,
  isActiveTenantStatus,
  statusAfterConfigure,
  statusAfterDisconnect,
  tenantTransition,
} from '../../src/domain/tenant-status.js';

// states.md 6, written independently.
const MERCHANT_SPEC: Record<string, string[]> = {
  '(none)': ['pending'],
  pending: ['completed', 'enabled', 'restricted soon', 'restricted', 'rejected'],
  completed: ['enabled', 'restricted soon', 'restricted', 'rejected'],
  enabled: ['restricted soon', 'restricted', 'rejected'],
  'restricted soon': ['enabled', 'restricted', 'rejected'],
  restricted: ['enabled', 'restricted soon', 'rejected'],
  rejected: [],
};

describe('merchant onboarding machine (states.md 6)', () => {
  const pairs: Array<[string | null, string]> = [];
  for (const from of [null, ...MERCHANT_STATUSES]) for (const to of MERCHANT_STATUSES) pairs.push([from, to]);

  it.each(pairs)('%s → %s', (from, to) => {
    const res = merchantTransition(from, to);
    if (MERCHANT_SPEC[from ?? '(none)']!.includes(to)) expect(res).toEqual({ ok: true, changed: true, messages: ['MerchantAppOnboardingStatusChanged'] });
    else if (from === to) expect(res).toEqual({ ok: true, changed: false, messages: [] });
    else expect(res).toMatchObject({ ok: false, error: { code: 'ILLEGAL_TRANSITION', from, to } });
  });

  it('never accepts incomplete or unknown statuses', () => {
    expect(merchantTransition('pending', 'incomplete').ok).toBe(false);
    expect(merchantTransition(null, 'incomplete').ok).toBe(false);
    expect(merchantTransition('active', 'active').ok).toBe(false);
  });

  it('payouts allowed only for completed, enabled, restricted soon', () => {
    expect(MERCHANT_STATUSES.filter((s) => canReceivePayouts(s))).toEqual(['completed', 'enabled', 'restricted soon']);
    expect(canReceivePayouts(null)).toBe(false);
    expect(canReceivePayouts('incomplete')).toBe(false);
  });
});

describe('tenant configuration machine (states.md 7)', () => {
  it('configure', () => {
    expect(statusAfterConfigure(null)).toBe('NEW');
    expect(statusAfterConfigure('NEW')).toBe('NEW');
    expect(statusAfterConfigure('CONNECTED')).toBe('CONNECTED');
    expect(statusAfterConfigure('DISCONNECTED')).toBe('CONNECTED');
  });

  it('disconnect', () => {
    expect(statusAfterDisconnect('NEW')).toBe('DISCONNECTED');
    expect(statusAfterDisconnect('CONNECTED')).toBe('DISCONNECTED');
    expect(statusAfterDisconnect('DISCONNECTED')).toBe('DISCONNECTED');
    expect(statusAfterDisconnect(null)).toBeNull();
  });

  it('isActive', () => {
    expect(TENANT_STATUSES.filter((s) => isActiveTenantStatus(s))).toEqual(['NEW', 'CONNECTED']);
  });

  // states.md 7 rows, independently: from | to | trigger
  const SPEC = new Set([
    '(none)>NEW>configure',
    'NEW>NEW>configure',
    'CONNECTED>CONNECTED>configure',
    'NEW>DISCONNECTED>disconnect',
    'CONNECTED>DISCONNECTED>disconnect',
    'DISCONNECTED>CONNECTED>configure',
    'DISCONNECTED>DISCONNECTED>disconnect',
  ]);
  const cases: Array<[string | null, string, string]> = [];
  for (const from of [null, ...TENANT_STATUSES]) for (const to of TENANT_STATUSES) for (const t of ['configure', 'disconnect']) cases.push([from, to, t]);

  it.each(cases)('%s → %s (%s)', (from, to, trigger) => {
    const res = tenantTransition(from, to, trigger);
    expect(res.ok).toBe(SPEC.has(`${from ?? '(none)'}>${to}>${trigger}`));
    if (res.ok) expect(res.changed).toBe(from !== to);
  });

  it('statusAfterConfigure / statusAfterDisconnect always yield a legal row', () => {
    for (const from of [null, ...TENANT_STATUSES]) {
      expect(tenantTransition(from, statusAfterConfigure(from), 'configure').ok).toBe(true);
      const d = statusAfterDisconnect(from);
      if (d !== null) expect(tenantTransition(from, d, 'disconnect').ok).toBe(true);
    }
  });

  it('disconnect of a disconnected tenant sends nothing; first configure announces', () => {
    const res = tenantTransition('DISCONNECTED', 'DISCONNECTED', 'disconnect');
    expect(res.ok && res.row.messages).toEqual([]);
    const first = tenantTransition(null, 'NEW', 'configure');
    expect(first.ok && first.row.messages[0]).toBe('AppConfigUpdated');
  });
});
