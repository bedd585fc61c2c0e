/**
 * Connect: accounts (platform and Express connected accounts), account links, onboarding states, balances, transfers and reversals.
 */
import { type Ctx, type Json, type Rec, type State, err, int, invalid, mergeMetadata, newId, now, rand, str } from './core.js';

export type AccountStateName = 'pending' | 'completed' | 'enabled' | 'restricted_soon' | 'restricted' | 'rejected';

const DUE = ['business_profile.url', 'external_account', 'individual.dob.day', 'individual.first_name', 'tos_acceptance.date'];

function requirements(currently: string[], pastDue: string[], disabled: string | null, deadline: number | null): Json {
  return {
    alternatives: [],
    current_deadline: deadline,
    currently_due: currently,
    disabled_reason: disabled,
    errors: [],
    eventually_due: currently,
    past_due: pastDue,
    pending_verification: [],
  };
}

export function accountObject(id: string, livemode: boolean, params: Json, platform: boolean): Json {
  return {
    id,
    object: 'account',
    business_profile: { mcc: null, name: params.business_profile?.name ?? null, url: params.business_profile?.url ?? null, support_email: null },
    business_type: params.business_type ?? null,
    capabilities: platform ? { card_payments: 'active', transfers: 'active' } : { transfers: params.capabilities?.transfers ? 'inactive' : undefined },
    charges_enabled: platform,
    controller: platform ? { type: 'account' } : { ...(params.controller ?? {}), is_controller: true, type: 'application' },
    country: params.country ?? 'DE',
    created: now(),
    default_currency: params.default_currency ?? 'eur',
    details_submitted: platform,
    email: params.email ?? null,
    future_requirements: requirements([], [], null, null),
    livemode,
    metadata: mergeMetadata({}, params.metadata),
    payouts_enabled: platform,
    requirements: platform ? requirements([], [], null, null) : requirements(DUE, [], 'requirements.past_due', null),
    settings: { payouts: { schedule: { interval: 'daily' } } },
    tos_acceptance: { date: null, service_agreement: params.tos_acceptance?.service_agreement ?? 'full' },
    type: params.type ?? (params.controller?.stripe_dashboard?.type === 'express' ? 'express' : platform ? 'standard' : 'custom'),
  };
}

export function createAccount(state: State, ctx: Ctx, params: Json): Json {
  if (state.accounts.get(ctx.acct)?.platform) throw err(403, 'invalid_request_error', 'Connected accounts cannot create accounts.');
  const id = `acct_${rand(16)}`;
  const obj = accountObject(id, ctx.livemode, params, false);
  if (obj.capabilities.transfers === undefined) delete obj.capabilities.transfers;
  state.accounts.set(id, { platform: ctx.acct, balance: new Map() });
  state.put('account', ctx.acct, ctx.livemode, obj);
  return obj;
}

/** The account a key may read: its own (`GET /v1/account`) or one of its connected accounts. */
export function getAccount(state: State, ctx: Ctx, keyAcct: string, id: string): Json {
  const rec = state.recs.get(id);
  if (!rec || rec.type !== 'account') throw err(404, 'invalid_request_error', `No such account: '${id}'`, { code: 'resource_missing', param: 'account' });
  if (id !== ctx.acct && rec.acct !== ctx.acct && id !== keyAcct && rec.acct !== keyAcct)
    throw err(403, 'invalid_request_error', `The provided key does not have access to account '${id}' (or that account does not exist).`, { code: 'account_invalid' });
  return rec.obj;
}

export function updateAccount(state: State, ctx: Ctx, id: string, params: Json): Json {
  const rec = state.get(ctx, id, 'account', 'account');
  const o = rec.obj;
  o.metadata = mergeMetadata(o.metadata, params.metadata);
  if (params.business_profile?.name !== undefined) o.business_profile.name = params.business_profile.name;
  if (params.email !== undefined) o.email = str(params, 'email') ?? null;
  return o;
}

export function connectedAccount(state: State, ctx: Ctx, id: unknown, param = 'account'): Rec {
  const rec = state.recs.get(typeof id === 'string' ? id : '');
  if (!rec || rec.type !== 'account' || rec.acct !== ctx.acct || rec.livemode !== ctx.livemode)
    throw invalid(`No such account: '${String(id)}'`, { code: 'resource_missing', param });
  return rec;
}

export function createAccountLink(state: State, ctx: Ctx, params: Json): Json {
  const acct = connectedAccount(state, ctx, str(params, 'account', { required: true }));
  const type = str(params, 'type', { required: true, oneOf: ['account_onboarding', 'account_update'] });
  const returnUrl = str(params, 'return_url', { required: true })!;
  const refreshUrl = str(params, 'refresh_url') ?? returnUrl;
  const token = rand(32);
  const obj = { object: 'account_link', created: now(), expires_at: now() + 300, url: `${state.base}/onboarding/${token}` };
  state.put('account_link', ctx.acct, ctx.livemode, { ...obj, id: `link_${token}` }, { token, account: acct.id, returnUrl, refreshUrl, used: false, type });
  return obj;
}

/** Sets a connected account to one of the states of stripe.md 1.7 and sends `account.updated` (Connect) with previous attributes. */
export function setAccountState(state: State, id: string, name: AccountStateName): Json {
  const rec = state.must(id, 'account');
  const o = rec.obj;
  const previous = { capabilities: structuredClone(o.capabilities), requirements: structuredClone(o.requirements), details_submitted: o.details_submitted, payouts_enabled: o.payouts_enabled, charges_enabled: o.charges_enabled };
  const deadline = now() + 14 * 86400;
  const set = (transfers: string, submitted: boolean, payouts: boolean, req: Json, future: Json = requirements([], [], null, null)) => {
    o.capabilities = { ...o.capabilities, transfers };
    o.details_submitted = submitted;
    o.payouts_enabled = payouts;
    o.requirements = req;
    o.future_requirements = future;
  };
  switch (name) {
    case 'pending':
      set('inactive', false, false, requirements(DUE, [], 'requirements.past_due', null));
      break;
    case 'completed':
      set('pending', true, false, { ...requirements([], [], 'requirements.pending_verification', null), pending_verification: ['individual.verification.document'] });
      break;
    case 'enabled':
      set('active', true, true, requirements([], [], null, null));
      break;
    case 'restricted_soon':
      set('active', true, true, requirements(['individual.id_number'], [], null, deadline));
      break;
    case 'restricted':
      set('inactive', true, false, requirements(['individual.id_number'], ['individual.id_number'], 'requirements.past_due', null));
      break;
    case 'rejected':
      set('inactive', true, false, requirements([], [], 'rejected.fraud', null));
      break;
  }
  if (name === 'enabled' || name === 'restricted_soon') o.tos_acceptance.date ??= now();
  o.charges_enabled = false;
  const ctx = { acct: rec.id, livemode: rec.livemode, requestId: null, idempotencyKey: null };
  state.emit(ctx, 'account.updated', o, previous);
  if (previous.capabilities.transfers !== o.capabilities.transfers)
    state.emit(ctx, 'capability.updated', capabilityObject(o, 'transfers'), { status: previous.capabilities.transfers });
  return o;
}

/** The Capability object of an account (`GET /v1/accounts/:id/capabilities/:cap`, `capability.updated`). */
export function capabilityObject(account: Json, cap: string): Json {
  const status = account.capabilities?.[cap];
  return {
    id: cap,
    object: 'capability',
    account: account.id,
    future_requirements: structuredClone(account.future_requirements),
    requested: status !== undefined,
    requested_at: status !== undefined ? account.created : null,
    requirements: structuredClone(account.requirements),
    status: status ?? 'unrequested',
  };
}

export function onboardingLink(state: State, token: string): Rec | undefined {
  return [...state.recs.values()].find((r) => r.type === 'account_link' && r.x.token === token);
}

// ---------------------------------------------------------------------------------------------------------
// Balance, transfers, reversals

export function balanceObject(state: State, ctx: Ctx): Json {
  const st = state.accounts.get(ctx.acct)!;
  const mode = ctx.livemode ? 'live:' : 'test:';
  const available: Json[] = [];
  const pending: Json[] = [];
  for (const [k, b] of st.balance) {
    if (!k.startsWith(mode)) continue;
    const currency = k.slice(mode.length);
    available.push({ amount: b.available, currency, source_types: { card: b.available } });
    pending.push({ amount: b.pending, currency, source_types: { card: b.pending } });
  }
  if (available.length === 0) {
    available.push({ amount: 0, currency: 'eur', source_types: { card: 0 } });
    pending.push({ amount: 0, currency: 'eur', source_types: { card: 0 } });
  }
  return { object: 'balance', available, livemode: ctx.livemode, pending };
}

const reversalsList = (tr: Json, data: Json[]): Json => ({ object: 'list', data, has_more: false, total_count: data.length, url: `/v1/transfers/${tr.id}/reversals` });

export function createTransfer(state: State, ctx: Ctx, params: Json): Json {
  const amount = int(params, 'amount', { required: true, min: 1 })!;
  const currency = str(params, 'currency', { required: true })!.toLowerCase();
  const dest = connectedAccount(state, ctx, str(params, 'destination', { required: true }), 'destination');
  if (dest.obj.capabilities?.transfers !== 'active')
    throw invalid(
      `Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments`,
      { code: 'insufficient_capabilities_for_transfer', param: 'destination' },
    );
  const src = str(params, 'source_transaction');
  if (src) {
    const ch = state.get(ctx, src, 'charge', 'source_transaction');
    if (ch.obj.currency !== currency) throw invalid(`The currency of source_transaction's balance transaction (${ch.obj.currency}) must be the same as the transfer currency (${currency}).`, { param: 'currency' });
    const used = [...state.recs.values()]
      .filter((r) => r.type === 'transfer' && r.obj.source_transaction === ch.id)
      .reduce((s, r) => s + r.obj.amount - r.obj.amount_reversed, 0);
    if (amount > ch.obj.amount_captured - used)
      throw invalid(`Transfer amount (${amount}) exceeds the remaining amount of source_transaction ${ch.id} (${ch.obj.amount_captured - used}).`, {
        code: 'amount_too_large',
        param: 'amount',
      });
  } else {
    const b = state.balance(ctx.acct, ctx.livemode, currency);
    if (b.available < amount)
      throw invalid('You have insufficient available funds in your Stripe account. Try adding funds directly to your available balance by creating Charges using the 4000000000000077 test card.', {
        code: 'balance_insufficient',
      });
    b.available -= amount;
  }
  state.balance(dest.id, ctx.livemode, currency).available += amount;
  const id = newId('tr');
  const obj: Json = {
    id,
    object: 'transfer',
    amount,
    amount_reversed: 0,
    balance_transaction: `txn_${rand(24)}`,
    created: now(),
    currency,
    description: str(params, 'description') ?? null,
    destination: dest.id,
    destination_payment: `py_${rand(24)}`,
    livemode: ctx.livemode,
    metadata: mergeMetadata({}, params.metadata),
    reversals: reversalsList({ id }, []),
    reversed: false,
    source_transaction: src ?? null,
    source_type: 'card',
    transfer_group: str(params, 'transfer_group') ?? null,
  };
  state.put('transfer', ctx.acct, ctx.livemode, obj);
  state.emit(ctx, 'transfer.created', obj);
  return obj;
}

export function listTransfers(state: State, ctx: Ctx, params: Json): Json {
  const group = str(params, 'transfer_group');
  const dest = str(params, 'destination');
  return state.list(ctx, 'transfer', params, '/v1/transfers', (r) => (!group || r.obj.transfer_group === group) && (!dest || r.obj.destination === dest));
}

export function createReversal(state: State, ctx: Ctx, trId: string, params: Json): Json {
  const tr = state.get(ctx, trId, 'transfer');
  const t = tr.obj;
  const left = t.amount - t.amount_reversed;
  const amount = int(params, 'amount', { min: 1 }) ?? left;
  if (left <= 0) throw invalid(`Transfer ${t.id} has already been fully reversed.`, { code: 'transfer_already_reversed' });
  if (amount > left) throw invalid(`Reversal amount (${amount}) is greater than the unreversed amount of the transfer (${left}).`, { code: 'amount_too_large', param: 'amount' });
  const destBalance = state.balance(t.destination, ctx.livemode, t.currency);
  // [unconfirmed] Stripe may let platform-liable Express accounts go negative; the fake refuses like a Standard account.
  if (destBalance.available < amount)
    throw invalid(`The destination account ${t.destination} has insufficient funds to cover the reversal.`, { code: 'balance_insufficient' });
  destBalance.available -= amount;
  state.balance(ctx.acct, ctx.livemode, t.currency).available += amount;
  const obj: Json = {
    id: newId('trr'),
    object: 'transfer_reversal',
    amount,
    balance_transaction: `txn_${rand(24)}`,
    created: now(),
    currency: t.currency,
    destination_payment_refund: `pyr_${rand(24)}`,
    metadata: mergeMetadata({}, params.metadata),
    source_refund: null,
    transfer: t.id,
  };
  state.put('transfer_reversal', ctx.acct, ctx.livemode, obj);
  const previous = { amount_reversed: t.amount_reversed, reversed: t.reversed };
  t.amount_reversed += amount;
  t.reversed = t.amount_reversed >= t.amount;
  t.reversals = reversalsList(t, [obj, ...t.reversals.data]);
  state.emit(ctx, 'transfer.reversed', t, previous);
  state.emit(ctx, 'transfer.updated', t, previous);
  return obj;
}

export function listReversals(state: State, ctx: Ctx, trId: string, params: Json): Json {
  state.get(ctx, trId, 'transfer');
  return state.list(ctx, 'transfer_reversal', params, `/v1/transfers/${trId}/reversals`, (r) => r.obj.transfer === trId);
}
